import { connect, type ChannelModel, type ConfirmChannel, type GetMessage, type MessageProperties } from 'amqplib';
import { closeQuietly } from '../close-quietly';
import { BusError, BusUnavailableError, errorMessage } from '../errors';
import { redactUrl } from '../logger';
import {
  decodeBody,
  describeDeadLetter,
  replayProperties,
  siteDeadLetterQueues,
  sourceQueueOf,
  toDeadLetterQueue,
  type DeadLetterSummary,
} from './dead-letter-message';
import { DeadLetterNotFoundError, QueueNotFoundError, ReplayFailedError } from './errors';

export interface DeadLetterAdminOptions {
  /** AMQP URL including the site's vhost. */
  url: string;
  connectTimeoutMs?: number;
  /** How long a republished message may wait for the broker's confirm. Default 10 s. */
  confirmTimeoutMs?: number;
}

export interface QueueSelection {
  /** Source queues or DLQ names; default every DLQ of the site. */
  queues?: readonly string[];
}

export interface ListOptions extends QueueSelection {
  /** Messages shown per DLQ. Default 20. */
  limit?: number;
  /** Messages skipped per DLQ before those shown. */
  offset?: number;
}

export interface DeadLetterQueueListing {
  deadLetterQueue: string;
  sourceQueue: string;
  /** False when the DLQ is not declared on this vhost (its service never ran here). */
  declared: boolean;
  messageCount: number;
  messages: DeadLetterSummary[];
}

export interface DeadLetterDetail {
  summary: DeadLetterSummary;
  properties: Omit<MessageProperties, 'headers'>;
  headers: Record<string, unknown>;
  body: ReturnType<typeof decodeBody>;
}

export interface ReplayProgress {
  deadLetterQueue: string;
  sourceQueue: string;
  replayed: number;
  /** Messages in the DLQ when the replay of this queue started. */
  total: number;
}

export interface ReplayResult {
  deadLetterQueue: string;
  sourceQueue: string;
  replayed: number;
  messageIds: Array<string | null>;
}

export interface ReplayAllOptions extends QueueSelection {
  onProgress?: (progress: ReplayProgress) => void;
  /** Messages republished before waiting for their confirms. Default 100. */
  window?: number;
}

const isNotFound = (e: unknown): boolean => (e as { code?: unknown }).code === 404;

/**
 * Lists, shows and replays dead letters on one vhost, with plain amqplib (no
 * reconnect: an operator's command either works now or says why not).
 *
 * Looking never removes: RabbitMQ has no peek, so messages are fetched with
 * `basic.get` unacked and handed back with one `nack(requeue)` at the end (or by
 * the channel closing, if the process dies), which keeps them, in order. Each look
 * counts as a return in the DLQ's `x-delivery-count`; our DLQs have no delivery
 * limit (see docs/runbooks/dead-letters.md for RabbitMQ 4, which defaults to 20).
 *
 * Replay republishes to the source queue through the default exchange (routing
 * key = queue name: exactly that queue, whatever its bindings) and acks the DLQ
 * copy only after the publisher confirm. Consumers dedupe by message id, so
 * replaying a message twice, or one that did take effect, is harmless.
 */
export class DeadLetterAdmin {
  private lost: Error | undefined;
  private closing = false;

  private constructor(
    private readonly model: ChannelModel,
    private readonly confirmTimeoutMs: number,
  ) {}

  static async connect(options: DeadLetterAdminOptions): Promise<DeadLetterAdmin> {
    let model: ChannelModel;
    try {
      model = await connect(options.url, {
        timeout: options.connectTimeoutMs ?? 5_000,
        clientProperties: { connection_name: 'fleetwatch-dlq' },
      });
    } catch (e) {
      throw new BusUnavailableError(
        `cannot reach RabbitMQ at ${redactUrl(options.url)}: ${redactUrl(errorMessage(e)) || 'connection refused'}`,
        { cause: e },
      );
    }
    const admin = new DeadLetterAdmin(model, options.confirmTimeoutMs ?? 10_000);
    model.on('error', () => undefined); // surfaces as the failing operation's error
    model.on('close', (e?: Error) => {
      if (!admin.closing) admin.lost = e ?? new Error('connection closed');
    });
    return admin;
  }

  /** RabbitMQ's version, e.g. "3.13.7". */
  get serverVersion(): string {
    return this.model.connection.serverProperties.version ?? 'unknown';
  }

