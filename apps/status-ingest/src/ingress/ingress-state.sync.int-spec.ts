import { randomUUID } from 'node:crypto';
import { createRedis, IngressControlStore } from '@fleetwatch/live-state';
import { TcpProxy, testEnv, waitFor } from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { loadIngestConfig } from '../config';
import { SharedStateMetrics } from '../limits/shared-state.metrics';
import { IngressStateService } from './ingress-state.service';
import { IngressStateSync } from './ingress-state.sync';

// status-ingest's pause/resume subscriber (IngressStateSync) against a Redis it reaches through a TcpProxy the test
// owns: the subscription to the ingress channel must come back whatever became of its first SUBSCRIBE. The periodic
// re-read covers a missed notification within INGRESS_REFRESH_MS, so what is checked is the subscription itself
// (PUBSUB NUMSUB on the server), not whether a pause arrives.

const REDIS_TIMEOUT_MS = 250;

let proxy: TcpProxy;
let direct: Redis;
const opened: Array<{ sync: IngressStateSync; redis: Redis }> = [];
const logger = {
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
} as unknown as Logger;

beforeAll(async () => {
  proxy = TcpProxy.forUrl(testEnv().redisUrl);
  await proxy.start();
  direct = createRedis({ url: testEnv().redisUrl });
  direct.on('error', () => undefined);
});

afterAll(async () => {
  proxy?.resume();
  for (const { sync, redis } of opened) {
    await sync.onModuleDestroy();
    redis.disconnect();
  }
  await proxy?.stop();
  direct?.disconnect();
});

/** An IngressStateSync as the module builds it, on its own key prefix, its connections through the proxy. */
async function connect(): Promise<{ sync: IngressStateSync; channel: string }> {
  const redisPrefix = `${testEnv().redisPrefix}ingress-sync-${randomUUID()}:`;
  const config = loadIngestConfig({
    DATABASE_URL: testEnv().databaseUrl,
    AMQP_URL: testEnv().amqpUrl,
    REDIS_URL: proxy.rewriteUrl(testEnv().redisUrl),
    FLEETWATCH_REDIS_PREFIX: redisPrefix,
    INGEST_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
  });
  const redis = createRedis({ url: config.redisUrl, keyPrefix: redisPrefix, commandTimeoutMs: config.redisTimeoutMs });
  // The silenced and cut connections' errors are expected here (and would be printed to the console unheard).
  redis.on('error', () => undefined);
  // Connected (a first PING may outlast the 250 ms command timeout on a loaded box).
  await waitFor(async () => (await redis.ping()) === 'PONG', { timeoutMs: 10_000, description: 'Redis answers' });
  const sync = new IngressStateSync(redis, new IngressStateService(config), new SharedStateMetrics(), logger, config);
  opened.push({ sync, redis });
  return { sync, channel: new IngressControlStore(direct, { keyPrefix: redisPrefix }).channel };
}

async function subscribers(channel: string): Promise<number> {
  const [, n] = (await direct.pubsub('NUMSUB', channel)) as [string, number];
  return Number(n);
}

/** An IngressStateSync started and subscribed. */
async function subscribed(): Promise<{ sync: IngressStateSync; channel: string }> {
  const started = await connect();
  await started.sync.onModuleInit();
  await subscribedBy(started.channel, 1, 'the ingress channel subscribed');
  return started;
}

/** Until `n` connections are subscribed to the channel, as Redis counts them. */
function subscribedBy(channel: string, n: number, description: string, timeoutMs = 10_000): Promise<unknown> {
  return waitFor(async () => (await subscribers(channel)) === n, { timeoutMs, intervalMs: 100, description });
}

describe('ingress subscriber', () => {
  it('subscribes once Redis takes new connections again, when its first SUBSCRIBE failed', async () => {
    const { sync, channel } = await connect();
    // The service's own connection is up (the state is read on it); new connections — the subscriber's — are refused.
    proxy.pause();
    const refused = proxy.stats.refused;
    await sync.onModuleInit();
    await waitFor(async () => proxy.stats.refused > refused, {
      timeoutMs: 10_000,
      description: "the subscriber's connection refused",
    });
    // Long enough for ioredis to give up on a command queued meanwhile (its command timeout, then its
    // maxRetriesPerRequest reconnect attempts): a SUBSCRIBE sent before the connection was ready is dropped.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await subscribers(channel)).toBe(0);
    proxy.resume();
    await subscribedBy(channel, 1, 'the ingress channel subscribed');
  });

  it('subscribes again after its connection is dropped', async () => {
    const { channel } = await subscribed();
    // Every connection through the proxy dropped at once, new ones refused for a while.
    proxy.pause();
    proxy.cut();
    await waitFor(async () => (await subscribers(channel)) === 0, { timeoutMs: 5_000, description: 'unsubscribed' });
    await new Promise((r) => setTimeout(r, 1500));
    proxy.resume();
    await subscribedBy(channel, 1, 'the ingress channel subscribed again');
  });

  it('opens a new connection, and subscribes on it, when its connection goes silent', async () => {
    const { channel } = await subscribed();
    // The live connections go silent (no reset; Redis still holds the old subscriber's), new ones pass.
    proxy.silenceLive();
    await subscribedBy(channel, 2, 'a second subscriber connection (the silent one still open on the server)', 30_000);
  });
});
