import type { Message, MessageProperties, Options } from 'amqplib';
import {
  BusHeader,
  DEAD_LETTER_SUFFIX,
  deadLetterQueueOf,
  OBSERVATION_SHARDS,
  observationShardQueue,
  QueueName,
} from '@fleetwatch/contracts';
import { BROKER_DELIVERY_HEADERS, DeadLetterHeader } from '../delivery';
import { FRESH_COPIES_HEADER } from '../settlement';

/** Headers a replay adds, so a message that fails again shows its history in the DLQ. */
export const ReplayHeader = {
  Count: 'x-fleetwatch-replay-count',
  ReplayedAt: 'x-fleetwatch-replayed-at',
} as const;

/**
 * Dead-letter annotations (ours and RabbitMQ's) that a replay removes — and the count of fresh copies a give-back
 * made (a replay starts the message afresh; kept, a message dead-lettered at that cap would come straight back).
 */
const DEAD_LETTER_HEADERS: ReadonlySet<string> = new Set([
  FRESH_COPIES_HEADER,
  BusHeader.DeadLetterReason,
  BusHeader.DeadLetterQueue,
  DeadLetterHeader.Cause,
  DeadLetterHeader.DeliveryCount,
  DeadLetterHeader.DeadLetteredAt,
  ...BROKER_DELIVERY_HEADERS,
]);

/** The DLQs of the site: one per product queue, and one per observation shard queue. */
export function siteDeadLetterQueues(): string[] {
  return [
    ...Object.values(QueueName).map((q) => deadLetterQueueOf(q)),
    ...Array.from({ length: OBSERVATION_SHARDS }, (_, i) => deadLetterQueueOf(observationShardQueue(i))),
  ];
}

/** Accepts a source queue or its DLQ name; returns the DLQ name. */
export function toDeadLetterQueue(queue: string): string {
  return queue.endsWith(DEAD_LETTER_SUFFIX) ? queue : deadLetterQueueOf(queue);
}

/**
 * The queue a DLQ's messages came from. Derived from the DLQ's name rather than
 * a header: the DLX routes by source queue name into exactly `<queue>.dlq`.
 */
export function sourceQueueOf(deadLetterQueue: string): string {
  if (!deadLetterQueue.endsWith(DEAD_LETTER_SUFFIX) || deadLetterQueue.length === DEAD_LETTER_SUFFIX.length) {
    throw new RangeError(`"${deadLetterQueue}" is not a dead-letter queue (no "${DEAD_LETTER_SUFFIX}" suffix)`);
  }
  return deadLetterQueue.slice(0, -DEAD_LETTER_SUFFIX.length);
}

/** What `list` and `show` tell about one dead letter. */
export interface DeadLetterSummary {
  deadLetterQueue: string;
  sourceQueue: string;
  messageId: string | null;
  type: string | null;
  /** invalid | permanent | delivery_limit (consumer), or RabbitMQ's x-death reason. */
  cause: string | null;
  reason: string | null;
  deadLetteredAt: string | null;
  /** Deliveries of the original before it was dead-lettered. */
  deliveryCount: number | null;
  apiKeyId: string | null;
  updateId: string | null;
  /** Earlier replays of this message that failed again. */
  replays: number;
  bytes: number;
}

const str = (v: unknown): string | null =>
  typeof v === 'string' && v.length > 0 ? v : Buffer.isBuffer(v) ? v.toString('utf8') : null;
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

interface XDeathEntry {
  reason?: unknown;
  queue?: unknown;
  count?: unknown;
  time?: unknown;
}

/** RabbitMQ's own dead-lettering (a process crashed on the message until the delivery limit). */
function firstDeath(headers: Record<string, unknown>): XDeathEntry | undefined {
  const deaths = headers['x-death'];
  return Array.isArray(deaths) && deaths.length > 0 ? (deaths[0] as XDeathEntry) : undefined;
}

function amqpTime(v: unknown): string | null {
  // amqplib decodes AMQP timestamps (seconds) as numbers, or { '!': 'timestamp', value } when encoding.
  const seconds =
    typeof v === 'number' ? v : typeof v === 'object' && v !== null ? num((v as { value?: unknown }).value) : null;
  return seconds === null ? null : new Date(seconds * 1_000).toISOString();
}

export function describeDeadLetter(
  deadLetterQueue: string,
  message: Pick<Message, 'content' | 'properties'>,
): DeadLetterSummary {
  const props = message.properties;
  const headers = (props.headers ?? {}) as Record<string, unknown>;
  const death = firstDeath(headers);
  const ours = str(headers[DeadLetterHeader.Cause]) !== null || str(headers[BusHeader.DeadLetterReason]) !== null;
  return {
    deadLetterQueue,
    sourceQueue: sourceQueueOf(deadLetterQueue),
    messageId: str(props.messageId),
    type: str(props.type) ?? str(headers[BusHeader.MessageType]),
    cause: str(headers[DeadLetterHeader.Cause]) ?? (death ? str(death.reason) : null),
    reason:
      str(headers[BusHeader.DeadLetterReason]) ??
      (death && !ours
        ? `dead-lettered by RabbitMQ (${str(death.reason) ?? 'unknown'}) from ${str(death.queue) ?? '?'}`
        : null),
    deadLetteredAt: str(headers[DeadLetterHeader.DeadLetteredAt]) ?? (death ? amqpTime(death.time) : null),
    deliveryCount: num(headers[DeadLetterHeader.DeliveryCount]) ?? (death ? num(death.count) : null),
    apiKeyId: str(headers[BusHeader.ApiKeyId]),
    updateId: str(headers[BusHeader.UpdateId]),
    replays: num(headers[ReplayHeader.Count]) ?? 0,
    bytes: message.content.length,
  };
}

/**
 * Properties for republishing a dead letter to its source queue: same content,
 * message id, type and headers, minus the dead-letter annotations; persistent.
 * `userId` is dropped (the broker refuses one that is not the connection's user),
 * `expiration` too (a replayed message must not expire on the way).
 */
export function replayProperties(properties: MessageProperties, now: Date = new Date()): Options.Publish {
  const headers: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(properties.headers ?? {})) if (!DEAD_LETTER_HEADERS.has(k)) headers[k] = v;
  headers[ReplayHeader.Count] = (num(headers[ReplayHeader.Count]) ?? 0) + 1;
  headers[ReplayHeader.ReplayedAt] = now.toISOString();
  const out: Options.Publish = { persistent: true, mandatory: true, headers };
  if (properties.messageId !== undefined) out.messageId = properties.messageId as string;
  if (properties.type !== undefined) out.type = properties.type as string;
  if (properties.contentType !== undefined) out.contentType = properties.contentType as string;
  if (properties.contentEncoding !== undefined) out.contentEncoding = properties.contentEncoding as string;
  if (properties.correlationId !== undefined) out.correlationId = properties.correlationId as string;
  if (properties.replyTo !== undefined) out.replyTo = properties.replyTo as string;
  if (properties.timestamp !== undefined) out.timestamp = properties.timestamp as number;
  if (properties.appId !== undefined) out.appId = properties.appId as string;
  if (properties.priority !== undefined) out.priority = properties.priority as number;
  return out;
}

/** The body for display: parsed JSON when it is JSON, else base64. */
export function decodeBody(content: Buffer): { json: unknown } | { base64: string } {
  try {
    return { json: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(content)) as unknown };
  } catch {
    return { base64: content.toString('base64') };
  }
}
