import { Redis } from 'ioredis';
import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { testEnv } from '@fleetwatch/testing';
import { createRedis } from './redis';
import { LiveStateStore, type TargetFilter, type TargetWrite } from './live-state.store';

// listTargetIds (the host search's ids): the ids listTargets pages through, for any filter, in id order, with no
// target read — the same sets, the same intersection, the same order.

describe('LiveStateStore.listTargetIds (real Redis)', () => {
  let redis: Redis;
  let store: LiveStateStore;
  const prefix = `${testEnv().redisPrefix}target-ids-spec:`;

  const write = (
    id: string,
    kind: TargetKind,
    status: TargetStatus,
    location: string,
    tags: string[],
  ): TargetWrite => ({
    id,
    kind,
    name: id,
    status,
    previousStatus: null,
    since: 1000,
    lastSeen: 2000,
    lastLatencyMs: null,
    lifecycle: null,
    tags,
    labels: {},
    seq: 1,
    locations: {
      [location]: { status, observedAt: 2000, lastSeen: 2000, latencyMs: null, detail: null, lifecycle: null },
    },
  });

  beforeAll(async () => {
    redis = createRedis({ url: testEnv().redisUrl, keyPrefix: prefix });
    store = new LiveStateStore(redis, { keyPrefix: prefix });
    const kinds = [TargetKind.Host, TargetKind.Check, TargetKind.Instance];
    const statuses = [TargetStatus.Up, TargetStatus.Stale, TargetStatus.Down];
    // Written out of order: the answer is in id order all the same.
    await store.writeTargets(
      Array.from({ length: 60 }, (_, i) => (i * 37) % 60).map((i) => {
        const kind = kinds[i % 3] as TargetKind;
        return write(
          `${kind}:t-${String(i).padStart(2, '0')}`,
          kind,
          statuses[(i % 5) % 3] as TargetStatus,
          `loc-${i % 4}`,
          [`tag-${i % 2}`],
        );
      }),
    );
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys.map((k) => k.slice(prefix.length)));
    redis.disconnect();
  });

  it.each<[string, TargetFilter]>([
    ['no filter', {}],
    ['hosts', { kind: [TargetKind.Host] }],
    ['hosts UP or STALE', { kind: [TargetKind.Host], status: [TargetStatus.Up, TargetStatus.Stale] }],
    ['hosts at loc-1', { kind: [TargetKind.Host], location: 'loc-1' }],
    ['STALE at loc-2 with tag-0', { status: [TargetStatus.Stale], location: 'loc-2', tag: 'tag-0' }],
    ['a location nobody reports from', { kind: [TargetKind.Host], location: 'nowhere' }],
  ])('%s: the ids listTargets lists, in id order', async (name, filter) => {
    const listed = await store.listTargets(filter, 1000);
    const ids = await store.listTargetIds(filter);
    expect(ids).toEqual(listed.items.map((t) => t.id));
    expect(ids).toHaveLength(listed.total);
    expect(ids).toEqual([...ids].sort());
    if (name !== 'a location nobody reports from') expect(ids.length).toBeGreaterThan(0);
  });

  it('takes what the indexes hold, not more: the 20 hosts, and of them the UP ones only', async () => {
    expect(await store.listTargetIds({ kind: [TargetKind.Host] })).toHaveLength(20);
    const some = await store.listTargetIds({ kind: [TargetKind.Host], status: [TargetStatus.Up] });
    expect(some.length).toBeGreaterThan(0);
    for (const id of some) expect((await store.getTarget(id))?.status).toBe(TargetStatus.Up);
    expect(some.every((id) => id.startsWith('host:'))).toBe(true);
  });
});
