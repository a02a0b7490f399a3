import { join } from 'node:path';
import { memberSnapshotSchema } from '@fleetwatch/contracts';
import { createRedis, FleetCache } from '@fleetwatch/live-state';
import { closeSqlPool, createSqlPool, FleetSitesRepository, type SqlPool } from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import { register } from 'prom-client';
import { FleetPoller, type PollCycleOptions } from './fleet-poller';
import { loadLeaderConfig, type LeaderMember } from './leader-config';
import { createMemberAgent, pollMember } from './member-client';
import { FleetRecordStore } from './member-record-store';

// The leader's poll cycle against simulated members (tools/fleet-sim) on real Redis and
// Postgres: good, failing, hanging, older and redirecting members, bounded concurrency,
// the overall timeout, and a canary secret that must appear nowhere.

interface Sim {
  url: string;
  members: { name: string; url: string }[];
  requests: { member: string; path: string; query: string; authorized: boolean; ifNoneMatch: string | null }[];
  load: { inFlight: number; maxInFlight: number };
  setBehaviour(name: string, b: Record<string, unknown>): void;
  close(): Promise<void>;
}
// The simulator is a tool (plain CommonJS, also run from the command line), loaded by path.
const { startFleetSim } = require(join(__dirname, '../../../../tools/fleet-sim/fleet-sim.cjs')) as {
  startFleetSim(o: Record<string, unknown>): Promise<Sim>;
};

const CANARY = 'canary-7b1e-SECRET-do-not-leak';
jest.setTimeout(60_000);

let sim: Sim;
let db: testing.IsolatedDatabase;
let pool: SqlPool;
let redis: Redis;
let cache: FleetCache;
let store: FleetRecordStore;
let sites: FleetSitesRepository;
const pollers: FleetPoller[] = [];

/** A poller writing through the leader's store (read back below through the gateway's FleetCache). */
function poller(options: PollCycleOptions): FleetPoller {
  const p = new FleetPoller(store, sites, options);
  pollers.push(p);
  return p;
}

function membersOf(list: { name: string; url: string }[], tokenFor: string[] = []): LeaderMember[] {
  return loadLeaderConfig(
    JSON.stringify(
      list.map((m) => ({
        ...m,
        ...(tokenFor.includes(m.name) ? { credentials: { type: 'token', tokenEnv: 'SIM_TOKEN' } } : {}),
      })),
    ),
    { SIM_TOKEN: CANARY },
  );
}

async function configure(members: LeaderMember[]): Promise<void> {
  await sites.syncConfigured(
    members.map((m) => ({ name: m.name, url: m.url, tags: m.tags, failoverOrder: null, propertyOverrides: {} })),
  );
}

beforeAll(async () => {
  const env = testing.testEnv();
  db = await testing.createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 2 });
  redis = createRedis({ url: env.redisUrl, keyPrefix: `${env.redisPrefix}fleet-poller:`, connectionName: 'test' });
  cache = new FleetCache(redis);
  store = new FleetRecordStore(redis);
  sites = new FleetSitesRepository(pool);
  sim = await startFleetSim({
    members: [
      { name: 'good', token: CANARY },
      { name: 'old', old: true },
      { name: 'flaky' },
      { name: 'drifted', drift: true, version: '1.1.0' },
    ],
  });
});

afterAll(async () => {
  for (const p of pollers) await p.close();
  await sim?.close();
  redis?.disconnect();
  if (pool) await closeSqlPool(pool);
  await db?.dispose();
});

