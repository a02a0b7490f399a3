import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { UnavailableError } from '@fleetwatch/domain';
import { createLogger } from '@fleetwatch/observability';
import {
  closeSqlPool,
  createSqlPool,
  HistoryRepository,
  HostHistoryRepository,
  runInSqlTransaction,
  type AdvisoryLease,
  type CheckResultRow,
  type HostMetricRow,
  type SqlPool,
} from '@fleetwatch/persistence';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { AggregatorMetrics } from '../aggregator.metrics';
import type { AggregatorConfig } from '../config';
import { isTooLarge, isTransient } from '../status/outage-retry';
import { HistoryMaintenance, ROLLUP_SET_ASIDE_MS } from './history-maintenance.service';

// The history jobs on a real database whose statements are cut by statement_timeout, as the aggregator's pool is
// (30 s by default). Heavy minutes are stood in for by a trigger that sleeps per rollup row written: a chunk of
// minutes that takes longer than the timeout is rolled back whole, its marks kept — taken again, whole, at the next run.

jest.setTimeout(120_000);

const MINUTE = 60_000;
/** Statement timeout of the job's pool; each rollup row written costs SLEEP_S (trigger): ~60 rows fit in one. */
const TIMEOUT_MS = 1000;
const SLEEP_S = 0.005;

let isolated: IsolatedDatabase;
let pool: SqlPool;
let pg: Client;

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  pool = createSqlPool(isolated.databaseUrl, { max: 2, statementTimeoutMs: TIMEOUT_MS });
  pg = new Client({ connectionString: isolated.databaseUrl });
  await pg.connect();
  await pg.query(`CREATE FUNCTION slow_rollup_row() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN PERFORM pg_sleep(${SLEEP_S}); RETURN NEW; END $$`);
  for (const table of ['host_rollups_1m', 'rollups_1m'])
    await pg.query(`CREATE TRIGGER slow BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION slow_rollup_row()`);
});
afterAll(async () => {
  // The trigger lives in the isolated database only: dropped with it, whatever closing the connections did.
  try {
    await pg?.end();
    if (pool) await closeSqlPool(pool);
  } finally {
    await isolated?.dispose();
  }
});

afterEach(() => jest.restoreAllMocks());

function maintenance(
  history = new HistoryRepository(pool),
  hosts = new HostHistoryRepository(pool),
): HistoryMaintenance {
  const config = {
    rollupIntervalMs: 10_000,
    retentionIntervalMs: 3_600_000,
    retention: { rawDays: 7, rollupDays: 90 },
  } as unknown as AggregatorConfig;
  return new HistoryMaintenance(
    history,
    hosts,
    { isHeld: true } as unknown as AdvisoryLease,
    config,
    createLogger('aggregator', 'silent'),
  );
}

const count = async (sql: string) => Number((await pg.query<{ n: string }>(sql)).rows[0]?.n);

/** A host sample of `hostId` at `at` (4 series: a rollup row each). */
const hostSample = (hostId: string, at: number): HostMetricRow => ({
  messageId: randomUUID(),
  hostId,
  location: 'lab',
  sampledAt: at,
  cpuPct: 10,
  load1: 1,
  memUsedBytes: 1,
  memTotalBytes: 2,
  data: { cpu: { usagePct: 10, load1: 1 }, memory: { usedBytes: 1, totalBytes: 2 } },
});

/** A passing check result of `targetId` at `at`. */
const checkResult = (targetId: string, at: number): CheckResultRow => ({
  messageId: randomUUID(),
  checkId: 'c',
  targetId,
  location: 'lab',
  ok: true,
  latencyMs: 5,
  failureReason: null,
  metadata: null,
  occurredAt: at,
});

