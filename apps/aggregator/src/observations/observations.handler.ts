import { Inject, Injectable } from '@nestjs/common';
import type { Channel } from 'amqplib';
import {
  BUS_BATCH_MAX_BYTES,
  BUS_BATCH_MAX_UPDATES,
  MAX_BATCH_UPDATES,
  Messages,
  OBSERVATION_SHARDS,
  observationShardQueue,
  QueueName,
  type Envelope,
  type StatusUpdateBatchPayload,
} from '@fleetwatch/contracts';
import {
  BusConsumer,
  observationShardQueueSpec,
  type DeliveryMark,
  type QueueRef,
  type Subscription,
} from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { AggregatorMetrics } from '../aggregator.metrics';
import type { AggregatorConfig } from '../config';
import { AGGREGATOR_CONFIG } from '../tokens';
import { ObservationsService, type LaneKey } from './observations.service';

/** Updates a message carries: a `status.update.batch` up to 1000, anything else one. */
export function updatesIn(envelope: Envelope): number {
  return envelope.type === Messages.StatusUpdateBatch.type
    ? (envelope.payload as StatusUpdateBatchPayload).updates.length
    : 1;
}

/**
 * How long an aborted shard consumer (lock lost, shard taken away) keeps its channel open for what is already in
 * its hands: the batch with the committer is committed if the shard's fence still lets it, else given back; what
 * is still buffered is given back behind it without a commit (the shard is no longer held: the fence would refuse
 * it). Settled on the live channel, so a give-back near the delivery limit becomes a fresh copy instead of a
 * broker-side dead letter. What is not settled by then returns to the queue when the channel closes.
 */
export const ABORT_SETTLE_MS = 3_000;

/**
 * A shard's catch-up since it was taken: since when; the marks over its deliveries once its queue was seen drained,
 * and when that look began.
 */
interface CatchUp {
  since: number;
  marks?: DeliveryMark[];
  lookedAt?: number;
}

/**
 * How far behind its queue a shard's consumer may be in ordinary operation, on top of two sweep intervals, before
 * expiry held back for it counts as a hold (metrics, logs): publish times are whole seconds, a batch is on its way,
 * an idle consumer is believed caught up only at the second look. Expiry waits for the watermark whatever this is.
 */
export const BEHIND_REPORT_MS = 5_000;

/** The pseudo-shard of the un-sharded queues (observations and observations-bulk, from publishers older than sharding). */
export const LEGACY_SHARD = OBSERVATION_SHARDS;

/**
 * Consumes the observation shards this replica holds (ShardCoordinator decides which),
 * in batch mode: the service commits a batch in one transaction in the shard's lane and
 * the consumer acks it only after that (a throw nacks it for a retry). One consumer per
 * shard queue (and the queue's single active consumer) keeps each target's
 * observations in delivery order. The in-flight budget (updates and bytes) is the
 * replica's, split evenly between the shards, and each prefetch is sized for the
 * largest message its queue may get: BUS_BATCH_MAX_UPDATES for a shard, a whole batch
 * POST for the legacy bulk queue.
 */
@Injectable()
export class ObservationsHandler {
  private readonly held = new Map<number, Subscription[]>();
  /** Shards taken and not caught up yet (see caughtUp). */
  private readonly catchingUp = new Map<number, CatchUp>();
  /** Shards caught up since their take whose consumer is behind its queue now (see expiryCutoffs): since when. */
  private readonly behind = new Map<number, number>();
  /** Shards whose last hold ran out (time_limit) and that have not caught up since: no new hold is counted. */
  private readonly overdue = new Set<number>();
  /** When the look that found a shard's queue drained after its take began: handled up to then. */
  private readonly caughtUpAt = new Map<number, number>();
  /** The channel the sweeps ask the broker about shard queues on (queueCounts). */
  private looks: { generation: number; channel: Channel; open: boolean } | undefined;
  private readonly metrics = AggregatorMetrics.get();