  /**
   * RabbitMQ ≥ 4.0 gives quorum queues a default delivery limit (20) that would
   * drop, not dead-letter, a DLQ message looked at that often; 3.x has none.
   */
  get looksCount(): boolean {
    return Number(this.serverVersion.split('.')[0]) >= 4;
  }

  async close(): Promise<void> {
    this.closing = true;
    await closeQuietly(this.model);
  }

  /** Each DLQ with its message count and, per message, id, type, reason and time. */
  async list(options: ListOptions = {}): Promise<DeadLetterQueueListing[]> {
    const limit = options.limit ?? 20;
    const offset = options.offset ?? 0;
    const out: DeadLetterQueueListing[] = [];
    for (const dlq of this.selected(options)) {
      const messages: DeadLetterSummary[] = [];
      let index = 0;
      const count = await this.scan(dlq, offset + limit, (m) => {
        if (index++ >= offset) messages.push(describeDeadLetter(dlq, m));
      }).catch((e: unknown) => {
        if (e instanceof QueueNotFoundError) return null;
        throw e;
      });
      out.push({
        deadLetterQueue: dlq,
        sourceQueue: sourceQueueOf(dlq),
        declared: count !== null,
        messageCount: count ?? 0,
        messages,
      });
    }
    return out;
  }

  /** Every copy of the message with that id (normally one). */
  async show(messageId: string, options: QueueSelection = {}): Promise<DeadLetterDetail[]> {
    const queues = this.selected(options);
    const found: DeadLetterDetail[] = [];
    for (const dlq of queues) {
      await this.scan(dlq, Infinity, (m) => {
        if (m.properties.messageId === messageId) found.push(detailOf(dlq, m));
      }).catch((e: unknown) => {
        if (!(e instanceof QueueNotFoundError)) throw e;
      });
    }
    if (found.length === 0) throw new DeadLetterNotFoundError(messageId, queues);
    return found;
  }

  /** Replays every copy of the message with that id back to its source queue. */
  async replay(messageId: string, options: QueueSelection = {}): Promise<ReplayResult[]> {
    const queues = this.selected(options);
    const results: ReplayResult[] = [];
    for (const dlq of queues) {
      const r = await this.replayQueue(dlq, { only: messageId }).catch((e: unknown) => {
        if (e instanceof QueueNotFoundError && e.queue === dlq) return null;
        throw e;
      });
      if (r && r.replayed > 0) results.push(r);
    }
    if (results.length === 0) throw new DeadLetterNotFoundError(messageId, queues);
    return results;
  }

  /**
   * Replays what each DLQ holds when its turn comes, and no more: a message that
   * fails again and comes back to the DLQ meanwhile is not replayed in a loop.
   */
  async replayAll(options: ReplayAllOptions = {}): Promise<ReplayResult[]> {
    const results: ReplayResult[] = [];
    for (const dlq of this.selected(options)) {
      const r = await this.replayQueue(dlq, { onProgress: options.onProgress, window: options.window }).catch(
        (e: unknown) => {
          if (e instanceof QueueNotFoundError && e.queue === dlq && !options.queues) return null;
          throw e;
        },
      );
      if (r) results.push(r);
    }
    return results;
  }

  private selected(options: QueueSelection): string[] {
    const queues =
      options.queues && options.queues.length > 0 ? options.queues.map(toDeadLetterQueue) : siteDeadLetterQueues();
    return [...new Set(queues)];
  }

  private async withChannel<T>(work: (channel: ConfirmChannel) => Promise<T>): Promise<T> {
    const channel = await this.model.createConfirmChannel().catch((e: unknown) => {
      throw this.lost ? this.lostError() : e;
    });
    let failure: Error | undefined;
    channel.on('error', (e: Error) => (failure = e));
    try {
      return await work(channel);
    } catch (e) {
      if (e instanceof BusError) throw e;
      if (this.lost) throw this.lostError();
      // A channel-level error (e.g. 404) also rejects the pending call with a vaguer one.
      throw failure ?? e;
    } finally {
      await closeQuietly(channel);
    }
  }

  /** Unacked dead letters went back to their DLQ with the connection; confirmed replays were acked. */
  private lostError(): BusUnavailableError {
    return new BusUnavailableError(
      `lost the connection to RabbitMQ: ${redactUrl(errorMessage(this.lost))}; nothing unconfirmed left its DLQ`,
      { cause: this.lost },
    );
  }

