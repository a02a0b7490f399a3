import type { Channel, ConsumeMessage } from 'amqplib';
import { ExchangeName, uuidv7 } from '@fleetwatch/contracts';
import type { ConfirmSender } from './confirm-sender';
import type { ChannelGeneration } from './delivery-tags';
import { BROKER_DELIVERY_HEADERS, deadLetterHeaders, type DeadLetterCause, type DeliveryContext } from './delivery';
import { errorMessage, PermanentError, RedeliverError } from './errors';
import type { BusLogger } from './logger';
import type { BusMetrics } from './metrics';

/**
 * A message given back with RedeliverError is republished as a fresh copy (instead of requeued)
 * once this many returns or fewer are left before the delivery limit: room for returns nobody
 * settles (a consumer aborted or a connection lost with the message unacked), which the broker
 * counts too and would dead-letter at the limit.
 */
export const FRESH_COPY_MARGIN = 2;

/**
 * A message given back this many times as a fresh copy is dead-lettered at its next give-back near the limit
 * (cause `delivery_limit`, the reason says so): a consumer that refuses a message without end — e.g. a lane that
 * never gets its shard back while its consumer lives on — must show, not loop through the queue forever.
 */
export const MAX_FRESH_COPIES = 10;

const BROKER_HEADERS: ReadonlySet<string> = new Set(BROKER_DELIVERY_HEADERS);

/** Header of a fresh copy: how many times the message was republished so (for logs and the runbook). */
export const FRESH_COPIES_HEADER = 'x-fleetwatch-fresh-copies';

/** One message received on a consumer channel and not yet settled. */
export interface Delivery {
  readonly message: ConsumeMessage;
  readonly channel: Channel;
  readonly generation: ChannelGeneration;
  readonly context: DeliveryContext;
  readonly typeLabel: string;
}

export interface SettlementDeps {
  readonly queue: string;
  readonly logger: BusLogger;
  readonly metrics: BusMetrics;
  readonly deliveryLimit: number;
  /** Confirm channel for dead-letter and fresh copies (on the publishing connection: a consumer connection never publishes). */
  readonly deadLetters: ConfirmSender;
  readonly deadLetterTimeoutMs: number;
  /** Told once per delivery when it leaves this consumer's hands (acked, nacked or dropped as stale). */
  readonly onSettled?: (delivery: Delivery) => void;
  /** Told when a delivery went back to its queue instead of being handled (requeued, or a fresh copy at its tail). */
  readonly onReturned?: (delivery: Delivery) => void;
}

/**
 * How a subscription's deliveries end: acked (coalesced), nacked for a retry, or
 * dead-lettered with a reason. Every settlement happens on the delivery's own
 * channel generation; one whose channel has closed is dropped (the broker has
 * requeued it already).
 */
export class Settlement {
  private ackBuffer: Array<{ delivery: Delivery; count: boolean }> = [];
  private ackScheduled = false;

  constructor(private readonly deps: SettlementDeps) {}

  /** A handler threw: dead-letter (permanent failure or last attempt) or requeue. */
  async failed(delivery: Delivery, error: unknown): Promise<void> {
    if (error instanceof RedeliverError) return this.redeliver(delivery, error);
    const message = errorMessage(error);
    if (error instanceof PermanentError) return this.deadLetter(delivery, `permanent failure: ${message}`, 'permanent');
    if (delivery.context.finalAttempt) {
      const attempts = delivery.context.deliveryCount + 1;
      return this.deadLetter(
        delivery,
        `handler failed ${attempts} times (delivery limit ${this.deps.deliveryLimit}); last error: ${message}`,
        'delivery_limit',
      );
    }
    this.deps.logger.debug(
      {
        queue: this.deps.queue,
        messageId: delivery.context.messageId,
        attempt: delivery.context.deliveryCount + 1,
        error: message,
      },
      'handler failed; requeued',
    );
    this.nack(delivery);
  }

