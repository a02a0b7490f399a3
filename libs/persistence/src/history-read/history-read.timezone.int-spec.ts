import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { createPrismaClient, type DatabaseClient } from '../database';
import { HistoryRepository } from '../history/history.repository';
import { closeSqlPool, createSqlPool, runInSqlTransaction, sqlQuery, type SqlPool } from '../sql/sql-pool';
import { StatusEventsRepository } from '../status-events/status-events.repository';
import { HistoryReadRepository } from './history-read.repository';

// A Postgres whose `timezone` is not UTC (initdb takes the host's zone; ALTER DATABASE/ROLE can set one). The
// aggregator writes history through pg, which sends and reads instants with their offsets; the gateway reads it
// through Prisma's pg adapter, which sends a Date without an offset (read in the session's zone) and reads a
// timestamptz by relabelling its local wall time as UTC (prisma/orm#26786, #28629). Every pool opens its sessions
// in UTC, so both agree with the stored instants whatever the server's zone.

const MINUTE = 60_000;
const minute = (ms: number) => Math.floor(ms / MINUTE) * MINUTE;

describe.each(['America/New_York', 'Asia/Kathmandu'])('history reads on a database whose timezone is %s', (zone) => {
  let isolated: IsolatedDatabase;
  let pool: SqlPool;
  let prisma: DatabaseClient;
  let pg: Client;
  const NOW = Date.now();
  const at10 = minute(NOW - 10 * MINUTE) + 1234;
  const at5 = minute(NOW - 5 * MINUTE) + 42_017;

  beforeAll(async () => {
    isolated = await createIsolatedDatabase();
    const admin = new Client({ connectionString: isolated.databaseUrl });
    await admin.connect();
    await admin.query(`ALTER DATABASE "${isolated.databaseName}" SET timezone = '${zone}'`);
    await admin.end();
    // Sessions opened from here on start in `zone`.
    pg = new Client({ connectionString: isolated.databaseUrl });
    await pg.connect();
    pool = createSqlPool(isolated.databaseUrl, { max: 2 });
    prisma = createPrismaClient(isolated.databaseUrl, { poolSize: 2 });

    const history = new HistoryRepository(pool);
    await runInSqlTransaction(pool, async (tx) => {
      await history.insertCheckResults(tx, [
        {
          messageId: randomUUID(),
          checkId: 'tz',
          targetId: 'check:tz',
          location: 'eu',
          ok: true,
          latencyMs: 20,
          failureReason: null,
          metadata: null,
          occurredAt: at10,
        },
        {
          messageId: randomUUID(),
          checkId: 'tz',
          targetId: 'check:tz',
          location: 'us',
          ok: false,
          latencyMs: null,
          failureReason: 'timeout',
          metadata: null,
          occurredAt: at5,
        },
      ]);
      await new StatusEventsRepository(pool).insertMany(tx, [
        {
          targetId: 'check:tz',
          kind: TargetKind.Check,
          location: 'us',
          from: TargetStatus.Up,
          to: TargetStatus.Down,
          reason: 'timeout',
          at: at5,
          sequence: 1,
        },
      ]);
    });
    await history.recomputeDirtyRollups();
    for (const loc of ['eu', 'us'])
      await pg.query(
        `INSERT INTO target_location_states (target_id, location, status, observed_at, last_seen) VALUES ('check:tz', $1, 'UP', now(), now())`,
        [loc],
      );
  });
  afterAll(async () => {
    await pg?.end();
    await prisma?.$disconnect();
    if (pool) await closeSqlPool(pool);
    await isolated?.dispose();
  });

  it('the session really is in that zone, and pg stored the instants the aggregator wrote', async () => {
    expect((await pg.query<{ tz: string }>("SELECT current_setting('TimeZone') AS tz")).rows[0]?.tz).toBe(zone);
    const stored = await pg.query<{ ms: string }>(
      `SELECT (extract(epoch FROM occurred_at) * 1000)::float8::text AS ms FROM check_results ORDER BY occurred_at`,
    );
    expect(stored.rows.map((r) => Number(r.ms))).toEqual([at10, at5]);
  });

  it("every pool's sessions (the SqlPool's and the Prisma client's) are in UTC", async () => {
    const [viaPool] = await sqlQuery<{ tz: string }>(pool, "SELECT current_setting('TimeZone') AS tz");
    const [viaPrisma] = await sqlQuery<{ tz: string }>(prisma, "SELECT current_setting('TimeZone') AS tz");
    expect([viaPool?.tz, viaPrisma?.tz]).toEqual(['UTC', 'UTC']);
  });

  it('the last hour has its raw observations, at their own times', async () => {
    const read = new HistoryReadRepository(prisma);
    const raw = await read.rawObservations({
      targetId: 'check:tz',
      since: new Date(NOW - 60 * MINUTE),
      until: new Date(NOW),
    });
    expect(raw.map((o) => [o.at.toISOString(), o.location])).toEqual([
      [new Date(at10).toISOString(), 'eu'],
      [new Date(at5).toISOString(), 'us'],
    ]);
  });

  it('rollups, minute totals and status events fall in their own minutes', async () => {
    const read = new HistoryReadRepository(prisma);
    const w = { targetId: 'check:tz', since: new Date(minute(NOW - 90 * MINUTE)), until: new Date(NOW) };
    const rollups = await read.rollups(w);
    expect(rollups.map((r) => [r.bucket.toISOString(), r.location, r.count])).toEqual([
      [new Date(minute(at10)).toISOString(), 'eu', 1],
      [new Date(minute(at5)).toISOString(), 'us', 1],
    ]);
    const totals = await read.minuteTotals(['check:tz'], w.since, new Date(minute(NOW) + MINUTE));
    expect(totals.map((t) => t.bucket.toISOString()).sort()).toEqual(
      [minute(at10), minute(at5)].map((b) => new Date(b).toISOString()),
    );
    const events = await read.statusEvents(w);
    expect(events.map((e) => e.at.toISOString())).toEqual([new Date(at5).toISOString()]);
  });
});
