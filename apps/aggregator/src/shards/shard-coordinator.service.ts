import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { OBSERVATION_SHARDS } from '@fleetwatch/contracts';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import type { AggregatorConfig } from '../config';
import { LEGACY_SHARD, ObservationsHandler } from '../observations/observations.handler';
import { ObservationsService } from '../observations/observations.service';
import { LiveStateBoot } from '../live/live-state.boot';
import { ProjectionQueue } from '../live/projection.queue';
import { SerialLane } from '../status/serial-lane';
import { AGGREGATOR_CONFIG, SHARD_BACKENDS } from '../tokens';
import { planShards } from './assignment';
import { SHARD_LOCK_NAMESPACE, type ShardBackends, type ShardLocks, type ShardRegistry } from './shard-backends';
import { ShardFence } from './shard-fence';

/** Shards 0..OBSERVATION_SHARDS-1 and the legacy pseudo-shard. */
const SHARD_COUNT = OBSERVATION_SHARDS + 1;

/**
 * Shares the observation shards between aggregator replicas (issue 14). Every
 * SHARD_CHECK_INTERVAL_MS each replica beats in the replica registry (Redis), reads
 * which shard locks are held (Postgres advisory locks), and follows `planShards`:
 * it takes the shards rendezvous hashing gives it and any shard left free past a grace
 * (its holder died: its lock went with its connection), and hands over the shards
 * another live replica owns. A shard is consumed only while its lock is held, and
 * handed over in order: consumer cancelled, everything delivered committed and acked,
 * the shard's lane empty — only then is the lock released for the next holder. If the
 * lock connection is lost, consumption stops at once (unacked deliveries return to the
 * queue) and a batch still waiting for the committer is refused by the shard's fencing
 * token (ShardFence): the next holder advances it before it consumes, which waits for a
 * commit of ours already under way and fails every later one.
 */
@Injectable()
export class ShardCoordinator implements OnApplicationBootstrap, OnModuleDestroy {
  readonly id: string;
  private readonly locks: ShardLocks;
  private readonly registry: ShardRegistry;
  private readonly heldSince = new Map<number, number>();
  private readonly freeSince = new Map<number, number>();
  /** The take (a counter) each held shard came from: a start scheduled by an older take is dropped. */
  private readonly takeOf = new Map<number, number>();
  private takes = 0;
  /** What the current round is doing (the watchdog's report). */
  private step = 'idle';
  /** Consumers being stopped after a lock loss, by shard. */
  private readonly aborting = new Map<number, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private registryDown = false;
  private readonly metrics = AggregatorMetrics.get();

  constructor(
    private readonly handler: ObservationsHandler,
    private readonly service: ObservationsService,
    private readonly lane: SerialLane,
    private readonly boot: LiveStateBoot,
    private readonly projections: ProjectionQueue,
    private readonly fence: ShardFence,
    @Inject(SHARD_BACKENDS) backends: ShardBackends,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {
    this.id = config.replicaId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.registry = backends.registry;
    this.locks = backends.openLocks((reason) => this.onLocksLost(reason));
    this.fence.onTakenAway((shard) => this.onTakenAway(shard));
  }

  onApplicationBootstrap(): void {
    this.metrics.trackShards(() => this.handler.shards.filter((s) => s < OBSERVATION_SHARDS).length);
    this.schedule(0);
  }

  /** Graceful: leave the registry, hand every shard over in order (drained), then free the locks. */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.chain;
    await this.registry.leave(this.id).catch(() => undefined);
    this.service.stop();
    const held = this.handler.shards;
    await Promise.all(held.map((s) => this.handler.stop(s)));
    await Promise.all(held.map((s) => this.service.idle(s >= OBSERVATION_SHARDS ? 'legacy' : s)));
    await this.lane.idle();
    await this.projections.drain();
    await this.locks.close();
  }

  /** Shards held now (tests, metrics). */
  get held(): number[] {
    return [...this.heldSince.keys()].sort((a, b) => a - b);
  }

  /** One round now (queued behind a running one). */
  check(now?: number): Promise<void> {
    return this.enqueue(() => this.round(now ?? Date.now()), 'shard assignment round failed; retrying');
  }

  /** Runs `job` after the rounds (and jobs) queued before it: one at a time. */
  private enqueue(job: () => Promise<void>, failure: string): Promise<void> {
    const run = this.chain.then(job);
    this.chain = run.catch((e: unknown) => this.logger.warn({ err: (e as Error).message }, failure));
    return run;
  }

