import { Inject, Injectable } from '@nestjs/common';
import {
  BUS_BATCH_MAX_BYTES,
  BUS_BATCH_MAX_UPDATES,
  Messages,
  OBSERVATION_SHARDS,
  TargetIds,
  type PayloadInputOf,
  type StatusUpdate,
} from '@fleetwatch/contracts';
import { PayloadTooLargeError, RateLimitedError, UnavailableError, type TimeWindow } from '@fleetwatch/domain';
import { BusPublisher, shardOf } from '@fleetwatch/messaging';
import type { AuthenticatedKey } from '../auth/api-key-auth.service';
import type { IngestConfig } from '../config';
import { PublishGate } from '../ingress/publish-gate.service';
import { IngestRateLimits, type SharedKeyedLimiter } from '../limits/ingest-rate-limits';
import { IngestMetrics } from '../metrics/ingest.metrics';
import { INGEST_CONFIG } from '../tokens';
import { costOf, parseStatusUpdates } from './status-update.parser';
import { newUpdateId, updateMessageId } from './update-id';
import { approximateJsonBytes, CoalescerOverloadedError, UpdateCoalescer } from './update-coalescer';

export interface AcceptedUpdates {
  accepted: number;
  /** Each update's id: the client's `updateId`, or one generated here (UUIDv7). */
  ids: string[];
}

type StatusUpdatePayloadInput = PayloadInputOf<typeof Messages.StatusUpdate>;
type BatchItem = StatusUpdatePayloadInput & { id: string };

/**
 * `POST /api/v1/status/updates`: rate limit (a batch costs its size), validate
 * once, publish with broker confirms, and only then report the ids accepted.
 */
@Injectable()
export class StatusUpdatesService {
  private readonly window: TimeWindow;
  private readonly limiter: SharedKeyedLimiter;
  /** One per observation shard: concurrent requests for a shard fill one message for that shard's queue. */
  private readonly coalescers: UpdateCoalescer<BatchItem>[];
  private readonly retryAfter: number;

  constructor(
    private readonly publisher: BusPublisher,
    private readonly gate: PublishGate,
    private readonly metrics: IngestMetrics,
    @Inject(INGEST_CONFIG) config: IngestConfig,
    limits: IngestRateLimits,
  ) {
    this.window = {
      maxFutureSkewMs: config.maxFutureSkewSeconds * 1000,
      maxAgeMs: config.rawRetentionDays * 86_400_000,
    };
    this.limiter = limits.updates; // shared by replicas (Redis)
    this.retryAfter = config.retryAfterSeconds;
    // The queue bounds are the service's, shared evenly by the shards.
    const options = {
      maxInFlight: config.coalesceMaxInFlight,
      // Grouped requests fill bus messages up to the size consumers are sized for.
      maxItems: BUS_BATCH_MAX_UPDATES,
      maxGroupBytes: BUS_BATCH_MAX_BYTES,
      maxQueuedItems: Math.ceil(config.coalesceMaxQueuedUpdates / OBSERVATION_SHARDS),
      maxQueuedBytes: Math.ceil(config.coalesceMaxQueuedBytes / OBSERVATION_SHARDS),
      maxWaitMs: config.coalesceMaxWaitMs,
    };
    this.coalescers = Array.from(
      { length: OBSERVATION_SHARDS },
      () => new UpdateCoalescer<BatchItem>((items, bytes) => this.send(items, bytes), options),
    );
  }