describe('HistoryMaintenance against a statement timeout', () => {
  it('a chunk of minutes too heavy for one statement is taken in smaller ones, not failed at every run for ever', async () => {
    // A spool replayed after an outage: 120 minutes of a host two days back, and of a check (4 host series a minute,
    // one target rollup a minute). A whole chunk (200 host minutes, 1000 target minutes) takes ~2.4 s / ~0.6 s of
    // trigger time: the host chunk is cut at 1 s, every run, and its marks (with their raw rows) stayed for ever.
    const first = Math.floor((Date.now() - 2 * 86_400_000) / MINUTE) * MINUTE;
    const minutes = Array.from({ length: 120 }, (_, i) => first + i * MINUTE + 1000);
    const samples = minutes.map((at) => hostSample('heavy', at));
    const results = minutes.map((at) => checkResult('check:heavy', at));
    const history = new HistoryRepository(pool);
    await runInSqlTransaction(pool, async (tx) => {
      await history.insertHostMetrics(tx, samples);
      await history.insertCheckResults(tx, results);
    });

    const job = maintenance();
    // One run gets through every minute (before: it failed on the same host chunk at every run).
    await expect(job.rollUp()).resolves.toBe(240);
    expect(await count('SELECT count(*) AS n FROM host_rollup_dirty')).toBe(0);
    expect(await count('SELECT count(*) AS n FROM rollup_dirty')).toBe(0);
    expect(await count("SELECT count(*) AS n FROM host_rollups_1m WHERE host_id = 'heavy'")).toBe(120 * 4);
    expect(await count("SELECT count(*) AS n FROM rollups_1m WHERE target_id = 'check:heavy'")).toBe(120);
  });
});

