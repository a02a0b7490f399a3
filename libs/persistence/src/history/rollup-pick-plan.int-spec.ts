import { Client } from 'pg';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { pickDirtyHostRollupsSql } from '../hosts/host-history.repository';
import { pickDirtyRollupsSql } from './history.repository';

// The picks with set-aside minutes left out (pickDirtyRollupsSql(true), the host pick's NOT EXISTS)
// must still take their chunk off the bucket index, as the plain picks do (aggregator-repositories.int-spec).

jest.setTimeout(120_000);

let isolated: IsolatedDatabase;
let pg: Client;

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  pg = new Client({ connectionString: isolated.databaseUrl });
  await pg.connect();
});
afterAll(async () => {
  try {
    await pg?.end();
  } finally {
    await isolated?.dispose();
  }
});

it.each([1, 100, 2000])('the picks leaving %i set-aside minutes out still use the bucket index', async (n) => {
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
      (await pg.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
    const bucket = Math.floor((Date.now() - 300_000) / 60_000) * 60_000;
    const ids = Array.from({ length: n }, (_, i) => `instance:plan-${(i + 1) * 10}`);
    plan.targets = await explain(pickDirtyRollupsSql(true), [
      1,
      30_000,
      ids,
      ids.map(() => 'push'),
      ids.map(() => bucket),
    ]);
    const hostIds = Array.from({ length: n }, (_, i) => `plan-${i + 1}`);
    plan.hosts = await explain(pickDirtyHostRollupsSql(true), [
      1,
      new Date().toISOString(),
      hostIds,
      hostIds.map(() => bucket),
    ]);
  } finally {
    await pg.query('ROLLBACK');
  }
  expect(plan.targets).toContain('rollup_dirty_bucket_idx');
  expect(plan.targets).not.toMatch(/Seq Scan on rollup_dirty|Sort/);
  expect(plan.hosts).toContain('host_rollup_dirty_bucket_idx');
  expect(plan.hosts).not.toMatch(/Seq Scan on host_rollup_dirty|Sort/);
});
