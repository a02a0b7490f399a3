import { EventEmitter } from 'node:events';
import { connect, type ChannelModel } from 'amqplib';
import { backoffDelay, type BackoffOptions } from './backoff';
import { closeQuietly } from './close-quietly';
import { batchFrameWrites } from './frame-batching';
import { BusClosedError, BusUnavailableError, errorMessage } from './errors';
import { redactUrl, stderrBusLogger, type BusLogger } from './logger';
import { BusMetrics } from './metrics';

/** The frame-batching warning is logged once per process, not per reconnect. */
let frameBatchingWarned = false;

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface BusConnectionOptions {
  /** `amqp://user:pass@host:5672/vhost`. */
  url: string;
  /** Shown in `rabbitmqctl list_connections client_properties` and the metrics label (`aggregator`). */
  name?: string;
  /** AMQP heartbeat; a silent peer is declared dead after about two of these. Default 5. */
  heartbeatSeconds?: number;
  /** TCP connect + AMQP handshake limit per attempt. Default 5000. */
  connectTimeoutMs?: number;
  /** Reconnect delays: exponential with jitter, capped. */
  backoff?: Partial<BackoffOptions>;
  logger?: BusLogger;
}

/** One open AMQP connection. `generation` grows with every reconnect. */
export interface ConnectionSession {
  readonly model: ChannelModel;
  readonly generation: number;
}

/**
 * Work that must happen on every (re)connect before the connection counts as
 * usable: declaring topology, opening the publisher's confirm channel,
 * resubscribing consumers. Runs in ascending `order`.
 */
export interface ConnectionSetup {
  readonly name: string;
  readonly order: number;
  run(session: ConnectionSession): Promise<void>;
}

export const SetupOrder = { Topology: 0, Publisher: 10, Consumer: 20 } as const;

/**
 * One AMQP connection of the process (each service has two: one to publish,
 * one to consume, so a broker alarm that blocks publishers never stalls acks;
 * see BusConnections). Connects in the background, reconnects
 * with capped exponential backoff and jitter, re-runs every registered setup
 * after each reconnect, and reports its state (events `state`, `connected`,
 * `disconnected`; `isConnected()` for /readyz).
 */
export class BusConnection extends EventEmitter {
  readonly name: string;
  private readonly logger: BusLogger;
  private readonly setups: ConnectionSetup[] = [];
  private stateValue: ConnectionState = 'idle';
  private session: ConnectionSession | undefined;
  private generationCounter = 0;
  private closing = false;
  private loopDone: Promise<void> | undefined;
  private wakeSleep: (() => void) | undefined;
  private lastErrorValue: Error | undefined;
  private blockedReason: string | undefined;

