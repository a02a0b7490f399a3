import type { Channel, ConsumeMessage } from 'amqplib';
import { BusHeader, ExchangeName, messageDefinitionOf, parseMessage, uuidv7, type Envelope } from '@fleetwatch/contracts';
import { backoffDelay } from './backoff';
import { Batcher, type BatchOptions } from './batcher';
import { closeQuietly } from './close-quietly';
import { ConfirmSender } from './confirm-sender';
import { SetupOrder, type BusConnection, type ConnectionSession } from './connection';
import { ChannelGeneration } from './delivery-tags';
import { BusClosedError, errorMessage, PermanentError } from './errors';
import { stderrBusLogger, type BusLogger } from './logger';
import { BusMetrics } from './metrics';
import { DEFAULT_DELIVERY_LIMIT, type BusTopology, type QueueRef, queueSpecOf } from './topology';

export const DEFAULT_PREFETCH = 50;
export const MAX_PREFETCH = 1_000;
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** Headers the consumer adds to the dead-lettered copy, besides BusHeader.DeadLetterReason / DeadLetterQueue. */
export const DeadLetterHeader = {
  DeliveryCount: 'x-fleetwatch-delivery-count',
  DeadLetteredAt: 'x-fleetwatch-dead-lettered-at',
  Cause: 'x-fleetwatch-dead-letter-cause',
} as const;

export type DeadLetterCause = 'invalid' | 'permanent' | 'delivery_limit';

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
}

export interface BatchConsumeOptions extends ConsumeOptions {
  /** Hand the handler arrays of envelopes; all are acked together after one commit. maxSize ≤ prefetch. */
  batch: BatchOptions;
}

export interface BusConsumerOptions {
  /** Declares consumed queues (with their DLQs) on every reconnect. */
  topology?: BusTopology;
  /** Must equal the queues' `x-delivery-limit`. Default: the topology's, else 5. */
  deliveryLimit?: number;
  /** Timeout for confirming a dead-lettered copy. Default 5000. */
  deadLetterTimeoutMs?: number;
  logger?: BusLogger;
}

interface Delivery {
  readonly message: ConsumeMessage;
  readonly channel: Channel;
  readonly generation: ChannelGeneration;
  readonly context: DeliveryContext;
  readonly typeLabel: string;
}

interface Parsed {
  delivery: Delivery;
  envelope: Envelope;
}

/**
 * Consumes quorum queues with manual acks: a message is acked only after its
 * handler's promise resolved, retried (nack + requeue, counted by the queue's
 * delivery limit) when the handler throws, and dead-lettered with its reason
 * when it is invalid, when the handler throws PermanentError, or when its last
 * allowed attempt fails. Resubscribes after reconnects; `stop()` drains.
 */
export class BusConsumer {
  private readonly subscriptions = new Set<Subscription>();
  private readonly deadLetters: ConfirmSender;
  readonly deliveryLimit: number;
  readonly logger: BusLogger;
  readonly metrics = BusMetrics.get();
  readonly deadLetterTimeoutMs: number;
  private stopped = false;

  constructor(
    readonly connection: BusConnection,
    private readonly options: BusConsumerOptions = {},
  ) {
    this.deliveryLimit = options.deliveryLimit ?? options.topology?.limit ?? DEFAULT_DELIVERY_LIMIT;
    this.logger = options.logger ?? stderrBusLogger;
    this.deadLetterTimeoutMs = options.deadLetterTimeoutMs ?? 5_000;
    this.deadLetters = new ConfirmSender(connection);
  }

  /** Starts consuming `queue`. Per message, or in batches when `options.batch` is set. */
  consume(queue: QueueRef, handler: MessageHandler, options?: ConsumeOptions): Subscription;
  consume(queue: QueueRef, handler: BatchHandler, options: BatchConsumeOptions): Subscription;
  consume(queue: QueueRef, handler: MessageHandler | BatchHandler, options: ConsumeOptions | BatchConsumeOptions = {}): Subscription {
    if (this.stopped) throw new BusClosedError('consumer is stopped');
    const spec = queueSpecOf(queue);
    const sub = new Subscription(this, spec.name, handler, options);
    this.subscriptions.add(sub);
    sub.onStopped(() => this.subscriptions.delete(sub));
    const topology = this.options.topology;
    if (!topology) {
      sub.start();
      return sub;
    }
    // Declare the queue (now if connected, and on every reconnect) before consuming from it.
    topology.ensure(queue).then(
      () => sub.start(),
      (e: unknown) => {
        this.logger.error({ queue: spec.name, error: errorMessage(e) }, 'declaring queue failed');
        sub.start();
      },
    );
    return sub;
  }

