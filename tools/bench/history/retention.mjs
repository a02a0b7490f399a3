#!/usr/bin/env node
// History retention: the aggregator's retention DELETEs (HistoryRepository.deleteOlderThan, batches of 5,000 as the
// service runs them) on a throwaway database holding --rows raw check results and --rows / 10 host samples past the
// raw window, spread over --targets targets (hosts) and a day of minutes, with --marked-pct of those minutes still
// marked for their rollup (a spool replayed from past the raw window, a rollup job behind: their rows are kept).
//
//   npm run bench:retention -- [--rows 500000 --targets 1000 --marked-pct 1 --open-marks 50000
//       --tree <folder holding a built dist/> --json]
//
// --open-marks: marks of the minute in progress besides (targets and hosts each), as a big site always has: the
// retention statement must probe the marks per row, not hash the whole mark table per batch.
//
// Measured: rows deleted a second per table, the rows kept, and the time per DELETE batch (p50 / max). `--tree`
// runs another build's repository (e.g. a worktree of the commit before a change) on the same data shape.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from '../lib/args.mjs';
import { codeVersion } from '../lib/procs.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(import.meta.url);
const args = parseArgs(process.argv.slice(2), {
  rows: 500_000,
  targets: 1000,
  'marked-pct': 1,
  /** Marks of the minute in progress (a big site's steady state: one per target and location seen this minute). */
  'open-marks': 50_000,
  json: false,
  tree: root,
});
const dist = (p) => join(resolve(args.tree), 'dist', p);
if (!existsSync(dist('libs/persistence/src/index.js')))
  throw new Error(`${args.tree}/dist is missing: run \`node tools/build/build.mjs\` there first`);
const P = require(dist('libs/persistence/src/index.js'));
const { createIsolatedDatabase } = require(dist('libs/testing/src/index.js'));
const { Client } = require('pg');

const BATCH = 5000;
const DAY = 86_400_000;
const rawCutoff = new Date(Date.now() - 7 * DAY);
// A day of minutes, starting eight days back: all of it past the raw window.
const start = new Date(Math.floor((Date.now() - 8 * DAY) / 60_000) * 60_000);

const isolated = await createIsolatedDatabase();
const pg = new Client({ connectionString: isolated.databaseUrl });
await pg.connect();
const pool = P.createSqlPool(isolated.databaseUrl, { max: 2 });
const history = new P.HistoryRepository(pool);
const hostRows = Math.max(1, Math.floor(args.rows / 10));
const modulo = Math.max(1, Math.round(100 / Math.max(args['marked-pct'], 0.0001)));
try {
  const seeded = performance.now();
  await pg.query(
    `INSERT INTO check_results (message_id, check_id, target_id, location, ok, latency_ms, occurred_at)
     SELECT gen_random_uuid(), 'c' || (g % $2), 'check:' || (g % $2), 'eu', g % 7 <> 0, g % 500,
            $3::timestamptz + ((g * 86400000::bigint / $1) * interval '1 millisecond')
     FROM generate_series(0, $1 - 1) g`,
    [args.rows, args.targets, start.toISOString()],
  );
  await pg.query(
    `INSERT INTO host_metrics (message_id, host_id, location, sampled_at, cpu_pct, load1, mem_used_bytes,
                               mem_total_bytes, data)
     SELECT gen_random_uuid(), 'host-' || (g % $2), 'eu',
            $3::timestamptz + ((g * 86400000::bigint / $1) * interval '1 millisecond'), g % 100, 0.5, 1e9, 8e9, '{}'
     FROM generate_series(0, $1 - 1) g`,
    [hostRows, args.targets, start.toISOString()],
  );
  // Every --marked-pct-th minute of each target still marked (as the raw inserts mark them).
  await pg.query(
    `INSERT INTO rollup_dirty (target_id, location, bucket)
     SELECT DISTINCT target_id, location, date_trunc('minute', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
     FROM check_results WHERE (extract(epoch FROM occurred_at)::bigint / 60) % $1 = 0`,
    [modulo],
  );
  await pg.query(
    `INSERT INTO host_rollup_dirty (host_id, bucket)
     SELECT DISTINCT host_id, date_trunc('minute', sampled_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
     FROM host_metrics WHERE (extract(epoch FROM sampled_at)::bigint / 60) % $1 = 0`,
    [modulo],
  );
  await pg.query(
    `INSERT INTO rollup_dirty (target_id, location, bucket)
     SELECT 'open-' || g, 'eu', date_trunc('minute', now()) FROM generate_series(1, $1) g`,
    [args['open-marks']],
  );
  await pg.query(
    `INSERT INTO host_rollup_dirty (host_id, bucket)
     SELECT 'open-' || g, date_trunc('minute', now()) FROM generate_series(1, $1) g`,
    [args['open-marks']],
  );
  await pg.query('ANALYZE check_results, host_metrics, rollup_dirty, host_rollup_dirty');
  const seedMs = performance.now() - seeded;

  const results = [];
  for (const table of ['check_results', 'host_metrics']) {
    const before = Number((await pg.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
    const batches = [];
    let deleted = 0;
    const t0 = performance.now();
    for (;;) {
      const b0 = performance.now();
      const n = await history.deleteOlderThan(table, rawCutoff, BATCH, 1);
      batches.push(performance.now() - b0);
      deleted += n;
      if (n < BATCH) break;
    }
    const ms = performance.now() - t0;
    const kept = Number((await pg.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
    batches.sort((a, b) => a - b);
    results.push({
      table,
      rows: before,
      deleted,
      kept,
      rowsPerSec: Math.round(deleted / (ms / 1000)),
      batches: batches.length,
      batchP50Ms: +batches[Math.floor(batches.length / 2)].toFixed(1),
      batchMaxMs: +batches[batches.length - 1].toFixed(1),
    });
  }
  const settings = {
    rows: args.rows,
    hostRows,
    targets: args.targets,
    markedPct: args['marked-pct'],
    openMarks: args['open-marks'],
    batch: BATCH,
    tree: resolve(args.tree),
    commit: codeVersion(resolve(args.tree)),
    cpus: cpus().length,
    load1: +loadavg()[0].toFixed(2),
    seedMs: Math.round(seedMs),
  };
  if (args.json) console.log(JSON.stringify({ settings, results }));
  else {
    console.log('settings:', JSON.stringify(settings));
    for (const r of results)
      console.log(
        `${r.table.padEnd(14)} ${r.deleted.toLocaleString('en')} of ${r.rows.toLocaleString('en')} rows deleted, ` +
          `${r.kept.toLocaleString('en')} kept (minutes still marked): ${r.rowsPerSec.toLocaleString('en')} rows/s; ` +
          `${r.batches} batches, p50 ${r.batchP50Ms} ms, max ${r.batchMaxMs} ms`,
      );
  }
} finally {
  await pg.end();
  await P.closeSqlPool(pool);
  await isolated.dispose();
}
