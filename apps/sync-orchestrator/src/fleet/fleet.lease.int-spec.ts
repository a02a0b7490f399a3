import { join } from 'node:path';
import { createRedis, FLEET_POLL_EPOCH_KEY, FleetCache } from '@fleetwatch/live-state';
import type { MemberPollRecord } from '@fleetwatch/contracts';
import {
  closeSqlPool,
  createSqlPool,
  FleetPollFencedError,
  FleetSitesRepository,
  type SqlPool,
} from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { SyncConfig } from '../config';
import { fleetProviders } from './fleet.providers';
import { FLEET_POLL_LEASE_NAME, FleetService, LEADER_MEMBERS } from './fleet.service';
import { loadLeaderConfig, type LeaderMember } from './leader-config';
import { FleetRecordStore } from './member-record-store';

// The fleet-poll lease between sync-orchestrator replicas (SPEC §8 singleton jobs) on real Postgres and
// Redis, members simulated (tools/fleet-sim): what a replica writes when it takes the lease (again), that a
// holder whose lease session died cannot write its cycle over the next holder's (the lease's epoch), what
// a replica whose configuration lists no member does with the members configured before (and with those
// of a replica beside it that has some), and that a member site polls nothing.

interface Sim {
  members: { name: string; url: string }[];
  /** Every request the members were sent (path, …), in order of arrival. */
  requests: unknown[];
  setBehaviour(name: string, b: Record<string, unknown>): void;
  close(): Promise<void>;
}
const { startFleetSim } = require(join(__dirname, '../../../../tools/fleet-sim/fleet-sim.cjs')) as {
  startFleetSim(o: Record<string, unknown>): Promise<Sim>;
};

jest.setTimeout(60_000);

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Logger;
const INTERVAL_MS = 200;

/** A logger that keeps what it was given (level, message, time). */
function recorder(): {
  logger: Logger;
  lines: { level: string; msg: string; obj: Record<string, unknown>; at: number }[];
} {
  const lines: { level: string; msg: string; obj: Record<string, unknown>; at: number }[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) =>
    void lines.push({ level, msg, obj, at: Date.now() });
  return { logger: { info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger, lines };
}

const configuredCount = async (): Promise<number> => {
  const { rows } = await (pool as unknown as Pool).query<{ n: number }>(
    `SELECT count(*)::int AS n FROM fleet_sites WHERE source = 'config'`,
  );
  return rows[0].n;
};
const goneRecord: MemberPollRecord = {
  attempt: { at: '2026-01-01T00:00:00.000Z', ok: true, error: null, durationMs: 1 },
  good: { at: '2026-01-01T00:00:00.000Z', report: null, flow: null, snapshot: null },
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: testing.IsolatedDatabase;
let pool: SqlPool;
let proxy: testing.TcpProxy;
let redis: Redis;
let cache: FleetCache;
let sim: Sim;
const services: FleetService[] = [];

/**
 * A FleetService whose lease session connects to `lockDatabaseUrl` (DATABASE_LOCK_URL); its queries go through the
 * pool, so DATABASE_URL names a server nobody listens on — a lease taken there would never be held.
 */
function service(
  lockDatabaseUrl: string,
  members: ReturnType<typeof loadLeaderConfig>,
  overrides: Partial<SyncConfig> = {},
  logger: Logger = silent,
): FleetService {
  const config = {
    databaseUrl: 'postgresql://nobody@127.0.0.1:9/not-for-locks',
    lockDatabaseUrl,
    pollIntervalMs: INTERVAL_MS,
    pollTimeoutMs: 2_000,
    pollConcurrency: 2,
    ...overrides,
  } as SyncConfig;
  const s = new FleetService(config, members, redis, logger, new FleetSitesRepository(pool));
  services.push(s);
  return s;
}

beforeAll(async () => {
  const env = testing.testEnv();
  db = await testing.createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 4 });
  proxy = testing.TcpProxy.forUrl(db.databaseUrl);
  await proxy.start();
  redis = createRedis({ url: env.redisUrl, keyPrefix: `${env.redisPrefix}fleet-lease:`, connectionName: 'test' });
  cache = new FleetCache(redis);
  sim = await startFleetSim({ members: [{ name: 'eu' }] });
});