  /**
   * Not a failure: the message is another consumer's to handle now. Requeued while its delivery
   * count leaves room; within FRESH_COPY_MARGIN of the limit, a fresh copy goes to the same queue
   * (default exchange, routed by the queue's name: no other queue gets it) and the original is
   * acked once the broker confirmed the copy. The copy joins the queue's tail — the consumer must
   * tolerate that (the aggregator's fold keeps the newest observation whatever the order). If the
   * copy cannot be published the original is requeued: the delivery limit stays the backstop.
   */
  async redeliver(delivery: Delivery, error: RedeliverError): Promise<void> {
    const { context } = delivery;
    const left = this.deps.deliveryLimit - context.deliveryCount;
    if (left > FRESH_COPY_MARGIN || !delivery.generation.isLive) {
      // Counted only when it went back on a live channel (else the broker returned it already: a stale settle).
      if (this.nack(delivery, false))
        this.deps.metrics.redelivered.inc([this.deps.queue, delivery.typeLabel, 'requeued']);
      return;
    }
    const copies = freshCopiesOf(context.headers);
    if (copies >= MAX_FRESH_COPIES)
      return this.deadLetter(
        delivery,
        `given back ${copies} times as a fresh copy, and again (${context.deliveryCount} returns): ${error.message}`,
        'delivery_limit',
      );
    try {
      await this.publishFreshCopy(delivery, copies + 1);
    } catch (e) {
      this.deps.logger.error(
        { queue: this.deps.queue, messageId: context.messageId, error: errorMessage(e) },
        'fresh copy of a message given back could not be published; requeued',
      );
      this.nack(delivery, false);
      return;
    }
    this.deps.logger.warn(
      {
        queue: this.deps.queue,
        messageId: context.messageId,
        deliveryCount: context.deliveryCount,
        freshCopies: copies + 1,
        reason: error.message,
      },
      'message given back near its delivery limit: republished as a fresh copy',
    );
    this.deps.metrics.redelivered.inc([this.deps.queue, delivery.typeLabel, 'fresh_copy']);
    delivery.generation.returned(delivery.message.fields.deliveryTag);
    this.deps.onReturned?.(delivery);
    this.ack([delivery], false);
  }

  async deadLetter(delivery: Delivery, reason: string, cause: DeadLetterCause): Promise<void> {
    if (!delivery.generation.isLive) return;
    try {
      await this.publishDeadLetter(delivery, reason, cause);
    } catch (e) {
      // Not stored in the DLQ: give it back; the delivery limit stays the backstop.
      this.deps.logger.error(
        { queue: this.deps.queue, messageId: delivery.context.messageId, error: errorMessage(e) },
        'dead-lettering failed; requeued',
      );
      this.nack(delivery);
      return;
    }
    this.deps.logger.warn(
      { queue: this.deps.queue, messageId: delivery.context.messageId, cause, reason },
      'message dead-lettered',
    );
    this.deps.metrics.deadLettered.inc([this.deps.queue, delivery.typeLabel, cause]);
    this.ack([delivery], false);
  }

  /**
   * Acks are coalesced: collected until the current burst of handlers has run
   * (setImmediate), then sent as one `multiple` ack where the tags are contiguous
   * (see PendingTags), else one by one. Still strictly after each handler resolved.
   */
  ack(deliveries: readonly Delivery[], count = true): void {
    for (const d of deliveries) this.ackBuffer.push({ delivery: d, count });
    if (!this.ackScheduled) {
      this.ackScheduled = true;
      setImmediate(() => this.flushAcks());
    }
  }

  flushAcks(): void {
    this.ackScheduled = false;
    const buffered = this.ackBuffer;
    if (buffered.length === 0) return;
    this.ackBuffer = [];
    let group: Array<{ delivery: Delivery; count: boolean }> = [];
    for (const entry of buffered) {
      if (group.length > 0 && group[0].delivery.generation !== entry.delivery.generation) {
        this.settleAcks(group);
        group = [];
      }
      group.push(entry);
    }
    this.settleAcks(group);
  }

  /**
   * Returns the delivery to its queue; `count`: as a handler failure (fleetwatch_bus_messages_nacked_total).
   * False when its channel had closed (the broker returned it already).
   */
  nack(delivery: Delivery, count = true): boolean {
    const plan = delivery.generation.plan([delivery.message.fields.deliveryTag]);
    this.deps.onSettled?.(delivery);
    if (plan === null) {
      this.deps.metrics.staleSettles.inc([this.deps.queue]);
      return false;
    }
    try {
      delivery.channel.nack(delivery.message, false, true);
    } catch {
      this.deps.metrics.staleSettles.inc([this.deps.queue]);
      return false;
    }
    delivery.generation.returned(delivery.message.fields.deliveryTag);
    this.deps.onReturned?.(delivery);
    if (count) this.deps.metrics.nacked.inc([this.deps.queue, delivery.typeLabel]);
    return true;
  }