  /**
   * The updates of one coalesced group (one request or several, all of one shard: each
   * shard has its own coalescer, so a group fills one message of its shard's queue) — a
   * lone update as `status.update`, several as `status.update.batch` — each within
   * BUS_BATCH_MAX_UPDATES / BUS_BATCH_MAX_BYTES (a big batch POST's share of a shard is
   * cut into chunks, in order). Resolves once every message is confirmed.
   */
  private async send(items: BatchItem[], bytes: number): Promise<void> {
    // `bytes` was weighed once, when the requests were accepted; only an oversized group is weighed per item.
    const oversized = items.length > BUS_BATCH_MAX_UPDATES || bytes > BUS_BATCH_MAX_BYTES;
    const sends: Promise<unknown>[] = [];
    for (const chunk of oversized ? chunksOf(items) : [items]) {
      if (chunk.length === 1) {
        const { id, ...payload } = chunk[0];
        sends.push(this.publisher.publish(Messages.StatusUpdate, payload, { id }));
      } else {
        sends.push(this.publisher.publish(Messages.StatusUpdateBatch, { updates: chunk }));
      }
    }
    // All settle before the request does: a refusal is reported only once nothing of it is still in flight.
    const outcomes = await Promise.allSettled(sends);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed)
      throw outcomes.some((o) => o.status === 'fulfilled') ? new PartlyConfirmedError(failed.reason) : failed.reason;
  }

  /**
   * Throws IngressPausedError / UnavailableError (503), RateLimitedError (429) or
   * InvalidError (400, naming each bad field). Resolves after the broker confirmed
   * every update of the request.
   */
  async accept(key: AuthenticatedKey, body: unknown, now: number = Date.now()): Promise<AcceptedUpdates> {
    this.gate.assertOpen(now);
    const cost = costOf(body);
    // More than the whole bucket: no wait would let it through, so not a 429 (whose Retry-After a client obeys for
    // ever) but a 413 saying how many a request may carry — a pusher halves a batch answered 413.
    if (cost > this.limiter.burst)
      throw new PayloadTooLargeError(
        `updates: a batch of ${cost} updates costs more than this API key's burst of ${this.limiter.burst} ` +
          `(INGEST_RATE_LIMIT_BURST): send at most ${this.limiter.burst} per request`,
      );
    const decision = await this.limiter.take(key.id, cost, now);
    if (!decision.allowed) {
      throw new RateLimitedError(
        `rate limit of ${this.limiter.perSecond} updates/s (burst ${this.limiter.burst}) exceeded for this API key`,
        decision.retryAfterSeconds,
      );
    }
    const { updates, batch } = parseStatusUpdates(body, now, this.window);
    const receivedAt = new Date(now).toISOString();
    const ids: string[] = new Array(updates.length);
    // The request's updates by shard of their target, in order, with what they weigh.
    const shards = new Map<number, { items: BatchItem[]; bytes: number }>();
    for (let i = 0; i < updates.length; i++) {
      const u = updates[i];
      const updateId = u.updateId ?? newUpdateId(now);
      // A client id makes the message id deterministic, so a retry is dropped as a duplicate downstream.
      const messageId = u.updateId ? updateMessageId(key.id, u.updateId) : updateId;
      ids[i] = updateId;
      const item: BatchItem = { ...toPayload(u, updateId, receivedAt, key.id), id: messageId };
      const shard = shardOf(TargetIds.instance(u.instanceId));
      const part = shards.get(shard);
      if (part) {
        part.items.push(item);
        part.bytes += approximateJsonBytes(item);
      } else shards.set(shard, { items: [item], bytes: approximateJsonBytes(item) });
    }
    // Concurrent requests for a shard are grouped into one message while the broker
    // confirms earlier ones (UpdateCoalescer, one per shard). Each update keeps its own
    // id, the key the aggregator de-duplicates by.
    await this.gate.publish(batch ? 'batch' : 'single', () => this.submit(shards));
    this.metrics.countAccepted(updates.length, batch);
    return { accepted: updates.length, ids };
  }

  /**
   * Queues each shard's part for that shard's next message; resolves once all were
   * confirmed. A full queue or a long wait is a 503. A request spanning shards is
   * answered only once no part of it is still in flight: accepted whole, or refused
   * (503) and retried whole — parts already confirmed are then dropped downstream as
   * duplicates of their ids.
   */
  private async submit(shards: Map<number, { items: BatchItem[]; bytes: number }>): Promise<void> {
    try {
      if (shards.size === 1) {
        const [[shard, part]] = shards;
        await this.coalescers[shard].submit(part.items, part.bytes);
        return;
      }
      const outcomes = await Promise.allSettled(
        [...shards].map(([shard, part]) => this.coalescers[shard].submit(part.items, part.bytes)),
      );
      const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed)
        throw outcomes.some((o) => o.status === 'fulfilled') ? new PartlyConfirmedError(failed.reason) : failed.reason;
    } catch (e) {
      if (e instanceof CoalescerOverloadedError)
        throw new UnavailableError(`status-ingest is overloaded: ${e.message}`, this.retryAfter);
      // Messages of other shards (or other chunks) were confirmed: those updates will be stored. The refusal must
      // not say nothing was accepted — a client that gave no updateIds and retries stores those twice.
      if (e instanceof PartlyConfirmedError)
        throw new UnavailableError(
          `the message broker confirmed part of this request and not the rest (${(e.reason as Error)?.name ?? 'error'}): ` +
            'send all of it again — updates with an updateId are stored once, updates without one may be stored twice',
          this.retryAfter,
        );
      throw e;
    }
  }

  /** Forgets refilled rate-limit buckets (called periodically). */
  sweep(now: number = Date.now()): void {
    this.limiter.sweep(now);
  }
}

/** Some of the messages carrying a request were confirmed, others not (`reason`: why not). */
class PartlyConfirmedError extends Error {
  constructor(readonly reason: unknown) {
    super('partly confirmed');
    this.name = 'PartlyConfirmedError';
  }
}

/** Cuts one shard's updates into bus-sized messages, in order. */
function chunksOf(items: BatchItem[]): BatchItem[][] {
  const out: BatchItem[][] = [];
  let current: BatchItem[] = [];
  let bytes = 0;
  for (const item of items) {
    const weight = approximateJsonBytes(item);
    if (current.length > 0 && (current.length >= BUS_BATCH_MAX_UPDATES || bytes + weight > BUS_BATCH_MAX_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += weight;
  }
  if (current.length > 0) out.push(current);
  return out;
}

function toPayload(u: StatusUpdate, updateId: string, receivedAt: string, apiKeyId: string): StatusUpdatePayloadInput {
  const payload: StatusUpdatePayloadInput = {
    updateId,
    instanceId: u.instanceId,
    kind: u.kind,
    status: u.status,
    occurredAt: u.occurredAt ?? receivedAt,
    receivedAt,
    apiKeyId,
  };
  if (u.source !== undefined) payload.source = u.source;
  if (u.location !== undefined) payload.location = u.location;
  if (u.labels !== undefined) payload.labels = u.labels;
  if (u.message !== undefined) payload.message = u.message;
  if (u.metadata !== undefined) payload.metadata = u.metadata;
  return payload;
}
