import type { Channel, ConsumeMessage } from 'amqplib';
import { BusHeader, ExchangeName, messageDefinitionOf, parseMessage, uuidv7, type Envelope } from '@fleetwatch/contracts';
import { backoffDelay } from './backoff';
import { Batcher } from './batcher';
import { closeQuietly } from './close-quietly';
import type { ConfirmSender } from './confirm-sender';
import { SetupOrder, type BusConnection, type ConnectionSession } from './connection';
import { ChannelGeneration } from './delivery-tags';
import {
  DEFAULT_PREFETCH,
  DEFAULT_STOP_TIMEOUT_MS,
  DeadLetterHeader,
  MAX_PREFETCH,
  type BatchConsumeOptions,
  type BatchHandler,
  type ConsumeOptions,
  type DeadLetterCause,
  type DeliveryContext,
  type MessageHandler,
} from './delivery';
import { errorMessage, PermanentError } from './errors';
import type { BusLogger } from './logger';
import type { BusMetrics } from './metrics';

/** What a subscription needs from its BusConsumer. */
export interface SubscriptionDeps {
  readonly connection: BusConnection;
  readonly logger: BusLogger;
  readonly metrics: BusMetrics;
  readonly deliveryLimit: number;
  /** Confirm channel for dead-letter copies, shared by the consumer's subscriptions. */
  readonly deadLetters: ConfirmSender;
  readonly deadLetterTimeoutMs: number;
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
  private opening: Promise<void> = Promise.resolve();
  private reopenTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly stoppedListeners: Array<() => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private readonly activeWaiters: Array<() => void> = [];