  constructor(
    private readonly consumer: BusConsumer,
    private readonly service: ObservationsService,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {
    this.metrics.trackCatchingUp(() => this.catchingUp.size + this.behind.size);
  }

  /** Starts consuming a shard (LEGACY_SHARD: the un-sharded queues); resolves once consuming. */
  async start(shard: number): Promise<void> {
    if (this.held.has(shard)) return;
    const subscriptions =
      shard === LEGACY_SHARD
        ? [
            this.subscribe(QueueName.AggregatorObservations, 'legacy', {
              units: BUS_BATCH_MAX_UPDATES,
              bytes: BUS_BATCH_MAX_BYTES,
            }),
            // A batch POST of up to 1000 updates in one message, at most ~1 KiB an update (the ingest body limit's default).
            this.subscribe(QueueName.AggregatorBulkObservations, 'legacy', {
              units: MAX_BATCH_UPDATES,
              bytes: MAX_BATCH_UPDATES * 1024,
            }),
          ]
        : [
            this.subscribe(observationShardQueueSpec(shard), shard, {
              units: BUS_BATCH_MAX_UPDATES,
              bytes: BUS_BATCH_MAX_BYTES,
            }),
          ];
    this.held.set(shard, subscriptions);
    if (shard < OBSERVATION_SHARDS && this.config.sweepCatchUpMaxMs > 0)
      this.catchingUp.set(shard, { since: Date.now() });
    await Promise.all(subscriptions.map((s) => s.waitUntilActive(30_000)));
  }

  /**
   * Stops consuming a shard: the consumer is cancelled, everything already delivered
   * is committed and acked (bounded by the shutdown timeout; what is left returns to
   * the queue), then the channel closes. Only then may another replica take it.
   */
  async stop(shard: number): Promise<void> {
    const subscriptions = this.held.get(shard);
    if (!subscriptions) return;
    await Promise.all(subscriptions.map((s) => s.stop()));
    this.held.delete(shard);
    this.endCatchUp(shard, 'shard_left');
    this.forgetLag(shard);
  }

  /**
   * Stops consuming a shard at once (its lock was lost, or another replica took it): the consumer is cancelled,
   * the batch with the committer settles and the buffered deliveries are given back, within ABORT_SETTLE_MS; then
   * the channel closes and unacked deliveries left return to the queue.
   */
  async abort(shard: number): Promise<void> {
    const subscriptions = this.held.get(shard);
    if (!subscriptions) return;
    this.held.delete(shard);
    this.endCatchUp(shard, 'shard_left');
    this.forgetLag(shard);
    const settleMs = Math.min(ABORT_SETTLE_MS, this.stopTimeoutMs());
    await Promise.all(subscriptions.map((s) => s.abort(settleMs, `shard ${shard} is no longer held by this replica`)));
  }

  holds(shard: number): boolean {
    return this.held.has(shard);
  }

  /** Shards being consumed (LEGACY_SHARD included when held). */
  get shards(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /**
   * Which of `shards` (held observation shards) have caught up with their queue since they were taken, so that
   * their due deadlines may be expired: after a restart or a hand-over the queue may hold a backlog of observations
   * that arrived in time, and expiring first would turn their targets STALE, then UP again. Caught up: a look at the
   * queue (a sweep) found no ready message and no consumer but ours — everything queued then had been delivered to
   * this replica — and every delivery received until the next sweep's look has been settled since, however much
   * has arrived after it (under steady traffic a moment with nothing in flight may never come). That next look is
   * a round trip on the consumers' connection: the deliveries the broker sent before the first look are read
   * before its answer, even when this process's event loop stalled meanwhile. The deliveries covered are a mark of
   * delivery tags (DeliveryMark); one of them given back to the queue, or the channel lost, starts over. Not longer
   * than SWEEP_CATCH_UP_MAX_MS after the take, so that a consumer that never catches up (sustained overload) does
   * not stop expiry for good.
   */
  async caughtUp(shards: readonly number[]): Promise<number[]> {
    const now = Date.now();
    const done: number[] = [];
    const look: Array<[number, CatchUp]> = [];
    for (const shard of shards) {
      const state = this.catchingUp.get(shard);
      if (!state) done.push(shard);
      else if (now - state.since >= this.config.sweepCatchUpMaxMs) {
        this.endCatchUp(shard, 'time_limit');
        // Still behind, most likely: its deadlines now wait at most SWEEP_CATCH_UP_MAX_MS (expiryCutoffs).
        this.overdue.add(shard);
        this.logger.warn(
          { shard, waitedMs: now - state.since },
          'shard consumer not caught up with its queue within SWEEP_CATCH_UP_MAX_MS; expiring its deadlines anyway',
        );
        done.push(shard);
      } else {
        if (state.marks?.some((m) => m.state === 'broken')) this.dropMarks(state);
        if (state.marks?.every((m) => m.state === 'settled')) this.caughtUpNow(shard, state, done);
        // No marks yet: a look to open them; open marks: the round trip that closes them.
        else if (!state.marks || state.marks.some((m) => m.state === 'open')) look.push([shard, state]);
      }
    }
    if (look.length === 0) return done.sort((a, b) => a - b);
    // New marks open before the look, so that a channel lost meanwhile (its deliveries back in the queue) breaks them.
    const opened = new Map(
      look.map(([shard, state]) => [
        shard,
        state.marks ? [] : (this.held.get(shard)?.map((s) => s.markDeliveries()) ?? []),
      ]),
    );
    const queues = await this.queueCounts(look.map(([shard]) => shard));
    for (const [shard, state] of look) {
      const marks = opened.get(shard) ?? [];
      const counts = queues.get(shard);
      // Stopped, or taken again, meanwhile: that take's own catch-up counts.
      if (this.catchingUp.get(shard) !== state || !counts) {
        for (const m of marks) m?.release();
        continue;
      }
      if (state.marks) {
        // The answer came after every delivery the broker sent before the last look: the marks cover those now.
        for (const m of state.marks) m.close();
        if (state.marks.some((m) => m.state === 'broken')) this.dropMarks(state);
        else if (state.marks.every((m) => m.state === 'settled')) this.caughtUpNow(shard, state, done);
        continue;
      }
      // Paused intake (the budget), or another consumer still on the queue (a replica that lost the shard, giving
      // back what it holds): what is not in our hands may come back to the queue, so the look is not conclusive.
      const subscriptions = this.held.get(shard) ?? [];
      const consuming = subscriptions.filter((s) => s.consuming).length;
      const conclusive =
        subscriptions.length > 0 &&
        counts.ready === 0 &&
        counts.consumers <= consuming &&
        consuming === subscriptions.length &&
        marks.length === subscriptions.length &&
        marks.every((m) => m?.state === 'open');
      if (conclusive) {
        state.marks = marks as DeliveryMark[];
        state.lookedAt = now;
      } else for (const m of marks) m?.release();
    }
    return done.sort((a, b) => a - b);
  }

  private caughtUpNow(shard: number, state: CatchUp, done: number[]): void {
    this.endCatchUp(shard, 'caught_up');
    this.caughtUpAt.set(shard, state.lookedAt ?? state.since);
    this.logger.info({ shard, waitedMs: Date.now() - state.since }, 'shard caught up with its queue');
    done.push(shard);
  }

  /** A mark broke (a delivery it covers went back to the queue, or its channel closed): look at the queue again. */
  private dropMarks(state: CatchUp): void {
    for (const m of state.marks ?? []) m.release();
    state.marks = undefined;
  }

  private endCatchUp(shard: number, ended: 'caught_up' | 'time_limit' | 'shard_left'): void {
    const state = this.catchingUp.get(shard);
    if (!state) return;
    this.catchingUp.delete(shard);
    for (const m of state.marks ?? []) m.release();
    this.metrics.catchUpHolds.inc({ cause: 'taken', ended });
  }

  /**
   * The latest deadline each of `shards` (held, caught up since their take) may have expired now: its consumer's
   * watermark (Subscription.handledThrough — every message published to the shard's queue before it has been
   * applied), so that a deadline is not expired while an observation that reached the queue before it is still
   * waiting there or in the consumer's hands. That is what happens whenever the consumer cannot apply what is
   * queued — Redis away (commits wait behind their projections), Postgres failing the commits (retried with
   * backoff), or simply more queued than the aggregator keeps up with: expiring from Postgres meanwhile turned
   * targets whose in-time updates were queued STALE (heartbeats DOWN), with events and alerts, then UP again once
   * the backlog was applied. A target that is really silent expires once the watermark has passed its deadline:
   * at once in an idle shard (within two sweeps), as late as the consumer is behind in a busy one. Not later than
   * SWEEP_CATCH_UP_MAX_MS past the deadline (a consumer stuck for good does not stop expiry); 0: no wait. Cheap:
   * a busy consumer's watermark is read off its own deliveries; only the queues of consumers with nothing in hand
   * are asked about (a passive declare each, on one channel kept for it).
   */
  async expiryCutoffs(shards: readonly number[], now: number): Promise<Map<number, number>> {
    // Every held shard is looked at each sweep (a consumer with nothing in hand is believed caught up from the look
    // before). The broker is asked only about those with nothing in hand: with deliveries in hand, they tell.
    const observed = [...this.held.keys()].filter((s) => s < OBSERVATION_SHARDS);
    const at = Date.now();
    const idle = observed.filter((s) => this.held.get(s)?.every((sub) => sub.consuming && sub.inFlight === 0));
    const queues = await this.queueCounts(idle);
    const watermarks = new Map<number, number | undefined>();
    for (const shard of observed) {
      let handled: number | undefined = Number.POSITIVE_INFINITY;
      for (const s of this.held.get(shard) ?? []) {
        const w = s.handledThrough(at, queues.get(shard));
        handled = w === undefined || handled === undefined ? undefined : Math.min(handled, w);
      }
      watermarks.set(shard, handled ?? this.caughtUpAt.get(shard));
    }
    const max = this.config.sweepCatchUpMaxMs;
    const cutoffs = new Map<number, number>();
    for (const shard of shards) {
      const handled = watermarks.get(shard);
      if (max <= 0 || !this.held.has(shard)) {
        cutoffs.set(shard, now);
        continue;
      }
      cutoffs.set(shard, Math.min(now, Math.max(handled ?? Number.NEGATIVE_INFINITY, now - max)));
      this.trackBehind(shard, handled === undefined ? Number.POSITIVE_INFINITY : Date.now() - handled);
    }
    return cutoffs;
  }

  /**
   * Holds for a consumer behind its queue, for the metrics and logs: one begins when a shard falls more than
   * BEHIND_REPORT_MS (plus two sweeps) behind, and ends when it is back within that (caught_up), when it is more
   * than SWEEP_CATCH_UP_MAX_MS behind (time_limit: its deadlines expire that late from then on; no new hold is
   * counted until it has caught up), or when the shard leaves (shard_left).
   */
  private trackBehind(shard: number, behindMs: number): void {
    const since = this.behind.get(shard);
    if (behindMs <= BEHIND_REPORT_MS + 2 * this.config.sweepIntervalMs) {
      this.overdue.delete(shard);
      if (since === undefined) return;
      this.endBehind(shard, 'caught_up');
      this.logger.info(
        { shard, heldMs: Date.now() - since },
        'shard consumer caught up with its queue; expiring its deadlines again',
      );
    } else if (behindMs > this.config.sweepCatchUpMaxMs) {
      if (this.overdue.has(shard)) return;
      this.overdue.add(shard);
      if (since === undefined) this.behind.set(shard, Date.now());
      this.endBehind(shard, 'time_limit');
      this.logger.warn(
        { shard, behindMs: Number.isFinite(behindMs) ? behindMs : null },
        'shard consumer behind its queue for longer than SWEEP_CATCH_UP_MAX_MS; its deadlines expire that late',
      );
    } else if (since === undefined && !this.overdue.has(shard)) {
      this.behind.set(shard, Date.now());
      this.logger.info(
        { shard, behindMs },
        'shard consumer behind its queue; deadlines past its watermark wait until it has caught up',
      );
    }
  }

  private endBehind(shard: number, ended: 'caught_up' | 'time_limit' | 'shard_left'): void {
    if (!this.behind.delete(shard)) return;
    this.metrics.catchUpHolds.inc({ cause: 'behind', ended });
  }

  /** The shard left this replica: its hold ends; a later take starts afresh. */
  private forgetLag(shard: number): void {
    this.endBehind(shard, 'shard_left');
    this.overdue.delete(shard);
    this.caughtUpAt.delete(shard);
  }

  /**
   * Ready messages and consumers of the shards' queues (a shard missing: not known now), asked on a channel of the
   * consumers' connection kept for these looks (every sweep asks about the idle shards).
   */
  private async queueCounts(shards: readonly number[]): Promise<Map<number, { ready: number; consumers: number }>> {
    const counts = new Map<number, { ready: number; consumers: number }>();
    if (shards.length === 0) return counts;
    const session = this.consumer.connection.current();
    if (!session) return counts;
    try {
      if (this.looks?.generation !== session.generation || !this.looks.open) {
        void this.looks?.channel.close().catch(() => undefined);
        const channel = await session.model.createChannel();
        const looks = { generation: session.generation, channel, open: true };
        channel.on('error', () => undefined);
        channel.on('close', () => (looks.open = false));
        this.looks = looks;
      }
      const { channel } = this.looks;
      for (const shard of shards) {
        const q = await channel.checkQueue(observationShardQueue(shard));
        counts.set(shard, { ready: q.messageCount, consumers: q.consumerCount });
      }
    } catch (e) {
      // A queue missing closes the channel: the next look opens another.
      this.logger.debug({ err: (e as Error).message }, 'shard queue depth not known this round');
    }
    return counts;
  }

  private subscribe(queue: QueueRef, lane: LaneKey, worstCase: { units: number; bytes: number }): Subscription {
    const split = lane === 'legacy' ? 1 : OBSERVATION_SHARDS;
    const maxUnits = Math.max(worstCase.units * 2, Math.floor(this.config.budget.maxUnits / split));
    const maxBytes = Math.max(worstCase.bytes * 2, Math.floor(this.config.budget.maxBytes / split));
    return this.consumer.consume(queue, (envelopes: Envelope[]) => this.service.processBatch(envelopes, lane), {
      prefetch: this.config.prefetch,
      batch: {
        ...this.config.batch,
        maxUnits: Math.max(1, Math.min(this.config.batch.maxUnits, Math.floor(maxUnits / 2))),
      },
      weigh: updatesIn,
      // The prefetch is sized for a window of the largest messages the queue may get, at all times: the budget
      // holds for a burst of them after a quiet spell of small ones. A larger message pauses intake when it arrives.
      budget: {
        maxUnits,
        maxBytes,
        unitsPerMessageHint: worstCase.units,
        bytesPerMessageHint: worstCase.bytes,
        worstCase,
      },
      stopTimeoutMs: this.stopTimeoutMs(),
    });
  }

  private stopTimeoutMs(): number {
    return Math.max(1000, this.config.shutdownTimeoutMs - 2000);
  }
}