// A test that failed half-way must not leave the next one's lock sessions unable to pass.
afterEach(() => {
  proxy.heal();
  proxy.resume();
});

afterAll(async () => {
  for (const s of services) await s.onModuleDestroy();
  await sim?.close();
  redis?.disconnect();
  if (pool) await closeSqlPool(pool);
  await proxy?.stop();
  await db?.dispose();
});

it('a replica taking the lease back keeps the newer last good report another replica wrote meanwhile', async () => {
  const members = loadLeaderConfig(JSON.stringify(sim.members), {});
  // A holds its lease through the proxy (its lock session can be cut); B directly.
  const a = service(proxy.rewriteUrl(db.databaseUrl), members);
  const b = service(db.databaseUrl, members);
  a.onApplicationBootstrap();
  await testing.waitFor(async () => (await cache.get('eu'))?.good, { description: "A's first good poll" });
  b.onApplicationBootstrap();

  // A's lock session dies and cannot come back: B takes the lease and polls on.
  proxy.pause();
  proxy.cut();
  const cutAt = Date.now();
  const byB = await testing.waitFor(
    async () => {
      const r = await cache.get('eu');
      return r?.good && Date.parse(r.good.at) > cutAt + 5 * INTERVAL_MS ? r : undefined;
    },
    { description: 'B polling after A lost the lease' },
  );
  expect(byB.attempt.ok).toBe(true);

  // B stops (its lease released); the member starts failing; A takes the lease back.
  services.splice(services.indexOf(b), 1);
  await b.onModuleDestroy();
  const lastGood = (await cache.get('eu'))?.good?.at;
  sim.setBehaviour('eu', { fail: true });
  const resumedAt = Date.now();
  proxy.resume();
  const failed = await testing.waitFor(
    async () => {
      const r = await cache.get('eu');
      return r && !r.attempt.ok && Date.parse(r.attempt.at) > resumedAt ? r : undefined;
    },
    { description: "A's failed poll after taking the lease back" },
  );
  // The last good data is B's, the newest: not the older one A held in memory from before it lost the lease.
  expect(failed.good?.at).toBe(lastGood);
  expect(failed.attempt.error).toMatch(/answered 500/);
});

