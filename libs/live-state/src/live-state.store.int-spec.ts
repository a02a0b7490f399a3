import { Redis } from 'ioredis';
import { InstanceKind, TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { testEnv } from '@fleetwatch/testing';
import { createRedis } from './redis';
import { DELETED_MARKER_TTL_SECONDS, LiveStateStore, toTargetView, type TargetWrite } from './live-state.store';

describe('LiveStateStore (real Redis)', () => {
  let redis: Redis;
  let store: LiveStateStore;
  const prefix = `${testEnv().redisPrefix}live-state-spec:`;

  beforeAll(() => {
    redis = createRedis({ url: testEnv().redisUrl, keyPrefix: prefix });
    store = new LiveStateStore(redis, { keyPrefix: prefix });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys.map((k) => k.slice(prefix.length)));
    redis.disconnect();
  });

  const write = (
    id: string,
    status: TargetStatus,
    previousStatus: TargetStatus | null,
    extra: Partial<TargetWrite> = {},
  ): TargetWrite => ({
    id,
    kind: TargetKind.Instance,
    name: id,
    status,
    previousStatus,
    since: 1000,
    lastSeen: 2000,
    lastLatencyMs: null,
    lifecycle: 'running',
    tags: ['web'],
    labels: { team: 'a' },
    seq: 1,
    locations: {
      eu: { status, observedAt: 2000, lastSeen: 2000, latencyMs: null, detail: null, lifecycle: 'running' },
    },
    ...extra,
  });

  it('starts empty, stores targets and moves them between status indexes', async () => {
    expect(await store.isEmpty()).toBe(true);
    await store.writeTargets([
      write('instance:a', TargetStatus.Up, null),
      write('instance:b', TargetStatus.Down, null, { tags: ['db'] }),
    ]);
    expect(await store.isEmpty()).toBe(false);
    await store.writeTargets([write('instance:a', TargetStatus.Down, TargetStatus.Up)]);
    expect(await store.countByStatus()).toMatchObject({ UP: 0, DOWN: 2 });
    const a = await store.getTarget('instance:a');
    expect(a && toTargetView(a)).toMatchObject({
      id: 'instance:a',
      status: 'DOWN',
      locations: [{ location: 'eu', status: 'DOWN' }],
      labels: { team: 'a' },
    });
    expect(await store.getTarget('instance:missing')).toBeNull();
  });

  it('filters and pages with a cursor', async () => {
    const ids = Array.from({ length: 25 }, (_, i) => `instance:p${String(i).padStart(2, '0')}`);
    await store.writeTargets(ids.map((id) => write(id, TargetStatus.Up, null, { tags: ['paged'] })));
    const first = await store.listTargets({ tag: 'paged' }, 10);
    expect(first.items.map((t) => t.id)).toEqual(ids.slice(0, 10));
    expect(first.total).toBe(25);
    const second = await store.listTargets({ tag: 'paged' }, 10, first.nextCursor ?? undefined);
    expect(second.items[0].id).toBe(ids[10]);
    const all = await store.listTargets({}, 1000);
    expect(all.total).toBe(27);
    const down = await store.listTargets({ status: ['DOWN'], kind: ['instance'] }, 100);
    expect(down.items.map((t) => t.id).sort()).toEqual(['instance:a', 'instance:b']);
    expect((await store.listTargets({ location: 'eu', tag: 'db' }, 100)).items.map((t) => t.id)).toEqual([
      'instance:b',
    ]);
  });

  it('index entries move from what Redis holds, whatever the writer believes, and a lost entry heals at the next write', async () => {
    const id = 'instance:idx';
    await store.writeTargets([write(id, TargetStatus.Up, null)]);
    // Take an entry away behind the store's back: the next write of the unchanged target puts it back.
    await redis.srem('idx:kind:instance', id);
    expect(await store.writeTargets([write(id, TargetStatus.Up, TargetStatus.Up, { lastSeen: 3000 })])).toBe(1);
    expect(await redis.sismember('idx:kind:instance', id)).toBe(1);
    expect((await store.getTarget(id))?.lastSeen).toBe(3000);

    // The writer believes the target was DOWN with tag `x` (wrong): Redis's UP and `web` are what get moved.
    const us = {
      status: TargetStatus.Down,
      observedAt: 4000,
      lastSeen: 4000,
      latencyMs: null,
      detail: null,
      lifecycle: null,
    };
    await store.writeTargets([
      write(id, TargetStatus.Down, TargetStatus.Down, {
        seq: 2,
        lastSeen: 4000,
        tags: ['db'],
        previousTags: ['x'],
        locations: { ...write(id, TargetStatus.Down, null).locations, us },
      }),
    ]);
    expect(await redis.sismember('idx:status:UP', id)).toBe(0);
    expect(await redis.sismember('idx:status:DOWN', id)).toBe(1);
    expect(await redis.sismember('idx:tag:web', id)).toBe(0);
    expect(await redis.sismember('idx:tag:db', id)).toBe(1);
    expect(await redis.sismember('idx:loc:us', id)).toBe(1);
  });

  it('a late write never moves a target back: a lower seq, or the same seq seen earlier, is skipped', async () => {
    const id = 'instance:late';
    await store.writeTargets([write(id, TargetStatus.Down, null, { seq: 5, lastSeen: 5000 })]);
    // Another replica's (or a rebuild's) projection of older state arrives after.
    expect(await store.writeTargets([write(id, TargetStatus.Up, TargetStatus.Down, { seq: 4, lastSeen: 9000 })])).toBe(
      0,
    );
    expect(await store.writeTargets([write(id, TargetStatus.Up, TargetStatus.Down, { seq: 5, lastSeen: 4000 })])).toBe(
      0,
    );
    const t = await store.getTarget(id);
    expect([t?.status, t?.seq, t?.lastSeen]).toEqual([TargetStatus.Down, 5, 5000]);
    expect(await redis.sismember('idx:status:UP', id)).toBe(0);
    expect(await redis.sismember('idx:status:DOWN', id)).toBe(1);
    // Same seq, seen later (a location-only update) and a newer seq are applied.
    expect(
      await store.writeTargets([write(id, TargetStatus.Down, TargetStatus.Down, { seq: 5, lastSeen: 6000 })]),
    ).toBe(1);
    expect(await store.writeTargets([write(id, TargetStatus.Up, TargetStatus.Down, { seq: 6, lastSeen: 6000 })])).toBe(
      1,
    );
    expect((await store.getTarget(id))?.status).toBe(TargetStatus.Up);
    expect(await redis.sismember('idx:status:DOWN', id)).toBe(0);
  });

  it('a command Redis refuses fails the whole write (to be retried), not silently', async () => {
    const other = `${prefix}refused:`;
    const r = createRedis({ url: testEnv().redisUrl, keyPrefix: other });
    try {
      await r.set('idx:all', 'not a sorted set');
      const s = new LiveStateStore(r, { keyPrefix: other });
      await expect(s.writeTargets([write('instance:r', TargetStatus.Up, null)])).rejects.toThrow(/WRONGTYPE/);
    } finally {
      await r.del(
        'idx:all',
        't:instance:r',
        'tl:instance:r',
        'idx:status:UP',
        'idx:kind:instance',
        'idx:tag:web',
        'idx:loc:eu',
      );
      r.disconnect();
    }
  });

  const loc = (status: TargetStatus) => ({
    status,
    observedAt: 2000,
    lastSeen: 2000,
    latencyMs: null,
    detail: null,
    lifecycle: 'running',
  });

  it('a target X and a target "X:loc" keep their own summaries and locations, whatever the locations are named', async () => {
    // Locations named as summary fields, on the target whose id the other's extends.
    const x = write('instance:web-1', TargetStatus.Up, null, {
      locations: { push: loc(TargetStatus.Up), kind: loc(TargetStatus.Up), deleted: loc(TargetStatus.Up) },
    });
    const xLoc = write('instance:web-1:loc', TargetStatus.Down, null, { tags: ['db'], seq: 7 });
    await store.writeTargets([xLoc, x]);
    await store.writeTargets([x]);
    const a = await store.getTarget('instance:web-1');
    const b = await store.getTarget('instance:web-1:loc');
    expect(Object.keys(a?.locations ?? {}).sort()).toEqual(['deleted', 'kind', 'push']);
    expect(b).toMatchObject({ kind: 'instance', status: 'DOWN', tags: ['db'], seq: 7 });
    expect(Object.keys(b?.locations ?? {})).toEqual(['eu']);
    // Both render (a summary read from another target's locations had no lastSeen: a RangeError, a 500 for every list).
    expect(a && toTargetView(a)).toMatchObject({ id: 'instance:web-1', status: 'UP' });
    expect(b && toTargetView(b)).toMatchObject({ id: 'instance:web-1:loc', status: 'DOWN' });
    const listed = (await store.listTargets({}, 1000)).items.filter((t) => t.id.startsWith('instance:web-1'));
    expect(listed.map((t) => toTargetView(t).id)).toEqual(['instance:web-1', 'instance:web-1:loc']);
    expect(await store.removeTargets([{ id: 'instance:web-1' }, { id: 'instance:web-1:loc' }])).toBe(2);
  });

  it('writes a target reporting from thousands of locations (more values than one Lua unpack takes)', async () => {
    const locations: TargetWrite['locations'] = {};
    for (let i = 0; i < 5_000; i++) locations[`l${i}`] = loc(TargetStatus.Up);
    expect(await store.writeTargets([write('instance:many', TargetStatus.Up, null, { locations })])).toBe(1);
    expect(Object.keys((await store.getTarget('instance:many'))?.locations ?? {}).length).toBe(5_000);
    expect(await redis.sismember('idx:loc:l4999', 'instance:many')).toBe(1);
    expect(await store.removeTargets([{ id: 'instance:many' }])).toBe(1);
    expect(await redis.exists('tl:instance:many')).toBe(0);
  });

  it("a write holds all of a target's locations: one it no longer has goes, with its index entry", async () => {
    const id = 'check:hb-one-location';
    const two = { 'site-a': loc(TargetStatus.Up), 'site-b': loc(TargetStatus.Down) };
    await store.writeTargets([write(id, TargetStatus.Partial, null, { locations: two })]);
    expect(Object.keys((await store.getTarget(id))?.locations ?? {}).sort()).toEqual(['site-a', 'site-b']);
    // A heartbeat monitor's state folded into its one location, `push`.
    const one = write(id, TargetStatus.Up, TargetStatus.Partial, { seq: 2, locations: { push: loc(TargetStatus.Up) } });
    expect(await store.writeTargets([one])).toBe(1);
    expect(Object.keys((await store.getTarget(id))?.locations ?? {})).toEqual(['push']);
    expect(await redis.sismember('idx:loc:site-a', id)).toBe(0);
    expect(await redis.sismember('idx:loc:site-b', id)).toBe(0);
    expect(await redis.sismember('idx:loc:push', id)).toBe(1);
    expect((await store.listTargets({ location: 'site-a' }, 100)).items.map((t) => t.id)).not.toContain(id);
    expect(await store.removeTargets([{ id }])).toBe(1);
  });

  it("removes the old layouts' location hashes (t:{id}:loc) and their marks, only where a mark says they may be", async () => {
    // A prefix with glob characters: unescaped, its pattern would match the sibling prefix's keys too.
    const other = `${prefix}leg[ab]*:`;
    const sibling = `${prefix}lega:`;
    const r = createRedis({ url: testEnv().redisUrl, keyPrefix: other });
    const s2 = createRedis({ url: testEnv().redisUrl, keyPrefix: sibling });
    try {
      const s = new LiveStateStore(r, { keyPrefix: other });
      await s.writeTargets([write('instance:keep', TargetStatus.Up, null)]);
      await r.hset('t:instance:old:loc', 'eu', '{}');
      await r.hset('t:instance:old-2:loc', 'us', '{}');
      await s2.hset('t:instance:sibling:loc', 'eu', '{}');
      await s2.set('live:built:2', '1');
      // No mark of an older layout: nothing is scanned, nothing removed (a flush, or a Redis only layout 3 wrote).
      expect(await s.removeLegacyLocationHashes()).toBe(0);
      expect(await r.exists('t:instance:old:loc', 't:instance:old-2:loc')).toBe(2);
      // Layout 2's mark (or layout 1's): the old hashes go, then the marks.
      await r.set('live:built:2', '1');
      await r.set('live:built', '1');
      expect(await s.removeLegacyLocationHashes()).toBe(2);
      expect(await r.exists('t:instance:old:loc', 't:instance:old-2:loc', 'live:built:2', 'live:built')).toBe(0);
      expect(await s2.exists('t:instance:sibling:loc', 'live:built:2')).toBe(2);
      expect(await s.getTarget('instance:keep')).toMatchObject({ status: 'UP', locations: { eu: { status: 'UP' } } });
      expect(await s.removeLegacyLocationHashes()).toBe(0);
    } finally {
      for (const [client, p] of [
        [r, other],
        [s2, sibling],
      ] as const) {
        const keys = await client.keys(`${p.replace(/[*?[\]\\]/g, '\\$&')}*`);
        if (keys.length) await client.del(...keys.map((k) => k.slice(p.length)));
        client.disconnect();
      }
    }
  });

  it('keeps deadlines and clears only unchanged ones', async () => {
    await store.setDeadlines([
      { targetId: 'instance:a', location: 'eu', deadline: 100 },
      { targetId: 'instance:b', location: 'us', deadline: 300 },
    ]);
    const due = await store.dueDeadlines(200, 10);
    expect(due).toEqual([{ targetId: 'instance:a', location: 'eu', deadline: 100 }]);
    await store.setDeadlines([{ targetId: 'instance:a', location: 'eu', deadline: 500 }]);
    expect(await store.clearDeadlineIfUnchanged(due[0])).toBe(false);
    expect(await store.clearDeadlineIfUnchanged({ targetId: 'instance:a', location: 'eu', deadline: 500 })).toBe(true);
    expect(await store.deadlineOf('instance:a', 'eu')).toBeNull();
    expect(await store.deadlineOf('instance:b', 'us')).toBe(300);
    expect(await store.countDeadlines()).toBe(1);
  });

  it('fans status changes out on a prefixed channel', async () => {
    const sub = createRedis({ url: testEnv().redisUrl });
    const got = new Promise<string>((resolve) => sub.on('message', (_ch, msg) => resolve(msg)));
    await sub.subscribe(store.statusChannel);
    await store.publishStatusChange('{"x":1}');
    expect(await got).toBe('{"x":1}');
    sub.disconnect();
  });

  it('fans many status changes out in order, in one pipeline', async () => {
    const sub = createRedis({ url: testEnv().redisUrl });
    const got: string[] = [];
    const all = new Promise<void>((resolve) =>
      sub.on('message', (_ch, msg: string) => {
        got.push(msg);
        if (got.length === 3) resolve();
      }),
    );
    await sub.subscribe(store.statusChannel);
    await store.publishStatusChanges(['1', '2', '3']);
    await all;
    expect(got).toEqual(['1', '2', '3']);
    sub.disconnect();
  });
  it('removes a deleted target from every index and deadline, and a late write cannot bring it back', async () => {
    const id = 'check:0191d7a2-0000-7000-8000-00000000dead';
    const other = 'check:0191d7a2-0000-7000-8000-00000000a11e';
    const check = (target: string, extra: Partial<TargetWrite> = {}) =>
      write(target, TargetStatus.Stale, null, {
        kind: TargetKind.Check,
        tags: ['gone-tag'],
        seq: 4,
        locations: {
          eu: {
            status: TargetStatus.Stale,
            observedAt: 2000,
            lastSeen: 2000,
            latencyMs: 5,
            detail: null,
            lifecycle: null,
          },
          us: {
            status: TargetStatus.Stale,
            observedAt: 2000,
            lastSeen: 2000,
            latencyMs: 5,
            detail: null,
            lifecycle: null,
          },
        },
        ...extra,
      });
    await store.writeTargets([check(id), check(other)]);
    await store.setDeadlines([
      { targetId: id, location: 'eu', deadline: 10 },
      { targetId: id, location: 'us', deadline: 10 },
      { targetId: id, location: 'ap', deadline: 10 },
      { targetId: other, location: 'eu', deadline: 10 },
    ]);
    const statusBefore = (await store.countByStatus()).STALE;

    // 'ap' is only known to the caller (Redis lost that location): its deadline goes too.
    expect(await store.removeTargets([{ id, locations: ['ap'] }])).toBe(1);
    expect(await store.getTarget(id)).toBeNull();
    expect(await redis.hgetall(`tl:${id}`)).toEqual({});
    for (const set of ['idx:kind:check', 'idx:status:STALE', 'idx:tag:gone-tag', 'idx:loc:eu', 'idx:loc:us'])
      expect(await redis.sismember(set, id)).toBe(0);
    expect(await redis.zscore('idx:all', id)).toBeNull();
    for (const loc of ['eu', 'us', 'ap']) expect(await store.deadlineOf(id, loc)).toBeNull();
    expect((await store.countByStatus()).STALE).toBe(statusBefore - 1);
    expect((await store.listTargets({ kind: ['check'] }, 100)).items.map((t) => t.id)).toEqual([other]);
    // The other target is untouched.
    expect(await store.deadlineOf(other, 'eu')).toBe(10);
    expect(await redis.sismember('idx:tag:gone-tag', other)).toBe(1);

    // A projection read before the delete, with a higher sequence even, is skipped; the marker expires.
    expect(await store.writeTargets([check(id, { seq: 9, lastSeen: 9000 })])).toBe(0);
    expect(await store.getTarget(id)).toBeNull();
    expect(await redis.zscore('idx:all', id)).toBeNull();
    const ttl = await redis.ttl(`t:${id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(DELETED_MARKER_TTL_SECONDS);
    // Idempotent: removing it again finds nothing and leaves the marker.
    expect(await store.removeTargets([{ id }])).toBe(0);
    expect(await redis.hget(`t:${id}`, 'deleted')).toBe('1');
  });
  it("a removed instance's removal landing after its next life's write (a late projection) leaves that life in live state", async () => {
    const id = 'instance:default/web-0';
    const life = (lastSeen: number, seq: number) =>
      write(id, TargetStatus.Up, null, {
        seq,
        lastSeen,
        locations: {
          eu: {
            status: TargetStatus.Up,
            observedAt: lastSeen,
            lastSeen,
            latencyMs: null,
            detail: null,
            lifecycle: 'running',
          },
        },
      });
    // Removed at 2000, back at 3000: the new life's projection lands first, the removal's after it.
    await store.removeTargets([{ id, removedAt: 1000 }]);
    expect(await store.writeTargets([life(3000, 6)])).toBe(1);
    expect(await store.removeTargets([{ id, locations: ['eu'], removedAt: 2000 }])).toBe(0);
    expect(await store.getTarget(id)).toMatchObject({ status: TargetStatus.Up, lastSeen: 3000, seq: 6 });
    expect(await redis.zscore('idx:all', id)).not.toBeNull();
    expect(await redis.sismember('idx:loc:eu', id)).toBe(1);
    expect(await redis.ttl(`t:${id}`)).toBe(-1);
    // Removed again at 4000 (lands); a late removal of an earlier life keeps the later time in the marker, so a
    // late write of the life removed at 4000 stays out.
    expect(await store.removeTargets([{ id, removedAt: 4000 }])).toBe(1);
    await store.removeTargets([{ id, removedAt: 2000 }]);
    expect(await redis.hget(`t:${id}`, 'deleted')).toBe('at:4000');
    expect(await store.writeTargets([life(3500, 6)])).toBe(0);
    expect(await store.getTarget(id)).toBeNull();
    expect(await store.writeTargets([life(5000, 8)])).toBe(1);
    expect(await store.removeTargets([{ id }])).toBe(1);
  });

  it('lists the targets whose status changed last, newest first, ties in id order; a rewrite moves one, a removal or a null since drops it', async () => {
    await store.markBuilt(); // the index's layout is built: the list reads idx:since
    const t0 = 9_000_000_000_000; // later than every other target of this spec
    await store.writeTargets([
      write('instance:r-1', TargetStatus.Up, null, { since: t0 + 1 }),
      write('instance:r-2', TargetStatus.Down, null, { since: t0 + 3 }),
      write('instance:r-3', TargetStatus.Up, null, { since: t0 + 2 }),
    ]);
    const ids = async (n: number) => (await store.recentlyChanged(n)).map((t) => t.id);
    expect(await ids(3)).toEqual(['instance:r-2', 'instance:r-3', 'instance:r-1']);
    expect(await ids(2)).toEqual(['instance:r-2', 'instance:r-3']);
    expect(await ids(0)).toEqual([]);
    // r-1 changes status again: first. A late write (lower seq) does not move it back.
    await store.writeTargets([write('instance:r-1', TargetStatus.Down, TargetStatus.Up, { since: t0 + 4, seq: 2 })]);
    await store.writeTargets([write('instance:r-1', TargetStatus.Up, TargetStatus.Down, { since: t0 + 1, seq: 1 })]);
    expect(await ids(3)).toEqual(['instance:r-1', 'instance:r-2', 'instance:r-3']);
    expect((await store.recentlyChanged(1))[0]).toMatchObject({ id: 'instance:r-1', status: 'DOWN', since: t0 + 4 });
    // Removed: gone from the list (and a late write cannot bring it back).
    await store.removeTargets([{ id: 'instance:r-2' }]);
    await store.writeTargets([write('instance:r-2', TargetStatus.Down, null, { since: t0 + 9, seq: 9 })]);
    expect(await ids(3)).toEqual(['instance:r-1', 'instance:r-3', expect.not.stringMatching(/^instance:r-/)]);
    // Equal times in id order, also for the ties at the cut (Redis reads them in reverse order).
    await store.writeTargets(
      ['instance:r-t3', 'instance:r-t1', 'instance:r-t4', 'instance:r-t2'].map((id) =>
        write(id, TargetStatus.Up, null, { since: t0 + 100 }),
      ),
    );
    await store.writeTargets([write('instance:r-t0', TargetStatus.Up, null, { since: t0 + 101 })]);
    expect(await ids(3)).toEqual(['instance:r-t0', 'instance:r-t1', 'instance:r-t2']);
    expect(await ids(5)).toEqual(['instance:r-t0', 'instance:r-t1', 'instance:r-t2', 'instance:r-t3', 'instance:r-t4']);
    await store.removeTargets(
      ['instance:r-t0', 'instance:r-t1', 'instance:r-t2', 'instance:r-t3', 'instance:r-t4'].map((id) => ({ id })),
    );
    // A target without a status change yet (since null) is not listed.
    await store.writeTargets([write('instance:r-3', TargetStatus.Unknown, TargetStatus.Up, { since: null, seq: 5 })]);
    expect(await ids(2)).toEqual(['instance:r-1', expect.not.stringMatching(/^instance:r-/)]);
  });

  it('idx:since follows the hash a skipped write finds (written without the index); a since that is no number is not indexed', async () => {
    await store.markBuilt(); // the index's layout is built: the list reads idx:since
    const t0 = 9_100_000_000_000; // later than the targets above
    // What a writer without the index left (an older layout, or an older replica during an upgrade): seq 7.
    await redis.hset('t:instance:o-1', {
      kind: 'instance',
      name: 'instance:o-1',
      status: 'DOWN',
      since: String(t0 + 50),
      lastSeen: '2000',
      seq: '7',
    });
    // A rebuild page read before that write (seq 3) is skipped, and the target is listed all the same.
    expect(await store.writeTargets([write('instance:o-1', TargetStatus.Up, null, { since: t0 + 10, seq: 3 })])).toBe(
      0,
    );
    expect((await store.recentlyChanged(1))[0]).toMatchObject({ id: 'instance:o-1', status: 'DOWN', since: t0 + 50 });
    // A deleted target's marker: skipped and not indexed.
    await store.removeTargets([{ id: 'instance:o-1' }]);
    await store.writeTargets([write('instance:o-1', TargetStatus.Up, null, { since: t0 + 60, seq: 1 })]);
    expect(await redis.zscore('idx:since', 'instance:o-1')).toBeNull();
    // NaN and Infinity: the write lands (the script does not stop half way), no score that would break the read.
    for (const since of [Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(await store.writeTargets([write('instance:o-2', TargetStatus.Up, null, { since, seq: 1 })])).toBe(1);
      expect(await redis.zscore('idx:since', 'instance:o-2')).toBeNull();
      expect((await store.recentlyChanged(3)).map((t) => t.id)).not.toContain('instance:o-2');
      await store.removeTargets([{ id: 'instance:o-2' }]);
      await redis.del('t:instance:o-2');
    }
  });

  it('lists a target once when its since moves onto the cut between the two reads', async () => {
    await store.markBuilt(); // the index's layout is built: the list reads idx:since
    const t0 = 9_200_000_000_000;
    await store.writeTargets([
      write('instance:d-1', TargetStatus.Down, null, { since: t0 + 20 }),
      write('instance:d-2', TargetStatus.Up, null, { since: t0 + 10 }),
      write('instance:d-3', TargetStatus.Up, null, { since: t0 + 10 }),
    ]);
    // A client whose read of the ties at the cut comes after a write moves d-1 back onto the cut (a later status
    // change dated earlier: another location's clock).
    const racing = createRedis({ url: testEnv().redisUrl, keyPrefix: prefix });
    const reads = racing as unknown as { zrangebyscore: (...args: unknown[]) => Promise<string[]> };
    const original = reads.zrangebyscore.bind(racing);
    reads.zrangebyscore = async (...args) => {
      await store.writeTargets([write('instance:d-1', TargetStatus.Up, TargetStatus.Down, { since: t0 + 10, seq: 2 })]);
      return original(...args);
    };
    try {
      const ids = (await new LiveStateStore(racing, { keyPrefix: prefix }).recentlyChanged(2)).map((t) => t.id);
      expect(ids).toEqual(['instance:d-1', 'instance:d-2']);
    } finally {
      racing.disconnect();
      await store.removeTargets(['instance:d-1', 'instance:d-2', 'instance:d-3'].map((id) => ({ id })));
    }
  });

  it('without the layout mark (a gateway ahead of its aggregator), lists from the hashes in the index order', async () => {
    const t0 = 9_300_000_000_000; // later than every target above
    // An older aggregator's writes: hash and idx:all, no idx:since.
    const old = async (id: string, since: string | null) => {
      await redis.hset(`t:${id}`, { kind: 'instance', name: id, status: 'UP', lastSeen: '2000', seq: '1' });
      if (since !== null) await redis.hset(`t:${id}`, 'since', since);
      await redis.zadd('idx:all', 0, id);
    };
    await old('instance:h-1', String(t0 + 5));
    await old('instance:h-3', String(t0 + 7));
    await old('instance:h-2', String(t0 + 7));
    await old('instance:h-4', null);
    await old('instance:h-5', 'NaN');
    await store.writeTargets([write('instance:h-0', TargetStatus.Down, null, { since: t0 + 6 })]);
    const ids = async (n: number) => (await store.recentlyChanged(n)).map((t) => t.id);
    try {
      await redis.del('live:built:3');
      expect(await ids(4)).toEqual(['instance:h-2', 'instance:h-3', 'instance:h-0', 'instance:h-1']);
      expect(await ids(1)).toEqual(['instance:h-2']);
      expect((await store.recentlyChanged(3))[2]).toMatchObject({ id: 'instance:h-0', status: 'DOWN', since: t0 + 6 });
      // Built: the index is read (which the older writes are not in).
      await store.markBuilt();
      expect(await ids(2)).toEqual(['instance:h-0', expect.not.stringMatching(/^instance:h-/)]);
    } finally {
      await store.removeTargets(['0', '1', '2', '3', '4', '5'].map((n) => ({ id: `instance:h-${n}` })));
    }
  });

  it("a pushed instance's own kind: kept, indexed, listed with the target kinds (one OR), moved when it changes, gone with the target", async () => {
    const ids = ['instance:k-web', 'instance:k-api', 'instance:k-old', 'check:k-probe'];
    const listed = async (kind: string[], extra: { status?: string[] } = {}) =>
      (await store.listTargets({ kind, ...extra }, 1000)).items.map((t) => t.id).filter((id) => ids.includes(id));
    try {
      await store.writeTargets([
        write('instance:k-web', TargetStatus.Up, null, { instanceKind: InstanceKind.Container }),
        write('instance:k-api', TargetStatus.Down, null, { instanceKind: InstanceKind.Pod }),
        // Stored before kinds were kept: none.
        write('instance:k-old', TargetStatus.Up, null),
        write('check:k-probe', TargetStatus.Up, null, { kind: TargetKind.Check, lifecycle: null }),
      ]);
      const web = await store.getTarget('instance:k-web');
      expect(web?.instanceKind).toBe(InstanceKind.Container);
      expect(web && toTargetView(web).instanceKind).toBe(InstanceKind.Container);
      const old = await store.getTarget('instance:k-old');
      expect(old && toTargetView(old).instanceKind).toBeNull();
      expect(await redis.hexists('t:instance:k-old', 'instanceKind')).toBe(0);
      expect(await listed(['container'])).toEqual(['instance:k-web']);
      expect(await listed(['pod', 'check'])).toEqual(['check:k-probe', 'instance:k-api']);
      expect(await listed(['instance'])).toEqual(['instance:k-api', 'instance:k-old', 'instance:k-web']);
      expect(await listed(['instance', 'container'])).toEqual(['instance:k-api', 'instance:k-old', 'instance:k-web']);
      expect(await listed(['container', 'pod'], { status: ['DOWN'] })).toEqual(['instance:k-api']);
      expect((await store.listTargets({ kind: ['container'] }, 1000)).total).toBe(1);

      // Re-created as a pod: out of the container index, in the pod's.
      await store.writeTargets([
        write('instance:k-web', TargetStatus.Up, TargetStatus.Up, { seq: 2, instanceKind: InstanceKind.Pod }),
      ]);
      expect(await listed(['container'])).toEqual([]);
      expect(await listed(['pod'])).toEqual(['instance:k-api', 'instance:k-web']);
      // A late write (older than what Redis holds) moves nothing back.
      expect(
        await store.writeTargets([
          write('instance:k-web', TargetStatus.Up, null, { seq: 1, instanceKind: InstanceKind.Container }),
        ]),
      ).toBe(0);
      expect(await listed(['container'])).toEqual([]);
      expect((await store.getTarget('instance:k-web'))?.instanceKind).toBe(InstanceKind.Pod);

      // A removed instance leaves its kind's index too.
      await store.removeTargets([{ id: 'instance:k-api', removedAt: 5000 }]);
      expect(await redis.sismember('idx:ikind:pod', 'instance:k-api')).toBe(0);
      expect(await listed(['pod'])).toEqual(['instance:k-web']);
      expect((await store.listTargets({ kind: ['pod'] }, 1000)).total).toBe(1);
    } finally {
      await store.removeTargets(ids.map((id) => ({ id })));
    }
  });

  it("an instance an aggregator of the version before kinds removed: its kind's index entry goes at the next removal or life", async () => {
    // What a replica of the version before 525c119 (a rolling upgrade, a rollback) leaves when it removes an
    // instance this version indexed: its removal script reads kind/status/tags/locations from the hash and drops
    // those entries, deletes the hash for the marker, and leaves idx:ikind (which it does not know) as it was.
    const olderRemoval = async (id: string, at: number) => {
      await redis.srem('idx:kind:instance', id);
      await redis.srem('idx:status:UP', id);
      await redis.srem('idx:tag:web', id);
      await redis.srem('idx:loc:eu', id);
      await redis.zrem('idx:all', id);
      await redis.zrem('idx:since', id);
      await redis.del(`tl:${id}`, `t:${id}`);
      await redis.hset(`t:${id}`, 'deleted', `at:${at}`);
    };
    const ids = ['instance:o-web', 'instance:o-api'];
    const listed = async (kind: string[]) =>
      (await store.listTargets({ kind }, 1000)).items.map((t) => t.id).filter((id) => ids.includes(id));
    const total = async (kind: string[]) => (await store.listTargets({ kind }, 1000)).total;
    const containersBefore = await total(['container']);
    try {
      await store.writeTargets(
        ids.map((id) => write(id, TargetStatus.Up, null, { instanceKind: InstanceKind.Container })),
      );
      expect(await listed(['container'])).toEqual(['instance:o-api', 'instance:o-web']);
      await olderRemoval('instance:o-web', 5000);
      await olderRemoval('instance:o-api', 5000);

      // o-web comes back as a pod (written by this version): a pod, not a container too.
      await store.writeTargets([
        write('instance:o-web', TargetStatus.Up, null, { lastSeen: 6000, seq: 2, instanceKind: InstanceKind.Pod }),
      ]);
      expect(await listed(['pod'])).toEqual(['instance:o-web']);
      expect(await listed(['container'])).toEqual([]);

      // o-api stays removed; its tombstone projected again by this version (the reconcile of a shard it takes
      // projects the recent tombstones) takes it out of the count of containers.
      await store.removeTargets([{ id: 'instance:o-api', removedAt: 5000 }]);
      expect(await redis.sismember('idx:ikind:container', 'instance:o-api')).toBe(0);
      expect(await total(['container'])).toBe(containersBefore);
    } finally {
      await store.removeTargets(ids.map((id) => ({ id })));
    }
  });

  it('the summary counts add up, and a count Redis refuses fails the read instead of reading as 0', async () => {
    const c = await store.counts();
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    expect(c.total).toBeGreaterThan(0);
    expect(sum(c.byStatus)).toBe(c.total);
    expect(sum(c.byKind)).toBe(c.total);
    // An index key of the wrong type (a damaged or foreign key): SCARD answers WRONGTYPE.
    const saved = await redis.smembers('idx:status:UNKNOWN');
    await redis.del('idx:status:UNKNOWN');
    await redis.set('idx:status:UNKNOWN', 'not a set');
    try {
      await expect(store.counts()).rejects.toThrow(/WRONGTYPE/);
    } finally {
      await redis.del('idx:status:UNKNOWN');
      if (saved.length) await redis.sadd('idx:status:UNKNOWN', ...saved);
    }
  });
});
