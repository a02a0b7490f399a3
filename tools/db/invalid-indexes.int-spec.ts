import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';

// The deploy step (npm run db:migrate) on a database where a CONCURRENTLY index build failed: the index is left
// INVALID (never used by a query), and the migration's retry (IF NOT EXISTS) skipped it for good. The step rebuilds it.

const root = join(__dirname, '..', '..');
let db: IsolatedDatabase;
let pg: Client;

beforeAll(async () => {
  db = await createIsolatedDatabase();
  pg = new Client({ connectionString: db.databaseUrl });
  await pg.connect();
});
afterAll(async () => {
  await pg?.end();
  await db?.dispose();
});

const valid = async (name: string) =>
  (
    await pg.query<{ valid: boolean }>(
      `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1`,
      [name],
    )
  ).rows.map((r) => r.valid);

const migrate = () =>
  spawnSync(process.execPath, [join(root, 'tools/db/migrate.mjs')], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: db.databaseUrl },
    encoding: 'utf8',
    timeout: 120_000,
  });

it('rebuilds an index a failed CONCURRENTLY build left INVALID, and leaves valid ones alone', async () => {
  // What a failed build leaves: the index there, marked invalid (as Postgres marks it until the build ends).
  await pg.query(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'rollup_dirty_bucket_idx'::regclass`);
  expect(await valid('rollup_dirty_bucket_idx')).toEqual([false]);
  const run = migrate();
  expect(run.status).toBe(0);
  expect(run.stdout).toContain('index "rollup_dirty_bucket_idx" is INVALID');
  expect(await valid('rollup_dirty_bucket_idx')).toEqual([true]);
  expect(await valid('host_rollup_dirty_bucket_idx')).toEqual([true]);
  // Nothing to do the second time.
  const again = migrate();
  expect(again.status).toBe(0);
  expect(again.stdout).not.toContain('INVALID');
});

it('leaves alone an index another session is still building (it is INVALID until that build ends)', async () => {
  const holder = new Client({ connectionString: db.databaseUrl });
  const builder = new Client({ connectionString: db.databaseUrl });
  await holder.connect();
  await builder.connect();
  try {
    await pg.query('DROP INDEX IF EXISTS host_rollup_dirty_bucket_idx');
    // A snapshot held open: the concurrent build waits for it, in progress and INVALID meanwhile.
    await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await holder.query('SELECT count(*) FROM host_rollup_dirty');
    const building = builder.query(
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS "host_rollup_dirty_bucket_idx" ON "host_rollup_dirty"("bucket")',
    );
    for (let i = 0; i < 200 && (await valid('host_rollup_dirty_bucket_idx')).length === 0; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(await valid('host_rollup_dirty_bucket_idx')).toEqual([false]);
    const run = migrate();
    expect(run.status).toBe(0);
    expect(run.stdout).not.toContain('INVALID');
    await holder.query('COMMIT');
    await building;
    expect(await valid('host_rollup_dirty_bucket_idx')).toEqual([true]);
  } finally {
    await holder.end();
    await builder.end();
  }
});
