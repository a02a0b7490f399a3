import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { rabbitmqTapCheckFields, type CheckDefinition, type CheckInput } from '@fleetwatch/contracts';
import { createTargetPolicy, evaluateConditions } from '@fleetwatch/domain';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import type { SessionContext } from '../probe';
import { createTapProbe, PipelineTaps, quantile, timestampMs } from './rabbitmq-tap.probe';
import { asCheckResult, probeContext } from './probes.int-helpers';

jest.setTimeout(90_000);

// Against the shared local RabbitMQ in a vhost of this file's own: the application's
// exchange and its own queue are made here; the tap binds a private queue beside it. The
// test publishes payloads stamped with a known send time, so the latencies the tap reports
// can be checked against what was sent.

let vhost: IsolatedVhost;
let host: string;
let port: number;
let admin: ChannelModel;
let ch: Channel;
const EXCHANGE = 'orders';
const APP_QUEUE = 'orders-app';

type Input = Partial<Extract<CheckInput, { type: 'rabbitmq-tap' }>>;
let seq = 0;
function definition(fields: Input = {}): CheckDefinition {
  seq++;
  const spec = rabbitmqTapCheckFields.parse({
    name: `tap-${seq}`,
    type: 'rabbitmq-tap',
    host,
    port,
    vhost: vhost.vhost,
    username: new URL(vhost.amqpUrl).username || 'guest',
    passwordEnv: 'FLEETWATCH_SECRET_TAP',
    exchange: EXCHANGE,
    routingKey: 'order.*',
    timestampPath: '$.meta.sentAt',
    ...fields,
  });
  const now = new Date().toISOString();
  return {
    ...spec,
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    targetId: 'check:t',
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
}

const password = () => decodeURIComponent(new URL(vhost.amqpUrl).password || 'guest');
const sessionCtx = (): SessionContext => ({
  policy: createTargetPolicy([]),
  env: { FLEETWATCH_SECRET_TAP: password() },
  logger: { warn: () => undefined },
});
const runCtx = () => ({ ...probeContext({ timeoutMs: 10_000 }), env: { FLEETWATCH_SECRET_TAP: password() } });
const metric = (out: { metrics?: Array<{ name: string; value: number }> }, name: string) =>
  out.metrics?.find((m) => m.name === name)?.value;

beforeAll(async () => {
  vhost = await createIsolatedVhost('tap');
  const u = new URL(vhost.amqpUrl);
  host = u.hostname;
  port = Number(u.port || 5672);
  admin = await connect(vhost.amqpUrl);
  ch = await admin.createChannel();
  await ch.assertExchange(EXCHANGE, 'topic', { durable: false });
  await ch.assertQueue(APP_QUEUE, { durable: false });
  await ch.bindQueue(APP_QUEUE, EXCHANGE, 'order.#');
});
afterAll(async () => {
  await admin?.close().catch(() => undefined);
  await vhost?.dispose();
});

function publish(body: unknown, key = 'order.created'): void {
  ch.publish(EXCHANGE, key, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
}

describe('rabbitmq-tap against the local broker', () => {
  it('counts messages and reads end-to-end latency from the payload, without taking them from the app queue', async () => {
    const taps = new PipelineTaps();
    const check = definition();
    taps.assign([check], sessionCtx());
    const probe = createTapProbe(taps);
    await waitFor(async () => {
      const out = await probe(check as never, runCtx());
      return out.ok;
    });
    await ch.purgeQueue(APP_QUEUE);
    await probe(check as never, runCtx()); // a fresh window

    const now = Date.now();
    // Ages 100..1000 ms in ISO, epoch ms and epoch s forms.
    const ages = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000];
    ages.forEach((age, i) => {
      const at = now - age;
      const sentAt = i % 3 === 0 ? new Date(at).toISOString() : i % 3 === 1 ? at : at / 1000;
      publish({ id: i, meta: { sentAt } });
    });
    publish({ id: 'no stamp' });
    publish('not json', 'order.cancelled');
    publish({ meta: { sentAt: now } }, 'invoice.created'); // not bound: never seen

    let out!: Awaited<ReturnType<typeof probe>>;
    let seen = 0;
    const metrics: Array<{ name: string; value: number }> = [];
    await waitFor(async () => {
      out = await probe(check as never, runCtx());
      metrics.push(...(out.metrics ?? []));
      seen += metric(out, 'rabbitmq_tap_messages') ?? 0;
      return seen >= 12;
    });
    expect(seen).toBe(12);
    expect(out.ok).toBe(true);
    // The app's own queue still holds every message: the tap had copies.
    expect((await ch.checkQueue(APP_QUEUE)).messageCount).toBe(12);
    const sum = (n: string) => metrics.filter((m) => m.name === n).reduce((s, m) => s + m.value, 0);
    expect(sum('rabbitmq_tap_latency_samples')).toBe(10);
    expect(sum('rabbitmq_tap_unparsed')).toBe(2);
    // Latency = receive time − sent time: at least the age it was sent with, not hours off.
    const max = Math.max(...metrics.filter((m) => m.name === 'rabbitmq_tap_latency_max_ms').map((m) => m.value));
    expect(max).toBeGreaterThanOrEqual(1000);
    expect(max).toBeLessThan(1000 + 30_000);
    const p50s = metrics.filter((m) => m.name === 'rabbitmq_tap_latency_p50_ms').map((m) => m.value);
    expect(Math.min(...p50s)).toBeGreaterThanOrEqual(100);
    expect(metric(out, 'rabbitmq_tap_up')).toBe(1);
    expect(metric(out, 'rabbitmq_tap_messages_per_second')).toBeGreaterThanOrEqual(0);
    expect(asCheckResult({ ...out, ok: true, latencyMs: null }).success).toBe(true);
    const facts = { ok: true, latencyMs: null, ...out.facts };
    expect(evaluateConditions(['metric("rabbitmq_tap_up") == 1.0'], facts)).toEqual({ ok: true });

    // The window resets: a run with nothing published reports zero messages.
    const quiet = await probe(check as never, runCtx());
    expect(metric(quiet, 'rabbitmq_tap_messages')).toBe(0);
    expect(metric(quiet, 'rabbitmq_tap_latency_p50_ms')).toBeUndefined();

    // Unassigned (deleted or paused): the subscription and its private queue go.
    const [privateQueue] = taps.queueNames();
    expect(privateQueue).toMatch(/^amq\.gen-/);
    taps.assign([], sessionCtx());
    expect(taps.size).toBe(0);
    await taps.close();
    await waitFor(async () => {
      const c = await admin.createChannel();
      c.on('error', () => undefined);
      return c.checkQueue(privateQueue).then(
        () => c.close().then(() => false),
        (e: { code?: number }) => e.code === 404,
      );
    });
  });

  it('follows the assignment: an unchanged definition keeps its subscription, a changed one reopens, a paused one closes', async () => {
    const taps = new PipelineTaps();
    const check = definition();
    const probe = createTapProbe(taps);
    taps.assign([check], sessionCtx());
    await waitFor(async () => (await probe(check as never, runCtx())).ok);
    const [first] = taps.queueNames();
    taps.assign([{ ...check, description: 'only the text changed', version: 2 }], sessionCtx());
    expect(taps.queueNames()).toEqual([first]);
    const rebound = { ...check, routingKey: 'order.created', version: 3 };
    taps.assign([rebound], sessionCtx());
    await waitFor(async () => (await probe(rebound as never, runCtx())).ok);
    const [second] = taps.queueNames();
    expect(second).not.toBe(first);
    taps.assign(
      [{ ...rebound, paused: true }].filter((c) => !c.paused),
      sessionCtx(),
    );
    expect(taps.size).toBe(0);
    // The replaced and the unassigned taps are closed, and not held once closed (each change once kept one for ever).
    await waitFor(async () => taps.retiring === 0, { description: 'retired taps closed and forgotten' });
    await taps.close();
    const c = await admin.createChannel();
    c.on('error', () => undefined);
    await expect(c.checkQueue(second)).rejects.toMatchObject({ code: 404 });
  });

  it('a missing exchange is a failed run that names it, and is never declared', async () => {
    const taps = new PipelineTaps();
    const check = definition({ exchange: 'no-such-exchange' });
    const out = await createTapProbe(taps)(check as never, runCtx());
    expect(out.ok).toBe(false);
    expect(out.failureReason).toMatch(/exchange "no-such-exchange" does not exist/);
    expect(metric(out, 'rabbitmq_tap_up')).toBe(0);
    await taps.close();
    const probe = await admin.createChannel();
    probe.on('error', () => undefined);
    await expect(probe.checkExchange('no-such-exchange')).rejects.toThrow(/NOT_FOUND/);
  });

  it('reconnects after the connection is cut, and counts the reconnect', async () => {
    const proxy = new TcpProxy({ targetHost: host, targetPort: port });
    await proxy.start();
    try {
      const taps = new PipelineTaps();
      const check = definition({ host: '127.0.0.1', port: proxy.port });
      taps.assign([check], sessionCtx());
      const probe = createTapProbe(taps);
      let reconnects = 0;
      const run = async () => {
        const o = await probe(check as never, runCtx());
        reconnects += metric(o, 'rabbitmq_tap_reconnects') ?? 0;
        return o;
      };
      await waitFor(async () => (await run()).ok);
      proxy.pause();
      proxy.cut();
      const down = await waitFor(async () => {
        const o = await run();
        return o.ok ? undefined : o;
      });
      expect(down.failureReason).toMatch(/tap not consuming/);
      proxy.resume();
      const back = await waitFor(
        async () => {
          const o = await run();
          return o.ok ? o : undefined;
        },
        { timeoutMs: 45_000 },
      );
      expect(back.ok).toBe(true);
      expect(reconnects).toBe(1);
      publish({ meta: { sentAt: new Date().toISOString() } });
      await waitFor(async () => (metric(await probe(check as never, runCtx()), 'rabbitmq_tap_messages') ?? 0) >= 1);
      await taps.close();
    } finally {
      await proxy.stop();
    }
  });

  it('an operator deleting the private queue: the tap subscribes again on a new one', async () => {
    const taps = new PipelineTaps();
    const check = definition();
    taps.assign([check], sessionCtx());
    const probe = createTapProbe(taps);
    await waitFor(async () => (await probe(check as never, runCtx())).ok);
    const [first] = taps.queueNames();
    // Exclusive to the tap's connection: only the broker's own tools may delete it.
    await promisify(execFile)('rabbitmqctl', ['delete_queue', '-p', vhost.vhost, first], { timeout: 30_000 });
    const [second] = await waitFor(
      async () => {
        const names = taps.queueNames();
        return names.length === 1 && names[0] !== first ? names : undefined;
      },
      { timeoutMs: 45_000 },
    );
    expect(second).toMatch(/^amq\.gen-/);
    publish({ meta: { sentAt: Date.now() } });
    await waitFor(async () => (metric(await probe(check as never, runCtx()), 'rabbitmq_tap_messages') ?? 0) >= 1);
    await taps.close();
  });

  it('a denied address is never connected to', async () => {
    const taps = new PipelineTaps();
    const check = definition({ host: '127.0.0.2' });
    const out = await createTapProbe(taps)(check as never, {
      ...runCtx(),
      policy: createTargetPolicy(['127.0.0.2/32']),
    });
    expect(out.ok).toBe(false);
    expect(out.failureReason).toMatch(/denied network 127\.0\.0\.2\/32/);
    await taps.close();
  });
});

describe('tap arithmetic', () => {
  it.each([
    ['2026-01-01T00:00:00.000Z', 'auto', Date.UTC(2026, 0, 1)],
    [1_767_225_600, 'auto', 1_767_225_600_000],
    [1_767_225_600_000, 'auto', 1_767_225_600_000],
    ['1767225600000', 'auto', 1_767_225_600_000],
    [1_767_225_600, 's', 1_767_225_600_000],
    [1_767_225_600, 'ms', 1_767_225_600],
    [1_767_225_600, 'iso', NaN],
    ['yesterday', 'auto', NaN],
    [null, 'auto', NaN],
    [true, 'auto', NaN],
  ] as const)('timestamp %p (%s) → %p', (value, unit, expected) => {
    expect(timestampMs(value, unit)).toEqual(expected);
  });

  it('quantiles by nearest rank', () => {
    const s = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(quantile(s, 0.5)).toBe(5);
    expect(quantile(s, 0.95)).toBe(10);
    expect(quantile([], 0.5)).toBeNaN();
  });
});
