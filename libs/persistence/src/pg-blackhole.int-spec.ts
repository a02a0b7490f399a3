import { UnavailableError } from '@fleetwatch/domain';
import type { Pool } from 'pg';
import { createIsolatedDatabase, TcpProxy, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { createPrismaClient, prismaOf, runInTransaction, type DatabaseClient } from './database';
import { rethrow } from './errors';
import {
  closeSqlPool,
  createSqlPool,
  pingSqlPool,
  rethrowSql,
  runInSqlTransaction,
  sqlQuery,
  type SqlPool,
} from './sql/sql-pool';

// A network that silently drops every packet (no reset, no close) between a service's pool and Postgres: a proxy the
// test owns stops passing bytes both ways, sockets open. Without a client-side limit a query waits for the kernel to
// give up on the connection (~15 min of retransmissions; here, on loopback, forever), holding its caller — a commit
// lane, a consumer, an HTTP request — and its pool connection all that time. The server's statement_timeout cannot
// help: its cancellation is lost in the same blackhole.

jest.setTimeout(60_000);

const STATEMENT_MS = 500;
const QUERY_MS = 1500;
const CONNECT_MS = 1000;
/** Far beyond every limit configured here: a query still pending then hangs. */
const HANG_MS = 8000;

let isolated: IsolatedDatabase;
let proxy: TcpProxy;
let url: string;
const pools: SqlPool[] = [];
const clients: DatabaseClient[] = [];

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
});
afterAll(async () => {
  await isolated?.dispose();
});
beforeEach(async () => {
  proxy = TcpProxy.forUrl(isolated.databaseUrl);
  await proxy.start();
  url = proxy.rewriteUrl(isolated.databaseUrl);
});
afterEach(async () => {
  // The proxy first: a pool ending a connection waits for its server's answer otherwise.
  await proxy.stop();
  for (const p of pools.splice(0)) await closeSqlPool(p);
  // (Bounded: before the fix a pool waits forever for a connection stuck in its lost query.)
  for (const c of clients.splice(0)) await within(c.$disconnect(), 2000);
});

const limits = {
  statementTimeoutMs: STATEMENT_MS,
  queryTimeoutMs: QUERY_MS,
  connectionTimeoutMs: CONNECT_MS,
  keepAliveInitialDelayMs: 1000,
};

function sqlPool(max = 2, overrides: Partial<typeof limits> = {}): SqlPool {
  const p = createSqlPool(url, { max, ...limits, ...overrides });
  pools.push(p);
  return p;
}

function prisma(): DatabaseClient {
  const c = createPrismaClient(url, { poolSize: 2, ...limits });
  clients.push(c);
  return c;
}

const pgPool = (p: SqlPool) => p as unknown as Pool;

/** How `work` ends within `ms`: its error (or value) and when — or still pending then. */
async function within<T>(
  work: Promise<T>,
  ms: number,
): Promise<{ settled: boolean; error?: unknown; value?: T; elapsedMs: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    work.then(
      (value) => ({ settled: true, value }),
      (error: unknown) => ({ settled: true, error }),
    ),
    new Promise<{ settled: false }>((r) => (timer = setTimeout(() => r({ settled: false }), ms))),
  ]);
  clearTimeout(timer);
  // A query left hanging must not fail the next test when the proxy goes.
  if (!outcome.settled) work.catch(() => undefined);
  return { ...outcome, elapsedMs: performance.now() - started };
}

const backendPid = async (p: SqlPool) => (await sqlQuery<{ pid: number }>(p, 'SELECT pg_backend_pid() AS pid'))[0].pid;