describe('a poll cycle', () => {
  it('caches each member, degrades an older one to nulls, and turns a failing one STALE with age and error', async () => {
    const members = membersOf(sim.members, ['good']);
    await configure(members);
    const leader = poller({ concurrency: 10, timeoutMs: 5_000 });
    expect(await leader.cycle(members)).toMatchObject({ ok: 4, failed: 0, notStarted: 0 });

    const good = await cache.get('good');
    expect(good?.attempt).toMatchObject({ ok: true, error: null });
    expect(good?.good?.report?.site).toBe('good');
    expect(memberSnapshotSchema.parse(good?.good?.snapshot).areas.checks).toHaveLength(2);
    expect(good?.good?.flow?.points).toHaveLength(60);
    const old = await cache.get('old');
    expect(old?.attempt.ok).toBe(true);
    expect([old?.good?.flow, old?.good?.snapshot]).toEqual([null, null]);
    expect(old?.good?.report?.components[0].version).toBe('1.0.0');

    sim.setBehaviour('flaky', { fail: true });
    const firstAt = (await cache.get('flaky'))?.good?.at;
    await new Promise((r) => setTimeout(r, 20));
    expect(await leader.cycle(members)).toMatchObject({ ok: 3, failed: 1 });
    const flaky = await cache.get('flaky');
    expect(flaky?.attempt).toMatchObject({ ok: false, error: expect.stringContaining('answered 500') });
    expect(flaky?.good?.at).toBe(firstAt);
    expect(Date.parse(flaky?.attempt.at ?? '')).toBeGreaterThan(Date.parse(firstAt ?? ''));
    // The second cycle asked `good` only for the minutes since its last point; it still holds the hour.
    const flowAsks = sim.requests.filter((q) => q.member === 'good' && q.path === '/api/v1/metrics/flow');
    expect(flowAsks.map((q) => q.query)).toEqual(['minutes=60', 'minutes=2']);
    expect((await cache.get('good'))?.good?.flow?.points).toHaveLength(60);
    const row = await sites.find('flaky');
    expect(row).toMatchObject({ consecutiveFailures: 1, lastError: expect.stringContaining('500') });
    expect(row?.lastSuccessAt?.toISOString()).toBe(firstAt);
    sim.setBehaviour('flaky', { fail: false });
  });

  it('sends the token only to the member, and never across a redirect to another host', async () => {
    // `hop` redirects to the `good` member under another host name (localhost, not 127.0.0.1).
    const other = sim.url.replace('127.0.0.1', 'localhost');
    sim.setBehaviour('flaky', { redirectTo: `${other}/m/good` });
    const members = membersOf(
      sim.members.filter((m) => m.name === 'flaky'),
      ['flaky'],
    );
    const before = sim.requests.length;
    await poller({ concurrency: 2, timeoutMs: 5_000 }).cycle(members);
    const seen = sim.requests.slice(before);
    expect(seen.filter((r) => r.member === 'flaky').every((r) => r.authorized)).toBe(true);
    const redirected = seen.filter((r) => r.member === 'good');
    // At least the call that failed first (its 401 cancels the poll's other calls, which may not get there).
    expect(redirected.length).toBeGreaterThanOrEqual(1);
    expect(redirected.length).toBeLessThanOrEqual(3);
    expect(redirected.every((r) => !r.authorized)).toBe(true);
    // The good member requires the token: without it the redirected poll fails, visibly.
    expect((await cache.get('flaky'))?.attempt.error).toContain(
      'answered 401 (after a redirect to another host, which is never sent the leader’s credentials)',
    );
    sim.setBehaviour('flaky', { redirectTo: undefined });
  });

  it('keeps at most `concurrency` members in flight; a hanging member gives its worker back at the member timeout', async () => {
    const many = await startFleetSim({
      members: Array.from({ length: 20 }, (_, i) => ({ hang: i < 2 })),
      defaults: { latencyMs: 50 },
    });
    try {
      const members = membersOf(many.members);
      await configure(members);
      const t0 = Date.now();
      const r = await poller({ concurrency: 4, timeoutMs: 5_000, memberTimeoutMs: 700 }).cycle(members);
      expect(Date.now() - t0).toBeLessThan(4_000);
      expect(r).toMatchObject({ ok: 18, failed: 2, notStarted: 0 });
      // Each member's three requests go together: 4 members → at most 12 requests at once.
      expect(many.load.maxInFlight).toBeLessThanOrEqual(12);
      expect(many.load.maxInFlight).toBeGreaterThan(3);
      expect((await cache.get(many.members[0].name))?.attempt.error).toContain('member timeout');
    } finally {
      await many.close();
    }
  });

  it('ends at the overall timeout when members hang longer: open requests aborted, the rest not started', async () => {
    const many = await startFleetSim({ members: Array.from({ length: 6 }, (_, i) => ({ hang: i < 2 })) });
    try {
      const members = membersOf(many.members);
      await configure(members);
      const t0 = Date.now();
      const r = await poller({
        concurrency: 2,
        timeoutMs: 1_500,
        memberTimeoutMs: 60_000,
      }).cycle(members);
      const took = Date.now() - t0;
      // Polling is cut a tenth before the overall timeout (1,350 ms), leaving time to write.
      expect(took).toBeGreaterThanOrEqual(1_300);
      expect(took).toBeLessThan(3_000);
      expect(r).toMatchObject({ ok: 0, failed: 6, notStarted: 4 });
      expect((await cache.get(many.members[0].name))?.attempt.error).toContain('overall poll timeout');
      expect((await cache.get(many.members[5].name))?.attempt.error).toContain('not polled');
    } finally {
      await many.close();
    }
  });

  it('asks for an unchanged snapshot with If-None-Match: a 304 keeps the one held, a changed one replaces it', async () => {
    const members = membersOf(
      sim.members.filter((m) => ['good', 'drifted'].includes(m.name)),
      ['good'],
    );
    const leader = poller({ concurrency: 4, timeoutMs: 5_000 });
    await leader.cycle(members);
    const held = (await cache.get('drifted'))?.good?.snapshot;
    expect(held?.hash).toMatch(/^[0-9a-f]{64}$/);
    const before = sim.requests.length;
    await leader.cycle(members);
    const asked = sim.requests.slice(before).filter((q) => q.path === '/api/v1/system/snapshot/current');
    expect(asked.map((q) => [q.member, q.ifNoneMatch]).sort()).toEqual([
      ['drifted', `"${held?.hash}"`],
      ['good', `"${(await cache.get('good'))?.good?.snapshot?.hash}"`],
    ]);
    const kept = await cache.get('drifted');
    expect(kept?.attempt.ok).toBe(true);
    expect(kept?.good?.snapshot).toEqual(held);

    // Its configuration changes: a full answer, the new snapshot kept.
    sim.setBehaviour('drifted', { drift: false });
    await leader.cycle(members);
    const changed = (await cache.get('drifted'))?.good?.snapshot;
    expect(changed?.hash).not.toBe(held?.hash);
    expect(memberSnapshotSchema.parse(changed).areas.checks.map((c) => c.key)).not.toContain('extra');

    // A member that ignores If-None-Match sends the same snapshot whole: still kept, not replaced.
    sim.setBehaviour('drifted', { noEtag: true });
    await leader.cycle(members);
    expect((await cache.get('drifted'))?.good?.snapshot).toEqual(changed);
    sim.setBehaviour('drifted', { drift: true, noEtag: false });
  });

  it('a restarted leader starts from the cache: only the new flow minutes, the snapshot conditionally', async () => {
    const members = membersOf(
      sim.members.filter((m) => m.name === 'good'),
      ['good'],
    );
    await poller({ concurrency: 2, timeoutMs: 5_000 }).cycle(members);
    const hash = (await cache.get('good'))?.good?.snapshot?.hash;
    const before = sim.requests.length;
    expect(await poller({ concurrency: 2, timeoutMs: 5_000 }).cycle(members)).toMatchObject({ ok: 1 });
    const asked = sim.requests.slice(before);
    expect(asked.find((q) => q.path === '/api/v1/metrics/flow')?.query).toBe('minutes=2');
    expect(asked.find((q) => q.path === '/api/v1/system/snapshot/current')?.ifNoneMatch).toBe(`"${hash}"`);
    expect((await cache.get('good'))?.good?.flow?.points).toHaveLength(60);
  });

  it('a failing snapshot or flow call keeps the report (the member stays OK) and the last snapshot and flow held', async () => {
    const [good] = membersOf(
      sim.members.filter((m) => m.name === 'good'),
      ['good'],
    );
    await configure([good]);
    const leader = poller({ concurrency: 2, timeoutMs: 5_000 });
    await leader.cycle([good]);
    const before = await cache.get('good');
    expect(before?.good?.snapshot?.hash).toMatch(/^[0-9a-f]{64}$/);
    // The member's configuration owner away: its snapshot answers 500, its flow too; the report is fine.
    sim.setBehaviour('good', { failPaths: ['/api/v1/system/snapshot/current', '/api/v1/metrics/flow'] });
    try {
      await new Promise((r) => setTimeout(r, 20));
      expect(await leader.cycle([good])).toMatchObject({ ok: 1, failed: 0 });
      const after = await cache.get('good');
      expect(after?.attempt).toMatchObject({
        ok: true,
        error: expect.stringMatching(/^snapshot not read \(the last one kept\): .*answered 500.*; flow not read: /),
      });
      expect(Date.parse(after?.good?.at ?? '')).toBeGreaterThan(Date.parse(before?.good?.at ?? ''));
      expect(after?.good?.report?.site).toBe('good');
      expect(after?.good?.snapshot).toEqual(before?.good?.snapshot);
      expect(after?.good?.flow?.points).toHaveLength(60);
      expect(await sites.find('good')).toMatchObject({ consecutiveFailures: 0, lastError: null });
    } finally {
      sim.setBehaviour('good', { failPaths: [] });
    }
    // Flow failing for ten minutes, then back: the next asks for every minute since it was last read, not since the
    // last good poll (the ten minutes would be holes in the hour for good). The snapshot held reads as of when it was.
    const t = Date.now();
    const at = (minutes: number) => () => t + minutes * 60_000;
    const later = poller({ concurrency: 2, timeoutMs: 5_000 });
    await later.cycle([good], at(0));
    const readAt = (await cache.get('good'))?.good?.snapshotAt;
    sim.setBehaviour('good', { failPaths: ['/api/v1/system/snapshot/current', '/api/v1/metrics/flow'] });
    try {
      await later.cycle([good], at(10));
    } finally {
      sim.setBehaviour('good', { failPaths: [] });
    }
    expect((await cache.get('good'))?.good).toMatchObject({ snapshotAt: readAt, flowAt: readAt });
    const asked = sim.requests.length;
    await later.cycle([good], at(11));
    const flowAsk = sim.requests.slice(asked).find((q) => q.member === 'good' && q.path === '/api/v1/metrics/flow');
    expect(flowAsk?.query).toBe('minutes=12');

    // Over the size limit (a site with tens of thousands of checks): the same, the report kept. (Here the flow's
    // hour is over 4 KiB, the report and snapshot are not.)
    const agent = createMemberAgent(4096);
    try {
      const poll = await pollMember(good, AbortSignal.timeout(5_000), 60, { dispatcher: agent });
      expect(poll.report.site).toBe('good');
      expect(poll.flow).toBeNull();
      expect(poll.partial?.flow).toMatch(/answer too large/);
    } finally {
      await agent.close();
    }
  });

  it('refuses an answer over the size limit, naming neither URL host nor credentials', async () => {
    const [good] = membersOf(
      sim.members.filter((m) => m.name === 'good'),
      ['good'],
    );
    const agent = createMemberAgent(256);
    try {
      const failed = await pollMember(good, AbortSignal.timeout(5_000), 60, { dispatcher: agent }).catch(
        (e: Error) => e,
      );
      expect(failed).toBeInstanceOf(Error);
      expect((failed as Error).message).toMatch(/^GET \/api\/v1\/\S+: answer too large/);
      expect((failed as Error).message).not.toContain(CANARY);
    } finally {
      await agent.close();
    }
  });

  it('a canary secret appears nowhere: cache, fleet tables, metrics, the members as logged', async () => {
    const keys = await redis.keys(`${testing.testEnv().redisPrefix}fleet-poller:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      const v = await redis.get(k.slice(`${testing.testEnv().redisPrefix}fleet-poller:`.length));
      expect(v ?? '').not.toContain(CANARY);
    }
    const { rows } = await (pool as unknown as import('pg').Pool).query('SELECT * FROM fleet_sites');
    expect(JSON.stringify(rows)).not.toContain(CANARY);
    expect(await register.metrics()).not.toContain(CANARY);
    expect(JSON.stringify(membersOf(sim.members, ['good']))).not.toContain(CANARY);
  });
});