  constructor(
    private readonly deps: SubscriptionDeps,
    readonly queue: string,
    private readonly handler: MessageHandler | BatchHandler,
    private readonly options: ConsumeOptions | BatchConsumeOptions,
    /** Declares the queue (topology) on a session, before each consume. */
    private readonly declare?: (session: ConnectionSession) => Promise<void>,
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
    this.removeSetup = this.deps.connection.addSetup({ name: `consume ${this.queue}`, order: SetupOrder.Consumer, run: (s) => this.open(s) });
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
        this.deps.logger.warn({ queue: this.queue, timeoutMs }, 'consumer stop timed out; unacked deliveries return to the queue');
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

  /** Serialised: the connection's setup and a channel-level reopen may race; the later one finds the channel open. */
  private open(session: ConnectionSession): Promise<void> {
    const next = this.opening.catch(() => undefined).then(() => this.openChannel(session));
    this.opening = next;
    return next;
  }

  private async openChannel(session: ConnectionSession): Promise<void> {
    if (this.stopping) return;
    if (this.current?.generation.isLive) return;
    // Idempotent; after a broker-side cancel the queue may be gone (deleted), so always declare first.
    if (this.declare) await this.declare(session);
    const channel = await session.model.createChannel();
    const generation = new ChannelGeneration(++this.generations);
    channel.on('error', (e: Error) => this.deps.logger.warn({ queue: this.queue, error: e.message }, 'consumer channel error'));
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
    const live = this.deps.connection.current();
    if (live && live.generation === session.generation) this.scheduleReopen();
  }

  private scheduleReopen(): void {
    if (this.stopping || this.reopenTimer) return;
    const delay = backoffDelay(++this.reopenAttempts);
    this.deps.logger.warn({ queue: this.queue, delayMs: delay }, 'consumer channel closed; reopening');
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      const now = this.deps.connection.current();
      if (!now || this.stopping) return;
      this.open(now).catch((e: unknown) => {
        this.deps.logger.error({ queue: this.queue, error: errorMessage(e) }, 'could not reopen consumer channel');
        if (this.deps.connection.current() === now) this.scheduleReopen();
      });
    }, delay);
  }

  private onDelivery(channel: Channel, generation: ChannelGeneration, message: ConsumeMessage | null): void {
    if (message === null) {
      // Broker-side cancel (queue deleted, node down): close and reopen.
      this.deps.logger.warn({ queue: this.queue }, 'consumer cancelled by RabbitMQ');
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
        finalAttempt: deliveryCount >= this.deps.deliveryLimit,
        headers,
      },
    };
    this.deps.metrics.consumed.inc([this.queue, typeLabel]);
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
      this.deps.metrics.observeHandler(this.queue, (performance.now() - started) / 1_000);
      return this.failed(delivery, e);
    }
    this.deps.metrics.observeHandler(this.queue, (performance.now() - started) / 1_000);
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
      this.deps.metrics.observeHandler(this.queue, (performance.now() - started) / 1_000);
      for (const i of live) await this.failed(i.delivery, e);
      return;
    }
    this.deps.metrics.observeHandler(this.queue, (performance.now() - started) / 1_000);
    this.ack(live.map((i) => i.delivery));
  }

  private async failed(delivery: Delivery, error: unknown): Promise<void> {
    const message = errorMessage(error);
    if (error instanceof PermanentError) return this.deadLetter(delivery, `permanent failure: ${message}`, 'permanent');
    if (delivery.context.finalAttempt) {
      const attempts = delivery.context.deliveryCount + 1;
      return this.deadLetter(delivery, `handler failed ${attempts} times (delivery limit ${this.deps.deliveryLimit}); last error: ${message}`, 'delivery_limit');
    }
    this.deps.logger.debug({ queue: this.queue, messageId: delivery.context.messageId, attempt: delivery.context.deliveryCount + 1, error: message }, 'handler failed; requeued');
    this.nack(delivery);
  }

  private async deadLetter(delivery: Delivery, reason: string, cause: DeadLetterCause): Promise<void> {
    if (!delivery.generation.isLive) return;
    try {
      await this.publishDeadLetter(delivery, reason, cause);
    } catch (e) {
      // Not stored in the DLQ: give it back; the delivery limit stays the backstop.
      this.deps.logger.error({ queue: this.queue, messageId: delivery.context.messageId, error: errorMessage(e) }, 'dead-lettering failed; requeued');
      this.nack(delivery);
      return;
    }
    this.deps.logger.warn({ queue: this.queue, messageId: delivery.context.messageId, cause, reason }, 'message dead-lettered');
    this.deps.metrics.deadLettered.inc([this.queue, delivery.typeLabel, cause]);
    this.ack([delivery], false);
  }

  /** Publishes a copy to the DLX (routed by the queue name) with the reason, and waits for the confirm. */
  private async publishDeadLetter(delivery: Delivery, reason: string, cause: DeadLetterCause): Promise<void> {
    const { message, context } = delivery;
    const props = message.properties;
    const headers: Record<string, unknown> = { ...(props.headers ?? {}) };
    delete headers['x-delivery-count'];
    headers[BusHeader.DeadLetterReason] = reason.length > 2_048 ? `${reason.slice(0, 2_045)}...` : reason;
    headers[BusHeader.DeadLetterQueue] = context.queue;
    headers[DeadLetterHeader.Cause] = cause;
    headers[DeadLetterHeader.DeliveryCount] = context.deliveryCount;
    headers[DeadLetterHeader.DeadLetteredAt] = new Date().toISOString();
    await this.deps.deadLetters.send(
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
      this.deps.deadLetterTimeoutMs,
    );
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
      this.deps.metrics.staleSettles.inc([this.queue], entries.length);
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
      this.deps.metrics.staleSettles.inc([this.queue], entries.length);
      return;
    }
    for (const e of entries) if (e.count) this.deps.metrics.acked.inc([this.queue, e.delivery.typeLabel]);
  }

  private nack(delivery: Delivery): void {
    const plan = delivery.generation.plan([delivery.message.fields.deliveryTag]);
    if (plan === null) {
      this.deps.metrics.staleSettles.inc([this.queue]);
      return;
    }
    try {
      delivery.channel.nack(delivery.message, false, true);
    } catch {
      this.deps.metrics.staleSettles.inc([this.queue]);
      return;
    }
    this.deps.metrics.nacked.inc([this.queue, delivery.typeLabel]);
  }
}
