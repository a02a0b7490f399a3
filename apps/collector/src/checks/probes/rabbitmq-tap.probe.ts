import type { CheckDefinition, CheckSpec } from '@fleetwatch/contracts';
import { jsonPathGet } from '@fleetwatch/domain';
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { failureReasonOf, resolveAllowed } from '../net';
import type { Probe, ProbeOutcome, ProbeSessions, SessionContext } from '../probe';
import { amqpConnectArgs, deadlineSignal } from './connect-target';
import { MetricBag, redactSecrets } from './service-metrics';

// rabbitmq-tap (issue 16): a pipeline tap. While a check is assigned, the collector holds
// one AMQP connection for it with a private queue — server-named, exclusive, auto-delete,
// length-limited — bound to the application's exchange with the check's routing key, and
// consumes it with manual acks. It never consumes from (or declares) the application's own
// queues or exchange: the exchange is only checked passively, and what the tap receives is
// a copy the broker routes to it besides the application's queues. The broker deletes the
// private queue when the connection goes.
//
// The session (PipelineTaps, told the assignment by ChecksService) owns the subscription:
// opened when the check is assigned, closed when it is deleted, paused or moves away,
// reopened when its connection fields change, reconnected with backoff after a failure
// (the target policy is checked on every connect). A run of the check reads the window
// since the last run and resets it: messages per second, and end-to-end latency from the
// timestamp at `timestampPath` in each JSON payload (ISO 8601, epoch ms or s) — p50, p95
// and max in milliseconds over the window.

type TapCheck = Extract<CheckSpec, { type: 'rabbitmq-tap' }>;

/** Latencies kept per window for percentiles (a uniform sample beyond it: Algorithm R). */
export const TAP_RESERVOIR = 10_000;
/** Payloads larger than this are counted but not parsed for a timestamp. */
const MAX_PARSE_BYTES = 1024 * 1024;
const BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

/** A payload timestamp as epoch ms, or NaN. `auto`: numbers below 1e11 are seconds, strings ISO 8601. */
export function timestampMs(value: unknown, unit: TapCheck['timestampUnit']): number {
  if (typeof value === 'string') {
    if (unit !== 'iso' && /^-?\d+(\.\d+)?$/.test(value.trim())) return timestampMs(Number(value), unit);
    if (unit === 'ms' || unit === 's') return NaN;
    return Date.parse(value);
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || unit === 'iso') return NaN;
  if (unit === 's' || (unit === 'auto' && Math.abs(value) < 1e11)) return value * 1000;
  return value;
}

/** The q-quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** What a tap saw between two runs. */
export class TapWindow {
  messages = 0;
  unparsed = 0;
  latencySeen = 0;
  maxLatencyMs = -Infinity;
  readonly latencies: number[] = [];
  reconnects = 0;
  constructor(readonly since = Date.now()) {}

  addLatency(ms: number): void {
    this.latencySeen++;
    if (ms > this.maxLatencyMs) this.maxLatencyMs = ms;
    if (this.latencies.length < TAP_RESERVOIR) this.latencies.push(ms);
    else {
      const j = Math.floor(Math.random() * this.latencySeen);
      if (j < TAP_RESERVOIR) this.latencies[j] = ms;
    }
  }
}

type TapState = 'connecting' | 'consuming' | 'down' | 'closed';

/** One check's subscription: connects, consumes, reconnects until closed. */
export class Tap {
  state: TapState = 'connecting';
  lastError: string | undefined;
  /** The private queue's name while subscribed (server-named `amq.gen-…`). */
  queue: string | undefined;
  private window = new TapWindow();
  private model: ChannelModel | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private readonly own = new AbortController();
  private readonly password: string | undefined;
  /** Resolves when the first attempt to subscribe has ended (consuming or failed). */
  readonly firstAttempt: Promise<void>;

  constructor(
    readonly check: TapCheck,
    private readonly ctx: SessionContext,
  ) {
    this.password = check.passwordEnv ? ctx.env[check.passwordEnv] : check.username === 'guest' ? 'guest' : '';
    this.firstAttempt = this.attempt();
  }

  /** The window since the last read, and a new one from now. */
  take(): TapWindow {
    const w = this.window;
    this.window = new TapWindow();
    return w;
  }

