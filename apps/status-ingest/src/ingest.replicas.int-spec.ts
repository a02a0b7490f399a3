import { randomUUID } from 'node:crypto';
import { buildEnvelope, Messages, QueueName, RoutingKey, type Envelope } from '@fleetwatch/contracts';
import { createRedis, IngressControlStore } from '@fleetwatch/live-state';
import { generatePingToken, hashPingToken, PushMonitorsRepository, runInTransaction } from '@fleetwatch/persistence';
import { createIsolatedVhost, testEnv, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import { errorOf, IngestHarness, update, type HarnessServers, type HttpAnswer } from './int-spec.helpers';

// Two status-ingest replicas of one site (two real services on one vhost, one
// database and one Redis prefix): an ingress pause reaches both though only one
// receives the command, a restarted replica keeps it, an older command delivered
// again cannot undo a newer one, and rate-limit budgets are one budget for both.

let vhost: IsolatedVhost;
let servers: HarnessServers;
let a: IngestHarness;
let b: IngestHarness;
let redis: Redis;
let store: IngressControlStore;
let key: { key: string; id: string };

const env = {
  INGEST_RATE_LIMIT_PER_SECOND: '1',
  INGEST_RATE_LIMIT_BURST: '20',
  INGEST_PING_RATE_LIMIT_PER_TOKEN_PER_MINUTE: '2',
};

beforeAll(async () => {
  vhost = await createIsolatedVhost('ingest-replicas');
  const redisPrefix = `${testEnv().redisPrefix}ingest-replicas-${randomUUID()}:`;
  // The replicas share the vhost; this file disposes it once, at the end.
  servers = {
    vhost: { amqpUrl: vhost.amqpUrl, dispose: async () => undefined },
    databaseUrl: testEnv().databaseUrl,
    redisPrefix,
  };
  [a, b] = await Promise.all([IngestHarness.start(servers, env), IngestHarness.start(servers, env)]);
  key = await a.createKey(['ingest']);
  redis = createRedis({ url: testEnv().redisUrl, keyPrefix: redisPrefix });
  store = new IngressControlStore(redis, { keyPrefix: redisPrefix });
});
afterAll(async () => {
  await Promise.allSettled([a, b].filter(Boolean).map((h) => h.stop()));
  if (redis) {
    const keys = await redis.keys(`${servers.redisPrefix}*`);
    if (keys.length) await redis.del(...keys.map((k) => k.slice((servers.redisPrefix ?? '').length)));
    redis.disconnect();
  }
  await vhost?.dispose();
});

const source = { site: 'test-site', service: 'sync-orchestrator' as const };
const at = (iso: string) => ({ occurredAt: iso });
const pause = (occurredAt: string, payload: Record<string, unknown> = {}) =>
  buildEnvelope(Messages.IngressPause.type, 1, source, { reason: 'rolling sync', ...payload }, at(occurredAt));
const resume = (occurredAt: string, payload: Record<string, unknown> = {}) =>
  buildEnvelope(Messages.IngressResume.type, 1, source, { reason: 'done', ...payload }, at(occurredAt));
const send = (h: IngestHarness, envelope: Envelope) =>
  h.publishCommand(
    envelope.type === Messages.IngressPause.type ? RoutingKey.IngressPause : RoutingKey.IngressResume,
    envelope,
  );

/** Until no command waits in the queue (the one being handled, if any, takes milliseconds more). */
async function commandsHandled(h: IngestHarness): Promise<void> {
  await waitFor(
    async () => {
      const ch = await h.amqp.createChannel();
      ch.on('error', () => undefined);
      try {
        return (await ch.checkQueue(QueueName.StatusIngestCommands)).messageCount === 0;
      } finally {
        await ch.close().catch(() => undefined);
      }
    },
    { timeoutMs: 10_000, description: 'the commands queue to be empty' },
  );
}

const post = (h: IngestHarness, n = 1) =>
  h.post(n === 1 ? update(`r-${randomUUID()}`) : { updates: Array.from({ length: n }, (_, i) => update(`r-${i}`)) }, {
    key: key.key,
  });

function expectPaused(res: HttpAnswer, reason = 'rolling sync'): void {
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('5');
  expect(errorOf(res).code).toBe('unavailable');
  expect(errorOf(res).message).toMatch(new RegExp(`paused \\(${reason}\\)`));
}

describe('ingress pause / resume across replicas', () => {
  it('pauses both, a restart keeps it, an older command delivered again cannot undo it, resume reaches both', async () => {
    const t0 = Date.now() - 60_000;
    const iso = (ms: number) => new Date(t0 + ms).toISOString();
    const oldResume = resume(iso(0));
    await send(a, oldResume);
    await commandsHandled(a);
    expect((await post(a)).status).toBe(202);
    expect((await post(b)).status).toBe(202);

    // One command, one receiver: both replicas refuse, as a single replica's pause does.
    await send(a, pause(iso(1000), { operationId: 'op-1' }));
    for (const h of [a, b]) {
      const res = await waitFor(async () => ((await post(h)).status === 503 ? post(h) : null), {
        timeoutMs: 5000,
        description: 'both replicas to pause',
      });
      expectPaused(res);
      expect((await h.request('GET', `/ping/${generatePingToken()}`)).status).toBe(503);
    }

    // A restarted replica reads the pause before it takes its first request.
    await b.stop(); // the shared vhost stays (its dispose is this file's)
    b = await IngestHarness.start(servers, env);
    expectPaused(await post(b));

    // The resume issued before the pause, delivered again (the same message), and a resume whose payload says it
    // was issued before the pause though its envelope is new: neither undoes the pause.
    await send(a, oldResume);
    await send(b, resume(new Date().toISOString(), { issuedAt: iso(500) }));
    await commandsHandled(a);
    await new Promise((r) => setTimeout(r, 1500)); // past a periodic re-read on every replica
    expectPaused(await post(a));
    expectPaused(await post(b));
    expect(await store.read()).toMatchObject({ paused: true, operationId: 'op-1' });

    // A newer resume reaches both.
    await send(b, resume(iso(2000), { operationId: 'op-1' }));
    for (const h of [a, b])
      await waitFor(async () => (await post(h)).status === 202, { timeoutMs: 5000, description: 'both to resume' });

    // The pause that was undone, delivered again, stays undone.
    await send(a, pause(iso(1000), { operationId: 'op-1' }));
    await commandsHandled(a);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await post(a)).status).toBe(202);
    expect((await post(b)).status).toBe(202);
  });
});

