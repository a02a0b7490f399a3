import { connect, type ChannelModel, type ConfirmChannel, type Message, type MessageProperties } from 'amqplib';
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
import { waitUntilCounted } from './wait-until-counted';

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
 * one consumer (DeadLetterReader) unacked and handed back with one `nack(requeue)`
 * at the end (or by the channel closing, if the process dies), which keeps them,
 * in order; the command returns once the queue counts them again. Each look
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
    const busy: string[] = [];
    for (const dlq of queues) {
      await this.scan(
        dlq,
        Infinity,
        (m) => {
          if (m.properties.messageId === messageId) found.push(detailOf(dlq, m));
        },
        () => busy.push(dlq),
      ).catch((e: unknown) => {
        if (!(e instanceof QueueNotFoundError)) throw e;
      });
    }
    if (found.length === 0) throw new DeadLetterNotFoundError(messageId, queues, busy);
    return found;
  }

  /** Replays every copy of the message with that id back to its source queue. */
  async replay(messageId: string, options: QueueSelection = {}): Promise<ReplayResult[]> {
    const queues = this.selected(options);
    const results: ReplayResult[] = [];
    const busy: string[] = [];
    for (const dlq of queues) {
      const r = await this.replayQueue(dlq, { only: messageId, onBusy: () => busy.push(dlq) }).catch((e: unknown) => {
        if (e instanceof QueueNotFoundError && e.queue === dlq) return null;
        throw e;
      });
      if (r && r.replayed > 0) results.push(r);
    }
    if (results.length === 0) throw new DeadLetterNotFoundError(messageId, queues, busy);
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
    return (await this.check(channel, queue)).messageCount;
  }

  /** Ready messages and consumers of `queue` (the DLQs have none but a dlq command's); QueueNotFoundError if not declared. */
  private async check(
    channel: ConfirmChannel,
    queue: string,
  ): Promise<{ messageCount: number; consumerCount: number }> {
    try {
      return await channel.checkQueue(queue);
    } catch (e) {
      if (isNotFound(e)) throw new QueueNotFoundError(queue);
      throw e;
    }
  }

  /**
   * Visits the first `max` messages of `dlq` (at most those there at the start),
   * in order, and gives them all back. Returns the queue's message count.
   *
   * Takes every message there at the start, not only the first `max`: a quorum queue
   * puts returned messages behind those returned before, so giving back only the
   * first page would move it behind the rest (each look at a page rotating the DLQ).
   * Taken all and given back in order, they stay in order, ahead of what arrived
   * meanwhile. Only the visited messages are held in memory (by the caller).
   *
   * `onBusy` when another consumer (a concurrent look or replay) held messages of the DLQ at the start, so some may
   * not be visited.
   */
  private scan(dlq: string, max: number, visit: (message: Message) => void, onBusy?: () => void): Promise<number> {
    return this.withChannel(async (channel) => {
      const { messageCount: total, consumerCount } = await this.check(channel, dlq);
      if (consumerCount > 0) onBusy?.();
      if (max <= 0 || total === 0) return total;
      let reader: DeadLetterReader | undefined;
      try {
        reader = await DeadLetterReader.open(channel, dlq, Math.min(total, MAX_PREFETCH));
        for (let i = 0; i < total; i++) {
          const m = await reader.next();
          if (m === false) break;
          if (i < max) visit(m);
        }
      } finally {
        await reader?.giveBack();
      }
      return total;
    });
  }

  private replayQueue(
    dlq: string,
    options: { only?: string; onBusy?: () => void; onProgress?: (p: ReplayProgress) => void; window?: number },
  ): Promise<ReplayResult> {
    const sourceQueue = sourceQueueOf(dlq);
    const window = Math.max(1, options.window ?? 100);
    return this.withChannel(async (channel) => {
      const { messageCount: total, consumerCount } = await this.check(channel, dlq);
      if (consumerCount > 0) options.onBusy?.();
      const result: ReplayResult = { deadLetterQueue: dlq, sourceQueue, replayed: 0, messageIds: [] };
      if (total === 0) return result;
      const returned = new Set<string>();
      channel.on('return', (m: { properties: MessageProperties }) =>
        returned.add(String(m.properties.messageId ?? '')),
      );
      let sourceChecked = false;
      let fetched = 0;
      let reader: DeadLetterReader | undefined;
      try {
        // One message: every other is held until the end (so they go back in order). All: a window at a time.
        const prefetch = Math.min(options.only === undefined ? window : total, MAX_PREFETCH);
        reader = await DeadLetterReader.open(channel, dlq, prefetch);
        while (fetched < total) {
          const batch: Message[] = [];
          while (batch.length < window && fetched < total) {
            const m = await reader.next();
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
              reader?.ack(m);
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
        await reader?.giveBack();
      }
      return result;
    });
  }

  private async assertExists(queue: string): Promise<void> {
    await this.withChannel((channel) => this.count(channel, queue));
  }

  private publishConfirmed(channel: ConfirmChannel, queue: string, message: Message): Promise<void> {
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

/** The most a consumer may hold unacked (AMQP's prefetch count is 16 bits). */
const MAX_PREFETCH = 65_535;
/** How long a look waits for the next message before asking whether any is left (DeadLetterReader). */
const SCAN_IDLE_MS = 100;
/** A look that got no message for this long asks whether the queue counts any ready, or another consumer holds them. */
const SCAN_EMPTY_MS = 1_000;
/** A look that got no message for this long stops taking more (and gives back what it took). */
const SCAN_STALL_MS = 5_000;
/** Longest wait, since the count last rose, for the messages a look gives back to be counted ready again. */
const GIVE_BACK_WAIT_MS = 5_000;
/** Longest wait in all for them (the count may keep moving while a replay drains the DLQ as new dead letters come). */
const GIVE_BACK_MAX_MS = 60_000;

/**
 * Takes a DLQ's messages in order, one `next()` at a time, through ONE consumer with `prefetch` credit — not one
 * `basic.get` each: a quorum queue put more than 32 messages fetched with `basic.get` back in no particular order
 * at the `nackAll` (every look shuffled the DLQ; each get is a consumer of its own there), while the messages of
 * one consumer go back in the order they were delivered. A get also costs a commit of its own, some 5 ms a
 * message. `next()` is false once none is left for it: the consumer was cancelled, or nothing came
 * for a while and either its credit is used up, the queue has none ready (another look or a replay holds the
 * rest), or the broker stalled.
 */
class DeadLetterReader {
  private readonly buffer: Message[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private delivered = 0;
  /** Delivered and not acked (what counts against the credit). */
  private unacked = 0;
  private consumerTag: string | undefined;

  private constructor(
    private readonly channel: ConfirmChannel,
    private readonly queue: string,
    private readonly prefetch: number,
  ) {}

  static async open(channel: ConfirmChannel, queue: string, prefetch: number): Promise<DeadLetterReader> {
    const reader = new DeadLetterReader(channel, queue, prefetch);
    await channel.prefetch(prefetch);
    const { consumerTag } = await channel.consume(queue, (m) => reader.take(m), { noAck: false });
    reader.consumerTag = consumerTag;
    return reader;
  }

  async next(): Promise<Message | false> {
    let progressAt = Date.now();
    for (;;) {
      const m = this.buffer.shift();
      if (m) return m;
      if (this.ended) return false;
      const before = this.delivered;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, SCAN_IDLE_MS);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
      if (this.delivered !== before) {
        progressAt = Date.now();
        continue;
      }
      const idle = Date.now() - progressAt;
      if (this.unacked >= this.prefetch || idle > SCAN_STALL_MS) return false;
      if (idle < SCAN_EMPTY_MS) continue;
      // None ready: the rest are held by another consumer (a concurrent look or replay), or on their way to this one —
      // a large DLQ's messages, checked out to it at once, can take seconds to come. Only the first is a reason to stop.
      const { messageCount, consumerCount } = await this.channel.checkQueue(this.queue);
      if (messageCount === 0 && consumerCount > 1) return false;
    }
  }

  ack(m: Message): void {
    this.channel.ack(m);
    this.unacked--;
  }

  /**
   * Stops the deliveries, then gives back every message not acked with one `nack(requeue)` and waits until the
   * queue counts them ready again: the next look (or replay) must find them all. Never throws: on a closed channel
   * the broker has requeued them already.
   */
  async giveBack(): Promise<void> {
    this.ended = true;
    try {
      // The consumer first: else what goes back would come straight back to it.
      if (this.consumerTag !== undefined) await this.channel.cancel(this.consumerTag);
      this.consumerTag = undefined;
      const held = this.unacked;
      if (held === 0) return;
      const ready = async (): Promise<number> => (await this.channel.checkQueue(this.queue)).messageCount;
      const before = await ready();
      this.channel.nackAll(true);
      this.unacked = 0;
      // A large DLQ's messages take seconds to be counted again: wait while the count still climbs. A concurrent
      // consumer of the DLQ (another look, a replay) can keep it lower for good: then stop once it stops climbing.
      await waitUntilCounted(ready, before, before + held, GIVE_BACK_WAIT_MS, GIVE_BACK_MAX_MS);
    } catch {
      // Channel closed: the broker has requeued everything unacked.
    }
  }

  private take(m: Message | null): void {
    if (m === null)
      this.ended = true; // cancelled by the broker (the queue was deleted)
    else {
      this.delivered++;
      this.unacked++;
      this.buffer.push(m);
    }
    this.wake?.();
  }
}

function detailOf(dlq: string, m: Message): DeadLetterDetail {
  const { headers, ...properties } = m.properties;
  return {
    summary: describeDeadLetter(dlq, m),
    properties,
    headers: (headers ?? {}) as Record<string, unknown>,
    body: decodeBody(m.content),
  };
}
