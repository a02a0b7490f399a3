import { randomUUID } from 'node:crypto';
import {
  buildEnvelope,
  deadLetterQueueOf,
  Messages,
  QueueName,
  RoutingKey,
  type Envelope,
} from '@fleetwatch/contracts';
import { createRedis, IngressControlStore } from '@fleetwatch/live-state';
import { createIsolatedVhost, TcpProxy, testEnv, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import { errorOf, IngestHarness, update, type HarnessServers, type HttpAnswer } from './int-spec.helpers';

// Redis cut away from two status-ingest replicas of one site (a TcpProxy between
// them and the shared server, which keeps running for everyone else):
// - rate limits fail open to each replica's own buckets, fast, counted on /metrics,
//   and those local buckets still refuse a burst beyond the budget;
// - a pause stored before the cut stays in force; a resume published during the cut
//   is applied by the replica that receives it and, once Redis is back, stored
//   there, so every replica ends on it;
// - with the proxy open again the replicas share their state again, without a restart.
//
// Both replicas run in this Jest process, so they share prom-client's registry:
// /metrics shows one series for both. Per-replica behaviour is checked through what
// each replica answers.

const REDIS_TIMEOUT_MS = 100;
const env = {
  INGEST_RATE_LIMIT_PER_SECOND: '1',
  INGEST_RATE_LIMIT_BURST: '20',
  INGEST_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
};

let vhost: IsolatedVhost;
let servers: HarnessServers;
let proxy: TcpProxy;
let a: IngestHarness;
let b: IngestHarness;
let redis: Redis;
let store: IngressControlStore;

beforeAll(async () => {
  vhost = await createIsolatedVhost('ingest-redis-outage');
  const redisPrefix = `${testEnv().redisPrefix}ingest-redis-outage-${randomUUID()}:`;
  servers = {
    vhost: { amqpUrl: vhost.amqpUrl, dispose: async () => undefined },
    databaseUrl: testEnv().databaseUrl,
    redisPrefix,
  };
  proxy = TcpProxy.forUrl(testEnv().redisUrl);
  await proxy.start();
  const replicaEnv = { ...env, REDIS_URL: proxy.rewriteUrl(testEnv().redisUrl) };
  [a, b] = await Promise.all([IngestHarness.start(servers, replicaEnv), IngestHarness.start(servers, replicaEnv)]);
  // The test's own view of Redis, straight to the server (not through the proxy).
  redis = createRedis({ url: testEnv().redisUrl, keyPrefix: redisPrefix });
  store = new IngressControlStore(redis, { keyPrefix: redisPrefix });
});

afterAll(async () => {
  proxy?.resume();
  await Promise.allSettled([a, b].filter(Boolean).map((h) => h.stop()));
  await proxy?.stop();
  if (redis) {
    const keys = await redis.keys(`${servers.redisPrefix}*`);
    if (keys.length) await redis.del(...keys.map((k) => k.slice((servers.redisPrefix ?? '').length)));
    redis.disconnect();
  }
  await vhost?.dispose();
});

/** Redis away: live connections dropped, new ones refused. */
function cutRedis(): void {
  proxy.pause();
  proxy.cut();
}

function restoreRedis(): void {
  proxy.resume();
}

const source = { site: 'test-site', service: 'sync-orchestrator' as const };
const pause = (occurredAt: string, payload: Record<string, unknown> = {}) =>
  buildEnvelope(Messages.IngressPause.type, 1, source, { reason: 'rolling sync', ...payload }, { occurredAt });
const resume = (occurredAt: string, payload: Record<string, unknown> = {}) =>
  buildEnvelope(Messages.IngressResume.type, 1, source, { reason: 'done', ...payload }, { occurredAt });
const send = (envelope: Envelope) =>
  a.publishCommand(
    envelope.type === Messages.IngressPause.type ? RoutingKey.IngressPause : RoutingKey.IngressResume,
    envelope,
  );

/** One update, by default with a key of its own (so polling never runs into the rate limit). */
async function post(h: IngestHarness, body: unknown = update(`o-${randomUUID()}`), k?: string): Promise<HttpAnswer> {
  return h.post(body, { key: k ?? (await a.createKey(['ingest'])).key });
}
const batch = (n: number) => ({ updates: Array.from({ length: n }, (_, i) => update(`burst-${randomUUID()}-${i}`)) });

/** A sample of /metrics: `name{labels}` → value. */
async function metrics(h: IngestHarness): Promise<Map<string, number>> {
  const res = await h.request('GET', '/metrics');
  expect(res.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of res.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const FALLBACK_RATE = 'fleetwatch_ingest_shared_state_fallback_total{part="rate_limit"}';
const FALLBACK_INGRESS = 'fleetwatch_ingest_shared_state_fallback_total{part="ingress"}';
const UP = 'fleetwatch_ingest_shared_state_up';

async function queueDepth(queue: string): Promise<number> {
  const ch = await a.amqp.createChannel();
  ch.on('error', () => undefined);
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await ch.close().catch(() => undefined);
  }
}

function expectPaused(res: HttpAnswer): void {
  expect(res.status).toBe(503);
  expect(errorOf(res).message).toMatch(/paused \(rolling sync\)/);
}

/** Until both replicas limit through Redis again: a key's burst spent on one is refused on the other. */
async function sharedLimitsAgain(): Promise<void> {
  await waitFor(
    async () => {
      const k = await a.createKey(['ingest']);
      if ((await post(a, batch(20), k.key)).status !== 202) return false;
      const onB = await post(b, update('one-more'), k.key);
      return onB.status === 429;
    },
    { timeoutMs: 30_000, intervalMs: 250, description: 'a burst spent on replica a to be refused on replica b' },
  );
}

describe('status-ingest with Redis cut away', () => {
  it('rate limits fail open to each replica`s own buckets, fast, and the local buckets still refuse a burst', async () => {
    const pusher = await a.createKey(['ingest']);
    // Up before the cut. Waited for, not read once: with INGEST_REDIS_TIMEOUT_MS at 100 ms a
    // refresh on a loaded box can time out and read 0 until the next one (a second later).
    await waitFor(async () => (await metrics(a)).get(UP) === 1, {
      timeoutMs: 15_000,
      description: 'fleetwatch_ingest_shared_state_up to be 1 before the cut',
    });
    const before = await metrics(a);
    cutRedis();

    // Pushes are still taken, without waiting on Redis (each replica falls back at once
    // while disconnected; a call in flight gives up after INGEST_REDIS_TIMEOUT_MS). The
    // bound is loose for a loaded 2-core box; a push stuck behind Redis reconnects
    // (up to 3 s apart) or a hung call would be far above it.
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++)
      for (const h of [a, b]) {
        const started = performance.now();
        const res = await post(h, update(`o-${i}`), pusher.key);
        latencies.push(performance.now() - started);
        expect(res.status).toBe(202);
      }
    expect(Math.max(...latencies)).toBeLessThan(2000);

    const during = await metrics(a);
    expect(during.get(FALLBACK_RATE) ?? 0).toBeGreaterThanOrEqual((before.get(FALLBACK_RATE) ?? 0) + 20);
    expect(during.get(UP)).toBe(0);

    // Each replica's own bucket holds the budget (20, 1/s): a key's burst is taken, what
    // goes beyond it is refused — on that replica; the other has a budget of its own.
    const own = await a.createKey(['ingest']);
    expect((await post(a, batch(20), own.key)).status).toBe(202);
    const refused = await post(a, batch(10), own.key);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(errorOf(refused).message).toMatch(/rate limit of 1 updates\/s \(burst 20\)/);
    expect((await post(b, batch(20), own.key)).status).toBe(202);
    expect((await post(b, batch(10), own.key)).status).toBe(429);

    restoreRedis();
    await sharedLimitsAgain();
    await waitFor(async () => (await metrics(a)).get(UP) === 1, {
      timeoutMs: 15_000,
      description: 'fleetwatch_ingest_shared_state_up to be 1 again',
    });
  });

  it('a pause stored before the cut holds; a resume sent during the cut is applied, then stored when Redis is back', async () => {
    const t0 = Date.now() - 60_000;
    const iso = (ms: number) => new Date(t0 + ms).toISOString();
    const dlq = deadLetterQueueOf(QueueName.StatusIngestCommands);
    const deadBefore = await queueDepth(dlq);

    const paused = pause(iso(1000), { operationId: 'op-outage' });
    await send(paused);
    for (const h of [a, b])
      await waitFor(async () => (await post(h)).status === 503, {
        timeoutMs: 10_000,
        intervalMs: 200,
        description: 'both to pause',
      });
    expect(await store.read()).toMatchObject({ paused: true, commandId: paused.id });

    const before = await metrics(a);
    cutRedis();
    // Past several failed re-reads (every second): still paused, counted as decisions without Redis.
    await waitFor(
      async () => ((await metrics(a)).get(FALLBACK_INGRESS) ?? 0) >= (before.get(FALLBACK_INGRESS) ?? 0) + 3,
      {
        timeoutMs: 20_000,
        description: 'ingress re-reads to fail while Redis is cut',
      },
    );
    expectPaused(await post(a));
    expectPaused(await post(b));
    expect((await metrics(a)).get(UP)).toBe(0);

    // A newer resume, published while Redis is away: the replica that receives it opens.
    const resumed = resume(iso(2000), { operationId: 'op-outage' });
    await send(resumed);
    const opened = await waitFor(
      async () => {
        for (const [name, h] of [
          ['a', a],
          ['b', b],
        ] as const)
          if ((await post(h)).status === 202) return name;
        return null;
      },
      { timeoutMs: 15_000, intervalMs: 200, description: 'the replica receiving the resume to open' },
    );
    expect(['a', 'b']).toContain(opened);
    // The other replica cannot hear of it until Redis is back: it keeps the pause it knew.
    expectPaused(await post(opened === 'a' ? b : a));

    // Keep Redis away well past the command's delivery limit worth of failed attempts
    // (5 × INGEST_REDIS_TIMEOUT_MS): an outage of seconds, not a blip.
    await new Promise((r) => setTimeout(r, 5000));
    expect((await post(opened === 'a' ? a : b)).status).toBe(202);
    expectPaused(await post(opened === 'a' ? b : a));
    expect(await store.read()).toMatchObject({ paused: true, commandId: paused.id }); // not reachable: not stored
    // The command waits for Redis rather than running out of deliveries into the dead-letter queue.
    expect(await queueDepth(dlq)).toBe(deadBefore);

    restoreRedis();
    // Stored in Redis once it is back, and every replica ends open.
    await waitFor(async () => (await store.read())?.commandId === resumed.id, {
      timeoutMs: 30_000,
      intervalMs: 200,
      description: 'the resume sent during the cut to be stored in Redis',
    });
    expect(await store.read()).toMatchObject({ paused: false, operationId: 'op-outage' });
    for (const h of [a, b])
      await waitFor(async () => (await post(h)).status === 202, {
        timeoutMs: 15_000,
        intervalMs: 200,
        description: 'both to be open',
      });
    expect(await queueDepth(dlq)).toBe(deadBefore);
    await waitFor(async () => (await queueDepth(QueueName.StatusIngestCommands)) === 0, {
      timeoutMs: 10_000,
      description: 'the command to be acked',
    });

    // Back on shared state without a restart: a new pause reaches both through Redis.
    await waitFor(async () => (await metrics(a)).get(UP) === 1, { timeoutMs: 15_000, description: 'shared state up' });
    await send(pause(iso(3000)));
    for (const h of [a, b])
      await waitFor(async () => (await post(h)).status === 503, {
        timeoutMs: 10_000,
        intervalMs: 200,
        description: 'both to pause',
      });
    await send(resume(iso(4000)));
    for (const h of [a, b])
      await waitFor(async () => (await post(h)).status === 202, {
        timeoutMs: 10_000,
        intervalMs: 200,
        description: 'both to resume',
      });
    await sharedLimitsAgain();
  });
});