describe('SqlPool in a blackhole', () => {
  it('a query fails within the query timeout as an outage, and its connection is dropped, not handed out again', async () => {
    const p = sqlPool(1);
    const before = await backendPid(p);
    proxy.blackhole();
    const stuck = await within(sqlQuery(p, 'SELECT 1'), HANG_MS);
    expect(stuck.settled).toBe(true);
    // As repositories see it (they classify pg errors with rethrowSql): an outage.
    expect(() => rethrowSql(stuck.error)).toThrow(UnavailableError);
    expect(stuck.elapsedMs).toBeGreaterThanOrEqual(QUERY_MS - 50);
    expect(stuck.elapsedMs).toBeLessThan(QUERY_MS + 1000);
    expect(pgPool(p).totalCount).toBe(0);
    proxy.heal();
    // A new connection answers (the one that timed out would still be in front of its lost query).
    expect(await backendPid(p)).not.toBe(before);
  });

  it('opening a connection fails within the connect timeout', async () => {
    const p = sqlPool(1);
    proxy.blackhole();
    const stuck = await within(sqlQuery(p, 'SELECT 1'), HANG_MS);
    expect(stuck.settled).toBe(true);
    expect(() => rethrowSql(stuck.error)).toThrow(UnavailableError);
    expect(stuck.elapsedMs).toBeLessThan(CONNECT_MS + 1000);
    proxy.heal();
    expect(await sqlQuery(p, 'SELECT 1 AS n')).toEqual([{ n: 1 }]);
  });

  it('a transaction fails within one query timeout (no second wait for its ROLLBACK); the next one runs on a new connection', async () => {
    const p = sqlPool(1);
    const before = await backendPid(p);
    let reached = false;
    const stuck = await within(
      runInSqlTransaction(p, async (tx) => {
        await sqlQuery(tx, 'SELECT 1');
        proxy.blackhole();
        reached = true;
        await sqlQuery(tx, 'SELECT 2');
      }),
      HANG_MS,
    );
    expect(reached).toBe(true);
    expect(stuck.settled).toBe(true);
    expect(stuck.error).toBeInstanceOf(UnavailableError);
    expect(stuck.elapsedMs).toBeLessThan(QUERY_MS + 1000);
    // Closed by the client while the network was still out, not left for the server to answer.
    await waitFor(() => proxy.stats.abandonedInBlackhole === 1, {
      timeoutMs: 1000,
      description: 'the connection closed',
    });
    proxy.heal();
    const after = await runInSqlTransaction(
      p,
      async (tx) => (await sqlQuery<{ pid: number }>(tx, 'SELECT pg_backend_pid() AS pid'))[0].pid,
    );
    expect(after).not.toBe(before);
  });

  it('readiness (pingSqlPool) answers within 2 s, whatever the query timeout', async () => {
    const p = sqlPool(2, { statementTimeoutMs: 10_000, queryTimeoutMs: 15_000 });
    await pingSqlPool(p);
    proxy.blackhole();
    const ping = await within(pingSqlPool(p), HANG_MS);
    expect(ping.settled).toBe(true);
    expect(ping.error).toBeDefined();
    expect(ping.elapsedMs).toBeLessThan(2000 + 500);
  });
});

describe('a connection lost mid-transaction', () => {
  it('fails that transaction as an outage; the process keeps running (no unhandled error event)', async () => {
    const p = sqlPool(1);
    const failed = runInSqlTransaction(p, async (tx) => {
      await sqlQuery(tx, 'SELECT 1');
      proxy.cut();
      // The client hears of the close while it holds the connection, between two statements.
      await new Promise((r) => setTimeout(r, 200));
      await sqlQuery(tx, 'SELECT 2');
    });
    await expect(failed).rejects.toBeInstanceOf(UnavailableError);
    expect(await sqlQuery(p, 'SELECT 1 AS n')).toEqual([{ n: 1 }]);
  });
});

describe('Prisma client in a blackhole', () => {
  it('a query fails within the query timeout as an outage; after heal() queries work', async () => {
    const db = prisma();
    await prismaOf(db).$queryRaw`SELECT 1`;
    proxy.blackhole();
    const stuck = await within(prismaOf(db).$queryRaw`SELECT 1`, HANG_MS);
    expect(stuck.settled).toBe(true);
    expect(stuck.elapsedMs).toBeLessThan(QUERY_MS + 1000);
    expect(() => rethrow(stuck.error)).toThrow(UnavailableError);
    proxy.heal();
    expect(await prismaOf(db).$queryRaw`SELECT 1 AS n`).toEqual([{ n: 1 }]);
  });

  it('an interactive transaction fails within the query timeout; its connection is not handed out again', async () => {
    const db = prisma();
    await prismaOf(db).$queryRaw`SELECT 1`;
    const stuck = await within(
      runInTransaction(
        db,
        async (tx) => {
          const t = tx as unknown as ReturnType<typeof prismaOf>;
          await t.$queryRaw`SELECT 1`;
          proxy.blackhole();
          await t.$queryRaw`SELECT 2`;
        },
        { timeoutMs: 30_000 },
      ),
      HANG_MS,
    );
    expect(stuck.settled).toBe(true);
    expect(stuck.elapsedMs).toBeLessThan(QUERY_MS + 1000);
    expect(() => rethrow(stuck.error)).toThrow(UnavailableError);
    await waitFor(() => proxy.stats.abandonedInBlackhole === 1, {
      timeoutMs: 1000,
      description: 'the connection closed',
    });
    proxy.heal();
    // Both connections of the pool work (neither is stuck behind the lost query).
    const answers = await Promise.all(
      [1, 2].map(() => within(prismaOf(db).$queryRaw`SELECT 1 AS n FROM pg_sleep(0.2)`, 4000)),
    );
    expect(answers.map((a) => a.settled && !a.error)).toEqual([true, true]);
  });
});
