import { BusHeader, type Envelope } from '@fleetwatch/contracts';
import type { BatchOptions } from './batcher';
import type { IntakeBudget } from './intake-window';

export const DEFAULT_PREFETCH = 50;
export const MAX_PREFETCH = 1_000;
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** Headers the consumer adds to the dead-lettered copy, besides BusHeader.DeadLetterReason / DeadLetterQueue. */
export const DeadLetterHeader = {
  DeliveryCount: 'x-fleetwatch-delivery-count',
  DeadLetteredAt: 'x-fleetwatch-dead-lettered-at',
  Cause: 'x-fleetwatch-dead-letter-cause',
} as const;

/** `isolated`: one part of a message (or one message of a batch) that failed alone while the rest was stored. */
/** Headers RabbitMQ sets on a delivery (its count, and the history of a dead letter): never carried over to a copy. */
export const BROKER_DELIVERY_HEADERS: readonly string[] = [
  'x-delivery-count',
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
];

export type DeadLetterCause = 'invalid' | 'permanent' | 'delivery_limit' | 'isolated';

/** Longest reason kept in a header (AMQP header values are not meant for essays). */
const MAX_REASON_CHARS = 2_048;

export interface DeadLetterHeaderFields {
  reason: string;
  /** The queue the message was consumed from: the DLX routes the copy to that queue's DLQ. */
  queue: string;
  cause: DeadLetterCause;
  deliveryCount: number;
}

/** The headers every dead letter carries (see docs/bus.md), added to the message's own headers. */
export function deadLetterHeaders(
  fields: DeadLetterHeaderFields,
  own: Record<string, unknown> = {},
): Record<string, unknown> {
  const headers: Record<string, unknown> = { ...own };
  delete headers['x-delivery-count'];
  headers[BusHeader.DeadLetterReason] =
    fields.reason.length > MAX_REASON_CHARS ? `${fields.reason.slice(0, MAX_REASON_CHARS - 3)}...` : fields.reason;
  headers[BusHeader.DeadLetterQueue] = fields.queue;
  headers[DeadLetterHeader.Cause] = fields.cause;
  headers[DeadLetterHeader.DeliveryCount] = fields.deliveryCount;
  headers[DeadLetterHeader.DeadLetteredAt] = new Date().toISOString();
  return headers;
}

export interface DeliveryContext {
  readonly queue: string;
  readonly routingKey: string;
  readonly messageId: string | undefined;
  /** 0 on the first delivery, then RabbitMQ's `x-delivery-count` (returns so far). */
  readonly deliveryCount: number;
  readonly redelivered: boolean;
  /** A failure now dead-letters the message instead of retrying it. */
  readonly finalAttempt: boolean;
  readonly headers: Readonly<Record<string, unknown>>;
  /** AMQP `replyTo` property: where a request wants its answer (request/response, see rpc/). */
  readonly replyTo: string | undefined;
  /** AMQP `correlationId` property: what the answer to a request carries back. */
  readonly correlationId: string | undefined;
}

export type MessageHandler = (envelope: Envelope, context: DeliveryContext) => Promise<void> | void;
export type BatchHandler = (envelopes: Envelope[], contexts: DeliveryContext[]) => Promise<void> | void;

export interface ConsumeOptions {
  /** Unacked deliveries the broker may push to this consumer (1–1000). Default 50. */
  prefetch?: number;
  /**
   * Handlers running at once (non-batch mode). Default 1: messages are handled
   * and committed in delivery order, which keeps one target's results ordered.
   */
  concurrency?: number;
  /** How long stop() waits for in-flight handlers. Default 10 s. */
  stopTimeoutMs?: number;
  /**
   * Bounds what this consumer holds in bytes (and, in batch mode, in units of
   * `weigh`), besides prefetch's message count: intake pauses (consumer
   * cancelled) above it, resumes at half, and the prefetch shrinks so a window of
   * the largest recent messages fits it. See IntakeWindow.
   */
  budget?: IntakeBudget;
}

export interface BatchConsumeOptions extends ConsumeOptions {
  /** Hand the handler arrays of envelopes; all are acked together after one commit. maxSize ≤ prefetch. */
  batch: BatchOptions;
  /** Units one message counts for in `budget.maxUnits` and `batch.maxUnits` (e.g. the updates it carries). Default 1. */
  weigh?: (envelope: Envelope) => number;
}
