import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import {
  applyObservation,
  minuteBucket,
  rollupOf,
  type StatusEventDraft,
  type TargetSnapshot,
} from '@fleetwatch/domain';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { ConflictError } from '@fleetwatch/domain';
import { createPrismaClient, runInTransaction } from '../database';
import { closeSqlPool, createSqlPool, runInSqlTransaction, type SqlPool } from '../sql/sql-pool';
import { AdvisoryLease } from '../leases/advisory-lease';
import { AlertEventsRepository } from '../alerting/alert-events.repository';
import { StatusEventsRepository } from '../status-events/status-events.repository';
import { TargetStatesRepository } from '../target-states/target-states.repository';
import { HistoryReadRepository, MINUTE_TOTALS } from '../history-read/history-read.repository';
import { pickDirtyHostRollupsSql } from '../hosts/host-history.repository';
import {
  HistoryRepository,
  PICK_DIRTY_ROLLUPS,
  pickDirtyRollupsSql,
  ROLLUP_TABLES,
  retentionDeleteSql,
  type CheckResultRow,
} from './history.repository';

// The aggregator's repositories on a real, isolated database.
let isolated: IsolatedDatabase;
let db: SqlPool;
let pg: Client;
let history: HistoryRepository;
let states: TargetStatesRepository;
let events: StatusEventsRepository;

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  db = createSqlPool(isolated.databaseUrl, { max: 4 });
  pg = new Client({ connectionString: isolated.databaseUrl });
  await pg.connect();
  history = new HistoryRepository(db);
  states = new TargetStatesRepository(db);
  events = new StatusEventsRepository(db);
});
afterAll(async () => {
  await pg?.end();
  if (db) await closeSqlPool(db);
  await isolated?.dispose();
});

const count = async (sql: string, params: unknown[] = []) =>
  Number((await pg.query<{ n: string }>(sql, params)).rows[0]?.n);

const result = (
  targetId: string,
  at: number,
  ok: boolean,
  latencyMs: number | null,
  extra: Partial<CheckResultRow> = {},
): CheckResultRow => ({
  messageId: randomUUID(),
  checkId: 'c1',
  targetId,
  location: 'eu',
  ok,
  latencyMs,
  failureReason: ok ? null : 'refused\u0000 with a NUL',
  metadata: { note: 'x\u0000y' },
  occurredAt: at,
  ...extra,
});

