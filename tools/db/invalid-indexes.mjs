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
  // In migration order (a later migration's statement for the same name wins).
  const entries = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  for (const name of entries) {
    let sql;
    try {
      sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
    } catch {
      continue;
    }
    // Comments out first (a statement quoted in a comment is not one). Statements this does not read — UNIQUE, an
    // unquoted or schema-qualified name, a ';' inside a literal — are not rebuilt: the migrations have none.
    sql = sql.replace(/\/\*[\s\S]*?\*\//g, '').replace(/--[^\n]*/g, '');
    for (const m of sql.matchAll(CREATE)) out.set(m[1], m[0]);
  }
  return out;
}

/**
 * Rebuilds the INVALID ones among `indexes` (concurrentIndexes) in the schema the database at `url` migrates into (the
 * connection's current schema: Prisma here ignores a `schema` URL parameter, as the services do). An index whose build
 * is still running (another session's, seen in pg_stat_progress_create_index) is left to it. Returns the names
 * rebuilt; `log` is told each.
 */
export async function rebuildInvalidIndexes(url, indexes, log = console.log) {
  if (indexes.size === 0) return [];
  // The URL as given (TLS parameters included), as ensureDatabase connects.
  const client = new pg.Client({ connectionString: url, application_name: 'fleetwatch-migrate' });
  await client.connect();
  const rebuilt = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
    try {
      const { rows } = await client.query(
        `SELECT c.relname AS name FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT i.indisvalid AND n.nspname = current_schema() AND c.relname = ANY($1::text[])
           AND i.indexrelid NOT IN (SELECT index_relid FROM pg_stat_progress_create_index WHERE index_relid <> 0)`,
        [[...indexes.keys()]],
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
