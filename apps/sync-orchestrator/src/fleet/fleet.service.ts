import { hostname } from 'node:os';
import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { LIVE_STATE_REDIS } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import {
  AdvisoryLease,
  FleetPollFencedError,
  FleetSitesRepository,
  LeasedLoop,
  type FleetPollFence,
} from '@fleetwatch/persistence';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Gauge, Histogram, register, type Metric } from 'prom-client';
import type { SyncConfig } from '../config';
import { FleetPoller, type PollCycleOptions, type PollCycleResult } from './fleet-poller';
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

/** The leader poller's settings, from the service's validated configuration. */
export function pollerOptions(config: SyncConfig): PollCycleOptions {
  return {
    concurrency: config.pollConcurrency,
    timeoutMs: config.pollTimeoutMs,
    intervalMs: config.pollIntervalMs,
    memberTimeoutMs: config.pollMemberTimeoutMs,
    maxInflightBytes: config.pollMaxInflightBytes,
  };
}

/**
 * Held (shared) by the lease session of every replica with a leader configuration, whether it polls or not: a replica
 * without one removes the configured members only while no such lock is held (see FleetService).
 */
export const FLEET_LEADER_CONFIG_LOCK_NAME = 'fleetwatch.sync-orchestrator.leader-config';

/** Poll intervals with no replica with a leader configuration seen before a replica without one removes its members. */
const CLEANUP_GRACE_INTERVALS = 3;

/**
 * The leader's polling (SPEC §8), by the holder of the fleet-poll lease only: on taking the lease it advances the
 * lease's epoch (its fencing token) and writes the configured members to fleet_sites, then runs a poll cycle every
 * FLEET_POLL_INTERVAL_SECONDS with a fixed delay (the next cycle is scheduled when one ends). Every write of a cycle is
 * made under that epoch: a holder whose lease session died mid-cycle has its writes refused once the next holder took
 * the lease, instead of writing older data over the next holder's.
 *
 * Replicas of one site may run with different configurations for a while (a rolling deploy that adds, changes or
 * removes FLEETWATCH_LEADER_CONFIG). A replica with members configured writes its list when it takes the lease: the
 * members written are always those its poller polls. A replica without any (unset, `members: []`, or FLEETWATCH_ROLE
 * member) never takes the lease and never polls; it removes the configured members — those an earlier configuration
 * wrote — once no replica with a leader configuration has been running for three poll intervals (each such replica's
 * lease session holds FLEET_LEADER_CONFIG_LOCK_NAME, shared), then stops. So a replica without the variable does not
 * undo the members of one with it, and emptying the configuration on every replica still removes them.
 */
@Injectable()
export class FleetService implements OnApplicationBootstrap, OnModuleDestroy {
  readonly poller: FleetPoller;
  private readonly store: FleetRecordStore;
  private readonly members: LeaderMember[];
  private loop: LeasedLoop | undefined;
  /** The lease's acquisitions count the epoch (and the poller's memory) belongs to; -1: take it again. */
  private acquisition = -1;
  /** The epoch of the fleet-poll lease this replica's writes are made under (undefined: not taken yet). */
  private epoch: number | undefined;
  /** In fleet_poll_epochs: which replica took the lease (for people; never checked). */
  private readonly holder = `${hostname()}:${process.pid}`;
  private cleanup: { timer?: NodeJS.Timeout; running?: Promise<void>; stopped: boolean } | undefined;

  constructor(
    @Inject(SYNC_CONFIG) private readonly config: SyncConfig,
    @Inject(LEADER_MEMBERS) members: LeaderMember[],
    @Inject(LIVE_STATE_REDIS) redis: Redis,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    private readonly sites: FleetSitesRepository,
  ) {
    // A member site does not poll (SPEC §1 roles), whatever it was given: warned about at boot.
    this.members = config.role === 'member' ? [] : members;
    this.store = new FleetRecordStore(redis);
    this.poller = new FleetPoller(this.store, sites, pollerOptions(config));
  }

  /**
   * Starts the leased loop (or, without members, the removal of those configured before); never fails the boot. The
   * configured members are written by the lease holder, before its first cycle (and again on each tick until that
   * write succeeds): a database that blips while the service starts delays polling by a tick instead of failing the
   * start, and replicas starting together do not both rewrite the table.
   */
  onApplicationBootstrap(): void {
    if (this.config.role === 'member' && (this.config.leaderConfig ?? '').trim() !== '')
      this.logger.warn(
        { FLEETWATCH_ROLE: 'member', FLEETWATCH_LEADER_CONFIG: 'set (ignored)' },
        'FLEETWATCH_LEADER_CONFIG is set but FLEETWATCH_ROLE is member: a member site polls no member, so the leader ' +
          'configuration is ignored (set FLEETWATCH_ROLE to leader, or unset FLEETWATCH_LEADER_CONFIG)',
      );
    if (this.members.length === 0) {
      this.startCleanup();
      return;
    }
    this.logger.info(
      { members: this.members.length, intervalMs: this.config.pollIntervalMs },
      'fleet leader: polling members',
    );
    const lease = new AdvisoryLease({
      databaseUrl: this.config.lockDatabaseUrl,
      name: FLEET_POLL_LEASE_NAME,
      applicationName: 'sync-orchestrator-fleet',
      sharedLocks: [FLEET_LEADER_CONFIG_LOCK_NAME],
    });
    const loop = new LeasedLoop({
      lease,
      intervalMs: this.config.pollIntervalMs,
      jobs: [
        {
          name: 'fleet-poll',
          run: async () => {
            if (lease.acquisitions !== this.acquisition) await this.take(lease);
            await this.cycle();
          },
        },
      ],
      onJobError: (job, e) => {
        if (e instanceof FleetPollFencedError) {
          // Another replica took the lease: nothing of this cycle was written. Taken again (epoch and memory) if
          // this replica holds the lease at a later tick.
          this.acquisition = -1;
          this.logger.warn({ job, err: e.message }, 'fleet poll: the lease is held by another replica now');
        } else this.logger.warn({ job, err: (e as Error).message }, 'fleet poll cycle failed');
      },
    });
    this.loop = loop;
    loop.start();
  }

