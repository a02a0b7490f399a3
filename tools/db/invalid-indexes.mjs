// Part of the deploy step (tools/db/migrate.mjs), before `prisma migrate deploy`: rebuilds an index a migration builds
// with CREATE INDEX CONCURRENTLY that a failed or interrupted build left INVALID.
//
// A CONCURRENTLY build that fails (the job killed, a deadlock, a statement timeout, the disk full) leaves its index
// behind marked INVALID: never used by a query, still written by every insert. The migration's retry says IF NOT EXISTS,
// so it skipped the index and reported success — the index stayed INVALID for good (the rollup jobs' picks then read and
// sorted whole mark tables again, the cost their index migration removed). Here each such index, named by a
// migration's `CREATE INDEX CONCURRENTLY IF NOT EXISTS "name" …;`, is dropped and built again with that statement, under
// Prisma's own migration lock (so a concurrent `migrate deploy` building it is never interrupted).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

/** Prisma's migrate advisory lock (its schema engine takes pg_advisory_lock(72707369) for the whole deploy). */
export const PRISMA_MIGRATE_LOCK = 72707369;

const CREATE = /CREATE\s+INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+"([^"]+)"[^;]*;/gi;

/** `name → CREATE statement` of every index a migration under `dir` builds CONCURRENTLY. */
export function concurrentIndexes(dir) {
  const out = new Map();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    let sql;
    try {
      sql = readFileSync(join(dir, entry.name, 'migration.sql'), 'utf8');
    } catch {
      continue;
    }
    // Comments out first (a statement quoted in a comment is not one).
    sql = sql.replace(/--[^\n]*/g, '');
    for (const m of sql.matchAll(CREATE)) out.set(m[1], m[0]);
  }
  return out;
}

/**
 * Rebuilds the INVALID ones among `indexes` (concurrentIndexes) in the database at `url` (schema: the URL's
 * `schema` parameter, as Prisma reads it, else public). Returns the names rebuilt; `log` is told each.
 */
export async function rebuildInvalidIndexes(url, indexes, log = console.log) {
  if (indexes.size === 0) return [];
  const u = new URL(url);
  const schema = u.searchParams.get('schema') || 'public';
  // pg reads libpq's parameters only: Prisma's `schema` (and the like) would be refused as an option.
  for (const key of [...u.searchParams.keys()])
    if (!['sslmode', 'application_name'].includes(key)) u.searchParams.delete(key);
  const client = new pg.Client({ connectionString: u.toString(), application_name: 'fleetwatch-migrate' });
  await client.connect();
  const rebuilt = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
    try {
      await client.query(`SELECT set_config('search_path', $1, false)`, [`"${schema.replace(/"/g, '""')}"`]);
      const { rows } = await client.query(
        `SELECT c.relname AS name FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT i.indisvalid AND n.nspname = $1 AND c.relname = ANY($2::text[])`,
        [schema, [...indexes.keys()]],
      );
      for (const { name } of rows) {
        log(`db: index "${name}" is INVALID (a CONCURRENTLY build failed); building it again`);
        await client.query(`DROP INDEX CONCURRENTLY IF EXISTS "${name.replace(/"/g, '""')}"`);
        await client.query(indexes.get(name));
        rebuilt.push(name);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_LOCK]).catch(() => undefined);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return rebuilt;
}