describe('HistoryRepository', () => {
  it('inserts a batch in one statement and reports only the new message ids', async () => {
    const rows = [result('check:h1', Date.now(), true, 10), result('check:h1', Date.now(), false, null)];
    const first = await runInSqlTransaction(db, (tx) => history.insertCheckResults(tx, rows));
    expect(first).toEqual(new Set(rows.map((r) => r.messageId)));
    const again = await runInSqlTransaction(db, (tx) => history.insertCheckResults(tx, [...rows, rows[0]]));
    expect(again.size).toBe(0);
    expect(await count("SELECT count(*) AS n FROM check_results WHERE target_id = 'check:h1'")).toBe(2);
    const stored = await pg.query(
      "SELECT failure_reason, metadata FROM check_results WHERE target_id = 'check:h1' AND NOT ok",
    );
    expect(stored.rows[0]).toEqual({ failure_reason: 'refused with a NUL', metadata: { note: 'xy' } });
  });

  it('recomputes dirty rollups from raw rows, matching the domain rule, also after late arrivals', async () => {
    const bucket = minuteBucket(Date.now() - 10 * 60_000);
    const samples = Array.from({ length: 40 }, (_, i) => ({
      ok: i % 7 !== 0,
      latencyMs: i % 9 === 0 ? null : (i * 37) % 101,
    }));
    const rows = samples.map((s, i) => result('check:r1', bucket + i * 1000, s.ok, s.latencyMs));
    // Inserting marks the bucket dirty in the same statement.
    await runInSqlTransaction(db, (tx) => history.insertCheckResults(tx, rows.slice(0, 30)));
    expect(await count("SELECT count(*) AS n FROM rollup_dirty WHERE target_id = 'check:r1'")).toBe(1);
    expect(await history.recomputeDirtyRollups()).toBeGreaterThanOrEqual(1);
    // A late result for the same minute re-marks it; the recompute covers the whole bucket.
    await runInSqlTransaction(db, (tx) => history.insertCheckResults(tx, rows.slice(30)));
    await history.recomputeDirtyRollups();
    const [rollup] = await history.rollups('check:r1', new Date(bucket), new Date(bucket + 60_000));
    const expected = rollupOf(samples);
    expect(rollup).toMatchObject({
      count: expected.count,
      okCount: expected.okCount,
      minLatencyMs: expected.minLatencyMs,
      maxLatencyMs: expected.maxLatencyMs,
      p95LatencyMs: expected.p95LatencyMs,
    });
    expect(rollup.avgLatencyMs).toBeCloseTo(expected.avgLatencyMs as number, 6);
    expect(await count('SELECT count(*) AS n FROM rollup_dirty')).toBe(0);
  });

  it("a huge latency stored before latencies were bounded (1e200 ms) does not fail the rollups: its minute's and everyone else's", async () => {
    const bucket = minuteBucket(Date.now() - 20 * 60_000);
    await runInSqlTransaction(db, (tx) =>
      history.insertCheckResults(tx, [
        result('check:huge', bucket + 1000, true, 1e200),
        result('check:huge', bucket + 2000, true, 12.5),
        // Two near float8's maximum: their float8 sum overflows too.
        result('check:max', bucket + 1000, true, 1.7e308),
        result('check:max', bucket + 2000, true, 1.7e308),
        result('check:fine', bucket + 1000, true, 7),
      ]),
    );
    expect(await history.recomputeDirtyRollups()).toBeGreaterThanOrEqual(3);
    expect(await count("SELECT count(*) AS n FROM rollup_dirty WHERE target_id IN ('check:huge', 'check:fine')")).toBe(
      0,
    );
    const [huge] = await history.rollups('check:huge', new Date(bucket), new Date(bucket + 60_000));
    expect(huge).toMatchObject({ count: 2, minLatencyMs: 12.5, maxLatencyMs: 1e200 });
    expect(huge.avgLatencyMs).toBeCloseTo(5e199, -190);
    const [max] = await history.rollups('check:max', new Date(bucket), new Date(bucket + 60_000));
    expect(max).toMatchObject({ count: 2, avgLatencyMs: 1.7e308, maxLatencyMs: 1.7e308 });
    // The sparklines' read of the minute (each location's mean weighed by its count) stays finite too.
    const located = applyObservation(
      undefined,
      {
        targetId: 'check:max',
        kind: TargetKind.Check,
        name: 'max',
        location: 'eu',
        at: bucket,
        status: TargetStatus.Up,
        reason: 'r',
      },
      { downQuorumPct: 100 },
    ).target;
    await runInSqlTransaction(db, (tx) => states.saveMany(tx, [located]));
    const prisma = createPrismaClient(isolated.databaseUrl, { poolSize: 1 });
    try {
      expect(
        await new HistoryReadRepository(prisma).minuteTotals(
          ['check:max'],
          new Date(bucket),
          new Date(bucket + 60_000),
        ),
      ).toEqual([{ targetId: 'check:max', bucket: new Date(bucket), count: 2, okCount: 2, latencyMs: 1.7e308 }]);
    } finally {
      await prisma.$disconnect();
    }
    const [fine] = await history.rollups('check:fine', new Date(bucket), new Date(bucket + 60_000));
    expect(fine).toMatchObject({ count: 1, avgLatencyMs: 7 });
  });

  it("a mean latency below the smallest float8 (Number.MIN_VALUE with zeros) is 0 in the sparklines' read of the minute", async () => {
    // Each location's minute converts (eu: MIN_VALUE; us: 0), but their weighted mean, MIN_VALUE / 3, is a numeric
    // Postgres refuses to turn into float8 (22003): minuteTotals (the targets list's sparklines) failed.
    const bucket = minuteBucket(Date.now() - 20 * 60_000);
    await runInSqlTransaction(db, (tx) =>
      history.insertCheckResults(tx, [
        result('check:tiny', bucket + 1000, true, Number.MIN_VALUE),
        result('check:tiny', bucket + 1000, true, 0, { location: 'us' }),
        result('check:tiny', bucket + 2000, true, 0, { location: 'us' }),
      ]),
    );
    while ((await history.recomputeDirtyRollups()) > 0);
    let target = undefined as Parameters<typeof applyObservation>[0];
    for (const location of ['eu', 'us'])
      target = applyObservation(
        target,
        {
          targetId: 'check:tiny',
          kind: TargetKind.Check,
          name: 'tiny',
          location,
          at: bucket,
          status: TargetStatus.Up,
          reason: 'r',
        },
        { downQuorumPct: 100 },
      ).target;
    await runInSqlTransaction(db, (tx) => states.saveMany(tx, [target as NonNullable<typeof target>]));
    const prisma = createPrismaClient(isolated.databaseUrl, { poolSize: 1 });
    try {
      expect(
        await new HistoryReadRepository(prisma).minuteTotals(
          ['check:tiny'],
          new Date(bucket),
          new Date(bucket + 60_000),
        ),
      ).toEqual([{ targetId: 'check:tiny', bucket: new Date(bucket), count: 3, okCount: 3, latencyMs: 0 }]);
    } finally {
      await prisma.$disconnect();
    }
  });

  it('pushed updates PAUSED, UNKNOWN or STALE are no sample (rollups and raw reads); PARTIAL counts as good', async () => {
    // A paused container or a pod being terminated counted as failures: 0 % available while nothing failed.
    const bucket = minuteBucket(Date.now() - 20 * 60_000);
    const targetId = 'instance:paused-one';
    const update = (status: TargetStatus, at: number) => ({
      messageId: randomUUID(),
      updateId: randomUUID(),
      targetId,
      instanceId: targetId,
      kind: 'container',
      lifecycleStatus: status.toLowerCase(),
      status,
      source: null,
      location: 'eu',
      occurredAt: at,
      receivedAt: at,
      labels: null,
      message: null,
      metadata: null,
    });
    await runInSqlTransaction(db, (tx) =>
      history.insertStatusUpdates(tx, [
        // Minute 0: one of each status.
        update(TargetStatus.Up, bucket + 1000),
        update(TargetStatus.Partial, bucket + 2000),
        update(TargetStatus.Down, bucket + 3000),
        update(TargetStatus.Paused, bucket + 4000),
        update(TargetStatus.Unknown, bucket + 5000),
        update(TargetStatus.Stale, bucket + 6000),
        // Minute 1: paused all along.
        update(TargetStatus.Paused, bucket + 61_000),
        update(TargetStatus.Paused, bucket + 62_000),
        // Minute 2: unknown (terminating).
        update(TargetStatus.Unknown, bucket + 121_000),
      ]),
    );
    while ((await history.recomputeDirtyRollups()) > 0);
    const rollups = await history.rollups(targetId, new Date(bucket), new Date(bucket + 3 * 60_000));
    expect(rollups.map((r) => [r.bucket - bucket, r.count, r.okCount])).toEqual([[0, 3, 2]]);
    const prisma = createPrismaClient(isolated.databaseUrl, { poolSize: 1 });
    try {
      const read = new HistoryReadRepository(prisma);
      const raw = await read.rawObservations({
        targetId,
        since: new Date(bucket),
        until: new Date(bucket + 3 * 60_000),
      });
      expect(raw.map((o) => [o.at.getTime() - bucket, o.status, o.ok])).toEqual([
        [1000, TargetStatus.Up, true],
        [2000, TargetStatus.Partial, true],
        [3000, TargetStatus.Down, false],
      ]);
      const totals = await read.minuteTotals([targetId], new Date(bucket), new Date(bucket + 3 * 60_000));
      expect(totals.map((t) => [t.bucket.getTime() - bucket, t.count, t.okCount])).toEqual([[0, 3, 2]]);
    } finally {
      await prisma.$disconnect();
    }
  });

  it('takes a closed minute at once, a minute in progress at once only while it has no rollup, later once its mark is openMinuteDelayMs old', async () => {
    // Postgres's clock decides which minute is in progress: away from a minute's end by its clock.
    const pgNow = async () =>
      Number((await pg.query<{ t: number }>('SELECT (extract(epoch FROM now()) * 1000)::float8 AS t')).rows[0].t);
    const early = await pgNow();
    if (early % 60_000 > 45_000) await new Promise((r) => setTimeout(r, 60_000 - (early % 60_000) + 500));
    const now = await pgNow();
    const closed = minuteBucket(now - 5 * 60_000);
    const open = minuteBucket(now);
    const later = minuteBucket(now + 3 * 60_000); // a clock ahead of ours: not closed either
    const DELAY = 600_000; // far longer than the test: only the rules below take a mark
    const insert = (...rows: Array<[number, number]>) =>
      runInSqlTransaction(db, (tx) =>
        history.insertCheckResults(
          tx,
          rows.map(([bucket, ms]) => result('check:om', bucket + ms, true, 5)),
        ),
      );
    const marks = async () =>
      (
        await pg.query<{ at: string }>(
          "SELECT (extract(epoch FROM bucket) * 1000)::float8 AS at FROM rollup_dirty WHERE target_id = 'check:om' ORDER BY bucket",
        )
      ).rows.map((r) => Number(r.at));
    const stored = async () =>
      (await history.rollups('check:om', new Date(closed), new Date(later + 60_000))).map((r) => [r.bucket, r.count]);

    // First samples of each minute: none has a rollup yet, so every mark is taken at once.
    await insert([closed, 1000], [open, 1000], [later, 1000]);
    expect(await marks()).toEqual([closed, open, later]);
    expect(await history.recomputeDirtyRollups(1000, DELAY)).toBe(3);
    expect(await marks()).toEqual([]);
    expect(await stored()).toEqual([
      [closed, 1],
      [open, 1],
      [later, 1],
    ]);

    // More samples: the closed minute is recomputed at once; the open and future ones, which have a rollup now,
    // wait for their marks to be DELAY old.
    await insert([closed, 2000], [open, 2000], [later, 2000]);
    expect(await history.recomputeDirtyRollups(1000, DELAY)).toBe(1);
    expect(await marks()).toEqual([open, later]);
    expect(await stored()).toEqual([
      [closed, 2],
      [open, 1],
      [later, 1],
    ]);

    // The open minute's mark comes of age; another sample of that minute finds the mark there and leaves its age.
    await pg.query(
      `UPDATE rollup_dirty SET marked_at = now() - ($1::float8 + 1000) * interval '1 millisecond' WHERE target_id = 'check:om' AND bucket = $2`,
      [DELAY, new Date(open).toISOString()],
    );
    await insert([open, 3000]);
    expect(await history.recomputeDirtyRollups(1000, DELAY)).toBe(1);
    expect(await marks()).toEqual([later]);
    expect(await stored()).toEqual([
      [closed, 2],
      [open, 3],
      [later, 1],
    ]);

    // 0: every mark at once.
    expect(await history.recomputeDirtyRollups(1000, 0)).toBe(1);
    expect(await marks()).toEqual([]);
    expect(await stored()).toEqual([
      [closed, 2],
      [open, 3],
      [later, 2],
    ]);
  });

  it('a late result in a minute past the raw window never shrinks its rollup (its other raw rows were pruned)', async () => {
    const DAY = 86_400_000;
    const rawCutoff = Date.now() - 7 * DAY;
    const bucket = minuteBucket(Date.now() - 10 * DAY);
    const rows = Array.from({ length: 20 }, (_, i) => result('check:late', bucket + i * 1000, i % 4 !== 0, 10 + i));
    await runInSqlTransaction(db, (tx) => history.insertCheckResults(tx, rows));
    await history.recomputeDirtyRollups(1000, 0, rawCutoff);
    const rolled = await history.rollups('check:late', new Date(bucket), new Date(bucket + 60_000));
    expect(rolled).toMatchObject([{ count: 20, okCount: 15, minLatencyMs: 10, maxLatencyMs: 29 }]);
    // Retention prunes the minute's raw rows; its rollup is kept for the rollup window.
    await history.deleteOlderThan('check_results', new Date(rawCutoff));
    // A spooled (or replayed) result of that minute arrives late: stored raw, its minute marked.
    await runInSqlTransaction(db, (tx) =>
      history.insertCheckResults(tx, [result('check:late', bucket + 30_500, false, 5000)]),
    );
    await history.recomputeDirtyRollups(1000, 0, rawCutoff);
    expect(await history.rollups('check:late', new Date(bucket), new Date(bucket + 60_000))).toEqual(rolled);
    expect(await count("SELECT count(*) AS n FROM rollup_dirty WHERE target_id = 'check:late'")).toBe(0);
    // A minute past the raw window with no rollup yet gets one from what it has (nothing else would).
    const lone = bucket - 5 * 60_000;
    await runInSqlTransaction(db, (tx) => history.insertCheckResults(tx, [result('check:late', lone + 1, true, 7)]));
    await history.recomputeDirtyRollups(1000, 0, rawCutoff);
    expect(await history.rollups('check:late', new Date(lone), new Date(lone + 60_000))).toMatchObject([
      { count: 1, okCount: 1, minLatencyMs: 7 },
    ]);
  });

  it('a minute past the raw window whose results arrive in parts, a run between them, is rolled up whole', async () => {
    // A spooled backlog replayed in batches: the first part was rolled up alone and, the minute being past the raw
    // window, never recomputed with the rest (count 1 of 20 for ever).
    const DAY = 86_400_000;
    const rawCutoff = Date.now() - 7 * DAY;
    const bucket = minuteBucket(Date.now() - 9 * DAY);
    const rows = Array.from({ length: 20 }, (_, i) => result('check:parts', bucket + i * 1000, i % 4 !== 0, 10 + i));
    for (const part of [rows.slice(0, 1), rows.slice(1, 12), rows.slice(12)]) {
      await runInSqlTransaction(db, (tx) => history.insertCheckResults(tx, part));
      await history.recomputeDirtyRollups(1000, 0, rawCutoff);
    }
    expect(await history.rollups('check:parts', new Date(bucket), new Date(bucket + 60_000))).toMatchObject([
      { count: 20, okCount: 15, minLatencyMs: 10, maxLatencyMs: 29 },
    ]);
  });

  it("a location gone from live state keeps its minutes in the sparklines' read (its locations come from the rollups)", async () => {
    const bucket = minuteBucket(Date.now() - 20 * 60_000);
    await runInSqlTransaction(db, (tx) =>
      history.insertCheckResults(tx, [
        result('check:moved', bucket + 1000, true, 10),
        result('check:moved', bucket + 2000, false, null, { location: 'us' }),
        result('check:moved', bucket + 61_000, false, null, { location: 'us' }),
      ]),
    );
    while ((await history.recomputeDirtyRollups()) > 0);
    // Live state holds eu only: us was taken out of the check's locations (or a replica dropped).
    const located = applyObservation(
      undefined,
      {
        targetId: 'check:moved',
        kind: TargetKind.Check,
        name: 'moved',
        location: 'eu',
        at: bucket,
        status: TargetStatus.Up,
        reason: 'r',
      },
      { downQuorumPct: 100 },
    ).target;
    await runInSqlTransaction(db, (tx) => states.saveMany(tx, [located]));
    const prisma = createPrismaClient(isolated.databaseUrl, { poolSize: 1 });
    try {
      const totals = await new HistoryReadRepository(prisma).minuteTotals(
        ['check:moved', 'check:moved', 'check:none'],
        new Date(bucket),
        new Date(bucket + 2 * 60_000),
      );
      expect(
        totals
          .map((t) => [t.targetId, t.bucket.getTime() - bucket, t.count, t.okCount, t.latencyMs])
          .sort((a, b) => (a[1] as number) - (b[1] as number)),
      ).toEqual([
        ['check:moved', 0, 2, 1, 10],
        ['check:moved', 60_000, 1, 0, null],
      ]);
    } finally {
      await prisma.$disconnect();
    }
  });

  it("the sparklines' read walks each target's locations and minutes in the rollups' primary key, never a scan", async () => {
    // Many targets with three locations and an hour of minutes each. Rolled back afterwards.
    await pg.query('BEGIN');
    let plan = '';
    try {
      await pg.query(
        `INSERT INTO rollups_1m (target_id, location, bucket, count, ok_count, latency_count)
           SELECT 'check:plan-' || g, l, date_trunc('minute', now()) - m * interval '1 minute', 1, 1, 0
           FROM generate_series(1, 1000) g, unnest(ARRAY['eu', 'us', 'ap']) l, generate_series(0, 59) m`,
      );
      await pg.query('ANALYZE rollups_1m');
      const ids = Array.from({ length: 40 }, (_, i) => `check:plan-${i * 7 + 1}`);
      plan = (
        await pg.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${MINUTE_TOTALS}`, [
          ids,
          new Date(Date.now() - 3_600_000).toISOString(),
          new Date().toISOString(),
        ])
      ).rows
        .map((r) => r['QUERY PLAN'])
        .join('\n');
    } finally {
      await pg.query('ROLLBACK');
    }
    expect(plan).toContain('rollups_1m_pkey');
    expect(plan).not.toMatch(/Seq Scan on rollups_1m|rollups_1m_bucket_idx/);
  });

  it.each([0, 1, 100, 2000])(
    "the rollup jobs' picks (%i set-aside minutes left out) take their chunk off the bucket index, not a scan or sort of every mark",
    async (n) => {
      // A site's marks: mostly the minute in progress (rolled up once already, not due yet), some closed minutes. In a
      // transaction rolled back afterwards: nothing of this stays for the other tests.
      await pg.query('BEGIN');
      const plan = { targets: '', hosts: '' };
      try {
        await pg.query(
          `INSERT INTO rollup_dirty (target_id, location, bucket)
             SELECT 'instance:plan-' || g, 'push',
                    date_trunc('minute', now()) - CASE WHEN g % 10 = 0 THEN interval '5 minutes' ELSE interval '0' END
             FROM generate_series(1, 50000) g`,
        );
        await pg.query(
          `INSERT INTO rollups_1m (target_id, location, bucket, count, ok_count, latency_count)
             SELECT 'instance:plan-' || g, 'push', date_trunc('minute', now()), 1, 1, 0 FROM generate_series(1, 50000) g`,
        );
        await pg.query(
          `INSERT INTO host_rollup_dirty (host_id, bucket)
             SELECT 'plan-' || g, date_trunc('minute', now()) - interval '5 minutes' FROM generate_series(1, 50000) g`,
        );
        await pg.query('ANALYZE rollup_dirty, rollups_1m, host_rollup_dirty');
        const explain = async (sql: string, params: unknown[]) =>
          (await pg.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).rows
            .map((r) => r['QUERY PLAN'])
            .join('\n');
        // Minutes the job set aside (RecomputeOptions.exclude): marks of closed minutes of both kinds.
        const bucket = Math.floor((Date.now() - 300_000) / 60_000) * 60_000;
        const ids = Array.from({ length: n }, (_, i) => `instance:plan-${(i + 1) * 10}`);
        const hostIds = Array.from({ length: n }, (_, i) => `plan-${i + 1}`);
        plan.targets =
          n === 0
            ? await explain(PICK_DIRTY_ROLLUPS, [1000, 30_000])
            : await explain(pickDirtyRollupsSql(true), [
                1000,
                30_000,
                ids,
                ids.map(() => 'push'),
                ids.map(() => bucket),
              ]);
        const before = new Date().toISOString();
        plan.hosts =
          n === 0
            ? await explain(pickDirtyHostRollupsSql(false), [200, before])
            : await explain(pickDirtyHostRollupsSql(true), [200, before, hostIds, hostIds.map(() => bucket)]);
      } finally {
        await pg.query('ROLLBACK');
      }
      // Marks read off the bucket index, deleted by ctid: never a scan, nor a sort, of every mark (the set-aside list
      // itself, a function scan, may be sorted).
      for (const [kind, text] of Object.entries(plan)) {
        const table = kind === 'targets' ? 'rollup_dirty' : 'host_rollup_dirty';
        expect(text).toContain(`Index Scan using ${table}_bucket_idx on ${table} m`);
        expect(text).toContain(`Tid Scan on ${table} r`);
        expect(text).not.toMatch(new RegExp(`Seq Scan on ${table}|Sort Key: m\\.bucket`));
      }
    },
  );

  it('retention deletes old rows in small batches and keeps recent ones', async () => {
    const old = Date.now() - 10 * 86_400_000;
    await runInSqlTransaction(db, (tx) =>
      history.insertCheckResults(tx, [
        ...Array.from({ length: 25 }, (_, i) => result('check:ret', old + i, true, 1)),
        result('check:ret', Date.now(), true, 1),
      ]),
    );
    // Rolled up first: retention keeps raw rows whose minute is still marked (below).
    while ((await history.recomputeDirtyRollups(1000, 0)) > 0);
    const deleted = await history.deleteOlderThan('check_results', new Date(Date.now() - 7 * 86_400_000), 10);
    expect(deleted).toBeGreaterThanOrEqual(25);
    expect(await count("SELECT count(*) AS n FROM check_results WHERE target_id = 'check:ret'")).toBe(1);
  });

  it('retention keeps raw rows until their minute is rolled up (a spool from past the raw window got no rollup)', async () => {
    const DAY = 86_400_000;
    const rawCutoff = new Date(Date.now() - 7 * DAY);
    const bucket = minuteBucket(Date.now() - 8 * DAY);
    const targetId = 'instance:kept-until-rolled';
    const at = (i: number) => bucket + i * 1000;
    await runInSqlTransaction(db, async (tx) => {
      await history.insertCheckResults(tx, [result(targetId, at(1), true, 5), result(targetId, at(2), false, 7)]);
      await history.insertStatusUpdates(tx, [
        {
          messageId: randomUUID(),
          updateId: randomUUID(),
          targetId,
          instanceId: targetId,
          kind: 'container',
          lifecycleStatus: 'running',
          status: TargetStatus.Up,
          source: null,
          location: 'eu',
          occurredAt: at(3),
          // Received days later (a spool): the row's minute is its occurredAt's.
          receivedAt: at(3) + 2 * DAY,
          labels: null,
          message: null,
          metadata: null,
        },
      ]);
      await history.insertHeartbeatPings(
        tx,
        (['start', 'success'] as const).map((signal, i) => ({
          messageId: randomUUID(),
          monitorId: targetId,
          targetId,
          location: 'eu',
          signal,
          runId: null,
          receivedAt: at(4 + i),
          body: null,
        })),
      );
    });
    const raw = async () => [
      await count('SELECT count(*) AS n FROM check_results WHERE target_id = $1', [targetId]),
      await count('SELECT count(*) AS n FROM status_updates WHERE target_id = $1', [targetId]),
      await count('SELECT count(*) AS n FROM heartbeat_pings WHERE target_id = $1', [targetId]),
    ];
    // Marked: the rows counted in the rollup stay ('start' pings count in none: pruned).
    for (const table of ['check_results', 'status_updates', 'heartbeat_pings'] as const)
      await history.deleteOlderThan(table, rawCutoff);
    expect(await raw()).toEqual([2, 1, 1]);
    while ((await history.recomputeDirtyRollups(1000, 0, rawCutoff.getTime())) > 0);
    expect(await history.rollups(targetId, new Date(bucket), new Date(bucket + 60_000))).toMatchObject([
      { count: 4, okCount: 3 },
    ]);
    for (const table of ['check_results', 'status_updates', 'heartbeat_pings'] as const)
      await history.deleteOlderThan(table, rawCutoff);
    expect(await raw()).toEqual([0, 0, 0]);
  });

  it("retention probes a row's mark by key, never reading the whole mark table per batch", async () => {
    // A big site's marks: tens of thousands of the minute in progress, a few of minutes past the raw window. Hashing
    // the mark table for every batch of 5,000 (a hashed SubPlan or hash anti-join, the planner's pick for a plain
    // EXISTS) cost 0.11x the rows deleted a second (bench:retention). In a transaction rolled back afterwards.
    const DAY = 86_400_000;
    const cutoff = new Date(Date.now() - 7 * DAY).toISOString();
    const old = new Date(Date.now() - 8 * DAY).toISOString();
    await pg.query('BEGIN');
    const plans: string[] = [];
    try {
      for (const [marks, key] of [
        ['rollup_dirty (target_id, location, bucket)', "'plan-' || g, 'eu'"],
        ['host_rollup_dirty (host_id, bucket)', "'plan-' || g"],
      ]) {
        await pg.query(
          `INSERT INTO ${marks} SELECT ${key}, date_trunc('minute', now()) FROM generate_series(1, 50000) g`,
        );
        await pg.query(`INSERT INTO ${marks} SELECT ${key}, $1::timestamptz FROM generate_series(1, 500) g`, [old]);
      }
      await pg.query(
        `INSERT INTO check_results (message_id, check_id, target_id, location, ok, occurred_at)
           SELECT gen_random_uuid(), 'c', 'plan-' || (g % 1000), 'eu', true, $1::timestamptz - g * interval '1 second'
           FROM generate_series(1, 20000) g`,
        [old],
      );
      await pg.query('ANALYZE rollup_dirty, host_rollup_dirty, check_results');
      for (const table of ['check_results', 'status_updates', 'heartbeat_pings', 'host_metrics'] as const)
        plans.push(
          (await pg.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${retentionDeleteSql(table)}`, [cutoff, 5000])).rows
            .map((r) => r['QUERY PLAN'])
            .join('\n'),
        );
    } finally {
      await pg.query('ROLLBACK');
    }
    for (const plan of plans) {
      expect(plan).toMatch(/Index (Only )?Scan using (host_)?rollup_dirty_pkey/);
      expect(plan).not.toMatch(/hashed SubPlan|Hash (Anti )?Join|Seq Scan on (host_)?rollup_dirty/);
    }
  });

  it('retention stops at maxBatches, and before the next batch once told to stop', async () => {
    // Older than any other row of the file, and the cutoff just after them: these rows alone are past it.
    const old = Date.now() - 400 * 86_400_000;
    await runInSqlTransaction(db, (tx) =>
      history.insertCheckResults(
        tx,
        Array.from({ length: 30 }, (_, i) => result('check:ret-bounded', old + i, true, 1)),
      ),
    );
    while ((await history.recomputeDirtyRollups(1000, 0)) > 0);
    const cutoff = new Date(old + 1000);
    const left = () => count("SELECT count(*) AS n FROM check_results WHERE target_id = 'check:ret-bounded'");
    // Two batches of 5 at most.
    expect(await history.deleteOlderThan('check_results', cutoff, 5, 2)).toBe(10);
    expect(await left()).toBe(20);
    // Told to stop after the first batch.
    let asked = 0;
    expect(await history.deleteOlderThan('check_results', cutoff, 5, 1000, () => asked++ >= 1)).toBe(5);
    expect(await left()).toBe(15);
    expect(await history.deleteOlderThan('check_results', cutoff, 5)).toBeGreaterThanOrEqual(15);
    expect(await left()).toBe(0);
  });

  it('retention trims heartbeat runs by when they finished, with the rollups (they grew without bound)', async () => {
    const monitorId = randomUUID();
    const day = 86_400_000;
    const run = (finishedAt: number) => ({
      monitorId,
      targetId: 'heartbeat:ret',
      startedAt: finishedAt - 1000,
      finishedAt,
      durationMs: 1000,
      outcome: 'ok' as const,
    });
    await runInSqlTransaction(db, (tx) =>
      history.insertHeartbeatRuns(tx, [
        run(Date.now() - 100 * day),
        run(Date.now() - 100 * day + 1),
        run(Date.now() - 10 * day),
      ]),
    );
    // Runs are one row per run, kept as long as rollups are (ROLLUP_TABLES), not the raw window.
    expect(ROLLUP_TABLES.has('heartbeat_runs')).toBe(true);
    expect(await history.deleteOlderThan('heartbeat_runs', new Date(Date.now() - 90 * day), 1)).toBe(2);
    expect(
      await count(
        'SELECT count(*) AS n FROM heartbeat_runs WHERE monitor_id = $1 AND finished_at > now() - $2::interval',
        [monitorId, '11 days'],
      ),
    ).toBe(1);
    expect(await count('SELECT count(*) AS n FROM heartbeat_runs WHERE monitor_id = $1', [monitorId])).toBe(1);
  });

  it('retention trims alert history with the rollups, an unpublished event taking its outbox row along', async () => {
    const day = 86_400_000;
    const events = new AlertEventsRepository(db);
    const change = (at: number) => ({
      ruleId: 'ret-rule',
      targetId: 'check:ret',
      fingerprint: 'ffffffffffffffff',
      from: 'pending' as const,
      to: 'firing' as const,
      labels: { alertname: 'ret' },
      value: null,
      at,
    });
    await runInSqlTransaction(db, (tx) =>
      events.insertMany(tx, [change(Date.now() - 100 * day), change(Date.now() - day)]),
    );
    expect(ROLLUP_TABLES.has('alert_events')).toBe(true);
    expect(await history.deleteOlderThan('alert_events', new Date(Date.now() - 90 * day))).toBe(1);
    expect(await count(`SELECT count(*) AS n FROM alert_events WHERE rule_id = 'ret-rule'`)).toBe(1);
    // The old one's outbox row went with it (it would otherwise wait for ever, joined to nothing).
    const pending = (await events.pendingPublication()).filter((e) => e.ruleId === 'ret-rule');
    expect(pending.map((e) => e.at)).toEqual([expect.any(Number)]);
    expect(
      await count(
        `SELECT count(*) AS n FROM alert_event_outbox o JOIN alert_events e ON e.id = o.event_id WHERE e.rule_id = 'ret-rule'`,
      ),
    ).toBe(1);
    expect(
      await count(
        'SELECT count(*) AS n FROM alert_event_outbox o LEFT JOIN alert_events e ON e.id = o.event_id WHERE e.id IS NULL',
      ),
    ).toBe(0);
  });
});