  async close(): Promise<void> {
    this.state = 'closed';
    clearTimeout(this.timer);
    const model = this.model;
    this.model = undefined;
    if (model) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([model.close().catch(() => undefined), new Promise<void>((r) => (t = setTimeout(r, 1000)))]);
      clearTimeout(t);
    }
    this.own.abort();
  }

  private async attempt(): Promise<void> {
    if (this.state === 'closed') return;
    const { check, ctx } = this;
    this.state = this.window.reconnects > 0 || this.failures > 0 ? 'down' : 'connecting';
    try {
      if (check.passwordEnv && this.password === undefined)
        throw new Error(`environment variable ${check.passwordEnv} (passwordEnv) is not set on this collector`);
      const signal = AbortSignal.any([this.own.signal, deadlineSignal(15_000)]);
      const { address } = await resolveAllowed(check.host, ctx.policy, { signal, resolver: ctx.dnsServers });
      // The socket lives as long as the tap: only closing the tap ends it (not the connect timeout).
      const model = await connect(
        ...amqpConnectArgs(check, address, this.password ?? '', {
          signal: this.own.signal,
          heartbeat: 30,
          connectionName: `fleetwatch-tap ${check.name}`.slice(0, 200),
          timeout: 15_000,
        }),
      );
      // Closed while connecting: this connection is not wanted any more.
      if ((this.state as TapState) === 'closed') {
        await model.close().catch(() => undefined);
        return;
      }
      this.model = model;
      model.on('error', (err: Error) => (this.lastError = this.reason(err)));
      model.on('close', () => this.lost(model));
      const channel = await model.createChannel();
      channel.on('error', (err: Error) => (this.lastError = this.reason(err)));
      // A channel closed by the broker (exchange deleted, queue gone) ends the connection: reconnect.
      channel.on('close', () => void model.close().catch(() => undefined));
      await this.subscribe(channel, model);
      this.state = 'consuming';
      this.lastError = undefined;
      this.failures = 0;
    } catch (err) {
      this.lastError = this.reason(err);
      const model = this.model;
      this.model = undefined;
      if (model) await model.close().catch(() => undefined);
      this.retryLater();
    }
  }

  private async subscribe(channel: Channel, model: ChannelModel): Promise<void> {
    const { check } = this;
    try {
      await channel.checkExchange(check.exchange);
    } catch (err) {
      if ((err as { code?: unknown }).code === 404)
        throw new Error(`exchange "${check.exchange}" does not exist in vhost "${check.vhost}"`);
      throw err;
    }
    await channel.prefetch(check.prefetch);
    const q = await channel.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
      arguments: { 'x-max-length': check.maxQueueLength },
    });
    this.queue = q.queue;
    await channel.bindQueue(q.queue, check.exchange, check.routingKey);
    await channel.consume(
      q.queue,
      (msg) => {
        if (msg) this.received(channel, msg);
        else {
          // Cancelled by the broker (the private queue deleted by an operator): subscribe again on a new connection.
          this.lastError = 'the broker cancelled the tap (its private queue was deleted)';
          void model.close().catch(() => undefined);
        }
      },
      { noAck: false, exclusive: true },
    );
  }

  private received(channel: Channel, msg: ConsumeMessage): void {
    const w = this.window;
    w.messages++;
    const path = this.check.timestampPath;
    if (path !== undefined) {
      const at = msg.content.length <= MAX_PARSE_BYTES ? this.timestampOf(msg.content, path) : NaN;
      if (Number.isFinite(at)) w.addLatency(Date.now() - at);
      else w.unparsed++;
    }
    channel.ack(msg);
  }

  private timestampOf(content: Buffer, path: string): number {
    let body: unknown;
    try {
      body = JSON.parse(content.toString('utf8'));
    } catch {
      return NaN;
    }
    const got = jsonPathGet(body, path);
    return got.found ? timestampMs(got.value, this.check.timestampUnit) : NaN;
  }

  private lost(model: ChannelModel): void {
    if (this.model !== model || this.state === 'closed') return;
    this.model = undefined;
    this.state = 'down';
    this.lastError ??= 'the connection to the broker closed';
    this.window.reconnects++;
    this.retryLater();
  }

  private retryLater(): void {
    if (this.state === 'closed') return;
    this.state = 'down';
    const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
    this.failures++;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.attempt(), delay);
    this.timer.unref();
  }

  private reason(err: unknown): string {
    return redactSecrets(failureReasonOf(err, { signal: this.own.signal, timeoutMs: 15_000 }), this.password);
  }
}

/** What makes two definitions the same subscription (a change of any of these reopens it). */
function subscriptionKey(c: TapCheck): string {
  return JSON.stringify([
    c.host,
    c.port,
    c.vhost,
    c.username,
    c.passwordEnv ?? null,
    c.tls,
    c.exchange,
    c.routingKey,
    c.timestampPath ?? null,
    c.timestampUnit,
    c.prefetch,
    c.maxQueueLength,
  ]);
}

function idOf(check: TapCheck): string {
  return (check as Partial<CheckDefinition>).id ?? `name:${check.name}`;
}