  /**
   * The lease taken (anew): the next epoch (only while this session holds the lock; above the cache's copy), the
   * member cache's fence raised to it, the poller's memory dropped (another replica may have polled meanwhile, and
   * written newer data than this one holds), and the configured members written under it.
   */
  private async take(lease: AdvisoryLease): Promise<void> {
    const acquisition = lease.acquisitions;
    const pid = lease.sessionPid;
    if (pid === undefined) throw new Error('fleet-poll lease session gone');
    this.epoch = undefined;
    // Above the cache's copy too: Postgres's may be behind it (the database restored from a backup, a failover that
    // lost the last commits), and the cache would then refuse every cycle until as many acquisitions had passed.
    const cached = await this.store.fenceEpoch();
    const epoch = await this.sites.advancePollEpoch(
      FLEET_POLL_LEASE_NAME,
      this.holder,
      { pid },
      { atLeast: cached + 1 },
    );
    await this.store.raiseFence(epoch);
    this.poller.forget();
    await this.writeConfiguredMembers({ lease: FLEET_POLL_LEASE_NAME, epoch });
    this.epoch = epoch;
    this.acquisition = acquisition;
  }

  /** FLEETWATCH_LEADER_CONFIG's members into fleet_sites (those configured before and no longer listed leave). */
  private async writeConfiguredMembers(fence: FleetPollFence): Promise<void> {
    const removed = await this.sites.syncConfigured(
      this.members.map((m) => ({
        name: m.name,
        url: m.url,
        tags: m.tags,
        failoverOrder: m.failoverOrder ?? null,
        propertyOverrides: m.propertyOverrides,
      })),
      fence,
    );
    // Their cached reports too, under the same fence (a member added again later, or another site given the name,
    // must not be shown the removed one's last good report).
    await this.store.removeMany(removed, fence.epoch);
    this.logger.info({ members: this.members.length, removed: removed.length }, 'fleet members written');
  }

  /**
   * A replica without members: every poll interval, whether a replica with a leader configuration runs; once none has
   * for three intervals (a lease session's blip must not remove what its replica polls), the configured members are
   * removed — unless one started meanwhile — and the checks end. The three intervals are counted in checks (none seen
   * at four checks in a row, each one interval after the last ended), never on the wall clock: a clock stepped forward
   * between two checks (NTP, a VM resumed) must not make one interval's absence (a replica restarting) look like three.
   */
  private startCleanup(): void {
    const state: NonNullable<typeof this.cleanup> = { stopped: false };
    this.cleanup = state;
    /** Checks in a row that saw no replica with a leader configuration. */
    let absentChecks = 0;
    const check = async (): Promise<boolean> => {
      if (absentChecks < CLEANUP_GRACE_INTERVALS) {
        if (await this.sites.configuredClaimed(FLEET_LEADER_CONFIG_LOCK_NAME)) absentChecks = 0;
        else absentChecks++;
        return false;
      }
      // The cache's fence before: a replica with members taking the lease meanwhile raises it, and the removal of the
      // cached reports is then refused (that replica writes its own members' reports).
      const epoch = await this.store.fenceEpoch();
      const removed = await this.sites.removeConfiguredIfUnclaimed(FLEET_LEADER_CONFIG_LOCK_NAME);
      if (removed === null) {
        absentChecks = 0;
        return false;
      }
      await this.store.removeMany(removed, epoch).catch((e: unknown) => {
        if (!(e instanceof FleetPollFencedError)) throw e;
      });
      if (removed.length > 0)
        this.logger.info({ removed: removed.length }, 'fleet members configured before removed: no replica has any');
      return true;
    };
    const schedule = (delayMs: number) => {
      if (state.stopped) return;
      state.timer = setTimeout(() => {
        state.running = check().then(
          (done) => {
            if (!done) schedule(this.config.pollIntervalMs);
          },
          (e: unknown) => {
            // Unknown is not absent: counted again from the next answer.
            absentChecks = 0;
            this.logger.warn({ err: (e as Error).message }, 'fleet: configured members check failed');
            schedule(this.config.pollIntervalMs);
          },
        );
      }, delayMs);
      state.timer.unref();
    };
    schedule(0);
  }

  async onModuleDestroy(): Promise<void> {
    if (this.cleanup) {
      this.cleanup.stopped = true;
      clearTimeout(this.cleanup.timer);
      await this.cleanup.running;
    }
    await this.loop?.stop();
    await this.poller.close();
  }

  /** One cycle over every member (also called by tests). */
  async cycle(): Promise<PollCycleResult> {
    const fence = this.epoch === undefined ? undefined : { lease: FLEET_POLL_LEASE_NAME, epoch: this.epoch };
    const result = await this.poller.cycle(this.members, Date.now, fence);
    cycleSeconds.observe(result.durationMs / 1000);
    membersByOutcome.set({ outcome: 'ok' }, result.ok);
    membersByOutcome.set({ outcome: 'failed' }, result.failed);
    this.logger.info(result, 'fleet poll cycle');
    return result;
  }
}