  /** The message count of `queue`; QueueNotFoundError when it is not declared. */
  private async count(channel: ConfirmChannel, queue: string): Promise<number> {
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } catch (e) {
      if (isNotFound(e)) throw new QueueNotFoundError(queue);
      throw e;
    }
  }

  /**
   * Visits the first `max` messages of `dlq` (at most those there at the start),
   * in order, and gives them all back. Returns the queue's message count.
   */
  private scan(dlq: string, max: number, visit: (message: GetMessage) => void): Promise<number> {
    return this.withChannel(async (channel) => {
      const total = await this.count(channel, dlq);
      try {
        for (let i = 0; i < Math.min(total, max); i++) {
          const m = await channel.get(dlq, { noAck: false });
          if (m === false) break;
          visit(m);
        }
      } finally {
        nackAllQuietly(channel);
      }
      return total;
    });
  }

  private replayQueue(
    dlq: string,
    options: { only?: string; onProgress?: (p: ReplayProgress) => void; window?: number },
  ): Promise<ReplayResult> {
    const sourceQueue = sourceQueueOf(dlq);
    const window = Math.max(1, options.window ?? 100);
    return this.withChannel(async (channel) => {
      const total = await this.count(channel, dlq);
      const result: ReplayResult = { deadLetterQueue: dlq, sourceQueue, replayed: 0, messageIds: [] };
      if (total === 0) return result;
      const returned = new Set<string>();
      channel.on('return', (m: { properties: MessageProperties }) =>
        returned.add(String(m.properties.messageId ?? '')),
      );
      let sourceChecked = false;
      let fetched = 0;
      try {
        while (fetched < total) {
          const batch: GetMessage[] = [];
          while (batch.length < window && fetched < total) {
            const m = await channel.get(dlq, { noAck: false });
            if (m === false) {
              fetched = total;
              break;
            }
            fetched++;
            if (options.only === undefined || m.properties.messageId === options.only) batch.push(m);
          }
          if (batch.length === 0) continue;
          if (!sourceChecked) {
            await this.assertExists(sourceQueue);
            sourceChecked = true;
          }
          const settled = await Promise.allSettled(batch.map((m) => this.publishConfirmed(channel, sourceQueue, m)));
          let failure: string | undefined;
          settled.forEach((s, i) => {
            const m = batch[i];
            const id = String(m.properties.messageId ?? '');
            if (s.status === 'fulfilled' && !returned.has(id)) {
              channel.ack(m);
              result.replayed++;
              result.messageIds.push(m.properties.messageId ?? null);
            } else {
              failure ??=
                s.status === 'rejected'
                  ? `${errorMessage(s.reason)} (message ${id || 'without id'})`
                  : `${sourceQueue} refused message ${id} (unroutable)`;
            }
          });
          options.onProgress?.({ deadLetterQueue: dlq, sourceQueue, replayed: result.replayed, total });
          if (failure) {
            throw new ReplayFailedError(
              `replay to ${sourceQueue} stopped after ${result.replayed} message(s): ${failure}; the rest stay in ${dlq}`,
              options.only ?? null,
              result.replayed,
            );
          }
        }
      } finally {
        nackAllQuietly(channel);
      }
      return result;
    });
  }

  private async assertExists(queue: string): Promise<void> {
    await this.withChannel((channel) => this.count(channel, queue));
  }

  private publishConfirmed(channel: ConfirmChannel, queue: string, message: GetMessage): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no confirm from RabbitMQ within ${this.confirmTimeoutMs} ms (resource alarm?)`)),
        this.confirmTimeoutMs,
      );
      try {
        channel.publish('', queue, message.content, replayProperties(message.properties), (err: unknown) => {
          clearTimeout(timer);
          if (err) reject(new Error('RabbitMQ refused the message (nack)'));
          else resolve();
        });
      } catch (e) {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }
}

function nackAllQuietly(channel: ConfirmChannel): void {
  try {
    channel.nackAll(true);
  } catch {
    // Channel already closed: the broker has requeued everything unacked.
  }
}

function detailOf(dlq: string, m: GetMessage): DeadLetterDetail {
  const { headers, ...properties } = m.properties;
  return {
    summary: describeDeadLetter(dlq, m),
    properties,
    headers: (headers ?? {}) as Record<string, unknown>,
    body: decodeBody(m.content),
  };
}
