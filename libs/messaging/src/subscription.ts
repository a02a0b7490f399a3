import type { Channel, ConsumeMessage } from 'amqplib';
import { messageDefinitionOf, parseMessage, type Envelope } from '@fleetwatch/contracts';
import { backoffDelay, type BackoffOptions } from './backoff';
import { Batcher } from './batcher';
import { closeQuietly } from './close-quietly';
import type { ConfirmSender } from './confirm-sender';
import { SetupOrder, type BusConnection, type ConnectionSession } from './connection';
import { ChannelGeneration, HandledWatermark, publishedAtOf, type DeliveryMark } from './delivery-tags';
import {
  DEFAULT_PREFETCH,
  DEFAULT_STOP_TIMEOUT_MS,
  MAX_PREFETCH,
  type BatchConsumeOptions,
  type BatchHandler,
  type ConsumeOptions,
  type MessageHandler,
} from './delivery';
import { errorMessage, isTransientFailure, RedeliverError } from './errors';
import { IntakeWindow } from './intake-window';
import type { BusLogger } from './logger';
import type { BusMetrics } from './metrics';
import { Settlement, type Delivery } from './settlement';

/** What a subscription needs from its BusConsumer. */
export interface SubscriptionDeps {
  /** The consuming connection (never used to publish, so a broker alarm does not block it). */
  readonly connection: BusConnection;
  readonly logger: BusLogger;
  readonly metrics: BusMetrics;
  readonly deliveryLimit: number;
  /** Confirm channel for dead-letter copies, shared by the consumer's subscriptions (on the publishing connection). */
  readonly deadLetters: ConfirmSender;
  readonly deadLetterTimeoutMs: number;
}

/** Waits between calls of a handler whose last call failed transiently (a store away): 200 ms doubling, up to 5 s. */
export const TRANSIENT_RETRY_BACKOFF: Readonly<Partial<BackoffOptions>> = { initialDelayMs: 200, maxDelayMs: 5_000 };

/** How a handler call for some deliveries ended; `held`: it failed transiently and retrying stopped (give them back). */
type CallOutcome = { ok: true } | { ok: false; error: unknown; held: boolean };

/** A delivery with what it weighs against the budget, and when it was published (see HandledWatermark). */
interface Held extends Delivery {
  readonly units: number;
  readonly publishedAt: number;
}

interface Parsed {
  delivery: Held;
  envelope: Envelope;
}

interface Consuming {
  channel: Channel;
  generation: ChannelGeneration;
  /** Undefined while intake is paused (consumer cancelled, channel kept for settling). */
  consumerTag: string | undefined;
  /** Which registration with the broker the consumer tag is (a new one at every consume). */
  registration: number;
  prefetch: number;
}

/**
 * One queue being consumed: delivery intake, the work queue (or batcher) and
 * handler calls; settling is Settlement's job. Survives reconnects; `stop()`
 * ends it. With a `budget`, intake pauses while too much is held (see IntakeWindow).
 */