  /** Graceful: cancels every consumer, waits for in-flight handlers to finish and ack, closes channels. */
  async stop(timeoutMs?: number): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.subscriptions].map((s) => s.stop(timeoutMs)));
    await this.deadLetters.close();
  }

  /** Publishes a copy to the DLX (routed by queue name) with the reason, confirmed. */
  async deadLetter(delivery: Delivery, reason: string, cause: DeadLetterCause): Promise<void> {
    const { message, context } = delivery;
    const props = message.properties;
    const headers: Record<string, unknown> = { ...(props.headers ?? {}) };
    delete headers['x-delivery-count'];
    headers[BusHeader.DeadLetterReason] = reason.length > 2_048 ? `${reason.slice(0, 2_045)}...` : reason;
    headers[BusHeader.DeadLetterQueue] = context.queue;
    headers[DeadLetterHeader.Cause] = cause;
    headers[DeadLetterHeader.DeliveryCount] = context.deliveryCount;
    headers[DeadLetterHeader.DeadLetteredAt] = new Date().toISOString();
    await this.deadLetters.send(
      {
        exchange: ExchangeName.DeadLetter,
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
          timestamp: props.timestamp as number | undefined,
          appId: props.appId as string | undefined,
          headers,
        },
      },
      this.deadLetterTimeoutMs,
    );
  }
}

/** One queue being consumed. Survives reconnects; `stop()` ends it. */
export class Subscription {
  private current: { channel: Channel; generation: ChannelGeneration; consumerTag: string } | undefined;
  private generations = 0;
  private readonly work: Delivery[] = [];
  private running = 0;
  private readonly batcher: Batcher<Parsed> | undefined;
  private readonly sideTasks = new Set<Promise<void>>();
  private ackBuffer: Array<{ delivery: Delivery; count: boolean }> = [];
  private ackScheduled = false;
  private readonly prefetch: number;
  private readonly concurrency: number;
  private stopping: Promise<void> | undefined;
  private removeSetup: (() => void) | undefined;
  private reopenAttempts = 0;
  private reopenTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly stoppedListeners: Array<() => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private readonly activeWaiters: Array<() => void> = [];

