import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { Messages, QueueName, statusChangedBatchPayloadSchema, type Envelope } from '@fleetwatch/contracts';
import { ConsumeQueue } from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import {
  SubscriptionDeliveriesRepository,
  SubscriptionsRepository,
  TargetStatesRepository,
} from '@fleetwatch/persistence';
import type { AggregatorConfig } from '../../config';
import { AGGREGATOR_CONFIG } from '../../tokens';
import { deliveriesFor, parseSubscriptions, statusChangeOf, type StatusEventIn } from './subscription-enqueuer';
import { SubscriptionDeliveryWorker } from './subscription-delivery.worker';

/** Status events a message carries: a status.changed.batch its events, anything else one. */
export function eventsIn(envelope: Envelope): number {
  if (envelope.type !== Messages.StatusChangedBatch.type) return 1;
  const events = (envelope.payload as { events?: unknown }).events;
  return Array.isArray(events) ? Math.max(1, events.length) : 1;
}

/**
 * Status-change subscriptions, the queueing half (issue 18): status.changed(.batch) from its own durable queue
 * (shared by the replicas: each event is handled by one), matched against the enabled subscriptions, and
 * one delivery row per (subscription, event) inserted — ON CONFLICT DO NOTHING, so a redelivered event
 * queues nothing twice. The message is acked only after the insert committed (at-least-once: a crash or a
 * database outage redelivers it). Off the status path: the relay publishes without waiting for this queue,
 * and sending is the worker's, never here.
 */
@Injectable()
export class SubscriptionEventsHandler {
  constructor(
    private readonly subscriptions: SubscriptionsRepository,
    private readonly deliveries: SubscriptionDeliveriesRepository,
    private readonly targets: TargetStatesRepository,
    private readonly worker: SubscriptionDeliveryWorker,
    @Inject(AGGREGATOR_CONFIG) private readonly config: AggregatorConfig,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  // A status.changed.batch carries up to STATUS_CHANGED_BATCH_MAX events: batches are bounded by the events they
  // carry (weigh), not by messages, and the prefetch (two batches of small messages, so the next one is in hand while one commits) by the largest messages (the deliveries a batch queues are one
  // insert of events × matching subscriptions rows).
  @ConsumeQueue(QueueName.AggregatorSubscriptions, {
    prefetch: 40,
    batch: { maxSize: 20, maxWaitMs: 20, maxUnits: 250 },
    weigh: eventsIn,
  })
  async handleBatch(envelopes: Envelope[]): Promise<void> {
    const events: StatusEventIn[] = [];
    for (const e of envelopes) {
      // What the relay publishes: a commit's events in one message, each with its own id.
      if (e.type === Messages.StatusChangedBatch.type) {
        const batch = statusChangedBatchPayloadSchema.safeParse(e.payload);
        if (batch.success) {
          for (const { eventId, ...payload } of batch.data.events) events.push({ id: eventId, payload });
          continue;
        }
      }
      const payload = e.type === Messages.StatusChanged.type ? statusChangeOf(e.payload) : null;
      if (payload) events.push({ id: e.id, payload });
      else this.logger.warn({ messageId: e.id, type: e.type }, 'subscriptions: not a status.changed; ignored');
    }
    await this.enqueue(events);
  }

  /** Queues the deliveries these events call for; answers how many were new. */
  async enqueue(events: readonly StatusEventIn[]): Promise<number> {
    if (events.length === 0) return 0;
    const subscriptions = parseSubscriptions(await this.subscriptions.enabled());
    if (subscriptions.length === 0) return 0;
    const ids = [...new Set(events.map((e) => e.payload.targetId))];
    const targets = new Map((await this.targets.findMany(ids)).map((t) => [t.id, t]));
    const rows = deliveriesFor(events, subscriptions, targets, this.config.site);
    const queued = await this.deliveries.enqueue(rows);
    if (queued > 0) this.worker.kick();
    return queued;
  }
}
