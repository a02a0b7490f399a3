import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { expireDeadlines, type TimedOutRun } from '@fleetwatch/domain';
import {
  HistoryRepository,
  runInSqlTransaction,
  SQL_POOL,
  StatusEventsRepository,
  TargetStatesRepository,
  type HeartbeatRunRow,
  type LeasedJob,
  type SqlPool,
  type SqlTransaction,
} from '@fleetwatch/persistence';
import { AggregatorMetrics } from '../aggregator.metrics';
import { SerialLane } from '../status/serial-lane';
import type { AggregatorConfig } from '../config';
import type { IndexedAs } from '../live/live-projection.service';
import { StatusPropagation } from '../status/status-propagation.service';
import { AGGREGATOR_CONFIG } from '../tokens';
import { DeadlineCache } from './deadline-cache';

/** Deadlines handled per transaction; more wait for the next round of the same tick. */
export const SWEEP_BATCH = 500;
const MAX_ROUNDS = 20;

/**
 * The sweeper's expire job: deadlines due by Postgres (`deadline_at`, the
 * durable source), plus whatever Redis's deadline cache lists as due, are
 * expired under the targets' row locks in the serial lane, so expiry is ordered
 * with observation batches and a deadline a fresher observation moved is left
 * alone. STALE (or DOWN for heartbeats) is stored with its events like any
 * transition, then projected and published; re-running it changes nothing.
 */
@Injectable()
export class DeadlineExpiry implements LeasedJob, OnModuleDestroy {
  readonly name = 'expire';
  private stopped = false;
  private readonly metrics = AggregatorMetrics.get();

  constructor(
    @Inject(SQL_POOL) private readonly db: SqlPool,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    private readonly states: TargetStatesRepository,
    private readonly events: StatusEventsRepository,
    private readonly history: HistoryRepository,
    private readonly propagation: StatusPropagation,
    private readonly lane: SerialLane,
    private readonly cache: DeadlineCache,
  ) {}

  onModuleDestroy(): void {
    this.stopped = true;
  }

  /** Expires everything due (in rounds of SWEEP_BATCH), then keeps the cache in line. */
  async run(now: number): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS && !this.stopped; round++) {
      const durable = await this.lane.run(() => this.expireDue(now));
      if (durable < SWEEP_BATCH) break;
    }
    await this.cache.reconcile(now);
  }

  /** One transaction over at most one batch of due deadlines; returns how many Postgres listed as due. */
  async expireDue(now: number): Promise<number> {
    const [durable, cached] = await Promise.all([
      this.states.dueDeadlines(now, SWEEP_BATCH),
      this.cache.due(now, SWEEP_BATCH),
    ]);
    if (durable.length === 0 && cached.length === 0) return 0;
    this.cache.noteMisses(durable, cached, SWEEP_BATCH);
    const candidates = [...durable, ...cached];
    const outcome = await runInSqlTransaction(this.db, async (tx) => {
      const current = await this.states.lockMany(
        tx,
        candidates.map((c) => c.targetId),
      );
      const r = expireDeadlines(current, candidates, now, { downQuorumPct: this.config.downQuorumPct });
      await this.states.saveMany(tx, r.changed);
      const stored = await this.events.insertMany(tx, r.events);
      await this.recordTimedOutRuns(tx, r.timedOutRuns);
      const previous = new Map<string, IndexedAs | null>();
      for (const t of r.changed) {
        const before = current.get(t.id);
        if (before) previous.set(t.id, { status: before.status, tags: before.tags });
      }
      return { targets: r.changed, previous, events: stored, deadlines: r.deadlines };
    });
    // The cache is settled after the projection (same queue), which re-adds the deadlines it keeps.
    await this.propagation.propagate(outcome, () => this.cache.settle(outcome.deadlines, cached));
    this.metrics.transitions.inc({ source: 'sweeper' }, outcome.events.length);
    return durable.length;
  }

  private async recordTimedOutRuns(tx: SqlTransaction, timedOut: readonly TimedOutRun[]): Promise<void> {
    if (timedOut.length === 0) return;
    const monitors = await this.history.monitorsOfTargets(
      tx,
      timedOut.map((r) => r.targetId),
    );
    const runs: HeartbeatRunRow[] = timedOut.flatMap((r) => {
      const monitorId = monitors.get(r.targetId);
      return monitorId
        ? [
            {
              monitorId,
              targetId: r.targetId,
              startedAt: r.startedAt,
              finishedAt: r.finishedAt,
              durationMs: r.finishedAt - r.startedAt,
              outcome: 'timeout' as const,
            },
          ]
        : [];
    });
    await this.history.insertHeartbeatRuns(tx, runs);
  }
}
