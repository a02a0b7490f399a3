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

const urlOf = (port: number, database = 'fleetwatch') => `postgresql://postgres@127.0.0.1:${port}/${database}`;
const prismaAt = (port: number, database?: string) => {
  const db = createPrismaClient(urlOf(port, database), { connectionTimeoutMs: 1000 });
  dbs.push(db);
  return db;
};
const poolAt = (port: number, database?: string) => {
  const pool = createSqlPool(urlOf(port, database), { connectionTimeoutMs: 1000 });
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

/**
 * A server that answers a connection's startup message with a FATAL ErrorResponse carrying `code` (Postgres's wire
 * format: 'E', length, fields S/V/C/M, a terminating zero), as a real one refusing the password does.
 */
function fatalOnStartup(code: string, message: string): (s: Socket) => void {
  return (s) =>
    s.once('data', () => {
      const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`, 'utf8');
      const head = Buffer.alloc(5);
      head.write('E', 0);
      head.writeInt32BE(fields.length + 4, 1);
      s.end(Buffer.concat([head, fields]));
    });
}

// A refused password (28P01) or a database that does not exist (3D000) is a configuration error: Postgres answered, so
// neither is `unreachable` (nor `timeout`): /readyz shows the catch-all `unavailable`, and the log has the error.
describe('database readiness against a configuration error (Postgres answers)', () => {
  it('a refused password (28P01) reads `unavailable`, not `unreachable`', async () => {
    const port = await listen(fatalOnStartup('28P01', 'password authentication failed for user "postgres"'));
    expect(await reasonOf(databaseReadinessCheck(prismaAt(port)).check())).toBe('unavailable');
    const ping = await pingDatabase(prismaAt(port));
    // Postgres's refusal reached the check (not a connection closed under it, which is `unreachable`).
    expect(ping).toMatchObject({ ok: false, error: expect.stringMatching(/authentication failed/i) });
    expect(ping).not.toHaveProperty('reason');
    await expect(pingSqlPool(poolAt(port))).rejects.toMatchObject({ code: '28P01' });
    expect(await reasonOf(pingSqlPool(poolAt(port)))).toBe('unavailable');
  });

  it('a database that does not exist (3D000, the real local server) reads `unavailable`, not `unreachable`', async () => {
    const missing = `fw_no_such_database_${process.pid}`;
    expect(await reasonOf(databaseReadinessCheck(prismaAt(5432, missing)).check())).toBe('unavailable');
    expect(await pingDatabase(prismaAt(5432, missing))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/not exist/),
    });
    await expect(pingSqlPool(poolAt(5432, missing))).rejects.toMatchObject({ code: '3D000' });
    expect(await reasonOf(pingSqlPool(poolAt(5432, missing)))).toBe('unavailable');
  });
});
