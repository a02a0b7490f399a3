import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { OBSERVATION_SHARDS } from '@fleetwatch/contracts';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { AdvisoryLease, LeasedLoop } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import type { AggregatorConfig } from '../config';
import { StatusEventsRelay } from '../events/status-events.relay';
import { LiveStateBoot } from '../live/live-state.boot';
import { ObservationsHandler } from '../observations/observations.handler';
import { AGGREGATOR_CONFIG, SWEEPER_LEASE } from '../tokens';
import { DeadlineExpiry } from './deadline-expiry.service';

/**
 * The aggregator's periodic work, every SWEEP_INTERVAL_MS, in two loops that never wait for each other (a leased job
 * held by a Redis call — a cache check, a rebuild — must not delay a STALE, which Postgres alone decides):
 * - on every replica, expiry of the due deadlines of the shards it holds, each in its
 *   shard's lane (DeadlineExpiry) — so a target's expiry is ordered with its observations —
 *   once the shard's consumer has caught up with its queue since the shard was taken
 *   (ObservationsHandler.caughtUp), and then only up to what that consumer has applied
 *   (ObservationsHandler.expiryCutoffs), both bounded by SWEEP_CATCH_UP_MAX_MS;
 * - on the holder of the sweeper lease only (a Postgres advisory lock, so replicas never
 *   double-fire): rebuild live state if Redis lost it (LiveStateBoot), keep the deadline
 *   cache in line, relay status events left in the outbox (StatusEventsRelay).
 * A failing job does not hold up the others.
 */
@Injectable()
export class SweeperService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly loop: LeasedLoop;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiring: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    @Inject(SWEEPER_LEASE) readonly lease: AdvisoryLease,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    rebuild: LiveStateBoot,
    private readonly expire: DeadlineExpiry,
    relay: StatusEventsRelay,
    private readonly shards: ObservationsHandler,
  ) {
    this.loop = new LeasedLoop({
      lease,
      intervalMs: config.sweepIntervalMs,
      jobs: [rebuild, expire.reconcileCache, relay],
      onJobError: (job, e) =>
        logger.warn({ job, err: (e as Error).message }, 'sweeper job failed; retrying next interval'),
    });
  }

  onApplicationBootstrap(): void {
    this.loop.start();
    this.scheduleExpiry(0);
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    await this.expiring;
    await this.loop.stop();
  }

  /**
   * One tick of both loops now, for tests (each queued behind its own running one): the leased jobs (a live-state
   * rebuild first), then expiry of the held shards. False without the lease.
   */
  async tick(now?: number): Promise<boolean> {
    const leased = await this.loop.tick(now);
    await this.expireHeld(now ?? Date.now());
    return leased;
  }

  private expireHeld(now: number): Promise<void> {
    const run = this.expiring.then(async () => {
      try {
        // A shard just taken (boot, hand-over) waits until its consumer has caught up with the queued backlog;
        // after that, its deadlines expire up to its consumer's watermark (not past what it has applied).
        const held = await this.shards.caughtUp(this.shards.shards.filter((s) => s < OBSERVATION_SHARDS));
        const cutoffs = await this.shards.expiryCutoffs(held, now);
        await this.expire.expireShards(cutoffs, (s) => this.shards.holds(s));
      } catch (e) {
        this.logger.warn({ job: 'expire', err: (e as Error).message }, 'sweeper job failed; retrying next interval');
      }
    });
    this.expiring = run;
    return run;
  }

  private scheduleExpiry(delayMs: number): void {
    if (this.stopped) return;
    this.expiryTimer = setTimeout(() => {
      void this.expireHeld(Date.now()).finally(() => this.scheduleExpiry(this.config.sweepIntervalMs));
    }, delayMs);
    this.expiryTimer.unref();
  }
}
