import { Redis } from 'ioredis';
import { testEnv } from '@fleetwatch/testing';
import { LiveKeys } from './keys';
import { createRedis } from './redis';
import { LiveStateStore } from './live-state.store';

// Host id conflict marks (host:{hostId}:conflict), the aggregator's: a replica raises a mark whatever is held, renews
// and clears only its own (a host whose shard moved keeps the new holder's), a retirement drops anyone's; each expires.

describe('LiveStateStore host conflict marks (real Redis)', () => {
  let redis: Redis;
  let store: LiveStateStore;
  const prefix = `${testEnv().redisPrefix}host-conflicts-spec:`;
  const since = Date.parse('2026-12-07T07:00:00.000Z');
  const TTL = 60_000;

  beforeAll(() => {
    redis = createRedis({ url: testEnv().redisUrl, keyPrefix: prefix });
    store = new LiveStateStore(redis, { keyPrefix: prefix });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys.map((k) => k.slice(prefix.length)));
    redis.disconnect();
  });

  const marks = async (...ids: string[]) =>
    Object.fromEntries(
      [...(await store.getHostConflictsMany(ids))].map(([id, json]) => [id, JSON.parse(json) as unknown]),
    );

  it('a raised mark is read back under its own key, with its owner, and expires', async () => {
    expect(
      await store.writeHostConflicts([{ hostId: 'h1', op: 'raise', mark: { reporters: 2, since } }], 'A', TTL),
    ).toBe(1);
    expect(await marks('h1', 'none')).toEqual({
      h1: { reporters: 2, since: '2026-12-07T07:00:00.000Z', owner: 'A' },
    });
    expect(await redis.exists(LiveKeys.hostConflict('h1'))).toBe(1);
    const ttl = await redis.pttl(LiveKeys.hostConflict('h1'));
    expect(ttl).toBeGreaterThan(TTL - 5_000);
    expect(ttl).toBeLessThanOrEqual(TTL);
    // Never in the host's sample key.
    expect(await redis.exists(LiveKeys.hostMetrics('h1'))).toBe(0);
  });

  it('another owner neither renews nor clears a mark it does not hold; its raise takes it over', async () => {
    await store.writeHostConflicts([{ hostId: 'h2', op: 'raise', mark: { reporters: 2, since } }], 'B', TTL);
    // A: the replica the host's shard moved from, still renewing / clearing what it held.
    expect(
      await store.writeHostConflicts(
        [{ hostId: 'h2', op: 'refresh', mark: { reporters: 3, since: since - 1 } }],
        'A',
        TTL,
      ),
    ).toBe(0);
    expect(await store.writeHostConflicts([{ hostId: 'h2', op: 'clear' }], 'A', TTL)).toBe(0);
    expect((await marks('h2')).h2).toMatchObject({ reporters: 2, owner: 'B' });
    // Its owner renews and clears it.
    await redis.pexpire(LiveKeys.hostConflict('h2'), 1_000);
    expect(
      await store.writeHostConflicts([{ hostId: 'h2', op: 'refresh', mark: { reporters: 2, since } }], 'B', TTL),
    ).toBe(1);
    expect(await redis.pttl(LiveKeys.hostConflict('h2'))).toBeGreaterThan(TTL - 5_000);
    // A raise (the replica hearing the host now) takes it over.
    await store.writeHostConflicts([{ hostId: 'h2', op: 'raise', mark: { reporters: 2, since: since + 1 } }], 'A', TTL);
    expect((await marks('h2')).h2).toMatchObject({ owner: 'A' });
    expect(await store.writeHostConflicts([{ hostId: 'h2', op: 'clear' }], 'B', TTL)).toBe(0);
    expect(await store.writeHostConflicts([{ hostId: 'h2', op: 'clear' }], 'A', TTL)).toBe(1);
    expect(await marks('h2')).toEqual({});
  });

  it('a renewal writes the mark back after a flush; a retirement drops anyone’s', async () => {
    await store.writeHostConflicts([{ hostId: 'h3', op: 'raise', mark: { reporters: 2, since } }], 'A', TTL);
    await redis.del(LiveKeys.hostConflict('h3'));
    expect(
      await store.writeHostConflicts([{ hostId: 'h3', op: 'refresh', mark: { reporters: 2, since } }], 'A', TTL),
    ).toBe(1);
    expect((await marks('h3')).h3).toMatchObject({ owner: 'A' });
    expect(await store.writeHostConflicts([{ hostId: 'h3', op: 'drop' }], 'B', TTL)).toBe(1);
    expect(await marks('h3')).toEqual({});
  });

  it('an unreadable value or a key of another type is nobody’s: replaced, or cleared', async () => {
    await redis.set(LiveKeys.hostConflict('h4'), 'not json');
    expect(
      await store.writeHostConflicts([{ hostId: 'h4', op: 'refresh', mark: { reporters: 2, since } }], 'A', TTL),
    ).toBe(1);
    await redis.set(LiveKeys.hostConflict('h5'), 'not json');
    expect(await store.writeHostConflicts([{ hostId: 'h5', op: 'clear' }], 'A', TTL)).toBe(1);
    await redis.hset(LiveKeys.hostConflict('h6'), 'x', '1');
    expect(await store.getHostConflictsMany(['h6'])).toEqual(new Map());
    expect(
      await store.writeHostConflicts([{ hostId: 'h6', op: 'raise', mark: { reporters: 2, since } }], 'A', TTL),
    ).toBe(1);
    expect(await marks('h4', 'h5', 'h6')).toEqual({
      h4: expect.objectContaining({ owner: 'A' }),
      h6: expect.objectContaining({ owner: 'A' }),
    });
  });
});