  private settleAcks(entries: ReadonlyArray<{ delivery: Delivery; count: boolean }>): void {
    const { generation, channel } = entries[0].delivery;
    const plan = generation.plan(entries.map((e) => e.delivery.message.fields.deliveryTag));
    if (this.deps.onSettled) for (const e of entries) this.deps.onSettled(e.delivery);
    if (plan === null) {
      this.deps.metrics.staleSettles.inc([this.deps.queue], entries.length);
      return;
    }
    try {
      if ('upTo' in plan) {
        const top = entries.find((e) => e.delivery.message.fields.deliveryTag === plan.upTo) as { delivery: Delivery };
        channel.ack(top.delivery.message, plan.count > 1);
      } else {
        const byTag = new Map(entries.map((e) => [e.delivery.message.fields.deliveryTag, e.delivery]));
        for (const tag of plan.each) channel.ack((byTag.get(tag) as Delivery).message, false);
      }
    } catch {
      this.deps.metrics.staleSettles.inc([this.deps.queue], entries.length);
      return;
    }
    for (const e of entries) if (e.count) this.deps.metrics.acked.inc([this.deps.queue, e.delivery.typeLabel]);
  }

  /** Publishes the message again to its own queue, without the broker's delivery headers, and waits for the confirm. */
  private async publishFreshCopy(delivery: Delivery, copies: number): Promise<void> {
    const headers: Record<string, unknown> = {};
    for (const [k, v] of Object.entries((delivery.message.properties.headers ?? {}) as Record<string, unknown>))
      if (!BROKER_HEADERS.has(k)) headers[k] = v;
    headers[FRESH_COPIES_HEADER] = copies;
    // Default exchange, routed by the queue's name: no other queue gets it.
    await this.sendCopy(delivery, '', headers, { keepReplyTo: true });
  }

  /** Publishes a copy to the DLX (routed by the queue name) with the reason, and waits for the confirm. */
  private async publishDeadLetter(delivery: Delivery, reason: string, cause: DeadLetterCause): Promise<void> {
    const { message, context } = delivery;
    const headers = deadLetterHeaders(
      { reason, queue: context.queue, cause, deliveryCount: context.deliveryCount },
      message.properties.headers ?? {},
    );
    await this.sendCopy(delivery, ExchangeName.DeadLetter, headers, { keepReplyTo: false });
  }

  /** A copy of the delivery — same body, message id and properties, these headers — confirmed by the broker. */
  private async sendCopy(
    delivery: Delivery,
    exchange: string,
    headers: Record<string, unknown>,
    { keepReplyTo }: { keepReplyTo: boolean },
  ): Promise<void> {
    const { message, context } = delivery;
    const props = message.properties;
    await this.deps.deadLetters.send(
      {
        exchange,
        routingKey: context.queue,
        type: delivery.typeLabel,
        content: message.content,
        properties: {
          persistent: true,
          mandatory: true,
          messageId: typeof props.messageId === 'string' && props.messageId ? props.messageId : uuidv7(),
          type: props.type as string | undefined,
          contentType: props.contentType as string | undefined,
          contentEncoding: props.contentEncoding as string | undefined,
          correlationId: props.correlationId as string | undefined,
          ...(keepReplyTo ? { replyTo: props.replyTo as string | undefined } : {}),
          timestamp: props.timestamp as number | undefined,
          appId: props.appId as string | undefined,
          headers,
        },
      },
      this.deps.deadLetterTimeoutMs,
    );
  }
}

/** How many fresh copies a delivery descends from (its FRESH_COPIES_HEADER; 0 when absent or not a count). */
export function freshCopiesOf(headers: Readonly<Record<string, unknown>>): number {
  const n = headers[FRESH_COPIES_HEADER];
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : 0;
}