/** The collector's taps, one per assigned rabbitmq-tap check. */
export class PipelineTaps implements ProbeSessions {
  private readonly taps = new Map<string, { key: string; tap: Tap }>();
  /** Taps being closed, each until its close has ended (kept until shutdown, one was held per change for ever). */
  private readonly closing = new Set<Promise<void>>();

  get size(): number {
    return this.taps.size;
  }

  /** Taps replaced or unassigned whose close has not ended yet. */
  get retiring(): number {
    return this.closing.size;
  }

  assign(checks: readonly CheckDefinition[], ctx: SessionContext): void {
    const wanted = new Map<string, TapCheck>();
    for (const c of checks) if (c.type === 'rabbitmq-tap') wanted.set(c.id, c);
    for (const [id, held] of this.taps) {
      const next = wanted.get(id);
      if (!next || subscriptionKey(next) !== held.key) {
        this.taps.delete(id);
        this.retire(held.tap);
      }
    }
    for (const [id, check] of wanted) if (!this.taps.has(id)) this.open(id, check, ctx);
  }

  /** The tap of `check`, opened now when it has none (a run before any assignment). */
  tapFor(check: TapCheck, ctx: SessionContext): { tap: Tap; opened: boolean } {
    const id = idOf(check);
    const held = this.taps.get(id);
    if (held && held.key === subscriptionKey(check)) return { tap: held.tap, opened: false };
    if (held) this.retire(held.tap);
    return { tap: this.open(id, check, ctx), opened: true };
  }

  /** Private queues subscribed now (tests, diagnostics). */
  queueNames(): string[] {
    return [...this.taps.values()].flatMap((h) => (h.tap.queue && h.tap.state === 'consuming' ? [h.tap.queue] : []));
  }

  async close(): Promise<void> {
    const all = [...this.taps.values()].map((h) => h.tap.close());
    this.taps.clear();
    await Promise.all([...all, ...this.closing]);
  }

  private retire(tap: Tap): void {
    const closed = tap.close().catch(() => undefined);
    this.closing.add(closed);
    void closed.then(() => this.closing.delete(closed));
  }

  private open(id: string, check: TapCheck, ctx: SessionContext): Tap {
    const tap = new Tap(check, ctx);
    this.taps.set(id, { key: subscriptionKey(check), tap });
    return tap;
  }
}

/** The window as the result's figures. */
export function windowMetrics(w: TapWindow, consuming: boolean, now = Date.now()): MetricBag {
  const bag = new MetricBag();
  const seconds = Math.max(0.001, (now - w.since) / 1000);
  bag.add('rabbitmq_tap_up', consuming ? 1 : 0);
  bag.add('rabbitmq_tap_window_seconds', Math.round(seconds * 1000) / 1000);
  bag.add('rabbitmq_tap_messages', w.messages);
  bag.add('rabbitmq_tap_messages_per_second', Math.round((w.messages / seconds) * 1000) / 1000);
  bag.add('rabbitmq_tap_reconnects', w.reconnects);
  bag.add('rabbitmq_tap_unparsed', w.unparsed);
  bag.add('rabbitmq_tap_latency_samples', w.latencySeen);
  if (w.latencies.length > 0) {
    const sorted = [...w.latencies].sort((a, b) => a - b);
    bag.add('rabbitmq_tap_latency_p50_ms', quantile(sorted, 0.5));
    bag.add('rabbitmq_tap_latency_p95_ms', quantile(sorted, 0.95));
    bag.add('rabbitmq_tap_latency_max_ms', w.maxLatencyMs);
  }
  return bag;
}

/**
 * The tap's run: waits for a tap opened by this very run to try once (bounded by the run's
 * signal), then reads and resets the window. UP while the subscription consumes.
 */
export function createTapProbe(taps: PipelineTaps): Probe<'rabbitmq-tap'> {
  return async (check, ctx): Promise<ProbeOutcome> => {
    const { tap, opened } = taps.tapFor(check, { ...ctx, logger: { warn: () => undefined } });
    if (opened || tap.state === 'connecting')
      await Promise.race([
        tap.firstAttempt,
        new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true })),
      ]);
    const consuming = tap.state === 'consuming';
    const w = tap.take();
    const bag = windowMetrics(w, consuming);
    const result: Record<string, unknown> = {
      messages: w.messages,
      windowSeconds: (Date.now() - w.since) / 1000,
      firstWindow: opened,
    };
    const outcome: ProbeOutcome = {
      ok: consuming,
      latencyMs: null,
      facts: { result, metrics: bag.samples() },
      metrics: bag.toArray(),
    };
    if (!consuming) outcome.failureReason = `tap not consuming: ${tap.lastError ?? 'connecting'}`;
    return outcome;
  };
}

/** The collector's one set of taps (registry.ts hands it to ChecksService as its probe sessions). */
export const pipelineTaps = new PipelineTaps();