export class Subscription {
  private current: Consuming | undefined;
  private generations = 0;
  private readonly work: Held[] = [];
  private running = 0;
  private readonly batcher: Batcher<Parsed> | undefined;
  private readonly settlement: Settlement;
  private readonly window: IntakeWindow | undefined;
  private readonly weigh: ((envelope: Envelope) => number) | undefined;
  /** Intake changes (cancel / consume) run one after another. */
  private intake: Promise<void> = Promise.resolve();
  private paused = false;
  private lastRetune = 0;
  private readonly sideTasks = new Set<Promise<void>>();
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
  /** Handler calls waiting out a transient failure: woken early by stop() and by their channel closing. */
  private readonly retryWaits = new Set<() => void>();
  private untrackIntake: (() => void) | undefined;
  /** Set by abort(): what is still buffered is given back instead of handled (kept here, in delivery order). */
  private givingBack: { error: RedeliverError; parked: Delivery[] } | undefined;
  /** stop()'s drain has begun: from then on an abort() can no longer take back what it hands over. */
  private draining = false;
  private registrations = 0;
  private readonly watermark = new HandledWatermark();

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
    if (options.budget) {
      this.window = new IntakeWindow(this.prefetch, options.budget);
      this.untrackIntake = deps.metrics.trackIntake(queue, () => this.intakeState);
    }
    this.settlement = new Settlement({
      queue,
      logger: deps.logger,
      metrics: deps.metrics,
      deliveryLimit: deps.deliveryLimit,
      deadLetters: deps.deadLetters,
      deadLetterTimeoutMs: deps.deadLetterTimeoutMs,
      onSettled: this.window ? (d) => this.release(d as Held) : undefined,
      onReturned: (d) => this.watermark.returned(d.context.messageId, (d as Held).publishedAt),
    });
    if ('batch' in options && options.batch) {
      // With a budget the prefetch adapts, so a batch may legitimately be larger than one window.
      if (!this.window && options.batch.maxSize > this.prefetch) {
        throw new RangeError(
          `batch.maxSize (${options.batch.maxSize}) must not exceed prefetch (${this.prefetch}): a batch could never fill`,
        );
      }
      this.weigh = options.weigh;
      this.batcher = new Batcher<Parsed>(
        options.batch,
        (items) => this.handleBatch(items),
        (p) => p.delivery.units,
      );
    }
  }

  /** True while a channel is consuming (also while intake is paused for the budget). */
  get active(): boolean {
    return this.current?.generation.isLive === true && this.stopping === undefined;
  }

  /** Deliveries received and not yet settled (waiting, in a handler, or in a batch). */
  get inFlight(): number {
    return this.current?.generation.pending ?? 0;
  }

  /** True while the consumer is registered with the broker: active, and intake not paused for the budget. */
  get consuming(): boolean {
    return this.active && this.current?.consumerTag !== undefined;
  }

  /**
   * A mark over the deliveries of the channel consuming now (see DeliveryMark): settled once everything received
   * until its close() is settled, even while later deliveries keep arriving. Undefined while not consuming.
   */
  markDeliveries(): DeliveryMark | undefined {
    return this.active ? this.current?.generation.mark() : undefined;
  }

  /**
   * How far this consumer has handled its queue (HandledWatermark): every message published to the queue before the
   * returned time (epoch ms) has been received and settled. Undefined until known. Call periodically, each call a
   * look begun at `now`; for a consumer with nothing in hand (`inFlight` 0) pass what the broker answered about the
   * queue at that look (a passive declare sent then), else it is not believed caught up.
   */
  handledThrough(now: number, queue?: { ready: number; consumers: number }): number | undefined {
    const current = this.active ? this.current : undefined;
    return this.watermark.observe(now, {
      registration: current?.consumerTag !== undefined ? current.registration : undefined,
      pending: current?.generation.pending ?? 0,
      oldestPendingPublishedAt: current?.generation.oldestPendingPublishedAt,
      queue,
    });
  }

  /** What the budget counts as held now, whether intake is paused, and the prefetch in force (undefined without a budget). */
  get intakeState(): { units: number; bytes: number; messages: number; paused: boolean; prefetch: number } | undefined {
    if (!this.window) return undefined;
    return {
      ...this.window.held,
      paused: this.paused,
      prefetch: this.current?.prefetch ?? this.window.targetPrefetch(),
    };
  }

  /** Resolves once consuming (e.g. after a reconnect); rejects after `timeoutMs`. */
  waitUntilActive(timeoutMs = 10_000): Promise<void> {
    if (this.active) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.queue}: not consuming within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.activeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  start(): void {
    if (this.stopping || this.removeSetup) return;
    this.removeSetup = this.deps.connection.addSetup({
      name: `consume ${this.queue}`,
      order: SetupOrder.Consumer,
      run: (s) => this.open(s),
    });
  }

  onStopped(listener: () => void): void {
    this.stoppedListeners.push(listener);
  }

  /** Cancels the consumer, lets in-flight handlers finish and ack (bounded), then closes the channel. */
  stop(timeoutMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    this.stopping ??= (async () => {
      this.wakeRetries();
      this.removeSetup?.();
      if (this.reopenTimer) clearTimeout(this.reopenTimer);
      await this.intake.catch(() => undefined);
      const current = this.current;
      if (current?.generation.isLive && current.consumerTag !== undefined)
        await current.channel.cancel(current.consumerTag).catch(() => undefined);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const drained = this.drain();
      const outcome = await Promise.race([
        drained.then(() => 'drained' as const),
        new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs))),
      ]);
      if (timer) clearTimeout(timer);
      if (outcome === 'timeout') {
        this.deps.logger.warn(
          { queue: this.queue, timeoutMs },
          'consumer stop timed out; unacked deliveries return to the queue',
        );
      }
      this.settlement.flushAcks();
      if (current?.generation.isLive) await closeQuietly(current.channel);
      this.untrackIntake?.();
      for (const l of this.stoppedListeners) l();
    })();
    return this.stopping;
  }

  /**
   * Stops a consumer whose queue is now another's to consume (e.g. its shard was taken or its lock lost): like
   * stop(settleMs), except that what is still buffered — received, not yet handed to the handler — is given back
   * (RedeliverError: requeued, or a fresh copy near the delivery limit) instead of handled, once what is already in
   * the handler's hands has settled, so it goes back behind that, in delivery order.
   */
  abort(settleMs: number, reason: string): Promise<void> {
    if (!this.givingBack && !this.draining) {
      // Nothing more reaches the handler from now on: what is buffered, and what still arrives before the
      // consumer's cancel is through, waits here for the give-back.
      const parked: Delivery[] = this.batcher ? this.batcher.discard(() => true).map((p) => p.delivery) : [];
      parked.push(...this.work.splice(0));
      this.givingBack = { error: new RedeliverError(reason), parked };
    }
    return this.stop(settleMs);
  }

  private async drain(): Promise<void> {
    this.draining = true;
    if (this.givingBack) return this.giveBackBuffered(this.givingBack);
    if (this.batcher) await this.batcher.flush();
    await this.whenIdle();
    while (this.sideTasks.size > 0) await Promise.allSettled([...this.sideTasks]);
    if (this.batcher) await this.batcher.flush();
  }

  private async giveBackBuffered({ error, parked }: { error: RedeliverError; parked: Delivery[] }): Promise<void> {
    if (this.batcher) await this.batcher.whenIdle();
    await this.whenIdle();
    // Requeues go out in order (each nack is sent before redeliver's first await); fresh copies near the limit are
    // published together, not one confirm after another.
    await Promise.all(parked.splice(0).map((delivery) => this.settlement.redeliver(delivery, error)));
    while (this.sideTasks.size > 0) await Promise.allSettled([...this.sideTasks]);
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
    channel.on('error', (e: Error) =>
      this.deps.logger.warn({ queue: this.queue, error: e.message }, 'consumer channel error'),
    );
    channel.on('close', () => this.onChannelClosed(generation, session));
    const prefetch = this.window ? this.window.targetPrefetch() : this.prefetch;
    await channel.prefetch(prefetch);
    const { consumerTag } = await channel.consume(this.queue, (m) => this.onDelivery(channel, generation, m), {
      noAck: false,
    });
    if (this.stopping) {
      // stop() ran while this channel was opening: it found nothing to cancel, so close it here, or a consumer
      // would live on that nobody stops (what it was delivered returns to the queue, and is not handled here).
      generation.retire();
      await closeQuietly(channel);
      return;
    }
    this.current = { channel, generation, consumerTag, registration: ++this.registrations, prefetch };
    this.paused = false;
    this.intake = Promise.resolve();
    this.reopenAttempts = 0;
    for (const w of this.activeWaiters.splice(0)) w();
  }

  private onChannelClosed(generation: ChannelGeneration, session: ConnectionSession): void {
    generation.retire();
    if (this.current?.generation === generation) {
      this.current = undefined;
      // The broker requeues everything unacked on that channel: nothing is held any more.
      this.window?.reset();
      this.paused = false;
    }
    // Drop what has not reached a handler yet.
    for (let i = this.work.length - 1; i >= 0; i--) if (this.work[i].generation === generation) this.work.splice(i, 1);
    this.batcher?.discard((p) => p.delivery.generation === generation);
    this.wakeRetries();
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
    const publishedAt = publishedAtOf(message.properties.timestamp) ?? Date.now();
    generation.track(message.fields.deliveryTag, publishedAt);
    const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
    const rawCount = headers['x-delivery-count'];
    const deliveryCount = typeof rawCount === 'number' ? rawCount : 0;
    const type = message.properties.type as unknown;
    const typeLabel = typeof type === 'string' && messageDefinitionOf(type) ? type : 'unknown';
    const context = {
      queue: this.queue,
      routingKey: message.fields.routingKey,
      messageId: typeof message.properties.messageId === 'string' ? message.properties.messageId : undefined,
      deliveryCount,
      redelivered: message.fields.redelivered,
      finalAttempt: deliveryCount >= this.deps.deliveryLimit,
      headers,
      replyTo: nonEmptyString(message.properties.replyTo),
      correlationId: nonEmptyString(message.properties.correlationId),
    };
    this.deps.metrics.consumed.inc([this.queue, typeLabel]);
    this.watermark.received(context.messageId);
    if (this.givingBack) {
      // Arrived after abort(), before its cancel was through: given back with the rest.
      const delivery: Held = { message, channel, generation, typeLabel, context, units: 1, publishedAt };
      this.hold(delivery);
      this.givingBack.parked.push(delivery);
      return;
    }
    if (this.batcher) {
      const parsed = parseMessage(message.content);
      const units = parsed.ok && this.weigh ? Math.max(1, this.weigh(parsed.value)) : 1;
      const delivery: Held = { message, channel, generation, typeLabel, context, units, publishedAt };
      this.hold(delivery);
      if (parsed.ok) this.batcher.add({ delivery, envelope: parsed.value });
      else this.track(this.settlement.deadLetter(delivery, parsed.reason, 'invalid'));
      return;
    }
    const delivery: Held = { message, channel, generation, typeLabel, context, units: 1, publishedAt };
    this.hold(delivery);
    this.work.push(delivery);
    this.pump();
  }

  /** Counts a delivery against the budget; over it, intake pauses. */
  private hold(delivery: Held): void {
    if (!this.window) return;
    this.window.add(delivery.units, delivery.message.content.length);
    this.adjustIntake();
  }

  /** A delivery left our hands (settled): it no longer counts, and intake may resume. */
  private release(delivery: Held): void {
    if (!this.window || this.current?.generation !== delivery.generation) return;
    this.window.remove(delivery.units, delivery.message.content.length);
    this.adjustIntake();
  }

  /**
   * Pauses intake over the budget, resumes at half; while consuming, re-opens the
   * consumer when the prefetch that fits the budget changed by 2× or more (a
   * consumer's prefetch is fixed when it starts).
   */
  private adjustIntake(): void {
    const window = this.window as IntakeWindow;
    const current = this.current;
    if (!current?.generation.isLive || this.stopping) return;
    if (!this.paused) {
      if (window.overBudget) {
        this.paused = true;
        this.changeIntake(current, 'pause');
        return;
      }
      const target = window.targetPrefetch();
      const now = Date.now();
      // Shrinking is urgent (larger messages arrive); growing waits a second so it does not flap.
      if (target * 2 <= current.prefetch || (target >= current.prefetch * 2 && now - this.lastRetune >= 1_000)) {
        this.lastRetune = now;
        this.changeIntake(current, 'retune');
      }
    } else if (window.canResume) {
      this.paused = false;
      this.changeIntake(current, 'resume');
    }
  }

  private changeIntake(current: Consuming, change: 'pause' | 'resume' | 'retune'): void {
    this.intake = this.intake
      .then(async () => {
        if (!current.generation.isLive || this.stopping) return;
        if (change !== 'resume' && current.consumerTag !== undefined) {
          const tag = current.consumerTag;
          current.consumerTag = undefined;
          await current.channel.cancel(tag);
        }
        // A resume or retune queued behind a pause that is still wanted stays paused.
        if (
          change === 'pause' ||
          this.paused ||
          current.consumerTag !== undefined ||
          !current.generation.isLive ||
          this.stopping
        )
          return;
        const prefetch = (this.window as IntakeWindow).targetPrefetch();
        await current.channel.prefetch(prefetch);
        const { consumerTag } = await current.channel.consume(
          this.queue,
          (m) => this.onDelivery(current.channel, current.generation, m),
          { noAck: false },
        );
        current.consumerTag = consumerTag;
        current.registration = ++this.registrations;
        current.prefetch = prefetch;
      })
      .catch((e: unknown) => {
        // The channel is closing under us: its close handler reopens.
        this.deps.logger.warn(
          { queue: this.queue, change, error: errorMessage(e) },
          'could not change consumer intake',
        );
      });
  }

  private pump(): void {
    while (this.running < this.concurrency && this.work.length > 0) {
      const next = this.work.shift() as Held;
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

  private async handleOne(delivery: Held): Promise<void> {
    if (!delivery.generation.isLive) return;
    const parsed = parseMessage(delivery.message.content);
    if (!parsed.ok) return this.settlement.deadLetter(delivery, parsed.reason, 'invalid');
    const outcome = await this.call([delivery], () => (this.handler as MessageHandler)(parsed.value, delivery.context));
    if (outcome.ok) this.settlement.ack([delivery]);
    else if (outcome.held) await this.giveBack([delivery], outcome.error);
    else await this.settlement.failed(delivery, outcome.error);
  }

  private async handleBatch(items: Parsed[]): Promise<void> {
    await this.settleBatch(items);
  }

  /**
   * One handler call for `items`, then their settlement. A batch that fails for a reason that is neither transient
   * nor a give-back (RedeliverError) is split in two, each half handled in turn (delivery order kept), until only
   * the messages that fail alone remain: those are settled as failures (requeued; dead-lettered on their last
   * attempt, or at once for a PermanentError), every other one is acked — a bad message never takes good ones with
   * it (SPEC §3). Without the split the whole batch was requeued together, came back together, failed together, and
   * reached the delivery limit together.
   */
  private async settleBatch(items: readonly Parsed[]): Promise<void> {
    const live = items.filter((i) => i.delivery.generation.isLive);
    if (live.length === 0) return;
    const deliveries = live.map((i) => i.delivery);
    const outcome = await this.call(deliveries, () =>
      (this.handler as BatchHandler)(
        live.map((i) => i.envelope),
        deliveries.map((d) => d.context),
      ),
    );
    if (outcome.ok) return this.settlement.ack(deliveries);
    if (outcome.held) return this.giveBack(deliveries, outcome.error);
    if (live.length > 1 && !(outcome.error instanceof RedeliverError)) {
      this.deps.logger.warn(
        { queue: this.queue, messages: live.length, error: errorMessage(outcome.error) },
        'batch failed; splitting it to find the messages that fail alone',
      );
      const half = Math.ceil(live.length / 2);
      await this.settleBatch(live.slice(0, half));
      await this.settleBatch(live.slice(half));
      return;
    }
    // Each requeue is sent before failed()'s first await, so they go back in delivery order; what awaits a publish
    // (a dead letter, a fresh copy) is published together with the rest.
    await Promise.all(deliveries.map((d) => this.settlement.failed(d, outcome.error)));
  }

  /**
   * Calls the handler for `deliveries`. A transient failure (isTransientFailure: a store away) is retried here with
   * backoff while the deliveries stay held: nothing goes back to the queue, so an outage spends no attempt of their
   * delivery limit, and (concurrency 1, or one batch at a time) nothing behind them is handled meanwhile — intake
   * pauses at the prefetch. Retrying stops when the subscription stops or their channel closes (`held`).
   */
  private async call(deliveries: readonly Held[], run: () => Promise<void> | void): Promise<CallOutcome> {
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        await run();
        this.deps.metrics.observeHandler(this.queue, (performance.now() - started) / 1_000);
        return { ok: true };
      } catch (error) {
        this.deps.metrics.observeHandler(this.queue, (performance.now() - started) / 1_000);
        if (!isTransientFailure(error)) return { ok: false, error, held: false };
        if (!this.mayRetry(deliveries)) return { ok: false, error, held: true };
        const delayMs = backoffDelay(attempt, TRANSIENT_RETRY_BACKOFF);
        this.deps.metrics.handlerRetries.inc([this.queue]);
        this.deps.logger.warn(
          { queue: this.queue, messages: deliveries.length, attempt, delayMs, error: errorMessage(error) },
          'handler failed transiently (a store away): deliveries held, retrying',
        );
        await this.retryWait(delayMs);
        if (!this.mayRetry(deliveries)) return { ok: false, error, held: true };
      }
    }
  }

  private mayRetry(deliveries: readonly Held[]): boolean {
    return this.stopping === undefined && deliveries.every((d) => d.generation.isLive);
  }

  private retryWait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.retryWaits.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.retryWaits.add(wake);
    });
  }

  private wakeRetries(): void {
    for (const wake of [...this.retryWaits]) wake();
  }

  /**
   * Deliveries whose handler was still waiting out a store when the consumer stopped: not failures, given back to
   * the queue for whoever consumes it next (requeued, or a fresh copy near the delivery limit; see Settlement).
   */
  private async giveBack(deliveries: readonly Held[], error: unknown): Promise<void> {
    const back = new RedeliverError(`consumer stopped while its handler waited out a store: ${errorMessage(error)}`);
    await Promise.all(deliveries.map((d) => this.settlement.redeliver(d, back)));
  }
}

/** An AMQP short-string property as set by the sender; absent, empty or another type → undefined. */
function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}