it("a holder whose lease session died mid-cycle cannot write that cycle over the next holder's", async () => {
  for (const s of services.splice(0)) await s.onModuleDestroy();
  proxy.resume();
  sim.setBehaviour('eu', { fail: false, hang: false, latencyMs: 0 });
  const members = loadLeaderConfig(JSON.stringify(sim.members), {});
  // Members answer within 5 s (the member timeout: half the overall one, at most 5 s) or fail.
  const slow = { pollTimeoutMs: 20_000 };
  const aLog = recorder();
  const a = service(proxy.rewriteUrl(db.databaseUrl), members, slow, aLog.logger);
  const b = service(db.databaseUrl, members, slow);
  const bootedAt = Date.now();
  a.onApplicationBootstrap();
  await testing.waitFor(
    async () => {
      const r = await cache.get('eu');
      return r?.good && Date.parse(r.good.at) > bootedAt;
    },
    { description: "A's first good poll" },
  );
  b.onApplicationBootstrap();

  // A's next cycle is under way: the member answers it, well, in 3.5 s — the time B has to take the lease and its
  // epoch, on a loaded CI box too. Every later request hangs (B's will fail).
  sim.setBehaviour('eu', { latencyMs: 3_500 });
  const mark = sim.requests.length;
  await testing.waitFor(() => sim.requests.length > mark, { description: "A's next cycle asking the member" });
  sim.setBehaviour('eu', { hang: true });

  // A's lock session ends on the server, and A does not hear of it (nothing passes the proxy any more): B takes
  // the lease while A still believes it holds it and finishes its cycle.
  proxy.blackhole();
  const { rows: holders } = await (pool as unknown as Pool).query<{ pid: number }>(
    // In this test's database only: a site on the same server (npm start, the sites launcher, another run's e2e)
    // holds the same lease in its own — its session is not A's, and not one to terminate.
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND classid = ((hashtextextended($1, 0) >> 32) & 4294967295)::oid
        AND objid = (hashtextextended($1, 0) & 4294967295)::oid`,
    [FLEET_POLL_LEASE_NAME],
  );
  expect(holders).toHaveLength(1);
  await (pool as unknown as Pool).query('SELECT pg_terminate_backend($1)', [holders[0].pid]);
  const cutAt = Date.now();

  // A's cycle ends (its member answered, good): what it wrote, if anything, is there before B's own cycle ends.
  const ended = await testing.waitFor(() => aLog.lines.find((l) => l.at > cutAt && /fleet poll/.test(l.msg)), {
    timeoutMs: 10_000,
    description: "A's in-flight cycle ending",
  });
  const seen = await cache.get('eu');
  const { rows } = await (pool as unknown as Pool).query<{ last_success_at: Date | null }>(
    `SELECT last_success_at FROM fleet_sites WHERE name = 'eu'`,
  );
  // Refused: neither the member cache nor fleet_sites holds A's good poll of after the cut.
  expect(Date.parse(seen?.good?.at ?? '')).toBeLessThan(cutAt);
  expect(rows[0].last_success_at?.getTime()).toBeLessThan(cutAt);
  expect(ended).toMatchObject({ level: 'warn', msg: 'fleet poll: the lease is held by another replica now' });
  expect(String(ended.obj['err'])).toMatch(/taken by another replica/);

  // B, the holder, writes its own (failed) attempt; the last success is still the one from before the cut.
  const byB = await testing.waitFor(
    async () => {
      const r = await cache.get('eu');
      return r && !r.attempt.ok && Date.parse(r.attempt.at) > cutAt ? r : undefined;
    },
    { timeoutMs: 15_000, description: "B's failed poll" },
  );
  expect(Date.parse(byB.good?.at ?? '')).toBeLessThan(cutAt);
  // The poller writes the member cache, then fleet_sites: on a loaded box the row comes a moment after.
  const after = await testing.waitFor(
    async () => {
      const { rows } = await (pool as unknown as Pool).query<{
        last_success_at: Date | null;
        last_error: string | null;
      }>(`SELECT last_success_at, last_error FROM fleet_sites WHERE name = 'eu'`);
      return rows[0]?.last_error ? rows[0] : undefined;
    },
    { timeoutMs: 10_000, description: "B's failed poll in fleet_sites" },
  );
  expect(after.last_success_at?.getTime()).toBeLessThan(cutAt);
  expect(after.last_error).toMatch(/member timeout/);
  proxy.heal();
  proxy.cut();
  sim.setBehaviour('eu', { hang: false, latencyMs: 0 });
});

it("polls on when Redis's epoch is ahead of Postgres's (the database restored from a backup, Redis kept)", async () => {
  for (const s of services.splice(0)) await s.onModuleDestroy();
  sim.setBehaviour('eu', { fail: false, hang: false, latencyMs: 0 });
  // The site database restored from a backup taken many lease acquisitions ago (or a failover that lost the last
  // commits): fleet_poll_epochs is behind the epoch the member cache holds.
  await (pool as unknown as Pool).query('DELETE FROM fleet_poll_epochs');
  await redis.set(FLEET_POLL_EPOCH_KEY, '1000');
  const { logger, lines } = recorder();
  const a = service(db.databaseUrl, loadLeaderConfig(JSON.stringify(sim.members), {}), {}, logger);
  const bootedAt = Date.now();
  a.onApplicationBootstrap();
  // Its first cycles write (before: refused, one epoch more at each tick, until Postgres's passed Redis's).
  await testing.waitFor(
    async () => {
      const r = await cache.get('eu');
      return r?.good && Date.parse(r.good.at) > bootedAt;
    },
    { timeoutMs: 5_000, description: "the holder's poll in the member cache" },
  );
  expect(lines.filter((l) => /another replica/.test(l.msg))).toEqual([]);
  const { rows } = await (pool as unknown as Pool).query<{ epoch: number }>(
    'SELECT epoch::int AS epoch FROM fleet_poll_epochs',
  );
  expect(rows[0].epoch).toBeGreaterThan(1000);
  expect(Number(await redis.get(FLEET_POLL_EPOCH_KEY))).toBe(rows[0].epoch);
});

it('a replica without a leader config never takes the lease from one with it, nor removes its members', async () => {
  for (const s of services.splice(0)) await s.onModuleDestroy();
  const members = loadLeaderConfig(JSON.stringify(sim.members), {});
  // A holds its lease through the proxy; B has no member configured and looks every 2 s.
  const a = service(proxy.rewriteUrl(db.databaseUrl), members);
  const b = service(db.databaseUrl, [], { pollIntervalMs: 2_000 });
  const bootedAt = Date.now();
  a.onApplicationBootstrap();
  await testing.waitFor(
    async () => {
      const r = await cache.get('eu');
      return r && Date.parse(r.attempt.at) > bootedAt;
    },
    { description: "A's first poll" },
  );
  b.onApplicationBootstrap();

  // A's lock session is away for 3 s: the lease is free for B the whole time.
  proxy.pause();
  proxy.cut();
  const until = Date.now() + 3_000;
  while (Date.now() < until) {
    expect(await configuredCount()).toBe(1);
    await sleep(50);
  }
  proxy.resume();
  const resumedAt = Date.now();
  // A takes the lease back and polls its member, still listed.
  await testing.waitFor(
    async () => {
      const { rows } = await (pool as unknown as Pool).query<{ last_attempt_at: Date | null }>(
        `SELECT last_attempt_at FROM fleet_sites WHERE name = 'eu'`,
      );
      return rows[0]?.last_attempt_at && rows[0].last_attempt_at.getTime() > resumedAt;
    },
    { description: 'A polling its member again' },
  );
});

it('removes the configured members once no replica with a leader config has run for three intervals', async () => {
  for (const s of services.splice(0)) await s.onModuleDestroy();
  const members = loadLeaderConfig(JSON.stringify(sim.members), {});
  const a = service(db.databaseUrl, members);
  const b = service(db.databaseUrl, []);
  a.onApplicationBootstrap();
  await testing.waitFor(async () => (await configuredCount()) === 1, { description: "A's member written" });
  b.onApplicationBootstrap();
  // While A runs, B's three intervals (600 ms) pass many times over: A's member stays.
  const until = Date.now() + 2_000;
  while (Date.now() < until) {
    expect(await configuredCount()).toBe(1);
    await sleep(50);
  }
  // The last replica with a configuration goes (a rolling deploy that removed it): B removes its member. Timed from
  // before A's shutdown began (its lock session goes during it, and the rest of its shutdown may take a while).
  services.splice(services.indexOf(a), 1);
  const goneAt = Date.now();
  await a.onModuleDestroy();
  await testing.waitFor(async () => (await configuredCount()) === 0, {
    timeoutMs: 5_000,
    description: 'configured member removed',
  });
  // (Less a little: a timer may fire a few ms early as measured on the wall clock.)
  expect(Date.now() - goneAt).toBeGreaterThanOrEqual(3 * INTERVAL_MS - 50);
});

it('waits three intervals of its own, not of its wall clock: a clock stepped forward does not shorten them', async () => {
  for (const s of services.splice(0)) await s.onModuleDestroy();
  const members = loadLeaderConfig(JSON.stringify(sim.members), {});
  const a = service(db.databaseUrl, members);
  const b = service(db.databaseUrl, []);
  a.onApplicationBootstrap();
  await testing.waitFor(async () => (await configuredCount()) === 1, { description: "A's member written" });
  b.onApplicationBootstrap();
  await sleep(2 * INTERVAL_MS);
  // From A's stop on, the wall clock steps an hour forward every 20 ms (NTP steps, a VM resumed from a pause): B's
  // checks are one interval apart, yet each sees hours since the one before. Timed here on the monotonic clock.
  const wall = Date.now.bind(Date);
  let step = 0;
  const stepper = setInterval(() => (step += 3_600_000), 20);
  const clock = jest.spyOn(Date, 'now').mockImplementation(() => wall() + step);
  try {
    services.splice(services.indexOf(a), 1);
    const goneAt = performance.now();
    await a.onModuleDestroy();
    while ((await configuredCount()) === 1 && performance.now() - goneAt < 10_000) await sleep(10);
    const removedAfter = performance.now() - goneAt;
    expect(await configuredCount()).toBe(0);
    // Removed once absent at four checks in a row (three intervals, less a timer's few ms early), as with a steady
    // clock: not at the second check (one to two intervals).
    expect(removedAfter).toBeGreaterThanOrEqual(3 * INTERVAL_MS - 50);
  } finally {
    clearInterval(stepper);
    clock.mockRestore();
  }
});

it('a replica whose configuration lists no member removes the members configured before', async () => {
  // The earlier replicas stop (their members stay in fleet_sites); one more member configured meanwhile.
  for (const s of services.splice(0)) await s.onModuleDestroy();
  const sites = new FleetSitesRepository(pool);
  await sites.syncConfigured([
    { name: 'gone', url: 'http://127.0.0.1:1', tags: [], failoverOrder: null, propertyOverrides: {} },
  ]);
  await cache.setMany(new Map([['gone', goneRecord]]));
  const s = service(db.databaseUrl, []);
  s.onApplicationBootstrap();
  await testing.waitFor(
    async () => {
      const { rows } = await (pool as unknown as Pool).query<{ n: number }>(
        `SELECT count(*)::int AS n FROM fleet_sites WHERE source = 'config'`,
      );
      return rows[0].n === 0;
    },
    { timeoutMs: 5_000, description: 'configured members no longer listed removed' },
  );
  // Its cached report too.
  await testing.waitFor(async () => (await cache.get('gone')) === null, {
    timeoutMs: 5_000,
    description: "the removed member's cached report deleted",
  });
  // Nothing left to poll: the lease (its lock session) is given back.
  await testing.waitFor(
    async () => {
      const { rows } = await (pool as unknown as Pool).query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'sync-orchestrator-fleet'`,
      );
      return rows[0].n === 0;
    },
    { timeoutMs: 5_000, description: 'fleet-poll lease session closed' },
  );
});

