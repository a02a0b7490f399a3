import { Redis } from 'ioredis';
import { testEnv } from '@fleetwatch/testing';
import { LiveKeys } from './keys';
import { createRedis } from './redis';
import { LiveStateStore } from './live-state.store';

// Hosts' latest samples in live state (issue 16): written only forward in time, a legacy
// string key replaced, an expiry set (or none), several hosts in one pipeline; a retired host's dropped.

describe('LiveStateStore host samples (real Redis)', () => {
  let redis: Redis;
  let store: LiveStateStore;
  const prefix = `${testEnv().redisPrefix}host-samples-spec:`;

  beforeAll(() => {
    redis = createRedis({ url: testEnv().redisUrl, keyPrefix: prefix });
    store = new LiveStateStore(redis, { keyPrefix: prefix });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys.map((k) => k.slice(prefix.length)));
    redis.disconnect();
  });

  it('keeps the newest sample: an older one is skipped, an equal or newer one replaces it', async () => {
    expect(await store.setHostMetrics('h1', '{"n":2}', 2000)).toBe(true);
    expect(await store.setHostMetrics('h1', '{"n":1}', 1000)).toBe(false);
    expect(await store.getHostMetrics('h1')).toBe('{"n":2}');
    expect(await store.setHostMetrics('h1', '{"n":2.1}', 2000)).toBe(true);
    expect(await store.setHostMetrics('h1', '{"n":3}', 3000)).toBe(true);
    expect(await store.getHostMetrics('h1')).toBe('{"n":3}');
  });

  it('replaces a plain string an older aggregator left, and reads none from it meanwhile', async () => {
    await redis.set(LiveKeys.hostMetrics('legacy'), '{"old":true}');
    expect(await store.getHostMetrics('legacy')).toBeNull();
    expect(await store.setHostMetrics('legacy', '{"new":true}', 5)).toBe(true);
    expect(await store.getHostMetrics('legacy')).toBe('{"new":true}');
  });

  it('sets the expiry given, and none for 0', async () => {
    await store.setHostMetrics('ttl', '{}', 1, 600);
    const ttl = await redis.ttl(LiveKeys.hostMetrics('ttl'));
    expect(ttl).toBeGreaterThan(590);
    await store.setHostMetrics('ttl', '{}', 2, 0);
    expect(await redis.ttl(LiveKeys.hostMetrics('ttl'))).toBe(-1);
  });

  it('writes and reads several hosts at once; ids with odd characters are their own keys', async () => {
    const ids = ['a b', 'x"y\\z', '𝄞', 'host:with:colons'];
    const written = await store.setHostMetricsMany(
      ids.map((hostId, i) => ({ hostId, sampledAt: 10 + i, json: JSON.stringify({ hostId }) })),
      60,
    );
    expect(written).toBe(ids.length);
    const read = await store.getHostMetricsMany([...ids, 'absent']);
    expect([...read.keys()].sort()).toEqual([...ids].sort());
    for (const id of ids) expect(JSON.parse(read.get(id) as string)).toEqual({ hostId: id });
  });

  it("a retired host's sample goes (its expiry kept); a late older one stays out, its next life's comes in", async () => {
    await store.setHostMetrics('gone', '{"n":1}', 1000, 600);
    await store.setHostMetrics('back', '{"n":9}', 9000, 600);
    // 'back' sent a sample stamped after the retirement before the retirement's projection landed: kept.
    expect(
      await store.retireHostMetrics([
        { hostId: 'gone', retiredAt: 5000 },
        { hostId: 'back', retiredAt: 5000 },
        { hostId: 'never', retiredAt: 5000 },
      ]),
    ).toBe(1);
    expect(await store.getHostMetricsMany(['gone', 'back', 'never'])).toEqual(new Map([['back', '{"n":9}']]));
    expect(await redis.ttl(LiveKeys.hostMetrics('gone'))).toBeGreaterThan(590);
    expect(await redis.exists(LiveKeys.hostMetrics('never'))).toBe(0);
    // A projection of a sample from before the retirement, landing late, does not bring the figures back.
    expect(await store.setHostMetrics('gone', '{"n":2}', 4000, 600)).toBe(false);
    expect(await store.getHostMetrics('gone')).toBeNull();
    // A sample after it (the host back) does; retiring again with an older time leaves it.
    expect(await store.setHostMetrics('gone', '{"n":6}', 6000, 600)).toBe(true);
    expect(await store.retireHostMetrics([{ hostId: 'gone', retiredAt: 5000 }])).toBe(0);
    expect(await store.getHostMetrics('gone')).toBe('{"n":6}');
  });

  it('a retirement dated at its newest sample (a collector clock ahead): that sample projected late stays out', async () => {
    // The fold dates the retirement at the host's newest time when that is later than the gateway's: the sample
    // itself, projected late (an earlier shard holder's queued projection), is no sign of a next life.
    await store.setHostMetrics('ahead', '{"n":1}', 7000, 600);
    expect(await store.retireHostMetrics([{ hostId: 'ahead', retiredAt: 7000 }])).toBe(1);
    expect(await store.setHostMetrics('ahead', '{"n":1}', 7000, 600)).toBe(false);
    expect(await store.getHostMetrics('ahead')).toBeNull();
    // A sample after it is the next life's.
    expect(await store.setHostMetrics('ahead', '{"n":2}', 7001, 600)).toBe(true);
    expect(await store.getHostMetrics('ahead')).toBe('{"n":2}');
    // The same sample written twice (a redelivery's projection) is still taken: only a retired key refuses its time.
    expect(await store.setHostMetrics('ahead', '{"n":2}', 7001, 600)).toBe(true);
  });
});
