import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { applyExpiry, type StatusEventDraft, type TargetSnapshot } from '@fleetwatch/domain';
import { LiveStateStore, type DueDeadline } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import {
  AdvisoryLease,
  HistoryRepository,
  runInSqlTransaction,
  SQL_POOL,
  StatusEventsRepository,
  TargetStatesRepository,
  type HeartbeatRunRow,
  type SqlPool,
} from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import { SerialLane } from '../common/serial-lane';
import type { AggregatorConfig } from '../config';
import { StatusEventsRelay } from '../events/status-events.relay';
import { LiveStateBoot } from '../live/live-state.boot';
import type { IndexedAs } from '../live/live-projection.service';
import { StatusPropagation } from '../status/status-propagation.service';
import { AGGREGATOR_CONFIG, SWEEPER_LEASE } from '../tokens';

/** Deadlines handled per transaction; more wait for the next round of the same tick. */
const SWEEP_BATCH = 500;

/**
 * Every SWEEP_INTERVAL_MS, while holding the sweeper lease (a Postgres advisory
 * lock, so replicas never double-fire): rebuilds live state if Redis lost it,
 * expires due deadlines (STALE, or DOWN for heartbeat monitors) with events like
 * any transition, and relays status events left in the outbox.
 */
@Injectable()
export class SweeperService implements OnApplicationBootstrap, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly metrics = AggregatorMetrics.get();

  constructor(
    @Inject(SQL_POOL) private readonly db: SqlPool,
    @Inject(SWEEPER_LEASE) readonly lease: AdvisoryLease,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    private readonly store: LiveStateStore,
    private readonly states: TargetStatesRepository,
    private readonly events: StatusEventsRepository,
    private readonly history: HistoryRepository,
    private readonly propagation: StatusPropagation,
    private readonly relay: StatusEventsRelay,
    private readonly boot: LiveStateBoot,
    private readonly lane: SerialLane,
  ) {}

  onApplicationBootstrap(): void {
    this.schedule(0);
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.lease.release();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .catch((e: unknown) => this.logger.warn({ err: (e as Error).message }, 'sweep failed; retrying next interval'))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.config.sweepIntervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }

  /** One sweep (also called by tests). Does nothing without the lease. */
  async tick(now = Date.now()): Promise<void> {
    if (!(await this.lease.tryAcquire())) return;
    await this.boot.check(now);
    for (let round = 0; round < 20 && !this.stopped; round++) {
      const handled = await this.lane.run(() => this.expireDue(now));
      if (handled < SWEEP_BATCH) break;
    }
    await this.lane.run(() => this.relay.relayPending());
  }

  /** Expires the due deadlines (at most one batch) in one transaction; returns how many were due. */
  async expireDue(now: number): Promise<number> {
    const due = await this.store.dueDeadlines(now, SWEEP_BATCH);
    if (due.length === 0) return 0;
    const outcome = await runInSqlTransaction(
      this.db,
      async (tx) => {
        const current = await this.states.lockMany(
          tx,
          due.map((d) => d.targetId),
        );
        const working = new Map<string, TargetSnapshot>(current);
        const changed = new Set<string>();
        const drafts: StatusEventDraft[] = [];
        const timedOut: Array<{ targetId: string; startedAt: number; finishedAt: number }> = [];
        for (const d of due) {
          const target = working.get(d.targetId);
          if (!target) continue;
          const r = applyExpiry(target, d.location, now, this.policy);
          if (!r.applied) continue;
          working.set(d.targetId, r.target);
          changed.add(d.targetId);
          drafts.push(...r.events);
          const deadlineAt = target.locations[d.location]?.deadline?.at ?? now;
          if (r.timedOutRun) timedOut.push({ targetId: d.targetId, startedAt: r.timedOutRun.startedAt, finishedAt: deadlineAt });
        }
        await this.states.saveMany(
          tx,
          [...changed].map((id) => working.get(id) as TargetSnapshot),
        );
        const stored = await this.events.insertMany(tx, drafts);
        if (timedOut.length) {
          const monitors = await this.history.monitorsOfTargets(
            tx,
            timedOut.map((r) => r.targetId),
          );
          const runs: HeartbeatRunRow[] = timedOut.flatMap((r) => {
            const monitorId = monitors.get(r.targetId);
            return monitorId ? [{ monitorId, targetId: r.targetId, startedAt: r.startedAt, finishedAt: r.finishedAt, durationMs: r.finishedAt - r.startedAt, outcome: 'timeout' as const }] : [];
          });
          await this.history.insertHeartbeatRuns(tx, runs);
        }
        const previous = new Map<string, IndexedAs | null>();
        for (const id of changed) {
          const c = current.get(id) as TargetSnapshot;
          previous.set(id, { status: c.status, tags: c.tags });
        }
        return { targets: [...changed].map((id) => working.get(id) as TargetSnapshot), previous, events: stored, working };
      },
    );
    // The sorted set is settled after the projection (same queue), which re-adds the deadlines it keeps.
    await this.propagation.propagate(outcome, () => this.settleDeadlines(due, outcome.working));
    this.metrics.transitions.inc({ source: 'sweeper' }, outcome.events.length);
    return due.length;
  }

  /**
   * Brings the sorted set in line with Postgres for the entries just looked at:
   * an expired or obsolete entry is removed (only if no fresher observation moved
   * it meanwhile); an entry a newer observation pushed later gets its new score.
   */
  private async settleDeadlines(due: readonly DueDeadline[], state: ReadonlyMap<string, TargetSnapshot>): Promise<void> {
    const moved: DueDeadline[] = [];
    for (const d of due) {
      const deadline = state.get(d.targetId)?.locations[d.location]?.deadline ?? null;
      if (deadline !== null && deadline.at !== d.deadline) moved.push({ ...d, deadline: deadline.at });
      else if (deadline === null) await this.store.clearDeadlineIfUnchanged(d);
    }
    await this.store.setDeadlines(moved);
  }

  private get policy() {
    return { downQuorumPct: this.config.downQuorumPct };
  }
}
