import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { LIVE_STATE_REDIS } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { AdvisoryLease, FleetSitesRepository, LeasedLoop } from '@fleetwatch/persistence';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Gauge, Histogram, register, type Metric } from 'prom-client';
import type { SyncConfig } from '../config';
import { FleetPoller, type PollCycleResult } from './fleet-poller';
import type { LeaderMember } from './leader-config';
import { FleetRecordStore } from './member-record-store';

export const SYNC_CONFIG = Symbol('SYNC_CONFIG');
export const LEADER_MEMBERS = Symbol('LEADER_MEMBERS');
/** One leader poller per site database, whatever the number of sync-orchestrator replicas. */
export const FLEET_POLL_LEASE_NAME = 'fleetwatch.sync-orchestrator.fleet-poll';

function lookup<M extends Metric<string>>(name: string, create: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? create();
}

// Labels are bounded and never carry a member's URL or credentials (SPEC §10).
const cycleSeconds = lookup(
  'fleetwatch_fleet_poll_cycle_seconds',
  () =>
    new Histogram({
      name: 'fleetwatch_fleet_poll_cycle_seconds',
      help: 'Duration of one leader poll cycle over every member.',
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 30],
    }),
);
const membersByOutcome = lookup(
  'fleetwatch_fleet_members',
  () =>
    new Gauge({
      name: 'fleetwatch_fleet_members',
      help: 'Members by the outcome of the last poll cycle: ok, failed (STALE or never reached).',
      labelNames: ['outcome'],
    }),
);

/**
 * The leader's polling (SPEC §8): the configured members written to fleet_sites at boot,
 * then a poll cycle every FLEET_POLL_INTERVAL_SECONDS with a fixed delay (the next cycle is
 * scheduled when one ends), by the holder of the fleet-poll lease only. On a site without
 * members, the members configured before (if any) are removed, and nothing else runs.
 */
@Injectable()
export class FleetService implements OnApplicationBootstrap, OnModuleDestroy {
  readonly poller: FleetPoller;
  private loop: LeasedLoop | undefined;
  /** Whether the configured members are in fleet_sites (written once, by the lease holder). */
  private configured = false;
  /** The lease's acquisitions count the poller's memory belongs to. */
  private acquisition = 0;

  constructor(
    @Inject(SYNC_CONFIG) private readonly config: SyncConfig,
    @Inject(LEADER_MEMBERS) private readonly members: LeaderMember[],
    @Inject(LIVE_STATE_REDIS) redis: Redis,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    private readonly sites: FleetSitesRepository,
  ) {
    this.poller = new FleetPoller(new FleetRecordStore(redis), sites, {
      concurrency: config.pollConcurrency,
      timeoutMs: config.pollTimeoutMs,
    });
  }

  /**
   * Starts the leased loop; never fails the boot. The configured members are written to fleet_sites by the
   * lease holder, before its first cycle (and again on each tick until that write succeeds): a database
   * that blips while the service starts delays polling by a tick instead of failing the start, and
   * replicas starting together do not both rewrite the table. Without members (not, or no longer, a
   * leader) the holder only removes those configured before, then gives the lease back.
   */
  onApplicationBootstrap(): void {
    if (this.members.length > 0)
      this.logger.info(
        { members: this.members.length, intervalMs: this.config.pollIntervalMs },
        'fleet leader: polling members',
      );
    const lease = new AdvisoryLease({
      databaseUrl: this.config.lockDatabaseUrl,
      name: FLEET_POLL_LEASE_NAME,
      applicationName: 'sync-orchestrator-fleet',
    });
    const loop = new LeasedLoop({
      lease,
      intervalMs: this.config.pollIntervalMs,
      jobs: [
        {
          name: 'fleet-poll',
          run: async () => {
            // Taken anew: another replica may have polled meanwhile, and written newer data than this one holds.
            if (lease.acquisitions !== this.acquisition) {
              this.acquisition = lease.acquisitions;
              this.poller.forget();
            }
            if (!this.configured) await this.writeConfiguredMembers();
            if (this.members.length > 0) await this.cycle();
            // Nothing to poll: the lease is given back once the members configured before are gone.
            else void loop.stop();
          },
        },
      ],
      onJobError: (job, e) => this.logger.warn({ job, err: (e as Error).message }, 'fleet poll cycle failed'),
    });
    this.loop = loop;
    loop.start();
  }

  /** FLEETWATCH_LEADER_CONFIG's members into fleet_sites (those configured before and no longer listed leave). */
  private async writeConfiguredMembers(): Promise<void> {
    const removed = await this.sites.syncConfigured(
      this.members.map((m) => ({
        name: m.name,
        url: m.url,
        tags: m.tags,
        failoverOrder: m.failoverOrder ?? null,
        propertyOverrides: m.propertyOverrides,
      })),
    );
    this.configured = true;
    if (this.members.length > 0 || removed.length > 0)
      this.logger.info({ members: this.members.length, removed: removed.length }, 'fleet members written');
  }

  async onModuleDestroy(): Promise<void> {
    await this.loop?.stop();
    await this.poller.close();
  }

  /** One cycle over every member (also called by tests). */
  async cycle(): Promise<PollCycleResult> {
    const result = await this.poller.cycle(this.members);
    cycleSeconds.observe(result.durationMs / 1000);
    membersByOutcome.set({ outcome: 'ok' }, result.ok);
    membersByOutcome.set({ outcome: 'failed' }, result.failed);
    this.logger.info(result, 'fleet poll cycle');
    return result;
  }
}