describe('TargetStatesRepository and StatusEventsRepository', () => {
  it('saveMany given the stored targets writes only the locations that differ from them, and reads back whole', async () => {
    const policy = { downQuorumPct: 100 };
    let t: TargetSnapshot | undefined;
    for (const [loc, at] of [
      ['eu', 1000],
      ['us', 1100],
      ['ap', 1200],
    ] as const)
      t = applyObservation(
        t,
        {
          targetId: 'check:few',
          kind: TargetKind.Check,
          name: 'few',
          location: loc,
          at,
          status: TargetStatus.Up,
          reason: 'r',
          deadline: { at: at + 60_000, expireTo: TargetStatus.Stale, reason: 'late' },
        },
        policy,
      ).target;
    await runInSqlTransaction(db, (tx) => states.saveMany(tx, [t as TargetSnapshot]));
    const versions = async () =>
      Object.fromEntries(
        (
          await pg.query<{ location: string; v: string }>(
            "SELECT location, xmin::text AS v FROM target_location_states WHERE target_id = 'check:few'",
          )
        ).rows.map((r) => [r.location, r.v]),
      );
    const first = await versions();
    const next = await runInSqlTransaction(db, async (tx) => {
      const current = await states.lockMany(tx, ['check:few']);
      const r = applyObservation(
        current.get('check:few'),
        {
          targetId: 'check:few',
          kind: TargetKind.Check,
          name: 'few',
          location: 'us',
          at: 5000,
          status: TargetStatus.Down,
          reason: 'refused',
          deadline: { at: 65_000, expireTo: TargetStatus.Stale, reason: 'late' },
        },
        policy,
      ).target;
      await states.saveMany(tx, [r], [], current);
      return r;
    });
    const second = await versions();
    expect(second.eu).toBe(first.eu);
    expect(second.ap).toBe(first.ap);
    expect(second.us).not.toBe(first.us);
    const [loaded] = await states.findMany(['check:few']);
    expect(loaded).toEqual({
      ...next,
      downQuorumPct: null,
      paused: false,
      configVersion: null,
      deletedAt: null,
      pingWindowMs: null,
      pingWindowVersion: null,
    });
    expect(loaded.status).toBe(TargetStatus.Partial);
  });

  it('round-trips a target with its locations, deadline and run, and issues events with an outbox', async () => {
    const policy = { downQuorumPct: 100 };
    let t: TargetSnapshot | undefined;
    const drafts: StatusEventDraft[] = [];
    for (const [loc, status, at] of [
      ['eu', TargetStatus.Up, 1000],
      ['us', TargetStatus.Down, 2000],
    ] as const) {
      const r = applyObservation(
        t,
        {
          targetId: 'check:s1',
          kind: TargetKind.Check,
          name: 's1',
          location: loc,
          at,
          status,
          reason: 'r',
          latencyMs: 12.5,
          tags: ['a=1'],
          labels: { a: '1' },
          deadline: { at: at + 60_000, expireTo: TargetStatus.Stale, reason: 'late' },
          run: loc === 'us' ? { startedAt: 1500, runId: 'run-1' } : null,
        },
        policy,
      );
      t = r.target;
      drafts.push(...r.events);
    }
    const target = t as TargetSnapshot;
    const stored = await runInSqlTransaction(db, async (tx) => {
      expect((await states.lockMany(tx, ['check:s1'])).size).toBe(0);
      await states.saveMany(tx, [target]);
      return events.insertMany(tx, drafts);
    });
    const [loaded] = await states.findMany(['check:s1']);
    // A loaded snapshot states every column; an observation leaves the check-only ones unset.
    expect(loaded).toEqual({
      ...target,
      downQuorumPct: null,
      paused: false,
      configVersion: null,
      deletedAt: null,
      instanceKind: null,
      configuredLocations: null,
      pingWindowMs: null,
      pingWindowVersion: null,
    });
    expect(await states.count()).toBeGreaterThanOrEqual(1);
    expect((await states.page(null, 10)).map((x) => x.id)).toContain('check:s1');
    expect(await states.page(null, 10, new Date(Date.now() + 60_000))).toEqual([]);

    // A deleted check's tombstone: no locations, out of counts and whole rebuilds, given to a recent-changes reconcile.
    const liveBefore = await states.count();
    const tombstone: TargetSnapshot = { ...target, locations: {}, paused: false, configVersion: 9, deletedAt: 5000 };
    await runInSqlTransaction(db, (tx) => states.saveMany(tx, [tombstone]));
    expect(await states.findMany(['check:s1'])).toEqual([
      {
        ...tombstone,
        downQuorumPct: null,
        instanceKind: null,
        configuredLocations: null,
        pingWindowMs: null,
        pingWindowVersion: null,
      },
    ]);
    expect(await count("SELECT count(*) AS n FROM target_location_states WHERE target_id = 'check:s1'")).toBe(0);
    expect(await states.count()).toBe(liveBefore - 1);
    expect((await states.page(null, 10)).map((x) => x.id)).not.toContain('check:s1');
    expect((await states.page(null, 10, new Date(Date.now() - 60_000))).map((x) => x.id)).toContain('check:s1');
    expect((await states.dueDeadlines(Date.now() + 86_400_000, 100)).map((d) => d.targetId)).not.toContain('check:s1');

    expect(stored.map((e) => e.sequence)).toEqual([1, 2, 3, 4]);
    expect(stored.every((e) => /^[0-9a-f-]{36}$/.test(e.id))).toBe(true);
    const pending = await events.pendingPublication();
    expect(pending.filter((e) => e.targetId === 'check:s1').map((e) => [e.sequence, e.kind, e.to])).toEqual([
      [1, 'check', 'UP'],
      [2, 'check', 'UP'],
      [3, 'check', 'DOWN'],
      [4, 'check', 'PARTIAL'],
    ]);
    await events.markPublished(stored.map((e) => e.id));
    expect((await events.pendingPublication()).filter((e) => e.targetId === 'check:s1')).toEqual([]);
    expect((await events.listForTarget('check:s1', 2)).map((e) => e.sequence)).toEqual([3, 4]);
    // A sequence number cannot be issued twice.
    await expect(runInSqlTransaction(db, (tx) => events.insertMany(tx, [drafts[0]]))).rejects.toBeInstanceOf(
      ConflictError,
    );
  });
});

