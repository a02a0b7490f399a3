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
import { BusConsumer, observationShardQueueSpec, type QueueRef, type Subscription } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
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
  /** Shards taken and not caught up yet: since when, and whether their queue's ready count was seen at 0. */
  private readonly catchingUp = new Map<number, { since: number; readySeen: boolean }>();

  constructor(
    private readonly consumer: BusConsumer,
    private readonly service: ObservationsService,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

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
    if (shard < OBSERVATION_SHARDS) this.catchingUp.set(shard, { since: Date.now(), readySeen: false });
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
    this.catchingUp.delete(shard);
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
    this.catchingUp.delete(shard);
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
   * queue found no ready message, and at a later look (the sweeper's next round) nothing delivered is unsettled —
   * everything that was queued has been committed. Not longer than SWEEP_CATCH_UP_MAX_MS after the take, so that a
   * consumer that never catches up (sustained overload) does not stop expiry for good.
   */
  async caughtUp(shards: readonly number[]): Promise<number[]> {
    const now = Date.now();
    const done: number[] = [];
    const pending: Array<[number, { since: number; readySeen: boolean }]> = [];
    for (const shard of shards) {
      const state = this.catchingUp.get(shard);
      if (!state) done.push(shard);
      else if (now - state.since >= this.config.sweepCatchUpMaxMs) {
        this.catchingUp.delete(shard);
        if (this.config.sweepCatchUpMaxMs > 0)
          this.logger.warn(
            { shard, waitedMs: now - state.since },
            'shard consumer not caught up with its queue within SWEEP_CATCH_UP_MAX_MS; expiring its deadlines anyway',
          );
        done.push(shard);
      } else pending.push([shard, state]);
    }
    if (pending.length === 0) return done;
    const ready = await this.readyCounts(pending.map(([shard]) => shard));
    for (const [shard, state] of pending) {
      // Stopped, or taken again, meanwhile: that take's own catch-up counts.
      if (this.catchingUp.get(shard) !== state) continue;
      const settled = this.held.get(shard)?.every((s) => s.active && s.inFlight === 0) ?? false;
      if (state.readySeen && settled) {
        this.catchingUp.delete(shard);
        this.logger.info({ shard, waitedMs: Date.now() - state.since }, 'shard caught up with its queue');
        done.push(shard);
      } else if (ready.get(shard) === 0) state.readySeen = true;
    }
    return done.sort((a, b) => a - b);
  }

  /** Ready messages in the shards' queues (a shard missing: not known now). */
  private async readyCounts(shards: readonly number[]): Promise<Map<number, number>> {
    const counts = new Map<number, number>();
    const session = this.consumer.connection.current();
    if (!session) return counts;
    let channel: Channel | undefined;
    try {
      channel = await session.model.createChannel();
      channel.on('error', () => undefined);
      for (const shard of shards)
        counts.set(shard, (await channel.checkQueue(observationShardQueue(shard))).messageCount);
    } catch (e) {
      this.logger.debug({ err: (e as Error).message }, 'shard queue depth not known this round');
    } finally {
      await channel?.close().catch(() => undefined);
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
