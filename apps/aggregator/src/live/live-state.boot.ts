import { Inject, Injectable, OnModuleInit, Optional } from '@nestjs/common';
import { LiveStateStore } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { LeasedJob } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import { HostConflicts } from '../hosts/host-conflicts.service';
import { SerialLane } from '../status/serial-lane';
import { LiveProjection } from './live-projection.service';
import { ProjectionQueue } from './projection.queue';

/** At boot, targets changed this recently are re-projected even when Redis is not empty (a crash may have cut a projection short). */
export const RECONCILE_WINDOW_MS = 15 * 60_000;
/** How often the thorough check (target counts on both sides) runs. */
export const THOROUGH_CHECK_INTERVAL_MS = 30_000;
/** How long the rebuild job waits for Redis to answer before skipping its turn. */
const REDIS_PROBE_TIMEOUT_MS = 1000;

/**
 * Keeps live state rebuildable (SPEC §4): before the first batch, Redis is
 * rebuilt from Postgres when empty (else recently changed targets are
 * reconciled); later, as the sweeper's rebuild job, `check()` rebuilds it when
 * it was flushed or lost targets.
 */
@Injectable()
export class LiveStateBoot implements OnModuleInit, LeasedJob {
  readonly name = 'rebuild';
  /** Lanes (shards, 'legacy') whose live state was checked since boot or since the last projection failure. */
  private readonly ready = new Set<number | 'legacy'>();
  /** Redis was found holding everything once since boot (or rebuilt whole). */
  private whole = false;
  /** Rebuilt whole since the last failure: every lane is reconciled. */
  private allLanes = false;
  /** Lanes to reconcile at their next check whatever else says (a shard just taken). */
  private readonly forced = new Set<number | 'legacy'>();
  private lastThorough = 0;
  private readonly metrics = AggregatorMetrics.get();

  constructor(
    readonly live: LiveProjection,
    private readonly lane: SerialLane,
    private readonly projections: ProjectionQueue,
    private readonly store: LiveStateStore,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    /** Written again after a whole rebuild: host id conflict marks are held in memory, not in Postgres. */
    @Optional() private readonly conflicts?: HostConflicts,
  ) {
    // A projection that could not be written: reconcile recent targets before the next batch.
    projections.onFailure = () => {
      this.ready.clear();
      this.whole = false;
      this.allLanes = false;
    };
  }

  async onModuleInit(): Promise<void> {
    try {
      await this.lane.run(() => this.ensureReady());
    } catch (e) {
      // Retried before the first batch; the consumer holds its messages meanwhile.
      this.logger.warn(
        { err: (e as Error).message },
        'live state not rebuilt at boot; retrying before the first batch',
      );
    }
  }

  /**
   * Call inside the lane. Resolves once live state is whole (rebuilt when Redis was
   * empty) and, for a shard's lane, once that shard's recently changed targets were
   * reconciled from Postgres since boot or since a projection failed — only that
   * shard's: the others may be written by other replicas meanwhile (the store skips a
   * write older than what Redis holds, so a reconcile never moves a target back anyway).
   * Without a lane (boot) only the whole-state check runs: a shard's reconcile happens
   * when its lane first commits, or when the shard is taken.
   */
  async ensureReady(lane?: number | 'legacy'): Promise<void> {
    const done = (l: number | 'legacy') => (this.allLanes || this.ready.has(l)) && !this.forced.has(l);
    if (this.whole && (lane === undefined || done(lane))) return;
    // Queued projections hold older state than Postgres: let them land before rewriting from it. Not while one waits
    // out a Redis outage: this runs in a lane, and the lane's (or every lane's) expiry would wait with it.
    await this.projections.drainUnlessOutage();
    if (!this.whole) {
      if (await this.live.isBehind()) {
        this.metrics.rebuilds.inc();
        await this.live.rebuild();
        void this.conflicts?.republish();
        this.whole = true;
        this.allLanes = true;
        return;
      }
      this.whole = true;
    }
    // The legacy lane's targets are anyone's: reconciling them all would be a whole-window rewrite; not worth it.
    if (lane === undefined || lane === 'legacy' || done(lane)) {
      if (lane !== undefined) this.forced.delete(lane);
      return;
    }
    const since = new Date(Date.now() - RECONCILE_WINDOW_MS);
    await this.live.rebuild(since, lane);
    this.ready.add(lane);
    this.forced.delete(lane);
  }

  /** A shard handed over or lost: when it is taken again, its live state is reconciled again. */
  forget(lane: number | 'legacy'): void {
    this.forced.add(lane);
  }

  /**
   * The sweeper's rebuild job. Skipped while Redis does not answer: `check()`
   * would hold the lane (and the expire job behind it) until Redis returns,
   * and expiry must go on from Postgres meanwhile.
   */
  async run(now: number): Promise<void> {
    if (!this.store.connected) throw new Error('Redis not connected; live state check skipped');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`Redis did not answer PING within ${REDIS_PROBE_TIMEOUT_MS} ms; live state check skipped`)),
        REDIS_PROBE_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.store.ping(), timeout]);
    } finally {
      clearTimeout(timer);
    }
    await this.check(now);
  }

  /**
   * Periodic: rebuilds when Redis was flushed (cheap check each call, a thorough one every 30 s). Looked at outside
   * the lanes first: nearly every check finds nothing to do, and one in the exclusive lane holds every shard's
   * commits and expiry while it waits for Redis (slow, or gone mid-command). Only a check that finds live state behind
   * takes the lane, where it looks again with the queued projections landed (a target committed but not projected
   * yet made the first look count it missing), then rebuilds.
   */
  async check(now = Date.now()): Promise<boolean> {
    if (this.whole) {
      const thorough = now - this.lastThorough >= THOROUGH_CHECK_INTERVAL_MS;
      const behind = (await this.live.isBehind()) || (thorough && (await this.live.isMissingTargets()));
      if (!behind) {
        if (thorough) this.lastThorough = now;
        return false;
      }
    }
    return this.lane.run(async () => {
      await this.ensureReady();
      // Redis may have gone between the probe and here: a projection waiting for it fails the check (next tick).
      await this.projections.drainUnlessOutage();
      let behind = await this.live.isBehind();
      if (!behind && now - this.lastThorough >= THOROUGH_CHECK_INTERVAL_MS) {
        this.lastThorough = now;
        behind = await this.live.isMissingTargets();
      }
      if (!behind) {
        this.logger.debug('live state looked behind, but not once its projections landed');
        return false;
      }
      this.logger.warn('live state is missing targets (Redis flushed?): rebuilding from Postgres');
      this.metrics.rebuilds.inc();
      await this.live.rebuild();
      void this.conflicts?.republish();
      return true;
    });
  }
}
