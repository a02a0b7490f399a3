import { randomUUID } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import {
  Messages,
  TargetIds,
  TargetStatus,
  uuidv7,
  type CheckLifecycleState,
  type PayloadInputOf,
} from '@fleetwatch/contracts';
import { peerResultGraceMs } from '@fleetwatch/domain';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest } from '@fleetwatch/messaging';
import { closeSqlPool, createSqlPool, TargetStatesRepository } from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import { count, createIsolatedTestSite, flushPrefix, startAggregator, type TestSite } from '../aggregator.int-helpers';

// check.lifecycle through the running aggregator (issue 15): what sync-orchestrator says of a
// check — paused, resumed, deleted — reaches Redis (live state and its indexes), Postgres
// (target_states, history, status_events) and the bus (status.changed), in order with the
// check's results, whichever arrives first. The aggregator runs in this process on an
// isolated vhost, database and Redis prefix; the test publishes as the collector and the
// configuration owner would.

jest.setTimeout(90_000);

let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;

beforeAll(async () => {
  const name = 'agg-lifecycle';
  site = await createIsolatedTestSite(name, {
    STALE_AFTER_SECONDS: '5',
    SWEEP_INTERVAL_MS: '200',
    AGGREGATOR_BATCH_WAIT_MS: '20',
  });
  app = await startAggregator(site.env);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

function newCheck() {
  const checkId = randomUUID();
  return { checkId, targetId: TargetIds.check(checkId) };
}

const result = (
  c: { checkId: string; targetId: string },
  location: string,
  ok: boolean,
  startedAt: number,
  downQuorumPct?: number,
  intervalSeconds = 1,
  extra: { timeoutSeconds?: number; retries?: number } = {},
) =>
  publishRequest(Messages.CheckResult, {
    ...c,
    ...extra,
    location,
    ok,
    latencyMs: ok ? 3 : null,
    failureReason: ok ? undefined : 'connect ECONNREFUSED',
    startedAt: new Date(startedAt).toISOString(),
    intervalSeconds,
    checkName: 'api',
    checkType: 'tcp',
    tags: ['lifecycle'],
    // The quorum of the assignment the collector ran (absent: none of its own).
    ...(downQuorumPct !== undefined ? { downQuorumPct } : {}),
  });

type Lifecycle = PayloadInputOf<typeof Messages.CheckLifecycle>;
const lifecycle = (
  c: { checkId: string; targetId: string },
  state: CheckLifecycleState,
  version: number,
  at: number,
  extra: Partial<Lifecycle> = {},
  id: string = uuidv7(),
) =>
  publishRequest(Messages.CheckLifecycle, { ...c, state, version, at: new Date(at).toISOString(), ...extra }, { id });

const live = (targetId: string) => store.getTarget(targetId);
const locationsOf = async (targetId: string) => {
  const t = await live(targetId);
  return t
    ? Object.entries(t.locations)
        .map(([l, x]) => `${l}=${x.status}`)
        .sort()
        .join(' ')
    : null;
};
const row = async (targetId: string) =>
  (
    await site.pg.query<{ status: string; paused: boolean; config_version: number | null; deleted_at: Date | null }>(
      'SELECT status::text, paused, config_version, deleted_at FROM target_states WHERE target_id = $1',
      [targetId],
    )
  ).rows[0];
const deadlines = async (targetId: string) =>
  (
    await site.pg.query<{ location: string; deadline_at: Date | null }>(
      'SELECT location, deadline_at FROM target_location_states WHERE target_id = $1 ORDER BY location',
      [targetId],
    )
  ).rows;
const consensusEvents = async (targetId: string) =>
  (
    await site.pg.query<{ from_status: string; to_status: string }>(
      'SELECT from_status::text, to_status::text FROM status_events WHERE target_id = $1 AND location IS NULL ORDER BY sequence',
      [targetId],
    )
  ).rows.map((r) => `${r.from_status}>${r.to_status}`);
const results = (targetId: string) =>
  count(site.pg, 'SELECT count(*) AS n FROM check_results WHERE target_id = $1', [targetId]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function upFromTwo(c: { checkId: string; targetId: string }, at: number) {
  await site.bus.publisher.publishMany([result(c, 'eu', true, at), result(c, 'us', true, at)]);
  await waitFor(async () => (await locationsOf(c.targetId)) === 'eu=UP us=UP', { description: `${c.targetId} UP` });
}

/**
 * A new check at locations a, b and c: active, UP at each (`resultOf`), paused, then resumed (version 3), every
 * location UNKNOWN again.
 */
async function resumedAtABC(
  config: Partial<Lifecycle>,
  resultOf: (c: { checkId: string; targetId: string }, location: string, ok: boolean) => ReturnType<typeof result>,
) {
  const c = newCheck();
  await site.bus.publisher.publishMany([lifecycle(c, 'active', 1, Date.now(), config)]);
  await site.bus.publisher.publishMany(['a', 'b', 'c'].map((l) => resultOf(c, l, true)));
  await waitFor(async () => (await live(c.targetId))?.status === TargetStatus.Up, { description: 'UP' });
  await site.bus.publisher.publishMany([lifecycle(c, 'paused', 2, Date.now(), config)]);
  await waitFor(async () => (await live(c.targetId))?.status === TargetStatus.Paused, { description: 'PAUSED' });
  await site.bus.publisher.publishMany([lifecycle(c, 'active', 3, Date.now(), config)]);
  await waitFor(async () => (await locationsOf(c.targetId)) === 'a=UNKNOWN b=UNKNOWN c=UNKNOWN', {
    description: 'UNKNOWN after the resume',
  });
  return c;
}

/** The locations of `targetId` whose first result after a resume is still awaited. */
const awaitedIn = async (targetId: string) =>
  (
    await site.pg.query<{ location: string }>(
      "SELECT location FROM target_location_states WHERE target_id = $1 AND expire_reason LIKE '%(first result awaited)' ORDER BY location",
      [targetId],
    )
  ).rows.map((r) => r.location);

describe('check.lifecycle in the aggregator', () => {
  it('paused: PAUSED everywhere and no STALE; results are stored but change nothing; an older message undoes nothing; resumed: UNKNOWN until a newer result', async () => {
    const c = newCheck();
    const t0 = Date.now();
    await upFromTwo(c, t0);

    const pausedAt = Date.now();
    await site.bus.publisher.publishMany([lifecycle(c, 'paused', 2, pausedAt)]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'eu=PAUSED us=PAUSED', { description: 'PAUSED' });
    expect((await live(c.targetId))?.status).toBe(TargetStatus.Paused);
    expect(await row(c.targetId)).toMatchObject({ status: 'PAUSED', paused: true, config_version: 2 });
    expect((await deadlines(c.targetId)).map((d) => d.deadline_at)).toEqual([null, null]);
    expect((await site.pg.query('SELECT 1 FROM status_event_outbox')).rowCount).toBe(0);
    await waitFor(
      () => site.changes.some((e) => e.targetId === c.targetId && e.location === null && e.to === TargetStatus.Paused),
      { description: 'status.changed → PAUSED on the bus' },
    );
    expect(site.changes.filter((e) => e.targetId === c.targetId && e.to === TargetStatus.Paused)).toHaveLength(3);

    // A result started before the pause (in flight) and one after it (a collector still on its old assignment).
    const before = await results(c.targetId);
    await site.bus.publisher.publishMany([
      result(c, 'us', false, pausedAt - 100),
      result(c, 'eu', false, pausedAt + 100),
      // Older than what the target holds: changes nothing.
      lifecycle(c, 'active', 1, t0),
    ]);
    await waitFor(async () => (await results(c.targetId)) === before + 2, { description: 'both results stored' });
    // Past the deadline the results before the pause set (2 × 1 s + 5 s slack): a pause is not silence.
    await sleep(Math.max(0, t0 + 7_000 + 1_000 - Date.now()));
    expect(await locationsOf(c.targetId)).toBe('eu=PAUSED us=PAUSED');
    expect(await row(c.targetId)).toMatchObject({ status: 'PAUSED', paused: true, config_version: 2 });
    expect(await consensusEvents(c.targetId)).toEqual(['UNKNOWN>UP', 'UP>PAUSED']);

    const resumedAt = Date.now();
    await site.bus.publisher.publishMany([lifecycle(c, 'active', 3, resumedAt, { intervalSeconds: 1 })]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'eu=UNKNOWN us=UNKNOWN', {
      description: 'UNKNOWN after the resume',
    });
    expect(await row(c.targetId)).toMatchObject({ status: 'UNKNOWN', paused: false, config_version: 3 });
    // Each location expects a result within two intervals and the slack of the resume.
    for (const d of await deadlines(c.targetId))
      expect(d.deadline_at?.getTime()).toBe(new Date(new Date(resumedAt).toISOString()).getTime() + 7_000);

    // Spooled while paused (started before the resume): no status from it.
    await site.bus.publisher.publishMany([result(c, 'eu', false, resumedAt - 50)]);
    await waitFor(async () => (await results(c.targetId)) === before + 3, { description: 'the spooled result' });
    expect((await live(c.targetId))?.status).toBe(TargetStatus.Unknown);

    await upFromTwo(c, Date.now());
    expect(await consensusEvents(c.targetId)).toEqual(['UNKNOWN>UP', 'UP>PAUSED', 'PAUSED>UNKNOWN', 'UNKNOWN>UP']);
  });

  it("paused: a result from a location not heard before moves the target's last seen in Postgres as in Redis (kept through a rebuild)", async () => {
    // One paused check heard from eu and us before the pause, one paused before any result (no location at all).
    const c = newCheck();
    const t0 = Date.now() - 5_000;
    await upFromTwo(c, t0);
    const bare = newCheck();
    await site.bus.publisher.publishMany([
      lifecycle(bare, 'active', 10, Date.now(), { name: 'bare', checkType: 'tcp' }),
      lifecycle(bare, 'paused', 11, Date.now()),
      lifecycle(c, 'paused', 11, Date.now()),
    ]);
    await waitFor(
      async () =>
        (await live(c.targetId))?.status === TargetStatus.Paused &&
        (await live(bare.targetId))?.status === TargetStatus.Paused,
      { description: 'both PAUSED' },
    );

    // Results from a location neither has been heard from (a collector still on its old assignment).
    const seenAt = Date.now() - 1_000;
    await site.bus.publisher.publishMany([result(c, 'ap', true, seenAt), result(bare, 'ap', true, seenAt)]);
    await waitFor(async () => (await results(c.targetId)) === 3 && (await results(bare.targetId)) === 1, {
      description: 'both results stored',
    });
    // Live state: proof of life, no location while paused.
    await waitFor(async () => (await live(c.targetId))?.lastSeen === seenAt, { description: 'last seen in Redis' });
    await waitFor(async () => (await live(bare.targetId))?.lastSeen === seenAt, { description: 'bare: in Redis' });
    expect(await locationsOf(c.targetId)).toBe('eu=PAUSED us=PAUSED');
    expect(await locationsOf(bare.targetId)).toBe('');

    // The durable copy says the same (what the gateway and the rebuild read)...
    const pool = createSqlPool(site.database.databaseUrl, { max: 1 });
    try {
      const durable = await new TargetStatesRepository(pool).findMany([c.targetId, bare.targetId]);
      expect(new Map(durable.map((t) => [t.id, t.lastSeen]))).toEqual(
        new Map([
          [c.targetId, seenAt],
          [bare.targetId, seenAt],
        ]),
      );
    } finally {
      await closeSqlPool(pool);
    }
    // ...so a Redis rebuilt from Postgres keeps it.
    await flushPrefix(site.redis, site.redisPrefix);
    await waitFor(async () => (await live(c.targetId)) !== null && (await live(bare.targetId)) !== null, {
      description: 'rebuilt',
    });
    expect((await live(c.targetId))?.lastSeen).toBe(seenAt);
    expect((await live(bare.targetId))?.lastSeen).toBe(seenAt);
    // The rebuild writes a target's hash before its locations': waited for, not read once (a loaded CI read none).
    await waitFor(async () => (await locationsOf(c.targetId)) === 'eu=PAUSED us=PAUSED', {
      description: 'locations rebuilt',
    });
  });

  it('resumed and then silent: STALE once the resume deadline passes', async () => {
    const c = newCheck();
    await upFromTwo(c, Date.now());
    await site.bus.publisher.publishMany([
      lifecycle(c, 'paused', 4, Date.now()),
      lifecycle(c, 'active', 5, Date.now(), { intervalSeconds: 1 }),
    ]);
    await waitFor(async () => (await live(c.targetId))?.status === TargetStatus.Stale, {
      timeoutMs: 15_000,
      description: 'STALE after the resume deadline',
    });
    expect(await locationsOf(c.targetId)).toBe('eu=STALE us=STALE');
  });

  it('a heartbeat monitor never pinged: UNKNOWN, then DOWN once period + grace pass after its creation (it stayed UNKNOWN for ever)', async () => {
    const c = newCheck();
    const createdAt = Date.now();
    await site.bus.publisher.publishMany([
      lifecycle(c, 'active', 1, createdAt, { name: 'nightly', checkType: 'push', intervalSeconds: 2 }),
    ]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'push=UNKNOWN', { description: 'waiting' });
    expect((await live(c.targetId))?.status).toBe(TargetStatus.Unknown);
    expect((await deadlines(c.targetId)).map((d) => [d.location, d.deadline_at?.getTime()])).toEqual([
      ['push', createdAt + 2000],
    ]);
    await waitFor(async () => (await live(c.targetId))?.status === TargetStatus.Down, {
      timeoutMs: 15_000,
      description: 'DOWN after period + grace',
    });
    expect(await consensusEvents(c.targetId)).toEqual(['UNKNOWN>DOWN']);
    const { rows } = await site.pg.query<{ reason: string }>(
      'SELECT reason FROM status_events WHERE target_id = $1 AND location IS NULL',
      [c.targetId],
    );
    expect(rows[0].reason).toContain('no ping within period + grace (2s) of its creation');
  });

  it('deleted: gone from live state and its indexes, kept in history; a late result and a redelivery bring nothing back', async () => {
    const c = newCheck();
    await upFromTwo(c, Date.now());
    await waitFor(async () => (await store.deadlineOf(c.targetId, 'eu')) !== null, { description: 'a deadline' });
    const stored = await results(c.targetId);

    const deleteId = uuidv7();
    await site.bus.publisher.publishMany([lifecycle(c, 'deleted', 6, Date.now(), {}, deleteId)]);
    await waitFor(async () => (await live(c.targetId)) === null, { description: 'gone from Redis' });
    const listed = async () => (await store.listTargets({}, 1000)).items.map((t) => t.id);
    expect(await listed()).not.toContain(c.targetId);
    for (const filter of [{ kind: ['check'] }, { tag: 'lifecycle' }, { location: 'eu' }, { status: ['UP'] }])
      expect((await store.listTargets(filter, 1000)).items.map((t) => t.id)).not.toContain(c.targetId);
    for (const l of ['eu', 'us']) expect(await store.deadlineOf(c.targetId, l)).toBeNull();
    expect(await row(c.targetId)).toMatchObject({ config_version: 6 });
    expect((await row(c.targetId)).deleted_at).not.toBeNull();
    expect(await deadlines(c.targetId)).toEqual([]);
    expect(await results(c.targetId)).toBe(stored);

    // A late result (a spool flushed after the delete), then the same delete again (redelivered).
    await site.bus.publisher.publishMany([result(c, 'eu', true, Date.now())]);
    await waitFor(async () => (await results(c.targetId)) === stored + 1, { description: 'the late result stored' });
    // As if the removal had not reached Redis before a crash: the redelivered delete removes it again.
    await site.redis.del(`t:${c.targetId}`);
    await site.redis.hset(`t:${c.targetId}`, { kind: 'check', name: 'api', status: 'UP', seq: '2' });
    await site.redis.zadd('idx:all', 0, c.targetId);
    await site.bus.publisher.publishMany([lifecycle(c, 'deleted', 6, Date.now(), {}, deleteId)]);
    await waitFor(async () => (await live(c.targetId)) === null, { description: 'removed again by the redelivery' });
    expect(await listed()).not.toContain(c.targetId);
    expect(await deadlines(c.targetId)).toEqual([]);

    // A flushed Redis is rebuilt from Postgres without the tombstone.
    const other = newCheck();
    await upFromTwo(other, Date.now());
    await flushPrefix(site.redis, site.redisPrefix);
    await waitFor(async () => (await live(other.targetId)) !== null, { description: 'rebuilt' });
    expect(await live(c.targetId)).toBeNull();
    expect(await listed()).not.toContain(c.targetId);
  });

  it('a location taken off the check: gone from Redis, Postgres and the location index, never STALE; its late results are history only', async () => {
    const c = newCheck();
    await upFromTwo(c, Date.now());
    await waitFor(async () => (await store.deadlineOf(c.targetId, 'us')) !== null, { description: 'a deadline at us' });
    // us DOWN: the check is not UP (PARTIAL or DOWN, as the site's quorum says).
    await site.bus.publisher.publishMany([result(c, 'us', false, Date.now())]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'eu=UP us=DOWN', { description: 'us DOWN' });
    const before = (await live(c.targetId))?.status;
    expect(before).not.toBe(TargetStatus.Up);

    await site.bus.publisher.publishMany([lifecycle(c, 'active', 10, Date.now(), { locations: ['eu'] })]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'eu=UP', { description: 'us dropped from Redis' });
    await waitFor(async () => (await live(c.targetId))?.status === TargetStatus.Up, { description: 'UP over eu' });
    expect((await deadlines(c.targetId)).map((d) => d.location)).toEqual(['eu']);
    expect((await store.listTargets({ location: 'us' }, 1000)).items.map((t) => t.id)).not.toContain(c.targetId);
    expect((await consensusEvents(c.targetId)).at(-1)).toBe(`${before}>UP`);
    const stored = (
      await site.pg.query<{ configured_locations: string[] | null }>(
        'SELECT configured_locations FROM target_states WHERE target_id = $1',
        [c.targetId],
      )
    ).rows[0];
    expect(stored.configured_locations).toEqual(['eu']);

    // The us collector has not read its new assignment yet: its result is stored, and changes nothing.
    const before2 = await results(c.targetId);
    await site.bus.publisher.publishMany([result(c, 'us', false, Date.now())]);
    await waitFor(async () => (await results(c.targetId)) === before2 + 1, { description: 'the late result stored' });
    await sleep(300);
    expect(await locationsOf(c.targetId)).toBe('eu=UP');
    expect((await deadlines(c.targetId)).map((d) => d.location)).toEqual(['eu']);
    // us's old deadline (Redis's deadline set still lists it until it is due) passes with nothing to expire, while
    // eu goes on reporting: the check stays UP, and no event says STALE.
    while ((await store.deadlineOf(c.targetId, 'us')) !== null) {
      await site.bus.publisher.publishMany([result(c, 'eu', true, Date.now())]);
      await sleep(500);
    }
    await sleep(500);
    expect(await locationsOf(c.targetId)).toBe('eu=UP');
    expect((await live(c.targetId))?.status).toBe(TargetStatus.Up);
    const stale = await site.pg.query("SELECT 1 FROM status_events WHERE target_id = $1 AND to_status = 'STALE'", [
      c.targetId,
    ]);
    expect(stale.rowCount).toBe(0);
  });

  it('a quorum edit takes effect at once, and results of collectors on the old and the new assignment no longer flap the consensus', async () => {
    const c = newCheck();
    const quorum = async () =>
      (
        await site.pg.query<{ q: number | null }>(
          'SELECT down_quorum_pct AS q FROM target_states WHERE target_id = $1',
          [c.targetId],
        )
      ).rows[0]?.q;
    // Created with no quorum of its own (the site's, 100 %): eu DOWN, us UP is PARTIAL.
    await site.bus.publisher.publishMany([
      lifecycle(c, 'active', 1, Date.now(), { locations: ['eu', 'us'], intervalSeconds: 1, downQuorumPct: null }),
    ]);
    await upFromTwo(c, Date.now());
    await site.bus.publisher.publishMany([result(c, 'eu', false, Date.now())]);
    await waitFor(async () => (await live(c.targetId))?.status === TargetStatus.Partial, { description: 'PARTIAL' });

    // Edited to 50 %: DOWN at once, before any result of the new assignment.
    const stored = await results(c.targetId);
    await site.bus.publisher.publishMany([
      lifecycle(c, 'active', 2, Date.now(), { locations: ['eu', 'us'], intervalSeconds: 1, downQuorumPct: 50 }),
    ]);
    await waitFor(async () => (await live(c.targetId))?.status === TargetStatus.Down, { description: 'DOWN at once' });
    expect(await quorum()).toBe(50);
    expect(await results(c.targetId)).toBe(stored);

    // eu has read its new assignment (50 %), us still runs the old one (none of its own): interval after interval.
    for (let i = 0; i < 3; i++) {
      const at = Date.now();
      await site.bus.publisher.publishMany([result(c, 'eu', false, at, 50)]);
      await waitFor(async () => (await results(c.targetId)) === stored + 2 * i + 1, { description: `eu ${i}` });
      await site.bus.publisher.publishMany([result(c, 'us', true, at + 1)]);
      await waitFor(async () => (await results(c.targetId)) === stored + 2 * i + 2, { description: `us ${i}` });
    }
    await sleep(300);
    expect((await live(c.targetId))?.status).toBe(TargetStatus.Down);
    expect(await row(c.targetId)).toMatchObject({ status: 'DOWN', config_version: 2 });
    expect(await quorum()).toBe(50);
    expect(await consensusEvents(c.targetId)).toEqual(['UNKNOWN>UP', 'UP>PARTIAL', 'PARTIAL>DOWN']);
    const { rows } = await site.pg.query<{ reason: string }>(
      "SELECT reason FROM status_events WHERE target_id = $1 AND location IS NULL AND to_status = 'DOWN'",
      [c.targetId],
    );
    expect(rows.map((r) => r.reason)).toEqual(['consensus quorum changed to 50 % (config version 2)']);
  });

  it('resumed, 3 locations at a quorum of 2: the first to report DOWN does not decide alone; enough votes do', async () => {
    // Every result runs at a 30 s interval: no deadline passes during the test.
    const at30 = (c: { checkId: string; targetId: string }, location: string, ok: boolean) =>
      result(c, location, ok, Date.now(), 66, 30);
    const config = { locations: ['a', 'b', 'c'], intervalSeconds: 30, downQuorumPct: 66 };
    const resumedCheck = () => resumedAtABC(config, at30);
    const downOnBus = (targetId: string) =>
      site.changes.filter((e) => e.targetId === targetId && e.location === null && e.to === TargetStatus.Down);

    // a DOWN first: its location moves, the target does not (b and c could still make it PARTIAL).
    const one = await resumedCheck();
    expect(await awaitedIn(one.targetId)).toEqual(['a', 'b', 'c']);
    await site.bus.publisher.publishMany([at30(one, 'a', false)]);
    await waitFor(async () => (await locationsOf(one.targetId)) === 'a=DOWN b=UNKNOWN c=UNKNOWN', {
      description: 'a DOWN',
    });
    expect((await live(one.targetId))?.status).toBe(TargetStatus.Unknown);
    expect(await row(one.targetId)).toMatchObject({ status: 'UNKNOWN' });
    expect(await awaitedIn(one.targetId)).toEqual(['b', 'c']);
    // b UP: c decides.
    await site.bus.publisher.publishMany([at30(one, 'b', true)]);
    await waitFor(async () => (await locationsOf(one.targetId)) === 'a=DOWN b=UP c=UNKNOWN', { description: 'b UP' });
    expect((await live(one.targetId))?.status).toBe(TargetStatus.Unknown);
    expect(downOnBus(one.targetId)).toEqual([]);
    // c DOWN: two of three → DOWN.
    await site.bus.publisher.publishMany([at30(one, 'c', false)]);
    await waitFor(async () => (await live(one.targetId))?.status === TargetStatus.Down, { description: 'DOWN' });
    expect(await row(one.targetId)).toMatchObject({ status: 'DOWN' });
    expect(await consensusEvents(one.targetId)).toEqual(['UNKNOWN>UP', 'UP>PAUSED', 'PAUSED>UNKNOWN', 'UNKNOWN>DOWN']);
    await waitFor(() => downOnBus(one.targetId).length === 1, { description: 'status.changed → DOWN on the bus' });

    // a DOWN first, then b and c UP: PARTIAL (one of three), never DOWN; a UP again: UP.
    const two = await resumedCheck();
    await site.bus.publisher.publishMany([at30(two, 'a', false)]);
    await waitFor(async () => (await locationsOf(two.targetId)) === 'a=DOWN b=UNKNOWN c=UNKNOWN', {
      description: 'a DOWN',
    });
    await site.bus.publisher.publishMany([at30(two, 'b', true)]);
    await waitFor(async () => (await locationsOf(two.targetId)) === 'a=DOWN b=UP c=UNKNOWN', { description: 'b UP' });
    await site.bus.publisher.publishMany([at30(two, 'c', true)]);
    await waitFor(async () => (await live(two.targetId))?.status === TargetStatus.Partial, { description: 'PARTIAL' });
    await site.bus.publisher.publishMany([at30(two, 'a', true)]);
    await waitFor(async () => (await live(two.targetId))?.status === TargetStatus.Up, { description: 'UP' });
    expect(await consensusEvents(two.targetId)).toEqual([
      'UNKNOWN>UP',
      'UP>PAUSED',
      'PAUSED>UNKNOWN',
      'UNKNOWN>PARTIAL',
      'PARTIAL>UP',
    ]);
    expect(downOnBus(two.targetId)).toEqual([]);
    expect(await awaitedIn(two.targetId)).toEqual([]);
  });

  it('resumed daily check, one location silent: DOWN once the others agree and the run is over, not two days on', async () => {
    // Every collector runs a check at the same instant: once a and c have reported, b's result of that run is due
    // within the run's time (1 attempt of 1 s, the probe's 1 s overrun), the lateness a healthy location may run the
    // slot with (60 s), one missed slot (capped at 15 min) and the 5 s slack — 16 min 7 s after a's was heard. The
    // test checks the bound stored in Postgres, then moves it to now rather than wait for it: the sweep that follows is
    // the aggregator's own.
    const DAY = 86_400;
    const G = peerResultGraceMs({ intervalSeconds: DAY, timeoutSeconds: 1, retries: 0 });
    expect(G).toBe(16 * 60_000 + 7000);
    const daily = (c: { checkId: string; targetId: string }, location: string, ok: boolean) =>
      result(c, location, ok, Date.now(), 100, DAY, { timeoutSeconds: 1, retries: 0 });
    const config = { locations: ['a', 'b', 'c'], intervalSeconds: DAY, downQuorumPct: 100 };
    const c = await resumedAtABC(config, daily);
    const dueB = async () => (await deadlines(c.targetId)).find((d) => d.location === 'b')?.deadline_at?.getTime();
    // Before any result: b due two days on (the resume's deadline).
    expect(await dueB()).toBeGreaterThan(Date.now() + 2 * DAY * 1000 - 60_000);

    const sent = Date.now();
    await site.bus.publisher.publishMany([daily(c, 'a', false), daily(c, 'c', false)]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'a=DOWN b=UNKNOWN c=DOWN', {
      description: 'a and c DOWN',
    });
    const heard = Date.now();
    // b still awaited (it could still make it PARTIAL), but due G after a's result was heard.
    expect((await live(c.targetId))?.status).toBe(TargetStatus.Unknown);
    expect(await awaitedIn(c.targetId)).toEqual(['b']);
    const due = (await dueB()) as number;
    expect(due).toBeGreaterThanOrEqual(sent + G);
    expect(due).toBeLessThanOrEqual(heard + G);
    // Still held meanwhile (a location up to a minute and a slot late is counted).
    await new Promise((r) => setTimeout(r, 5_000));
    expect((await live(c.targetId))?.status).toBe(TargetStatus.Unknown);
    expect(await dueB()).toBe(due);

    // The bound reached: moved to now in Postgres (what the sweeper expires by), the rest as it is.
    const moved = await site.pg.query(
      "UPDATE target_location_states SET deadline_at = now() WHERE target_id = $1 AND location = 'b'",
      [c.targetId],
    );
    expect(moved.rowCount).toBe(1);
    expect(await dueB()).toBeLessThanOrEqual(Date.now());
    await waitFor(async () => (await live(c.targetId))?.status === TargetStatus.Down, {
      timeoutMs: 30_000,
      description: 'DOWN once b is STALE',
    });
    expect(await locationsOf(c.targetId)).toBe('a=DOWN b=STALE c=DOWN');
    expect(await row(c.targetId)).toMatchObject({ status: 'DOWN' });
    expect(await awaitedIn(c.targetId)).toEqual([]);
    expect(await consensusEvents(c.targetId)).toEqual(['UNKNOWN>UP', 'UP>PAUSED', 'PAUSED>UNKNOWN', 'UNKNOWN>DOWN']);
    const { rows } = await site.pg.query<{ transition: string; reason: string }>(
      "SELECT from_status::text || '>' || to_status::text AS transition, reason FROM status_events WHERE target_id = $1 AND location = 'b' ORDER BY sequence",
      [c.targetId],
    );
    expect(rows.at(-1)).toEqual({
      transition: 'UNKNOWN>STALE',
      reason: `no result within 2 × ${DAY}s of the resume (another location has reported this run) (first result awaited)`,
    });
    // status.changed → DOWN on the bus (what 'Target down' follows), once.
    await waitFor(
      () =>
        site.changes.filter((e) => e.targetId === c.targetId && e.location === null && e.to === 'DOWN').length === 1,
      { description: 'status.changed → DOWN on the bus' },
    );
    // b's collector back: b is heard again, and the consensus follows it.
    await site.bus.publisher.publishMany([daily(c, 'b', true)]);
    await waitFor(async () => (await live(c.targetId))?.status === TargetStatus.Partial, { description: 'PARTIAL' });
  }, 180_000);

  it('a location added that never reports (its collector down, its name mistyped): UNKNOWN, then STALE there', async () => {
    const c = newCheck();
    const at = Date.now();
    await site.bus.publisher.publishMany([
      lifecycle(c, 'active', 1, at, { name: 'api', checkType: 'tcp', locations: ['eu'], intervalSeconds: 1 }),
    ]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'eu=UNKNOWN', { description: 'eu waits' });
    await site.bus.publisher.publishMany([result(c, 'eu', true, Date.now())]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'eu=UP', { description: 'eu UP' });
    // [eu] → [eu, ghost]: nothing dropped; ghost has no collector.
    const addedAt = Date.now();
    await site.bus.publisher.publishMany([
      lifecycle(c, 'active', 2, addedAt, { locations: ['eu', 'ghost'], intervalSeconds: 1 }),
    ]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'eu=UP ghost=UNKNOWN', {
      description: 'ghost waits',
    });
    expect((await deadlines(c.targetId)).find((d) => d.location === 'ghost')?.deadline_at?.getTime()).toBe(
      addedAt + 7_000,
    );
    await waitFor(async () => (await live(c.targetId))?.locations.ghost?.status === TargetStatus.Stale, {
      timeoutMs: 15_000,
      description: 'ghost STALE',
    });
    const { rows } = await site.pg.query<{ from_status: string; to_status: string }>(
      "SELECT from_status::text, to_status::text FROM status_events WHERE target_id = $1 AND location = 'ghost'",
      [c.targetId],
    );
    expect(rows.map((r) => `${r.from_status}>${r.to_status}`)).toEqual(['UNKNOWN>STALE']);
  });

  it('a location awaited since the creation, the interval shortened: it holds the check back two new intervals, not two old', async () => {
    const c = newCheck();
    const config = { name: 'api', checkType: 'tcp', locations: ['a', 'b', 'ghost'] };
    await site.bus.publisher.publishMany([lifecycle(c, 'active', 1, Date.now(), { ...config, intervalSeconds: 3600 })]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'a=UNKNOWN b=UNKNOWN ghost=UNKNOWN', {
      description: 'every location awaited',
    });
    // Shortened to 1 s before any result: ghost (no collector) is due as a location added now would be.
    const shortenedAt = Date.now();
    await site.bus.publisher.publishMany([lifecycle(c, 'active', 2, shortenedAt, { ...config, intervalSeconds: 1 })]);
    await waitFor(
      async () =>
        (await deadlines(c.targetId)).find((d) => d.location === 'ghost')?.deadline_at?.getTime() ===
        shortenedAt + 7_000,
      { description: 'ghost due two new intervals and the slack on' },
    );
    await site.bus.publisher.publishMany([result(c, 'a', false, Date.now()), result(c, 'b', false, Date.now())]);
    await waitFor(async () => (await locationsOf(c.targetId)) === 'a=DOWN b=DOWN ghost=UNKNOWN', {
      description: 'a and b DOWN',
    });
    expect((await live(c.targetId))?.status).toBe(TargetStatus.Unknown);
    // ghost's deadline passes (before a's and b's): DOWN, where it stayed UNKNOWN for two hours.
    await waitFor(async () => (await consensusEvents(c.targetId))[0] === 'UNKNOWN>DOWN', {
      timeoutMs: 15_000,
      description: 'DOWN once ghost is STALE',
    });
    const { rows } = await site.pg.query<{ from_status: string; to_status: string }>(
      "SELECT from_status::text, to_status::text FROM status_events WHERE target_id = $1 AND location = 'ghost'",
      [c.targetId],
    );
    expect(rows.map((r) => `${r.from_status}>${r.to_status}`)).toEqual(['UNKNOWN>STALE']);
  });

  it('a check not heard of yet: listed UNKNOWN from its creation, PAUSED when paused, and a delete of an unknown check leaves a tombstone', async () => {
    const created = newCheck();
    await site.bus.publisher.publishMany([
      lifecycle(created, 'active', 7, Date.now(), { name: 'new api', checkType: 'http', tags: ['fresh'] }),
    ]);
    const t = await waitFor(() => live(created.targetId), { description: 'listed after creation' });
    expect(t).toMatchObject({ kind: 'check', name: 'new api', status: TargetStatus.Unknown, tags: ['fresh'] });
    expect((await store.listTargets({ tag: 'fresh' }, 10)).items.map((x) => x.id)).toEqual([created.targetId]);

    await site.bus.publisher.publishMany([lifecycle(created, 'paused', 8, Date.now())]);
    await waitFor(async () => (await live(created.targetId))?.status === TargetStatus.Paused, {
      description: 'PAUSED with no location',
    });

    const unknown = newCheck();
    await site.bus.publisher.publishMany([
      lifecycle(unknown, 'deleted', 9, Date.now()),
      result(unknown, 'eu', true, Date.now()),
    ]);
    await waitFor(async () => (await results(unknown.targetId)) === 1, { description: 'the result stored' });
    await waitFor(async () => (await row(unknown.targetId))?.deleted_at != null, { description: 'a tombstone' });
    expect(await live(unknown.targetId)).toBeNull();
    expect(await deadlines(unknown.targetId)).toEqual([]);
  });
});