describe('on the Prisma client (callers holding DatabaseClient)', () => {
  it('runs the same statements inside a Prisma transaction, with errors mapped alike', async () => {
    const prisma = createPrismaClient(isolated.databaseUrl, { poolSize: 1 });
    try {
      const viaPrisma = new HistoryRepository(prisma);
      const row = result('check:prisma', Date.now(), true, 3);
      expect(await runInTransaction(prisma, (tx) => viaPrisma.insertCheckResults(tx, [row]))).toEqual(
        new Set([row.messageId]),
      );
      const draft = {
        targetId: 'check:prisma',
        kind: TargetKind.Check,
        location: null,
        from: TargetStatus.Unknown,
        to: TargetStatus.Up,
        reason: 'r',
        at: Date.now(),
        sequence: 1,
      };
      const viaPrismaEvents = new StatusEventsRepository(prisma);
      await runInTransaction(prisma, (tx) => viaPrismaEvents.insertMany(tx, [draft]));
      await expect(runInTransaction(prisma, (tx) => viaPrismaEvents.insertMany(tx, [draft]))).rejects.toBeInstanceOf(
        ConflictError,
      );
    } finally {
      await prisma.$disconnect();
    }
  });
});

describe('AdvisoryLease', () => {
  it('is held by one holder at a time and freed when the holder goes', async () => {
    const name = `test-lease-${randomUUID()}`;
    const a = new AdvisoryLease({ databaseUrl: isolated.databaseUrl, name, applicationName: 'lease-holder-a' });
    const b = new AdvisoryLease({ databaseUrl: isolated.databaseUrl, name });
    try {
      expect(await a.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(true);
      expect(await b.tryAcquire()).toBe(false);
      // The holder's connection dies (as on SIGKILL): the lock is free at once.
      await pg.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lease-holder-a'",
      );
      await new Promise((r) => setTimeout(r, 100));
      expect(await b.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(false);
    } finally {
      await a.release();
      await b.release();
    }
  });
});