  constructor(
    private readonly owner: BusConsumer,
    readonly queue: string,
    private readonly handler: MessageHandler | BatchHandler,
    private readonly options: ConsumeOptions | BatchConsumeOptions,
  ) {
    this.prefetch = options.prefetch ?? DEFAULT_PREFETCH;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 1 || this.prefetch > MAX_PREFETCH) {
      throw new RangeError(`prefetch must be an integer in 1..${MAX_PREFETCH}, got ${String(options.prefetch)}`);
    }
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    if ('batch' in options && options.batch) {
      if (options.batch.maxSize > this.prefetch) {
        throw new RangeError(`batch.maxSize (${options.batch.maxSize}) must not exceed prefetch (${this.prefetch}): a batch could never fill`);
      }
      this.batcher = new Batcher<Parsed>(options.batch, (items) => this.handleBatch(items));
    }
  }

  /** True while a channel is consuming. */
  get active(): boolean {
    return this.current?.generation.isLive === true && this.stopping === undefined;
  }

  /** Deliveries received and not yet settled (waiting, in a handler, or in a batch). */
  get inFlight(): number {
    return this.current?.generation.pending ?? 0;
  }

  /** Resolves once consuming (e.g. after a reconnect); rejects after `timeoutMs`. */
  waitUntilActive(timeoutMs = 10_000): Promise<void> {
    if (this.active) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.queue}: not consuming within ${timeoutMs} ms`)), timeoutMs);
      this.activeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  start(): void {
    if (this.stopping || this.removeSetup) return;
    this.removeSetup = this.owner.connection.addSetup({ name: `consume ${this.queue}`, order: SetupOrder.Consumer, run: (s) => this.open(s) });
  }

  onStopped(listener: () => void): void {
    this.stoppedListeners.push(listener);
  }

  /** Cancels the consumer, lets in-flight handlers finish and ack (bounded), then closes the channel. */
  stop(timeoutMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    this.stopping ??= (async () => {
      this.removeSetup?.();
      if (this.reopenTimer) clearTimeout(this.reopenTimer);
      const current = this.current;
      if (current?.generation.isLive) await current.channel.cancel(current.consumerTag).catch(() => undefined);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const drained = this.drain();
      const outcome = await Promise.race([drained.then(() => 'drained' as const), new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))]);
      if (timer) clearTimeout(timer);
      if (outcome === 'timeout') {
        this.owner.logger.warn({ queue: this.queue, timeoutMs }, 'consumer stop timed out; unacked deliveries return to the queue');
      }
      this.flushAcks();
      if (current?.generation.isLive) await closeQuietly(current.channel);
      for (const l of this.stoppedListeners) l();
    })();
    return this.stopping;
  }

  private async drain(): Promise<void> {
    if (this.batcher) await this.batcher.flush();
    await this.whenIdle();
    while (this.sideTasks.size > 0) await Promise.allSettled([...this.sideTasks]);
    if (this.batcher) await this.batcher.flush();
  }

  private whenIdle(): Promise<void> {
    if (this.running === 0 && this.work.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async open(session: ConnectionSession): Promise<void> {
    if (this.stopping) return;
    if (this.current?.generation.isLive) return;
    const channel = await session.model.createChannel();
    const generation = new ChannelGeneration(++this.generations);
    channel.on('error', (e: Error) => this.owner.logger.warn({ queue: this.queue, error: e.message }, 'consumer channel error'));
    channel.on('close', () => this.onChannelClosed(generation, session));
    await channel.prefetch(this.prefetch);
    const { consumerTag } = await channel.consume(this.queue, (m) => this.onDelivery(channel, generation, m), { noAck: false });
    this.current = { channel, generation, consumerTag };
    this.reopenAttempts = 0;
    for (const w of this.activeWaiters.splice(0)) w();
  }

  private onChannelClosed(generation: ChannelGeneration, session: ConnectionSession): void {
    generation.retire();
    if (this.current?.generation === generation) this.current = undefined;
    // The broker requeues everything unacked on that channel: drop what has not reached a handler yet.
    for (let i = this.work.length - 1; i >= 0; i--) if (this.work[i].generation === generation) this.work.splice(i, 1);
    this.batcher?.discard((p) => p.delivery.generation === generation);
    this.settleIdle();
    if (this.stopping) return;
    // Channel-level close on a live connection (consumer cancelled, channel error): reopen with backoff.
    // A lost connection resubscribes through the connection's setup instead.
    const live = this.owner.connection.current();
    if (live && live.generation === session.generation) this.scheduleReopen();
  }

  private scheduleReopen(): void {
    if (this.stopping || this.reopenTimer) return;
    const delay = backoffDelay(++this.reopenAttempts);
    this.owner.logger.warn({ queue: this.queue, delayMs: delay }, 'consumer channel closed; reopening');
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      const now = this.owner.connection.current();
      if (!now || this.stopping) return;
      this.open(now).catch((e: unknown) => {
        this.owner.logger.error({ queue: this.queue, error: errorMessage(e) }, 'could not reopen consumer channel');
        if (this.owner.connection.current() === now) this.scheduleReopen();
      });
    }, delay);
  }

  private onDelivery(channel: Channel, generation: ChannelGeneration, message: ConsumeMessage | null): void {
    if (message === null) {
      // Broker-side cancel (queue deleted, node down): close and reopen.
      this.owner.logger.warn({ queue: this.queue }, 'consumer cancelled by RabbitMQ');
      void closeQuietly(channel);
      return;
    }
    if (!generation.isLive) return;
    generation.track(message.fields.deliveryTag);
    const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
    const rawCount = headers['x-delivery-count'];
    const deliveryCount = typeof rawCount === 'number' ? rawCount : 0;
    const type = message.properties.type as unknown;
    const typeLabel = typeof type === 'string' && messageDefinitionOf(type) ? type : 'unknown';
    const delivery: Delivery = {
      message,
      channel,
      generation,
      typeLabel,
      context: {
        queue: this.queue,
        routingKey: message.fields.routingKey,
        messageId: typeof message.properties.messageId === 'string' ? message.properties.messageId : undefined,
        deliveryCount,
        redelivered: message.fields.redelivered,
        finalAttempt: deliveryCount >= this.owner.deliveryLimit,
        headers,
      },
    };
    this.owner.metrics.consumed.inc([this.queue, typeLabel]);
    if (this.batcher) {
      const parsed = parseMessage(message.content);
      if (parsed.ok) this.batcher.add({ delivery, envelope: parsed.value });
      else this.track(this.deadLetter(delivery, parsed.reason, 'invalid'));
      return;
    }
    this.work.push(delivery);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.concurrency && this.work.length > 0) {
      const next = this.work.shift() as Delivery;
      this.running++;
      void this.handleOne(next).finally(() => {
        this.running--;
        this.pump();
        this.settleIdle();
      });
    }
  }

  private settleIdle(): void {
    if (this.running !== 0 || this.work.length !== 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private track(task: Promise<void>): void {
    this.sideTasks.add(task);
    void task.finally(() => this.sideTasks.delete(task));
  }

  private async handleOne(delivery: Delivery): Promise<void> {
    if (!delivery.generation.isLive) return;
    const parsed = parseMessage(delivery.message.content);
    if (!parsed.ok) return this.deadLetter(delivery, parsed.reason, 'invalid');
    const started = performance.now();
    try {
      await (this.handler as MessageHandler)(parsed.value, delivery.context);
    } catch (e) {
      this.owner.metrics.observeHandler(this.queue, (performance.now() - started) / 1_000);
      return this.failed(delivery, e);
    }
    this.owner.metrics.observeHandler(this.queue, (performance.now() - started) / 1_000);
    this.ack([delivery]);
  }

  private async handleBatch(items: Parsed[]): Promise<void> {
    const live = items.filter((i) => i.delivery.generation.isLive);
    if (live.length === 0) return;
    const started = performance.now();
    try {
      await (this.handler as BatchHandler)(
        live.map((i) => i.envelope),
        live.map((i) => i.delivery.context),
      );
    } catch (e) {
      this.owner.metrics.observeHandler(this.queue, (performance.now() - started) / 1_000);
      for (const i of live) await this.failed(i.delivery, e);
      return;
    }
    this.owner.metrics.observeHandler(this.queue, (performance.now() - started) / 1_000);
    this.ack(live.map((i) => i.delivery));
  }

  private async failed(delivery: Delivery, error: unknown): Promise<void> {
    const message = errorMessage(error);
    if (error instanceof PermanentError) return this.deadLetter(delivery, `permanent failure: ${message}`, 'permanent');
    if (delivery.context.finalAttempt) {
      const attempts = delivery.context.deliveryCount + 1;
      return this.deadLetter(delivery, `handler failed ${attempts} times (delivery limit ${this.owner.deliveryLimit}); last error: ${message}`, 'delivery_limit');
    }
    this.owner.logger.debug({ queue: this.queue, messageId: delivery.context.messageId, attempt: delivery.context.deliveryCount + 1, error: message }, 'handler failed; requeued');
    this.nack(delivery);
  }

  private async deadLetter(delivery: Delivery, reason: string, cause: DeadLetterCause): Promise<void> {
    if (!delivery.generation.isLive) return;
    try {
      await this.owner.deadLetter(delivery, reason, cause);
    } catch (e) {
      // Not stored in the DLQ: give it back; the delivery limit stays the backstop.
      this.owner.logger.error({ queue: this.queue, messageId: delivery.context.messageId, error: errorMessage(e) }, 'dead-lettering failed; requeued');
      this.nack(delivery);
      return;
    }
    this.owner.logger.warn({ queue: this.queue, messageId: delivery.context.messageId, cause, reason }, 'message dead-lettered');
    this.owner.metrics.deadLettered.inc([this.queue, delivery.typeLabel, cause]);
    this.ack([delivery], false);
  }

  /**
   * Acks are coalesced: collected until the current burst of handlers has run
   * (setImmediate), then sent as one `multiple` ack where the tags are contiguous
   * (see PendingTags), else one by one. Still strictly after each handler resolved.
   */
  private ack(deliveries: readonly Delivery[], count = true): void {
    for (const d of deliveries) this.ackBuffer.push({ delivery: d, count });
    if (!this.ackScheduled) {
      this.ackScheduled = true;
      setImmediate(() => this.flushAcks());
    }
  }

  private flushAcks(): void {
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

  private settleAcks(entries: ReadonlyArray<{ delivery: Delivery; count: boolean }>): void {
    const { generation, channel } = entries[0].delivery;
    const plan = generation.plan(entries.map((e) => e.delivery.message.fields.deliveryTag));
    if (plan === null) {
      this.owner.metrics.staleSettles.inc([this.queue], entries.length);
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
      this.owner.metrics.staleSettles.inc([this.queue], entries.length);
      return;
    }
    for (const e of entries) if (e.count) this.owner.metrics.acked.inc([this.queue, e.delivery.typeLabel]);
  }

  private nack(delivery: Delivery): void {
    const plan = delivery.generation.plan([delivery.message.fields.deliveryTag]);
    if (plan === null) {
      this.owner.metrics.staleSettles.inc([this.queue]);
      return;
    }
    try {
      delivery.channel.nack(delivery.message, false, true);
    } catch {
      this.owner.metrics.staleSettles.inc([this.queue]);
      return;
    }
    this.owner.metrics.nacked.inc([this.queue, delivery.typeLabel]);
  }
}