it("a replica taking the lease deletes the cached reports of members its configuration no longer lists, under the lease's fence", async () => {
  for (const s of services.splice(0)) await s.onModuleDestroy();
  sim.setBehaviour('eu', { fail: false, hang: false, latencyMs: 0 });
  const sites = new FleetSitesRepository(pool);
  await sites.syncConfigured([
    { name: 'gone', url: 'http://127.0.0.1:1', tags: [], failoverOrder: null, propertyOverrides: {} },
  ]);
  await cache.setMany(new Map([['gone', goneRecord]]));
  const a = service(db.databaseUrl, loadLeaderConfig(JSON.stringify(sim.members), {}));
  a.onApplicationBootstrap();
  await testing.waitFor(async () => (await cache.get('eu'))?.good, { description: "A's first good poll" });
  expect(await cache.get('gone')).toBeNull();

  // A writer under an older epoch than the cache's is refused, and deletes nothing.
  const store = new FleetRecordStore(redis);
  const epoch = await store.fenceEpoch();
  await expect(store.removeMany(['eu'], epoch - 1)).rejects.toBeInstanceOf(FleetPollFencedError);
  expect(await cache.get('eu')).not.toBeNull();
});

it('a member site given a leader config polls nothing, and says so at boot', async () => {
  for (const s of services.splice(0)) await s.onModuleDestroy();
  const leaderConfig = JSON.stringify(sim.members);
  const config = {
    role: 'member',
    leaderConfig,
    databaseUrl: 'postgresql://nobody@127.0.0.1:9/not-for-locks',
    lockDatabaseUrl: db.databaseUrl,
    pollIntervalMs: INTERVAL_MS,
    pollTimeoutMs: 2_000,
    pollConcurrency: 2,
  } as SyncConfig;
  const { logger, lines } = recorder();
  // What the module would inject: the members fleetProviders reads from the configuration.
  const provided = fleetProviders(config, {}).find(
    (p): p is { provide: symbol; useValue: LeaderMember[] } =>
      typeof p === 'object' && 'provide' in p && p.provide === LEADER_MEMBERS,
  );
  const fleet = new FleetService(config, provided?.useValue ?? [], redis, logger, new FleetSitesRepository(pool));
  services.push(fleet);
  const asked = sim.requests.length;
  fleet.onApplicationBootstrap();
  await sleep(10 * INTERVAL_MS);
  expect(sim.requests.length).toBe(asked);
  expect(await configuredCount()).toBe(0);
  expect(lines).toContainEqual(
    expect.objectContaining({
      level: 'warn',
      msg: expect.stringMatching(/FLEETWATCH_LEADER_CONFIG is set but FLEETWATCH_ROLE is member.*ignored/) as unknown,
    }),
  );
});
