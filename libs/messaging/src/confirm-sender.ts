import type { ConfirmChannel, Message, Options } from 'amqplib';
import { closeQuietly } from './close-quietly';
import type { BusConnection, ConnectionSession } from './connection';
import {
  BrokerBlockedError,
  BusClosedError,
  BusError,
  BusUnavailableError,
  errorMessage,
  PublishNackedError,
  PublishTimeoutError,
  PublishUnroutableError,
} from './errors';

/** A message ready for the wire. `id` matches `properties.messageId` (used to match basic.return). */
export interface OutgoingMessage {
  exchange: string;
  routingKey: string;
  content: Buffer;
  properties: Options.Publish & { messageId: string };
  /** For error messages and metrics. */
  type: string;
}

/** Receives the outcome of each message of one send/sendMany call (one object per call, not per message). */
interface PendingSink {
  settle(index: number, error: BusError | undefined): void;
}

/** One message awaiting its broker confirm. */
class Pending {
  settled = false;
  returned: { code: number; text: string } | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  constructor(
    readonly message: OutgoingMessage,
    private readonly sink: PendingSink,
    private readonly index: number,
  ) {}
  settle(error: BusError | undefined): void {
    if (this.settled) return;
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    this.sink.settle(this.index, error);
  }
}

/** The confirm channel of one connection generation. */
class ConfirmLane {
  open = true;
  writable = true;
  /** messageId → sends awaiting a confirm; RabbitMQ sends basic.return before the ack of the same message. */
  readonly returnable = new Map<string, Pending[]>();
  /** Every send awaiting its confirm (failed at once when the broker blocks the connection). */
  readonly unconfirmed = new Set<Pending>();
  constructor(
    readonly channel: ConfirmChannel,
    readonly generation: number,
  ) {}
}

export interface ConfirmSenderOptions {
  /** Write-buffer high-water mark of the channel, in frames. */
  highWaterMark?: number;
  /** Called for each message sent / confirmed (metrics). */
  onSent?: (message: OutgoingMessage) => void;
  onConfirmed?: (message: OutgoingMessage) => void;
  /**
   * While the broker blocks the connection (resource alarm), refuse sends at once
   * and fail those awaiting a confirm with BrokerBlockedError, instead of letting
   * them wait out their deadline. For request paths that answer a client (503).
   */
  failWhenBlocked?: boolean;
}

/**
 * Sends on a confirm channel and settles each message with the broker's answer
 * or a typed error by a deadline. Reopens its channel per connection generation;
 * respects backpressure (`drain`). Shared by BusPublisher and the consumer's
 * dead-lettering.
 */
export class ConfirmSender {
  private lane: ConfirmLane | undefined;
  private opening: Promise<ConfirmLane> | undefined;
  private closed = false;
  private readonly unlistenBlocked: (() => void) | undefined;

  constructor(
    private readonly connection: BusConnection,
    private readonly options: ConfirmSenderOptions = {},
  ) {
    if (options.failWhenBlocked)
      this.unlistenBlocked = connection.onBlocked((reason) => reason !== undefined && this.failUnconfirmed(reason));
  }

  /** Opens the channel for `session` now (used as a connection setup). */
  async prepare(session: ConnectionSession): Promise<void> {
    await this.openLane(session);
  }

  /** Sends one message; resolves on the broker's ack, rejects with a BusError by the deadline. */
  async send(message: OutgoingMessage, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.assertNotBlocked();
    const lane = await this.acquire(deadline);
    if (!lane.writable) await this.writable(lane, deadline, timeoutMs);
    await new Promise<void>((resolve, reject) => {
      const pending = new Pending(message, { settle: (_i, error) => (error ? reject(error) : resolve()) }, 0);
      pending.timer = setTimeout(
        () => {
          this.forget(lane, pending);
          pending.settle(this.timeoutError(message, timeoutMs));
        },
        Math.max(0, deadline - Date.now()),
      );
      this.transmit(lane, pending);
    });
  }