describe('HistoryMaintenance against a lock held on the rollup tables', () => {
  // A migration or an overlapping job holding a lock on a rollup table: the job's INSERT waits on it. Waited into
  // the statement timeout, that wait failed with 57014 — read as "chunk too large", the chunk was halved at every
  // try down to one minute, and stayed small for ROLLUP_CHUNK_REGROW_RUNS runs. The rollup transactions set a
  // lock_timeout of 5 s (ROLLUP_LOCK_TIMEOUT) under the pool's statement timeout: the run fails with 55P03, an
  // outage to wait out, and the chunk keeps its size.
  /** Statement timeout of this pool: above the 5 s lock timeout. */
  const LOCK_POOL_TIMEOUT_MS = 10_000;
  /** A lock is held at most this long: past the statement timeout, so a job that waited into it gets through after. */
  const HOLD_MAX_MS = LOCK_POOL_TIMEOUT_MS + 2_000;
  let lockPool: SqlPool;

  beforeAll(() => {
    lockPool = createSqlPool(isolated.databaseUrl, { max: 2, statementTimeoutMs: LOCK_POOL_TIMEOUT_MS });
  });
  afterAll(async () => {
    if (lockPool) await closeSqlPool(lockPool);
  });

  /** Runs `fn` while another session holds `LOCK TABLE <table> IN SHARE MODE` (no INSERT gets through meanwhile). */
  async function holdingLock<T>(table: string, fn: () => Promise<T>): Promise<T> {
    const locker = new Client({ connectionString: isolated.databaseUrl });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE ${table} IN SHARE MODE`);
    let released: Promise<void> | undefined;
    const release = () =>
      (released ??= locker
        .query('ROLLBACK')
        .then(() => undefined)
        .finally(() => locker.end()));
    const timer = setTimeout(() => void release(), HOLD_MAX_MS);
    try {
      return await fn();
    } finally {
      clearTimeout(timer);
      await release();
    }
  }

  /** One run under the lock: what it failed with (or the buckets it rolled up), and how long it took. */
  async function runLocked(job: HistoryMaintenance, table: string): Promise<{ outcome: unknown; ms: number }> {
    return holdingLock(table, async () => {
      const started = performance.now();
      const outcome = await job.rollUp().then(
        (n) => n,
        (e: unknown) => e,
      );
      return { outcome, ms: performance.now() - started };
    });
  }

  function expectLockTimeout(outcome: unknown): void {
    // 55P03 classified as an outage (waited out, the job retried), neither a data error nor a chunk too large.
    expect(outcome).toBeInstanceOf(UnavailableError);
    expect((outcome as UnavailableError).sqlState).toBe('55P03');
    expect(isTooLarge(outcome)).toBe(false);
    expect(isTransient(outcome)).toBe(true);
  }

  const limitsOf = (spy: jest.SpyInstance) => spy.mock.calls.map((c: unknown[]) => c[0]);
  const firstMinute = () => Math.floor((Date.now() - 2 * 86_400_000) / MINUTE) * MINUTE;

  it('a lock held on rollups_1m fails the run with the lock timeout, its chunk not halved', async () => {
    const first = firstMinute();
    const results = Array.from({ length: 30 }, (_, i) => checkResult('check:locked', first + i * MINUTE + 1000));
    const history = new HistoryRepository(lockPool);
    await runInSqlTransaction(lockPool, (tx) => history.insertCheckResults(tx, results));
    const recompute = jest.spyOn(history, 'recomputeDirtyRollups');
    const job = maintenance(history, new HostHistoryRepository(lockPool));

    const { outcome, ms } = await runLocked(job, 'rollups_1m');
    // One try at the full chunk, failed by the lock timeout (5 s) before the statement timeout: not taken again halved.
    expect(limitsOf(recompute)).toEqual([1000]);
    expectLockTimeout(outcome);
    expect(ms).toBeLessThan(LOCK_POOL_TIMEOUT_MS);
    // The chunk was rolled back, its marks kept.
    expect(await count("SELECT count(*) AS n FROM rollup_dirty WHERE target_id = 'check:locked'")).toBe(30);

    // The lock gone, the next run takes every minute at the full size.
    await expect(job.rollUp()).resolves.toBe(30);
    expect(limitsOf(recompute)).toEqual([1000, 1000]);
    expect(await count('SELECT count(*) AS n FROM rollup_dirty')).toBe(0);
    expect(await count("SELECT count(*) AS n FROM rollups_1m WHERE target_id = 'check:locked'")).toBe(30);
  });

  it('a lock held on host_rollups_1m fails the run with the lock timeout, its chunk not halved', async () => {
    const first = firstMinute();
    const samples = Array.from({ length: 10 }, (_, i) => hostSample('locked', first + i * MINUTE + 1000));
    await runInSqlTransaction(lockPool, (tx) => new HistoryRepository(lockPool).insertHostMetrics(tx, samples));
    const hosts = new HostHistoryRepository(lockPool);
    const recompute = jest.spyOn(hosts, 'recomputeDirtyRollups');
    const job = maintenance(new HistoryRepository(lockPool), hosts);

    const { outcome, ms } = await runLocked(job, 'host_rollups_1m');
    expect(limitsOf(recompute)).toEqual([200]);
    expectLockTimeout(outcome);
    expect(ms).toBeLessThan(LOCK_POOL_TIMEOUT_MS);
    expect(await count("SELECT count(*) AS n FROM host_rollup_dirty WHERE host_id = 'locked'")).toBe(10);

    await expect(job.rollUp()).resolves.toBe(10);
    expect(limitsOf(recompute)).toEqual([200, 200]);
    expect(await count('SELECT count(*) AS n FROM host_rollup_dirty')).toBe(0);
    expect(await count("SELECT count(*) AS n FROM host_rollups_1m WHERE host_id = 'locked'")).toBe(10 * 4);
  });
});

describe('HistoryMaintenance with retention running beside a long rollup run', () => {
  it("a late row of a minute retention pruned during the run does not shrink the minute's rollup", async () => {
    // A minute 10 min inside the raw window when the rollup run starts, with 20 results rolled up. The run goes on
    // (a backlog of chunks); retention, meanwhile, runs 20 min later by its clock and prunes the minute's raw rows;
    // then a late result of the minute comes (a spool replayed) and marks it. Taken with the cutoff read at the
    // run's start, the minute was still "inside the raw window": recomputed from the one row left, 20 → 1.
    const started = Date.now();
    const minute = Math.floor((started - 7 * 86_400_000 + 10 * MINUTE) / MINUTE) * MINUTE;
    const result = (at: number) => checkResult('check:late', at);
    const history = new HistoryRepository(pool);
    await runInSqlTransaction(pool, (tx) =>
      history.insertCheckResults(
        tx,
        Array.from({ length: 20 }, (_, i) => result(minute + i * 1000)),
      ),
    );
    const job = maintenance(history);
    await job.rollUp();
    const rollupCount = () => count("SELECT count AS n FROM rollups_1m WHERE target_id = 'check:late'");
    expect(await rollupCount()).toBe(20);

    const recompute = history.recomputeDirtyRollups.bind(history);
    let raced = false;
    jest.spyOn(history, 'recomputeDirtyRollups').mockImplementation(async (...args) => {
      if (!raced) {
        raced = true;
        await job.applyRetention(started + 20 * MINUTE);
        expect(await count("SELECT count(*) AS n FROM check_results WHERE target_id = 'check:late'")).toBe(0);
        await runInSqlTransaction(pool, (tx) => history.insertCheckResults(tx, [result(minute + 30_000)]));
      }
      return recompute(...args);
    });
    await job.rollUp();
    expect(raced).toBe(true);
    expect(await count("SELECT count(*) AS n FROM rollup_dirty WHERE target_id = 'check:late'")).toBe(0);
    expect(await rollupCount()).toBe(20);
  });

  it('a host minute pruned while the run was on is not shrunk by a late sample (the cutoff read at its chunk)', async () => {
    // The test above passes with the cutoff read once at the run's start (its retention races the first chunk, which
    // the margin alone covers); here the clock moves on past the margin between the targets' chunk and the hosts'
    // one, as in a long run: a host minute 70 min inside the raw window, pruned and then marked by a late sample.
    const t0 = Date.now();
    const minute = Math.floor((t0 - 7 * 86_400_000 + 70 * MINUTE) / MINUTE) * MINUTE;
    const sample = (at: number) => hostSample('late', at);
    const history = new HistoryRepository(pool);
    await runInSqlTransaction(pool, (tx) =>
      history.insertHostMetrics(
        tx,
        Array.from({ length: 20 }, (_, i) => sample(minute + i * 1000)),
      ),
    );
    const job = maintenance(history);
    await job.rollUp();
    const maxCount = () => count("SELECT max(count) AS n FROM host_rollups_1m WHERE host_id = 'late'");
    expect(await maxCount()).toBe(20);

    // The targets' chunks of the next run take 90 minutes (a backlog); retention runs meanwhile, by the same clock.
    const recompute = history.recomputeDirtyRollups.bind(history);
    let raced = false;
    jest.spyOn(history, 'recomputeDirtyRollups').mockImplementation(async (...args) => {
      const n = await recompute(...args);
      if (!raced) {
        raced = true;
        jest.spyOn(Date, 'now').mockReturnValue(t0 + 90 * MINUTE);
        await job.applyRetention(t0 + 90 * MINUTE);
        expect(await count("SELECT count(*) AS n FROM host_metrics WHERE host_id = 'late'")).toBe(0);
        await runInSqlTransaction(pool, (tx) => history.insertHostMetrics(tx, [sample(minute + 30_500)]));
      }
      return n;
    });
    await job.rollUp();
    expect(raced).toBe(true);
    expect(await count("SELECT count(*) AS n FROM host_rollup_dirty WHERE host_id = 'late'")).toBe(0);
    expect(await maxCount()).toBe(20);
  });
});

describe('HistoryMaintenance against a minute too heavy for the statement timeout on its own', () => {
  it('sets the minute aside (its mark and raw rows kept) and rolls up the later ones; retries it later', async () => {
    // One minute whose rollup alone takes longer than the statement timeout (a trigger sleeps 1.5 s on its row):
    // halved down to one minute, the chunk of it still failed, and as the oldest marked minute it was taken first at
    // every run — no later minute was rolled up again (and retention kept every raw row of them).
    await pg.query(`CREATE FUNCTION huge_rollup_row() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN IF NEW.target_id = 'check:huge' THEN PERFORM pg_sleep(1.5); END IF; RETURN NEW; END $$`);
    await pg.query('CREATE TRIGGER huge BEFORE INSERT ON rollups_1m FOR EACH ROW EXECUTE FUNCTION huge_rollup_row()');
    try {
      const first = Math.floor((Date.now() - 3 * 86_400_000) / MINUTE) * MINUTE;
      const result = checkResult;
      const history = new HistoryRepository(pool);
      await runInSqlTransaction(pool, (tx) =>
        history.insertCheckResults(tx, [
          result('check:huge', first + 1000),
          ...Array.from({ length: 5 }, (_, i) => result('check:after', first + (i + 1) * MINUTE + 1000)),
        ]),
      );
      const setAside = AggregatorMetrics.get().rollupMinutesSetAside;
      const before = (await setAside.get()).values.find((v) => v.labels.kind === 'targets')?.value ?? 0;
      const job = maintenance(history);

      await expect(job.rollUp()).resolves.toBe(5);
      expect(await count("SELECT count(*) AS n FROM rollups_1m WHERE target_id = 'check:after'")).toBe(5);
      expect(await count("SELECT count(*) AS n FROM rollup_dirty WHERE target_id = 'check:huge'")).toBe(1);
      expect(await count("SELECT count(*) AS n FROM rollups_1m WHERE target_id = 'check:huge'")).toBe(0);
      expect((await setAside.get()).values.find((v) => v.labels.kind === 'targets')?.value).toBe(before + 1);

      // Set aside: the next runs leave it alone (no chunk cut again for it).
      const recompute = jest.spyOn(history, 'recomputeDirtyRollups');
      await expect(job.rollUp()).resolves.toBe(0);
      expect(recompute).toHaveBeenCalledTimes(1);

      // Lighter now, and its time come: taken again and rolled up.
      await pg.query('DROP TRIGGER huge ON rollups_1m');
      const now = Date.now();
      jest.spyOn(Date, 'now').mockReturnValue(now + ROLLUP_SET_ASIDE_MS + 1);
      await expect(job.rollUp()).resolves.toBe(1);
      expect(await count("SELECT count(*) AS n FROM rollup_dirty WHERE target_id = 'check:huge'")).toBe(0);
      expect(await count("SELECT count(*) AS n FROM rollups_1m WHERE target_id = 'check:huge'")).toBe(1);
    } finally {
      jest.restoreAllMocks();
      await pg.query('DROP TRIGGER IF EXISTS huge ON rollups_1m');
      await pg.query('DROP FUNCTION huge_rollup_row()');
    }
  });

  it('sets a host minute aside likewise', async () => {
    // 4 series a sample: 4 × 0.4 s for the host's one minute, past the 1 s timeout.
    await pg.query(`CREATE FUNCTION huge_host_row() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN IF NEW.host_id = 'huge' THEN PERFORM pg_sleep(0.4); END IF; RETURN NEW; END $$`);
    await pg.query(
      'CREATE TRIGGER huge BEFORE INSERT ON host_rollups_1m FOR EACH ROW EXECUTE FUNCTION huge_host_row()',
    );
    try {
      const first = Math.floor((Date.now() - 3 * 86_400_000) / MINUTE) * MINUTE;
      const sample = hostSample;
      const history = new HistoryRepository(pool);
      await runInSqlTransaction(pool, (tx) =>
        history.insertHostMetrics(tx, [
          sample('huge', first + 1000),
          ...Array.from({ length: 3 }, (_, i) => sample('after', first + (i + 1) * MINUTE + 1000)),
        ]),
      );
      const job = maintenance(history);
      await expect(job.rollUp()).resolves.toBe(3);
      expect(await count("SELECT count(*) AS n FROM host_rollups_1m WHERE host_id = 'after'")).toBe(3 * 4);
      expect(await count("SELECT count(*) AS n FROM host_rollup_dirty WHERE host_id = 'huge'")).toBe(1);
      await expect(job.rollUp()).resolves.toBe(0);

      await pg.query('DROP TRIGGER huge ON host_rollups_1m');
      const now = Date.now();
      jest.spyOn(Date, 'now').mockReturnValue(now + ROLLUP_SET_ASIDE_MS + 1);
      await expect(job.rollUp()).resolves.toBe(1);
      expect(await count("SELECT count(*) AS n FROM host_rollups_1m WHERE host_id = 'huge'")).toBe(4);
    } finally {
      jest.restoreAllMocks();
      await pg.query('DROP TRIGGER IF EXISTS huge ON host_rollups_1m');
      await pg.query('DROP FUNCTION huge_host_row()');
    }
  });
});
