import { createServer, type Server, type Socket } from 'node:net';
import { databaseReadinessCheck } from './boot-check';
import { createPrismaClient, pingDatabase, type DatabaseClient } from './database';
import { closeSqlPool, createSqlPool, pingSqlPool, type SqlPool } from './sql/sql-pool';

// What /readyz shows of the database check when Postgres is away (observability's readinessReasonOf reads the
// `readinessReason` these checks tag their error with): `unreachable` for a port where nothing listens and for a
// connection closed under the query, `timeout` for a server that never answers — before, the gateway's check (a Prisma
// raw query: `Code: N/A`, the code only in the driver adapter's kind) and a connection terminated (pg gives no code)
// both read `unavailable`. Real sockets on localhost: a closed port, a server that accepts and closes, one that
// accepts and says nothing.

jest.setTimeout(30_000);

const servers: Server[] = [];
const sockets: Socket[] = [];
const dbs: DatabaseClient[] = [];
const pools: SqlPool[] = [];

async function listen(onConnection: (s: Socket) => void): Promise<number> {
  const server = createServer((s) => {
    sockets.push(s);
    onConnection(s);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as { port: number }).port;
}

/** A localhost port nothing listens on (one just closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const urlOf = (port: number) => `postgresql://postgres@127.0.0.1:${port}/fleetwatch`;
const prismaAt = (port: number) => {
  const db = createPrismaClient(urlOf(port), { connectionTimeoutMs: 1000 });
  dbs.push(db);
  return db;
};
const poolAt = (port: number) => {
  const pool = createSqlPool(urlOf(port), { connectionTimeoutMs: 1000 });
  pools.push(pool);
  return pool;
};

/** The `readinessReason` the rejection of `p` carries (what /readyz shows; none: `unavailable`). */
async function reasonOf(p: Promise<unknown>): Promise<unknown> {
  const err = await p.then(
    () => {
      throw new Error('the check passed');
    },
    (e: unknown) => e,
  );
  return (err as { readinessReason?: unknown }).readinessReason ?? 'unavailable';
}

afterAll(async () => {
  for (const db of dbs) await db.$disconnect().catch(() => undefined);
  for (const pool of pools) await closeSqlPool(pool);
  for (const s of sockets) s.destroy();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
});

describe('database readiness against Postgres away', () => {
  it('a closed port reads `unreachable`, on the Prisma check (api-gateway, status-ingest) and the pool ping', async () => {
    const port = await closedPort();
    expect(await reasonOf(databaseReadinessCheck(prismaAt(port)).check())).toBe('unreachable');
    expect(await pingDatabase(prismaAt(port))).toMatchObject({ ok: false, reason: 'unreachable' });
    expect(await reasonOf(pingSqlPool(poolAt(port)))).toBe('unreachable');
  });

  it('a connection terminated by the server reads `unreachable`', async () => {
    const port = await listen((s) => s.destroy());
    expect(await reasonOf(databaseReadinessCheck(prismaAt(port)).check())).toBe('unreachable');
    expect(await reasonOf(pingSqlPool(poolAt(port)))).toBe('unreachable');
  });

  it('a server that never answers reads `timeout`', async () => {
    const port = await listen(() => undefined);
    expect(await pingDatabase(prismaAt(port), 500)).toMatchObject({ ok: false, reason: 'timeout' });
    expect(await reasonOf(pingSqlPool(poolAt(port), 500))).toBe('timeout');
  });
});