  /**
   * Pipelines many messages on one channel and awaits all confirms together
   * (one timer). Returns, per message, undefined (confirmed) or its error.
   */
  async sendMany(messages: readonly OutgoingMessage[], timeoutMs: number): Promise<Array<BusError | undefined>> {
    const deadline = Date.now() + timeoutMs;
    const results: Array<BusError | undefined> = new Array(messages.length);
    let lane: ConfirmLane;
    try {
      this.assertNotBlocked();
      lane = await this.acquire(deadline);
    } catch (e) {
      const error = asBusError(e);
      return results.fill(error);
    }
    const pendings: Pending[] = [];
    // One promise for the lot (no per-message promise): resolves when every sent message has settled.
    let outstanding = 1;
    let allSettled!: () => void;
    const settledAll = new Promise<void>((resolve) => (allSettled = resolve));
    const settleOne = (): void => {
      if (--outstanding === 0) allSettled();
    };
    const sink: PendingSink = {
      settle: (index, error) => {
        results[index] = error;
        settleOne();
      },
    };
    let i = 0;
    for (; i < messages.length; i++) {
      if (!lane.writable) {
        try {
          await this.writable(lane, deadline, timeoutMs);
        } catch {
          break;
        }
      }
      if (!lane.open || this.blockedReason() !== undefined) break;
      outstanding++;
      const pending = new Pending(messages[i], sink, i);
      pendings.push(pending);
      this.transmit(lane, pending);
    }
    const blocked = this.blockedReason();
    for (let j = i; j < messages.length; j++) {
      results[j] =
        blocked !== undefined
          ? new BrokerBlockedError(`RabbitMQ blocks publishing (resource alarm: ${blocked}); message not sent`, blocked)
          : lane.open
            ? new PublishTimeoutError(
                `channel write buffer stayed full for ${timeoutMs} ms; message not sent`,
                timeoutMs,
              )
            : new BusUnavailableError('channel closed before the message was sent');
    }
    const timer = setTimeout(
      () => {
        for (const p of pendings) {
          if (p.settled) continue;
          this.forget(lane, p);
          p.settle(this.timeoutError(p.message, timeoutMs));
        }
      },
      Math.max(0, deadline - Date.now()),
    );
    settleOne();
    await settledAll;
    clearTimeout(timer);
    return results;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unlistenBlocked?.();
    const lane = this.lane;
    this.lane = undefined;
    if (lane?.open) await closeQuietly(lane.channel);
  }

  /** The broker's reason while it blocks the connection, when this sender fails fast on it. */
  private blockedReason(): string | undefined {
    return this.options.failWhenBlocked ? this.connection.blocked : undefined;
  }

  private assertNotBlocked(): void {
    const reason = this.blockedReason();
    if (reason !== undefined)
      throw new BrokerBlockedError(`RabbitMQ blocks publishing (resource alarm: ${reason}); message not sent`, reason);
  }

  /** The broker blocked the connection: what waits for a confirm would wait out its deadline. */
  private failUnconfirmed(reason: string): void {
    const lane = this.lane;
    if (!lane) return;
    for (const p of [...lane.unconfirmed]) {
      this.forget(lane, p);
      p.settle(
        new BrokerBlockedError(
          `RabbitMQ blocked publishing (resource alarm: ${reason}) before confirming ${p.message.type} ${p.message.properties.messageId}; outcome unknown`,
          reason,
          { maybeDelivered: true },
        ),
      );
    }
  }

  private timeoutError(message: OutgoingMessage, timeoutMs: number): PublishTimeoutError {
    return new PublishTimeoutError(
      `no confirm from RabbitMQ within ${timeoutMs} ms for ${message.type} ${message.properties.messageId}`,
      timeoutMs,
    );
  }

  private transmit(lane: ConfirmLane, pending: Pending): void {
    const m = pending.message;
    lane.unconfirmed.add(pending);
    if (m.properties.mandatory === true) {
      const list = lane.returnable.get(m.properties.messageId);
      if (list) list.push(pending);
      else lane.returnable.set(m.properties.messageId, [pending]);
    }
    try {
      const ok = lane.channel.publish(m.exchange, m.routingKey, m.content, m.properties, (err: unknown) =>
        this.onConfirm(lane, pending, err),
      );
      if (!ok) lane.writable = false;
      this.options.onSent?.(m);
    } catch (e) {
      this.forget(lane, pending);
      pending.settle(new BusUnavailableError(`could not send: ${errorMessage(e)}`, { cause: e }));
    }
  }

