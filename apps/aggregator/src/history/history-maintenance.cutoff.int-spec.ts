import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { createLogger } from '@fleetwatch/observability';
import {
  closeSqlPool,
  createSqlPool,
  HistoryRepository,
  HostHistoryRepository,
  runInSqlTransaction,
  type AdvisoryLease,
  type HostMetricRow,
  type SqlPool,
} from '@fleetwatch/persistence';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import type { AggregatorConfig } from '../config';
import { HistoryMaintenance } from './history-maintenance.service';

// The raw cutoff is read per chunk (not once per run). history-maintenance.int-spec's race passes with the
// cutoff read once at the run's start (its retention races the first chunk, which the margin alone covers); here the
// clock moves on past the margin between the targets' chunk and the hosts' one, as in a long run.

jest.setTimeout(120_000);

const MINUTE = 60_000;
const DAY = 86_400_000;
let isolated: IsolatedDatabase;
let pool: SqlPool;
let pg: Client;

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  pool = createSqlPool(isolated.databaseUrl, { max: 2 });
  pg = new Client({ connectionString: isolated.databaseUrl });
  await pg.connect();
});
afterAll(async () => {
  try {
    await pg?.end();
    if (pool) await closeSqlPool(pool);
  } finally {
    await isolated?.dispose();
  }
});
afterEach(() => jest.restoreAllMocks());

const count = async (sql: string) => Number((await pg.query<{ n: string }>(sql)).rows[0]?.n);

it('a host minute pruned while the run was on is not shrunk by a late sample (cutoff read at its chunk)', async () => {
  const t0 = Date.now();
  const minute = Math.floor((t0 - 7 * DAY + 70 * MINUTE) / MINUTE) * MINUTE;
  const sample = (at: number): HostMetricRow => ({
    messageId: randomUUID(),
    hostId: 'late',
    location: 'lab',
    sampledAt: at,
    cpuPct: 10,
    load1: 1,
    memUsedBytes: 1,
    memTotalBytes: 2,
    data: { cpu: { usagePct: 10, load1: 1 }, memory: { usedBytes: 1, totalBytes: 2 } },
  });
  const history = new HistoryRepository(pool);
  const hosts = new HostHistoryRepository(pool);
  await runInSqlTransaction(pool, (tx) =>
    history.insertHostMetrics(
      tx,
      Array.from({ length: 20 }, (_, i) => sample(minute + i * 1000)),
    ),
  );
  const job = new HistoryMaintenance(
    history,
    hosts,
    { isHeld: true } as unknown as AdvisoryLease,
    {
      rollupIntervalMs: 10_000,
      retentionIntervalMs: 3_600_000,
      retention: { rawDays: 7, rollupDays: 90 },
    } as unknown as AggregatorConfig,
    createLogger('aggregator', 'silent'),
  );
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
