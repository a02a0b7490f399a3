import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { AdvisoryLease, LeasedLoop } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import type { AggregatorConfig } from '../config';
import { StatusEventsRelay } from '../events/status-events.relay';
import { LiveStateBoot } from '../live/live-state.boot';
import { AGGREGATOR_CONFIG, SWEEPER_LEASE } from '../tokens';
import { DeadlineExpiry } from './deadline-expiry.service';

/**
 * The aggregator's leased loop: every SWEEP_INTERVAL_MS, while holding the
 * sweeper lease (a Postgres advisory lock, so replicas never double-fire), it
 * runs three jobs in order — rebuild live state if Redis lost it
 * (LiveStateBoot), expire due deadlines (DeadlineExpiry), relay status events
 * left in the outbox (StatusEventsRelay). A failing job does not hold up the others.
 */
@Injectable()
export class SweeperService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly loop: LeasedLoop;

  constructor(
    @Inject(SWEEPER_LEASE) readonly lease: AdvisoryLease,
    @Inject(AGGREGATOR_CONFIG) config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) logger: Logger,
    rebuild: LiveStateBoot,
    expire: DeadlineExpiry,
    relay: StatusEventsRelay,
  ) {
    this.loop = new LeasedLoop({
      lease,
      intervalMs: config.sweepIntervalMs,
      jobs: [rebuild, expire, relay],
      onJobError: (job, e) =>
        logger.warn({ job, err: (e as Error).message }, 'sweeper job failed; retrying next interval'),
    });
  }

  onApplicationBootstrap(): void {
    this.loop.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.loop.stop();
  }

  /** One tick now (queued behind a running one); false without the lease. */
  tick(now?: number): Promise<boolean> {
    return this.loop.tick(now);
  }
}