  private async round(now: number): Promise<void> {
    if (this.stopped) return;
    // The locks first: a replica that cannot reach the lock database must not beat in the
    // registry (it would own shards it can never lock, and they would flip between replicas).
    this.step = 'reading locks';
    const locked = await this.locks.locked();
    this.step = 'beating';
    let members: string[] | undefined;
    try {
      members = await this.registry.beat(this.id, now);
      if (this.registryDown) this.logger.info('replica registry reachable again');
      this.registryDown = false;
    } catch (e) {
      if (!this.registryDown)
        this.logger.warn(
          { err: (e as Error).message },
          'replica registry (Redis) unreachable: keeping the shards held, taking only orphaned ones',
        );
      this.registryDown = true;
    }
    // Shards this replica thinks it holds but whose lock is gone (connection replaced): stop them.
    this.step = 'dropping lost shards';
    for (const shard of [...this.heldSince.keys()])
      if (this.heldSince.has(shard) && !this.locks.held.has(shard)) await this.drop(shard, 'lock no longer held');
    this.step = 'stopping unlocked consumers';
    // Safety net: nothing is consumed without its lock.
    for (const shard of this.handler.shards)
      if (!this.heldSince.has(shard) || !this.locks.held.has(shard)) await this.handler.abort(shard);
    for (let s = 0; s < SHARD_COUNT; s++) {
      if (locked.has(s)) this.freeSince.delete(s);
      else if (!this.freeSince.has(s)) this.freeSince.set(s, now);
    }
    const plan = planShards({
      me: this.id,
      members,
      count: SHARD_COUNT,
      held: this.heldSince,
      freeSince: this.freeSince,
      now,
      orphanGraceMs: this.config.shards.orphanGraceMs,
      minHoldMs: this.config.shards.minHoldMs,
    });
    for (const shard of plan.release) {
      this.step = `releasing ${label(shard)}`;
      await this.release(shard);
    }
    for (const shard of plan.acquire) {
      if (this.stopped || locked.has(shard)) continue;
      // Taken again after a loss: the old consumer's channel must be closed before a new one opens.
      this.step = `waiting for ${label(shard)}'s old consumer to stop`;
      await this.aborting.get(shard);
      this.step = `locking ${label(shard)}`;
      if (!(await this.locks.tryLock(shard))) continue;
      // The fencing token next: it waits for any commit the previous holder still had in flight, and refuses
      // every later one of theirs. Without it the shard is not ours to consume.
      this.step = `fencing ${label(shard)}`;
      try {
        // Only while our lock session holds the lock: one that ended after granting it must not advance the
        // epoch over the next holder's.
        const pid = this.locks.sessionPid;
        if (pid === undefined) throw new Error('lock session gone');
        await this.fence.take(shard, this.id, { namespace: SHARD_LOCK_NAMESPACE, pid });
        if (!this.locks.held.has(shard)) throw new Error('lock lost while the epoch advanced');
      } catch (e) {
        this.fence.forget(shard);
        this.logger.warn({ shard: label(shard), err: (e as Error).message }, 'shard epoch not advanced; lock released');
        await this.locks.unlock(shard).catch(() => undefined);
        continue;
      }
      const take = ++this.takes;
      this.heldSince.set(shard, now);
      this.takeOf.set(shard, take);
      this.freeSince.delete(shard);
      this.logger.info({ shard: label(shard), replica: this.id }, 'shard taken');
      this.metrics.shardChanges.inc({ change: 'taken' });
      // Consuming starts in the background, after the repair, and only if this take still
      // holds the lock then (it may have been lost or handed over meanwhile).
      void this.repair(shard)
        .then(async () => {
          if (!this.stillHeld(shard, take)) return;
          await this.handler.start(shard);
          // Lost or released while the consumer opened: stop it again.
          if (!this.stillHeld(shard, take)) await this.handler.abort(shard);
        })
        .catch((e: unknown) =>
          this.logger.warn({ shard: label(shard), err: (e as Error).message }, 'shard not consuming yet'),
        );
    }
    this.step = 'idle';
  }

  private stillHeld(shard: number, take: number): boolean {
    return !this.stopped && this.takeOf.get(shard) === take && this.locks.held.has(shard);
  }

