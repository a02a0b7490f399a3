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

// A rollup row is keyed by a hash of (host, series, device). Host ids and mounts are any storable
// text, U+0001 included, so the key must not be a plain join on U+0001: host "a" with mount
// "p\u0001disk_used_bytes\u0001q" and host "a\u0001disk_used_bytes\u0001p" with mount "q" joined the
// same way, so one rollup statement upserted one row twice and failed — forever, as the minutes
// went back to the dirty list — stopping every host's rollups behind them.

jest.setTimeout(120_000);

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

function row(hostId: string, mount: string, at: number, usedBytes: number): HostMetricRow {
  const data = {
    hostId,
    location: 'lab',
    sampledAt: new Date(at).toISOString(),
    cpu: { usagePct: 10, cores: 1, load1: 0, load5: 0, load15: 0 },
    memory: { totalBytes: 100, usedBytes: 50 },
    disks: [{ mount, totalBytes: 1000, usedBytes }],
    network: [],
    gpus: [],
  };
  return {
    messageId: randomUUID(),
    hostId,
    location: 'lab',
    sampledAt: at,
    cpuPct: 10,
    load1: 0,
    memUsedBytes: 50,
    memTotalBytes: 100,
    data,
  };
}

it('hosts whose id and mount join alike under U+0001 keep their own rollups', async () => {
  const history = new HistoryRepository(pool);
  const hosts = new HostHistoryRepository(pool);
  const minute = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
  const a = 'a';
  const b = 'a\u0001disk_used_bytes\u0001p';
  await runInSqlTransaction(pool, (tx) =>
    history.insertHostMetrics(tx, [
      row(a, 'p\u0001disk_used_bytes\u0001q', minute + 1_000, 111),
      row(b, 'q', minute + 2_000, 222),
      row('bystander', '/', minute + 3_000, 333),
    ]),
  );
  await hosts.recomputeDirtyRollups();
  expect(await hosts.dirtyCount()).toBe(0);
  const used = async (hostId: string) =>
    (await hosts.rollups(hostId, minute, minute + 60_000))
      .filter((r) => r.series === 'disk_used_bytes')
      .map((r) => [r.device, r.avg]);
  expect(await used(a)).toEqual([['p\u0001disk_used_bytes\u0001q', 111]]);
  expect(await used(b)).toEqual([['q', 222]]);
  expect(await used('bystander')).toEqual([['/', 333]]);
});
