import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { TcpProxy, testEnv } from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import { createRedis } from './redis';
import { LiveStateStore } from './live-state.store';

// Pipelined reads with Redis silent: ioredis resolves a pipeline with an error per command (here "Command timed
// out") instead of rejecting it, and these reads skipped the errors — the gateway answered 200 with targets missing,
// hosts missing, /metrics counts at zero. Each now fails, as a read with Redis away must.

const COMMAND_TIMEOUT_MS = 300;

describe('LiveStateStore pipelined reads with Redis not answering', () => {
  const prefix = `${testEnv().redisPrefix}live-state-outage:`;
  let direct: Redis;
  let proxied: Redis;
  let proxy: TcpProxy;
  let seen: LiveStateStore;
  let store: LiveStateStore;

  beforeAll(async () => {
    proxy = TcpProxy.forUrl(testEnv().redisUrl);
    await proxy.start();
    direct = createRedis({ url: testEnv().redisUrl, keyPrefix: prefix });
    proxied = createRedis({
      url: proxy.rewriteUrl(testEnv().redisUrl),
      keyPrefix: prefix,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    seen = new LiveStateStore(direct, { keyPrefix: prefix });
    store = new LiveStateStore(proxied, { keyPrefix: prefix });
    await seen.writeTargets([
      {
        id: 'host:h1',
        kind: TargetKind.Host,
        name: 'h1',
        status: TargetStatus.Up,
        previousStatus: null,
        since: 1000,
        lastSeen: 2000,
        lastLatencyMs: null,
        lifecycle: null,
        tags: [],
        labels: {},
        seq: 1,
        locations: {
          lab: {
            status: TargetStatus.Up,
            observedAt: 2000,
            lastSeen: 2000,
            latencyMs: null,
            detail: null,
            lifecycle: null,
          },
        },
      },
    ]);
    await seen.setHostMetrics('h1', '{"cpu":1}', 2000);
  });
  afterAll(async () => {
    proxy.release();
    const keys = await direct.keys(`${prefix}*`);
    if (keys.length) await direct.del(...keys.map((k) => k.slice(prefix.length)));
    direct.disconnect();
    proxied.disconnect();
    await proxy.stop();
  });

  it('read through the proxy while Redis answers', async () => {
    expect((await store.getTargets(['host:h1'])).size).toBe(1);
    expect((await store.countByStatus()).UP).toBe(1);
    expect((await store.countByKind()).host).toBe(1);
    expect((await store.getHostMetricsMany(['h1'])).size).toBe(1);
  });

  it.each<[string, (s: LiveStateStore) => Promise<unknown>]>([
    ['getTargets', (s) => s.getTargets(['host:h1'])],
    ['countByStatus', (s) => s.countByStatus()],
    ['countByKind', (s) => s.countByKind()],
    ['getHostMetricsMany', (s) => s.getHostMetricsMany(['h1'])],
  ])('%s fails when Redis does not answer, instead of answering empty', async (_name, read) => {
    proxy.hold();
    try {
      await expect(read(store)).rejects.toThrow(/Command timed out/);
    } finally {
      proxy.release();
    }
    // …and reads again once Redis answers.
    await expect(read(store)).resolves.toBeDefined();
  });
});
