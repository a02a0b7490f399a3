import { Redis } from 'ioredis';
import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import type { TargetSnapshot } from '@fleetwatch/domain';
import { createRedis, LiveStateStore } from '@fleetwatch/live-state';
import { createLogger } from '@fleetwatch/observability';
import type { CheckMetricsHistoryRepository, TargetStatesRepository } from '@fleetwatch/persistence';
import { testEnv } from '@fleetwatch/testing';
import { AggregatorMetrics } from '../aggregator.metrics';
import type { HostLiveState } from '../hosts/host-live-state.service';
import { LiveProjection } from './live-projection.service';

// One target Redis refuses to write (here a key of another type under its name, as a hand edit or an older
// layout can leave) must not stop the projection of the others: a projection that throws holds the shard's
// commits (reconcile before the next batch, which projects the same target again).

let redis: Redis;
let store: LiveStateStore;
let projection: LiveProjection;
const prefix = `${testEnv().redisPrefix}live-projection:`;

beforeAll(() => {
  redis = createRedis({ url: testEnv().redisUrl, keyPrefix: prefix });
  store = new LiveStateStore(redis, { keyPrefix: prefix });
  // The repositories serve rebuild(), not used here; Postgres is stood in for by its count of targets.
  projection = new LiveProjection(
    store,
    { count: async () => 3 } as unknown as TargetStatesRepository,
    undefined as unknown as HostLiveState,
    undefined as unknown as CheckMetricsHistoryRepository,
    createLogger('test', 'silent'),
  );
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.unlink(...keys.map((k) => k.slice(prefix.length)));
  redis.disconnect();
});

const snapshot = (id: string, status: TargetStatus, seq = 1): TargetSnapshot => ({
  id,
  kind: TargetKind.Instance,
  name: id,
  status,
  since: 1000,
  lastSeen: 2000,
  lastLatencyMs: null,
  lifecycle: 'running',
  tags: [],
  labels: {},
  seq,
  locations: {
    eu: {
      status,
      observedAt: 2000,
      lastSeen: 2000,
      latencyMs: null,
      detail: null,
      lifecycle: 'running',
      deadline: { at: 9_000, expireTo: TargetStatus.Stale, reason: 'no update' },
      run: null,
    },
  },
});

const skipped = async () => (await AggregatorMetrics.get().projectionsSkipped.get()).values[0]?.value ?? 0;

it('writes every target but the one Redis refuses, skips that one (counted), and throws nothing', async () => {
  await redis.set('t:instance:poison', 'a string where a hash belongs');
  const before = await skipped();
  await projection.project(
    [
      snapshot('instance:ok-1', TargetStatus.Up),
      snapshot('instance:poison', TargetStatus.Down),
      snapshot('instance:ok-2', TargetStatus.Down),
    ],
    new Map(),
  );
  expect(await store.getTarget('instance:ok-1')).toMatchObject({ status: 'UP', locations: { eu: { status: 'UP' } } });
  expect(await store.getTarget('instance:ok-2')).toMatchObject({ status: 'DOWN' });
  expect(await store.deadlineOf('instance:ok-2', 'eu')).toBe(9_000);
  expect(await redis.get('t:instance:poison')).toBe('a string where a hash belongs');
  expect(await skipped()).toBe(before + 1);

  // Alone in its batch, the same: skipped, no throw; the others' next writes go through.
  await projection.project([snapshot('instance:poison', TargetStatus.Up, 2)], new Map());
  expect(await skipped()).toBe(before + 2);
  await projection.project([snapshot('instance:ok-1', TargetStatus.Down, 2)], new Map());
  expect(await store.getTarget('instance:ok-1')).toMatchObject({ status: 'DOWN', seq: 2 });

  // A skipped target is missing from live state by design: the thorough check does not call for a whole rebuild for
  // it (which would skip it again, every 30 s, holding every lane). Postgres holds the three targets here.
  expect(projection.refusedTargets).toBe(1);
  expect(await projection.isMissingTargets()).toBe(false);
  // Once Redis takes its write again, it counts as written.
  await redis.del('t:instance:poison');
  await projection.project([snapshot('instance:poison', TargetStatus.Up, 3)], new Map());
  expect(projection.refusedTargets).toBe(0);
  expect(await store.getTarget('instance:poison')).toMatchObject({ status: 'UP', seq: 3 });
  expect(await projection.isMissingTargets()).toBe(false);
});

it("a refusal of every target of a batch is taken as Redis's own: thrown (as before), nothing skipped", async () => {
  await redis.set('t:instance:bad-1', 'x');
  await redis.set('t:instance:bad-2', 'x');
  const before = await skipped();
  await expect(
    projection.project(
      [snapshot('instance:bad-1', TargetStatus.Up), snapshot('instance:bad-2', TargetStatus.Up)],
      new Map(),
    ),
  ).rejects.toThrow(/WRONGTYPE/);
  expect(await skipped()).toBe(before);
  expect(projection.refusedTargets).toBe(0);
  await redis.del('t:instance:bad-1', 't:instance:bad-2');
});

it('a skipped target that is then deleted no longer counts as refused', async () => {
  await redis.set('t:instance:gone', 'x');
  await projection.project(
    [snapshot('instance:ok-4', TargetStatus.Up), snapshot('instance:gone', TargetStatus.Up)],
    new Map(),
  );
  expect(projection.refusedTargets).toBe(1);
  await redis.del('t:instance:gone');
  await projection.project(
    [{ ...snapshot('instance:gone', TargetStatus.Up, 2), locations: {}, deletedAt: 5000 }],
    new Map(),
  );
  expect(projection.refusedTargets).toBe(0);
});

it('an outage is thrown, not skipped (the caller waits it out)', async () => {
  // A client that is not connected and queues nothing: every command is refused as Redis being away.
  const down = new Redis(testEnv().redisUrl, { keyPrefix: prefix, lazyConnect: true, enableOfflineQueue: false });
  down.on('error', () => undefined);
  try {
    const offline = new LiveProjection(
      new LiveStateStore(down, { keyPrefix: prefix }),
      undefined as unknown as TargetStatesRepository,
      undefined as unknown as HostLiveState,
      undefined as unknown as CheckMetricsHistoryRepository,
      createLogger('test', 'silent'),
    );
    const before = await skipped();
    await expect(offline.project([snapshot('instance:ok-3', TargetStatus.Up)], new Map())).rejects.toThrow();
    expect(await skipped()).toBe(before);
  } finally {
    down.disconnect();
  }
});