  constructor(private readonly options: BusConnectionOptions) {
    super();
    this.name = options.name ?? 'fleetwatch';
    this.logger = options.logger ?? stderrBusLogger;
    this.setMaxListeners(0);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Open, topology declared, setups done: safe to publish and consume. */
  isConnected(): boolean {
    return this.stateValue === 'connected';
  }

  /**
   * The broker blocked this connection for a resource alarm (memory/disk,
   * `connection.blocked`): what it publishes stalls until the alarm clears.
   * Events `blocked` (reason) and `unblocked` follow it.
   */
  get blocked(): string | undefined {
    return this.blockedReason;
  }

  /** Typed subscription to `connection.blocked` / `unblocked`; returns the unsubscribe function. */
  onBlocked(listener: (reason: string | undefined) => void): () => void {
    const onBlocked = (reason: string): void => listener(reason);
    const onUnblocked = (): void => listener(undefined);
    this.on('blocked', onBlocked);
    this.on('unblocked', onUnblocked);
    return () => {
      this.off('blocked', onBlocked);
      this.off('unblocked', onUnblocked);
    };
  }

  get lastError(): Error | undefined {
    return this.lastErrorValue;
  }

  /** Typed subscription to state changes; returns the unsubscribe function. */
  onState(listener: (state: ConnectionState) => void): () => void {
    this.on('state', listener);
    return () => this.off('state', listener);
  }

  /** The live session, or undefined while (re)connecting. */
  current(): ConnectionSession | undefined {
    return this.stateValue === 'connected' ? this.session : undefined;
  }

  /** Starts connecting in the background (idempotent). */
  start(): this {
    if (this.loopDone || this.closing) return this;
    this.loopDone = this.loop();
    return this;
  }

  /**
   * Adds work to run on every (re)connect; if already connected it runs now,
   * and a failure forces a reconnect (so it is retried with backoff).
   * Returns a function that removes it.
   */
  addSetup(setup: ConnectionSetup): () => void {
    this.setups.push(setup);
    this.setups.sort((a, b) => a.order - b.order);
    const session = this.current();
    if (session) {
      setup.run(session).catch((e: unknown) => this.failSession(session, setup, e));
    }
    return () => {
      const i = this.setups.indexOf(setup);
      if (i >= 0) this.setups.splice(i, 1);
    };
  }

  /**
   * Resolves with the live session, waiting up to `timeoutMs` for a (re)connect;
   * rejects with BusUnavailableError after that, BusClosedError once closed.
   */
  async waitForSession(timeoutMs: number): Promise<ConnectionSession> {
    const now = this.current();
    if (now) return now;
    if (this.closing || this.stateValue === 'closed') throw new BusClosedError('bus connection is closed');
    this.start();
    return new Promise<ConnectionSession>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.off('connected', onConnected);
        this.off('state', onState);
      };
      const onConnected = (): void => {
        const s = this.current();
        if (!s) return;
        done();
        resolve(s);
      };
      const onState = (state: ConnectionState): void => {
        if (state !== 'closed') return;
        done();
        reject(new BusClosedError('bus connection is closed'));
      };
      const timer = setTimeout(
        () => {
          done();
          const why = this.lastErrorValue ? `: ${redactUrl(this.lastErrorValue.message)}` : '';
          reject(
            new BusUnavailableError(`RabbitMQ not reachable within ${timeoutMs} ms (state ${this.stateValue})${why}`, {
              cause: this.lastErrorValue,
            }),
          );
        },
        Math.max(0, timeoutMs),
      );
      this.on('connected', onConnected);
      this.on('state', onState);
    });
  }

  /** Closes the connection and stops reconnecting. Stop consumers first for a graceful drain. */
  async close(): Promise<void> {
    if (this.closing) return this.loopDone;
    this.closing = true;
    this.wakeSleep?.();
    const model = this.session?.model;
    if (model) await closeQuietly(model);
    if (this.loopDone) await this.loopDone;
    this.setState('closed');
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    while (!this.closing) {
      this.setState('connecting');
      let lost: Error | undefined;
      try {
        const session = await this.open();
        attempt = 0;
        // close() may have come while we were connecting or running setups.
        if (this.closing) void closeQuietly(session.model);
        lost = await session.closed;
      } catch (e) {
        lost = e instanceof Error ? e : new Error(String(e));
      }
      this.session = undefined;
      // A new connection starts unblocked; the broker says so again if the alarm persists.
      if (this.blockedReason !== undefined) {
        this.blockedReason = undefined;
        BusMetrics.get().setBlocked(this.name, false);
        this.emit('unblocked');
      }
      if (this.closing) break;
      if (lost) this.lastErrorValue = lost;
      this.setState('disconnected');
      this.emit('disconnected', lost);
      attempt++;
      const delay = backoffDelay(attempt, this.options.backoff);
      this.logger.warn(
        { connection: this.name, attempt, delayMs: delay, error: lost ? redactUrl(lost.message) : undefined },
        `RabbitMQ connection unavailable; reconnecting in ${delay} ms`,
      );
      await this.sleep(delay);
    }
    this.setState('closed');
  }

  /** Connects, runs every setup, and returns a promise of the connection's end. */
  private async open(): Promise<{ model: ChannelModel; closed: Promise<Error | undefined> }> {
    const model = await connect(this.urlWithHeartbeat(), {
      timeout: this.options.connectTimeoutMs ?? 5_000,
      noDelay: true,
      clientProperties: { connection_name: this.name },
    });
    // One writev per multiplexer turn instead of one write per frame (see frame-batching.ts).
    if (!batchFrameWrites(model) && !frameBatchingWarned) {
      frameBatchingWarned = true;
      this.logger.warn(
        { connection: this.name },
        "amqplib's connection internals changed: frames are written one by one (slower, still correct)",
      );
    }
    const generation = ++this.generationCounter;
    const session: ConnectionSession = { model, generation };
    const closed = new Promise<Error | undefined>((resolve) => {
      model.once('close', (err?: Error) =>
        resolve(err ?? (this.closing ? undefined : (this.lastErrorValue ?? new Error('connection closed')))),
      );
    });
    model.on('error', (err: Error) => {
      this.lastErrorValue = err;
      this.logger.warn(
        { connection: this.name, generation, error: redactUrl(err.message) },
        'RabbitMQ connection error',
      );
    });
    model.on('blocked', (reason: string) => {
      this.blockedReason = reason || 'blocked';
      this.logger.warn({ connection: this.name, reason }, 'RabbitMQ blocked publishing (resource alarm)');
      BusMetrics.get().setBlocked(this.name, true);
      this.emit('blocked', this.blockedReason);
    });
    model.on('unblocked', () => {
      this.blockedReason = undefined;
      this.logger.info({ connection: this.name }, 'RabbitMQ unblocked publishing');
      BusMetrics.get().setBlocked(this.name, false);
      this.emit('unblocked');
    });
    this.session = session;
    if (this.closing) {
      await closeQuietly(model);
      return { model, closed };
    }
    // Setups added while these run (a consumer registered during the connect) run too, in order.
    const ran = new Set<ConnectionSetup>();
    for (let setup = this.setups.find((x) => !ran.has(x)); setup; setup = this.setups.find((x) => !ran.has(x))) {
      ran.add(setup);
      try {
        await setup.run(session);
      } catch (e) {
        this.failSession(session, setup, e);
        await Promise.race([closed, new Promise((r) => setTimeout(r, 3_000))]);
        throw this.lastErrorValue ?? e;
      }
    }
    this.lastErrorValue = undefined;
    this.setState('connected');
    this.emit('connected', session);
    this.logger.info({ connection: this.name, generation }, 'RabbitMQ connected');
    return { model, closed };
  }

  private failSession(session: ConnectionSession, setup: ConnectionSetup, e: unknown): void {
    const message = redactUrl(errorMessage(e));
    this.lastErrorValue = e instanceof Error ? e : new Error(message);
    this.logger.error(
      { connection: this.name, setup: setup.name, error: message },
      `bus setup "${setup.name}" failed; reconnecting`,
    );
    void closeQuietly(session.model);
  }

  private urlWithHeartbeat(): string {
    const heartbeat = this.options.heartbeatSeconds ?? 5;
    try {
      const url = new URL(this.options.url);
      if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(heartbeat));
      return url.toString();
    } catch {
      return this.options.url;
    }
  }

  private setState(state: ConnectionState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    BusMetrics.get().setConnected(this.name, state === 'connected');
    this.emit('state', state);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleep = done;
    }).then(() => {
      this.wakeSleep = undefined;
    });
  }
}
