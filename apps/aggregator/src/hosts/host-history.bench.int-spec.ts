import { randomUUID } from 'node:crypto';
import {
  closeSqlPool,
  createSqlPool,
  HistoryRepository,
  HostHistoryRepository,
  runInSqlTransaction,
  type HostMetricRow,
  type SqlPool,
} from '@fleetwatch/persistence';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';

// Benchmark (issue 16): the host history path on Postgres — raw inserts (the aggregator's
// batched statement, with its rollup marks), the rollup job over one minute of every host, a
// 60-minute raw series of one host (720 samples), a 90-day rollup series and the latest sample of
// every host (the live-state rebuild). Prints the figures; asserts only what they must show
// (every minute rolled up, every host found). FW_BENCH_HOSTS (default 100; docs used 1000).

jest.setTimeout(600_000);

const HOSTS = Number(process.env.FW_BENCH_HOSTS ?? 100);
const PER_MINUTE = 12; // a sample every 5 s

let db: IsolatedDatabase;
let pool: SqlPool;

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pool = createSqlPool(db.databaseUrl, { max: 2 });
});
afterAll(async () => {
  if (pool) await closeSqlPool(pool);
  await db?.dispose();
});

/** A typical server: 8 cores, 4 mounts, 3 interfaces, 1 GPU. */
function row(h: number, at: number): HostMetricRow {
  const hostId = `bench-host-${h}`;
  const data = {
    hostId,
    location: 'lab',
    sampledAt: new Date(at).toISOString(),
    intervalSeconds: 5,
    cpu: { usagePct: 33.3, cores: 8, load1: 1, load5: 1, load15: 1, perCorePct: [1, 2, 3, 4, 5, 6, 7, 8] },
    memory: { totalBytes: 16e9, usedBytes: 8e9, swapTotalBytes: 2e9, swapUsedBytes: 1e8 },
    disks: ['/', '/boot', '/var', '/data'].map((mount) => ({
      mount,
      totalBytes: 1e11,
      usedBytes: 5e10,
      readBytesPerSec: 100,
      writeBytesPerSec: 200,
    })),
    network: ['eth0', 'eth1', 'lo'].map((iface) => ({ iface, rxBytesPerSec: 1000, txBytesPerSec: 500 })),
    gpus: [
      {
        index: 0,
        name: 'g',
        utilizationPct: 50,
        memoryUsedBytes: 1e9,
        memoryTotalBytes: 8e10,
        temperatureC: 60,
        powerW: 300,
      },
    ],
    uptimeSeconds: 1000,
    system: { hostname: hostId, platform: 'linux' },
  };
  return {
    messageId: randomUUID(),
    hostId,
    location: 'lab',
    sampledAt: at,
    cpuPct: 33.3,
    load1: 1,
    memUsedBytes: 8e9,
    memTotalBytes: 16e9,
    data,
  };
}

it(`host history: ${HOSTS} hosts × ${PER_MINUTE} samples a minute`, async () => {
  const history = new HistoryRepository(pool);
  const hosts = new HostHistoryRepository(pool);
  const M = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
  const rows: HostMetricRow[] = [];
  for (let h = 0; h < HOSTS; h++) for (let i = 0; i < PER_MINUTE; i++) rows.push(row(h, M + i * 5000));

  let t = performance.now();
  for (let i = 0; i < rows.length; i += 500)
    await runInSqlTransaction(pool, (tx) => history.insertHostMetrics(tx, rows.slice(i, i + 500)));
  const insertMs = performance.now() - t;

  t = performance.now();
  let minutes = 0;
  for (let n = await hosts.recomputeDirtyRollups(200); n > 0; n = await hosts.recomputeDirtyRollups(200)) minutes += n;
  const rollupMs = performance.now() - t;
  expect(minutes).toBe(HOSTS);

  // One host with an hour of raw samples before M.
  const hour = Array.from({ length: 720 }, (_, i) => row(0, M - 3_600_000 + i * 5000));
  await runInSqlTransaction(pool, (tx) => history.insertHostMetrics(tx, hour));
  while ((await hosts.recomputeDirtyRollups(200)) > 0);
  const time = async (fn: () => Promise<unknown>, n = 5) => {
    const s = performance.now();
    for (let i = 0; i < n; i++) await fn();
    return (performance.now() - s) / n;
  };
  const rawMs = await time(() => hosts.rawSeries('bench-host-0', M - 3_600_000, M));
  const rollupSeriesMs = await time(() => hosts.rollupSeries('bench-host-0', M - 90 * 86_400_000, M + 60_000, 180));
  let latest = 0;
  const latestMs = await time(async () => (latest = (await hosts.latestSamples({ limit: HOSTS + 10 })).length), 1);
  expect(latest).toBe(HOSTS);

  const figures = {
    samples: rows.length,
    'insert ms per sample (batches of 500)': +(insertMs / rows.length).toFixed(3),
    'rollup ms per host-minute': +(rollupMs / minutes).toFixed(2),
    'raw series, 60 min (720 samples) ms': +rawMs.toFixed(1),
    'rollup series, 90 days ms': +rollupSeriesMs.toFixed(1),
    [`latest sample of ${HOSTS} hosts ms`]: +latestMs.toFixed(1),
  };
  console.log(`host history benchmark\n${JSON.stringify(figures, null, 2)}`);
});