  /**
   * A previous holder that died between a commit and its Redis projection left live state
   * behind Postgres for some of the shard's targets: rewrite the shard's recently changed
   * targets from Postgres, in its lane, before consuming. Only this shard's targets: the
   * others may be written by other replicas meanwhile.
   */
  private async repair(shard: number): Promise<void> {
    const lane = shard >= OBSERVATION_SHARDS ? 'legacy' : shard;
    this.boot.forget(lane);
    const job = async () => {
      try {
        await this.boot.ensureReady(lane);
      } catch (e) {
        // Redis away: the lane's first commit tries again (and waits the outage out) before it writes.
        this.logger.warn({ shard: label(shard), err: (e as Error).message }, 'shard live state not reconciled yet');
      }
    };
    await (lane === 'legacy' ? this.lane.run(job) : this.lane.runIn(lane, job));
  }

  /**
   * Hands a shard over in order: stop consuming (drained), empty its lane, let its Redis
   * projections land, then free the lock — the next holder's writes come after ours.
   */
  private async release(shard: number): Promise<void> {
    this.takeOf.delete(shard);
    await this.handler.stop(shard);
    // What the consumer handed over before it stopped is committed (or refused) before the lock goes.
    await this.service.idle(shard >= OBSERVATION_SHARDS ? 'legacy' : shard);
    if (shard < OBSERVATION_SHARDS) await this.lane.runIn(shard, async () => undefined);
    else await this.lane.run(async () => undefined);
    await this.projections.drain();
    this.fence.forget(shard);
    await this.locks.unlock(shard);
    this.heldSince.delete(shard);
    this.logger.info({ shard: label(shard), replica: this.id }, 'shard handed over');
    this.metrics.shardChanges.inc({ change: 'released' });
  }

  /**
   * The lock is gone: stop consuming at once (within ABORT_SETTLE_MS the batch with the committer settles and the
   * buffered deliveries are given back; the rest returns to the queue unsettled). Dropped
   * again while its consumer is still stopping (a lock loss and a fence refusal together): the same stop.
   */
  private async drop(shard: number, reason: string): Promise<void> {
    const stopping = this.aborting.get(shard);
    if (stopping && !this.heldSince.has(shard)) return stopping;
    this.fence.forget(shard);
    this.heldSince.delete(shard);
    this.takeOf.delete(shard);
    this.logger.warn({ shard: label(shard), reason }, 'shard lock lost: consumption stopped');
    this.metrics.shardChanges.inc({ change: 'lost' });
    const aborted = this.handler.abort(shard).finally(() => {
      if (this.aborting.get(shard) === aborted) this.aborting.delete(shard);
    });
    this.aborting.set(shard, aborted);
    await aborted;
  }

  private onLocksLost(reason: string): void {
    for (const shard of [...this.heldSince.keys()])
      void this.drop(shard, reason).catch((e: unknown) => this.abortFailed(shard, e));
  }

  private abortFailed(shard: number, e: unknown): void {
    this.logger.warn({ shard: label(shard), err: (e as Error).message }, 'shard consumer not stopped cleanly');
  }

  /**
   * A commit found the shard's epoch moved past the one this replica holds it under: another replica
   * took it while this one believed it still held the lock (the lock set also checks that belief every
   * round). Stop consuming at once — the refused batches would otherwise come back to this consumer
   * until the queue's delivery limit dead-letters them — then give the lock up, unless a later round
   * has taken the shard again meanwhile.
   */
  private onTakenAway(shard: number): void {
    if (!this.heldSince.has(shard)) return;
    // The lock goes only once the consumer's channel is closed (its unacked deliveries back in the queue:
    // an epoch advanced behind our back by hand or by an older replica may leave the lock ours), and in
    // the rounds' chain — queued after the stop, so a slow stop does not hold the rounds up.
    void this.drop(shard, 'another replica took the shard: its epoch moved on')
      .catch((e: unknown) => this.abortFailed(shard, e))
      .then(() =>
        this.enqueue(async () => {
          if (!this.heldSince.has(shard)) await this.locks.unlock(shard);
        }, 'shard lock not released after its epoch moved on'),
      )
      .catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      // A round that hangs holds every later one: say where it is.
      const watchdog = setTimeout(
        () => this.logger.warn({ step: this.step }, 'shard assignment round slow (over 10 s)'),
        10_000,
      );
      watchdog.unref();
      // A failed round is logged by enqueue(); handled here too, or every round failing while the lock database is
      // out of reach (a query or connect timing out) would be an unhandled rejection as well.
      void this.check()
        .catch(() => undefined)
        .finally(() => {
          clearTimeout(watchdog);
          this.schedule(this.config.shards.checkIntervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }
}

function label(shard: number): string {
  return shard === LEGACY_SHARD ? 'legacy' : String(shard);
}
