import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { DB_PREFIX, isStale } from '../run-id';

/** `url` pointing at another database on the same server. */
export function databaseUrlFor(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

function quoteIdent(name: string): string {
  if (!/^[a-z0-9_]{1,63}$/.test(name)) throw new Error(`refusing database name ${JSON.stringify(name)}`);
  return `"${name}"`;
}

async function withAdmin<T>(serverUrl: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: serverUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createDatabase(serverUrl: string, name: string, template?: string): Promise<void> {
  await withAdmin(serverUrl, async (c) => {
    const sql = `CREATE DATABASE ${quoteIdent(name)}${template ? ` TEMPLATE ${quoteIdent(template)}` : ''}`;
    for (let attempt = 1; ; attempt++) {
      try {
        await c.query(sql);
        return;
      } catch (err) {
        // 55006: the template is briefly in use (another worker cloning it). Retry.
        if ((err as { code?: string }).code !== '55006' || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  });
}

export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await withAdmin(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`));
}

export async function listDatabases(serverUrl: string, prefix: string = DB_PREFIX): Promise<string[]> {
  return withAdmin(serverUrl, async (c) => {
    const { rows } = await c.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`,
      [prefix],
    );
    return rows.map((r) => r.datname);
  });
}

/** Drops test databases of runs older than STALE_AFTER_MS. Returns what it dropped. */
export async function sweepStaleDatabases(serverUrl: string, now: number = Date.now()): Promise<string[]> {
  const stale = (await listDatabases(serverUrl)).filter((n) => isStale(n, DB_PREFIX, now));
  for (const name of stale) await dropDatabase(serverUrl, name);
  return stale;
}

/** The repository root: the folder holding prisma.config.ts. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(path.join(dir, 'prisma.config.ts'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`libs/testing: no prisma.config.ts above ${__dirname}`);
    dir = parent;
  }
}

/** `prisma migrate deploy` against `databaseUrl` (the same step production runs). */
export async function migrateDatabase(databaseUrl: string): Promise<void> {
  const root = repoRoot();
  const cli = require.resolve('prisma/build/index.js', { paths: [root] });
  const output: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'migrate', 'deploy'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: databaseUrl, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) {
    throw new Error(
      `prisma migrate deploy failed (exit ${code}) for ${redact(databaseUrl)}:\n${output.join('').trim()}`,
    );
  }
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}
