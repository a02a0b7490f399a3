import { join } from 'node:path';
import { createRedis, FleetCache } from '@fleetwatch/live-state';
import { closeSqlPool, createSqlPool, FleetSitesRepository, type SqlPool } from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { SyncConfig } from '../config';
import { FleetService } from './fleet.service';
import { loadLeaderConfig } from './leader-config';

// The fleet-poll lease between sync-orchestrator replicas (SPEC §8 singleton jobs) on real Postgres and
// Redis, members simulated (tools/fleet-sim): what a replica writes when it takes the lease (again), and
// what a replica whose configuration lists no member does with the members configured before.

interface Sim {
  members: { name: string; url: string }[];
  setBehaviour(name: string, b: Record<string, unknown>): void;
  close(): Promise<void>;
}
const { startFleetSim } = require(join(__dirname, '../../../../tools/fleet-sim/fleet-sim.cjs')) as {
  startFleetSim(o: Record<string, unknown>): Promise<Sim>;
};

jest.setTimeout(60_000);

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Logger;
const INTERVAL_MS = 200;

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
function service(lockDatabaseUrl: string, members: ReturnType<typeof loadLeaderConfig>): FleetService {
  const config = {
    databaseUrl: 'postgresql://nobody@127.0.0.1:9/not-for-locks',
    lockDatabaseUrl,
    pollIntervalMs: INTERVAL_MS,
    pollTimeoutMs: 2_000,
    pollConcurrency: 2,
  } as SyncConfig;
  const s = new FleetService(config, members, redis, silent, new FleetSitesRepository(pool));
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

it('a replica whose configuration lists no member removes the members configured before', async () => {
  // The earlier replicas stop (their members stay in fleet_sites); one more member configured meanwhile.
  for (const s of services.splice(0)) await s.onModuleDestroy();
  const sites = new FleetSitesRepository(pool);
  await sites.syncConfigured([
    { name: 'gone', url: 'http://127.0.0.1:1', tags: [], failoverOrder: null, propertyOverrides: {} },
  ]);
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
