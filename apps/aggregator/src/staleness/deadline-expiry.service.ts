import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { OBSERVATION_SHARDS } from '@fleetwatch/contracts';
import { expireDeadlines, type TimedOutRun } from '@fleetwatch/domain';
import { shardOf } from '@fleetwatch/messaging';
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
 * Expiry of due deadlines, by every replica for the shards it holds: deadlines due by
 * Postgres (`deadline_at`, the durable source), plus whatever Redis's deadline cache
 * lists as due, are expired under the targets' row locks in the shard's lane, so
 * expiry is ordered with that shard's observation batches and a deadline a fresher observation moved is left
 * alone. STALE (or DOWN for heartbeats) is stored with its events like any
 * transition, then projected and published; re-running it changes nothing.
 */
@Injectable()
export class DeadlineExpiry implements OnModuleDestroy {
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

  /**
   * Expires everything due in the shards this replica holds (in rounds of SWEEP_BATCH),
   * each in its shard's lane, so expiry is ordered with that shard's batches: for each shard
   * of `cutoffs`, the deadlines at or before its cutoff (now, or the time up to which its
   * consumer has applied its queue: ObservationsHandler.expiryCutoffs). `holds` is asked
   * again inside the lane: a shard handed over meanwhile is left to its new holder.
   */
  async expireShards(cutoffs: ReadonlyMap<number, number>, holds: (shard: number) => boolean): Promise<void> {
    await Promise.all(
      [...cutoffs].map(async ([shard, cutoff]) => {
        for (let round = 0; round < MAX_ROUNDS && !this.stopped; round++) {
          const durable = await this.lane.runIn(shard, async () => (holds(shard) ? this.expireDue(cutoff, shard) : 0));
          if (durable < SWEEP_BATCH) break;
        }
      }),
    );
  }

  /** The lease holder's job: keeps Redis's deadline cache in line with Postgres. */
  readonly reconcileCache: LeasedJob = {
    name: 'deadline-cache',
    run: (now: number) => this.cache.reconcile(now),
  };

  /**
   * One transaction over at most one batch of deadlines at or before `now` (of one shard, or
   * all); returns how many Postgres listed as due. Call inside the shard's lane.
   */
  async expireDue(now: number, shard?: number): Promise<number> {
    const [durable, cachedAll] = await Promise.all([
      this.states.dueDeadlines(now, SWEEP_BATCH, shard === undefined ? undefined : { shard, of: OBSERVATION_SHARDS }),
      this.cache.due(now, SWEEP_BATCH),
    ]);
    const cached = shard === undefined ? cachedAll : cachedAll.filter((d) => shardOf(d.targetId) === shard);
    if (durable.length === 0 && cached.length === 0) return 0;
    this.cache.noteMisses(durable, cached, SWEEP_BATCH);
    const candidates = [...durable, ...cached];
    const outcome = await runInSqlTransaction(this.db, async (tx) => {
      const current = await this.states.lockMany(
        tx,
        candidates.map((c) => c.targetId),
      );
      const r = expireDeadlines(current, candidates, now, { downQuorumPct: this.config.downQuorumPct });
      await this.states.saveMany(tx, r.changed, [], current);
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
