#!/usr/bin/env node
// Creates the database named in DATABASE_URL when it does not exist yet (Prisma's
// `migrate deploy` will not). Waits for the server to accept connections first
// (up to DB_WAIT_SECONDS, default 30), so a migration job can start beside Postgres.
// Usage: node tools/db/ensure-database.mjs   (DATABASE_URL, default the SPEC §10 one)
import pg from 'pg';
import { pathToFileURL } from 'node:url';

export const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/fleetwatch';

export function redact(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid DATABASE_URL>';
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function connectMaintenance(url, deadline) {
  const target = new URL(url);
  for (;;) {
    let lastErr;
    // The database itself may be missing: talk to a maintenance database instead.
    for (const db of ['postgres', 'template1']) {
      const u = new URL(target);
      u.pathname = `/${db}`;
      const client = new pg.Client({ connectionString: u.toString(), connectionTimeoutMillis: 5000 });
      try {
        await client.connect();
        return client;
      } catch (err) {
        lastErr = err;
        await client.end().catch(() => {});
        if (err.code === '3D000') continue; // that maintenance DB does not exist, try the next
        break;
      }
    }
    const retryable =
      ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', '57P03'].includes(lastErr?.code) ||
      /timeout|terminated/i.test(lastErr?.message ?? '');
    if (!retryable || Date.now() > deadline) throw lastErr;
    await sleep(1000);
  }
}

/**
 * DB_WAIT_SECONDS: a non-negative whole number of seconds, 30 when unset or empty. Anything else is refused (NaN waited
 * not at all, and a typo gave no retry without a word).
 */
export function dbWaitSeconds(raw = process.env.DB_WAIT_SECONDS) {
  if (raw === undefined || raw.trim() === '') return 30;
  if (!/^\d+$/.test(raw.trim()))
    throw new Error(`DB_WAIT_SECONDS must be a whole number of seconds (0 or more), not ${JSON.stringify(raw)}`);
  return Number(raw.trim());
}

/** Returns true when it created the database, false when it was there. */
export async function ensureDatabase(
  url = process.env.DATABASE_URL || DEFAULT_DATABASE_URL,
  waitSeconds = dbWaitSeconds(),
) {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!name) throw new Error(`DATABASE_URL names no database: ${redact(url)}`);
  const client = await connectMaintenance(url, Date.now() + waitSeconds * 1000);
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return false;
    try {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    } catch (err) {
      if (err.code === '42P04') return false; // created meanwhile by someone else
      throw err;
    }
    return true;
  } finally {
    await client.end();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const url = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
  ensureDatabase(url).then(
    (created) => console.log(`db: ${created ? 'created' : 'found'} database ${redact(url)}`),
    (err) => {
      console.error(`db: cannot ensure database ${redact(url)}: ${err.message}`);
      process.exit(1);
    },
  );
}
