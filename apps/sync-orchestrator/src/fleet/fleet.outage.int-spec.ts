import { createRedis } from '@fleetwatch/live-state';
import { closeSqlPool, createSqlPool, FleetSitesRepository, type SqlPool } from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SyncConfig } from '../config';
import { FleetService } from './fleet.service';
import { loadLeaderConfig } from './leader-config';

// A leader that starts while its database is away (SPEC §10: the service starts with the database
// away, as its other start-up work does): it must start, and write the configured members and poll
// them once the database is back — not fail its boot on the member list's first write. And a leader whose Redis goes
// silent: each cycle still records its attempts in Postgres, and fails for the cache within the Redis timeout.

jest.setTimeout(60_000);

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Logger;

let db: testing.IsolatedDatabase;
let direct: SqlPool;
let viaProxy: SqlPool;
let proxy: testing.TcpProxy;
let redis: Redis;
let service: FleetService | undefined;

beforeAll(async () => {
  const env = testing.testEnv();
  db = await testing.createIsolatedDatabase();
  direct = createSqlPool(db.databaseUrl, { max: 1 });
  proxy = testing.TcpProxy.forUrl(db.databaseUrl);
  await proxy.start();
  viaProxy = createSqlPool(proxy.rewriteUrl(db.databaseUrl), { max: 2, connectionTimeoutMs: 1_000 });
  redis = createRedis({ url: env.redisUrl, keyPrefix: `${env.redisPrefix}fleet-outage:`, connectionName: 'test' });
});

afterAll(async () => {
  await service?.onModuleDestroy();
  redis?.disconnect();
  if (viaProxy) await closeSqlPool(viaProxy);
  if (direct) await closeSqlPool(direct);
  await proxy?.stop();
  await db?.dispose();
});

it('starts with the database away, then writes its members and polls them once it is back', async () => {
  proxy.pause();
  proxy.cut();
  const members = loadLeaderConfig(JSON.stringify([{ name: 'eu', url: 'http://127.0.0.1:1', tags: ['prod'] }]), {});
  const config = {
    databaseUrl: proxy.rewriteUrl(db.databaseUrl),
    lockDatabaseUrl: proxy.rewriteUrl(db.databaseUrl),
    pollIntervalMs: 200,
    pollTimeoutMs: 2_000,
    pollConcurrency: 2,
  } as SyncConfig;
  service = new FleetService(config, members, redis, silent, new FleetSitesRepository(viaProxy));

  // (It answered a promise that rejected with the database's error: the boot failed.)
  const started: unknown = service.onApplicationBootstrap();
  await expect(Promise.resolve(started)).resolves.toBeUndefined();

  // Ticks meanwhile find the database away: nothing written, nothing thrown out of the loop.
  await new Promise((r) => setTimeout(r, 700));
  proxy.resume();
  const row = await testing.waitFor(
    async () => {
      const { rows } = await (direct as unknown as import('pg').Pool).query<{
        name: string;
        tags: string[];
        last_attempt_at: Date | null;
        last_error: string | null;
      }>('SELECT name, tags, last_attempt_at, last_error FROM fleet_sites');
      return rows[0]?.last_attempt_at ? rows[0] : undefined;
    },
    { timeoutMs: 20_000, description: 'member written and polled after the database came back' },
  );
  expect(row).toMatchObject({ name: 'eu', tags: ['prod'] });
  expect(row.last_error).toMatch(/ECONNREFUSED|request failed|GET/);
});

it('with Redis silent, each cycle still records its attempts in Postgres (the cache write fails within the Redis timeout)', async () => {
  const redisProxy = testing.TcpProxy.forUrl(testing.testEnv().redisUrl);
  await redisProxy.start();
  // As the module makes it, SYNC_REDIS_TIMEOUT_MS at its minimum.
  const slowRedis = createRedis({
    url: redisProxy.rewriteUrl(testing.testEnv().redisUrl),
    keyPrefix: `${testing.testEnv().redisPrefix}fleet-redis-outage:`,
    connectionName: 'test',
    commandTimeoutMs: 1_000,
  });
  const pool = createSqlPool(db.databaseUrl, { max: 2 });
  const failures: string[] = [];
  const logger = {
    ...silent,
    warn: (o: { err?: string }, msg: string) => failures.push(`${msg}: ${o.err}`),
  } as unknown as Logger;
  const members = loadLeaderConfig(JSON.stringify([{ name: 'us', url: 'http://127.0.0.1:1' }]), {});
  const config = {
    databaseUrl: db.databaseUrl,
    lockDatabaseUrl: db.databaseUrl,
    pollIntervalMs: 200,
    pollTimeoutMs: 2_000,
    pollConcurrency: 2,
  } as SyncConfig;
  await service?.onModuleDestroy();
  service = undefined;
  const leader = new FleetService(config, members, slowRedis, logger, new FleetSitesRepository(pool));
  const lastAttempt = async (): Promise<Date | undefined> => {
    const { rows } = await (direct as unknown as import('pg').Pool).query<{ last_attempt_at: Date | null }>(
      "SELECT last_attempt_at FROM fleet_sites WHERE name = 'us'",
    );
    return rows[0]?.last_attempt_at ?? undefined;
  };
  try {
    leader.onApplicationBootstrap();
    await testing.waitFor(lastAttempt, { timeoutMs: 20_000, description: 'a first cycle with Redis there' });

    redisProxy.blackhole();
    const silentFrom = new Date();
    // (Before: the cycle wrote the cache first and waited on it — for ever without a timeout, and with one it
    // failed before Postgres was written.)
    await testing.waitFor(async () => ((await lastAttempt()) ?? silentFrom) > silentFrom, {
      timeoutMs: 10_000,
      description: 'an attempt recorded in Postgres while Redis is silent',
    });
    await testing.waitFor(() => failures.some((f) => /fleet poll cycle failed: .*timed out/.test(f)), {
      timeoutMs: 5_000,
      description: 'the cycle failed for the cache, logged',
    });
  } finally {
    redisProxy.heal();
    await leader.onModuleDestroy();
    slowRedis.disconnect();
    await closeSqlPool(pool);
    await redisProxy.stop();
  }
});