describe('rate limits across replicas', () => {
  it('an API key`s burst spent on one replica is refused on the other', async () => {
    const own = await a.createKey(['ingest']);
    const batch = { updates: Array.from({ length: 20 }, (_, i) => update(`burst-${i}`)) };
    expect((await a.post(batch, { key: own.key })).status).toBe(202);
    const refused = await b.post(update('one-more'), { key: own.key });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(errorOf(refused).message).toMatch(/rate limit of 1 updates\/s \(burst 20\)/);
    expect((await a.post(update('one-more'), { key: own.key })).status).toBe(429);
    // Another key has its own budget.
    expect((await post(b)).status).toBe(202);
  });

  it('a monitor`s pings are one budget over both replicas', async () => {
    // The monitor row as its writer, sync-orchestrator, makes it with a push check.
    const monitors = new PushMonitorsRepository(a.db);
    const token = generatePingToken();
    const id = randomUUID();
    await runInTransaction(a.db, (tx) =>
      monitors.insertMany(tx, [
        {
          id,
          name: 'job',
          periodSeconds: 3600,
          graceSeconds: 60,
          maxRuntimeSeconds: null,
          tokenHash: hashPingToken(token),
        },
      ]),
    );
    expect((await a.request('GET', `/ping/${token}`)).status).toBe(200);
    expect((await b.request('GET', `/ping/${token}`)).status).toBe(200);
    const refused = await a.request('GET', `/ping/${token}`);
    expect(refused.status).toBe(429);
    expect(errorOf(refused).message).toMatch(/2 pings\/min for this monitor/);
    expect((await b.request('GET', `/ping/${token}`)).status).toBe(429);
  });
});