  private onConfirm(lane: ConfirmLane, pending: Pending, err: unknown): void {
    this.forget(lane, pending);
    const m = pending.message;
    if (err === null || err === undefined) {
      if (pending.returned) {
        pending.settle(
          new PublishUnroutableError(
            `no queue is bound to ${m.exchange}/${m.routingKey} (${pending.returned.code} ${pending.returned.text}); ${m.type} ${m.properties.messageId} was not stored`,
            m.exchange,
            m.routingKey,
            pending.returned.text,
          ),
        );
        return;
      }
      if (!pending.settled) this.options.onConfirmed?.(m);
      pending.settle(undefined);
      return;
    }
    // amqplib fails outstanding confirms with "channel closed" when the channel or connection goes.
    if (!lane.open || errorMessage(err) === 'channel closed') {
      pending.settle(
        new BusUnavailableError(
          `channel closed before RabbitMQ confirmed ${m.type} ${m.properties.messageId}; outcome unknown`,
          { cause: err, maybeDelivered: true },
        ),
      );
    } else {
      pending.settle(
        new PublishNackedError(
          `RabbitMQ refused ${m.type} ${m.properties.messageId} (basic.nack): queue full or internal error`,
          { cause: err },
        ),
      );
    }
  }

  private forget(lane: ConfirmLane, pending: Pending): void {
    lane.unconfirmed.delete(pending);
    if (pending.message.properties.mandatory !== true) return;
    const id = pending.message.properties.messageId;
    const list = lane.returnable.get(id);
    if (!list) return;
    const i = list.indexOf(pending);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) lane.returnable.delete(id);
  }

  private onReturn(lane: ConfirmLane, message: Message): void {
    const id = message.properties.messageId as string | undefined;
    const target = id ? lane.returnable.get(id)?.find((p) => !p.returned) : undefined;
    if (!target) return;
    const fields = message.fields as Message['fields'] & { replyCode?: number; replyText?: string };
    target.returned = { code: fields.replyCode ?? 312, text: fields.replyText ?? 'NO_ROUTE' };
  }

  private async acquire(deadline: number): Promise<ConfirmLane> {
    if (this.closed) throw new BusClosedError('publisher is closed');
    const lane = this.lane;
    if (lane?.open && this.connection.current()?.generation === lane.generation) return lane;
    const session = await this.connection.waitForSession(deadline - Date.now());
    if (this.lane?.open && this.lane.generation === session.generation) return this.lane;
    return withDeadline(
      this.openLane(session),
      deadline,
      () => new BusUnavailableError('could not open a confirm channel in time'),
    );
  }

  private openLane(session: ConnectionSession): Promise<ConfirmLane> {
    if (this.opening) return this.opening;
    this.opening = (async () => {
      const hwm = this.options.highWaterMark;
      const channel = await session.model.createConfirmChannel(hwm ? { highWaterMark: hwm } : undefined);
      const lane = new ConfirmLane(channel, session.generation);
      channel.on('error', () => undefined); // the 'close' that follows carries the consequence
      channel.on('close', () => {
        lane.open = false;
        if (this.lane === lane) this.lane = undefined;
      });
      channel.on('return', (message: Message) => this.onReturn(lane, message));
      channel.on('drain', () => (lane.writable = true));
      if (this.closed) {
        await closeQuietly(channel);
        throw new BusClosedError('publisher is closed');
      }
      this.lane = lane;
      return lane;
    })().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private writable(lane: ConfirmLane, deadline: number, timeoutMs: number): Promise<void> {
    if (lane.writable) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        lane.channel.off('drain', onDrain);
        lane.channel.off('close', onClose);
      };
      const onDrain = (): void => {
        done();
        resolve();
      };
      const onClose = (): void => {
        done();
        reject(new BusUnavailableError('channel closed while waiting for it to drain'));
      };
      const timer = setTimeout(
        () => {
          done();
          reject(new PublishTimeoutError(`channel write buffer stayed full for ${timeoutMs} ms`, timeoutMs));
        },
        Math.max(0, deadline - Date.now()),
      );
      lane.channel.on('drain', onDrain);
      lane.channel.on('close', onClose);
    });
  }
}

export function asBusError(e: unknown): BusError {
  return e instanceof BusError ? e : new BusUnavailableError(errorMessage(e), { cause: e });
}

function withDeadline<T>(promise: Promise<T>, deadline: number, error: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(error()), Math.max(0, deadline - Date.now()));
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(asBusError(e));
      },
    );
  });
}
