// Prisma CLI configuration (generate, migrate dev/deploy/status).
//
// Prisma's native engines come from a host these machines cannot reach, so the CLI
// runs the WebAssembly schema engine (`engine: 'js'`) over @prisma/adapter-pg. Two
// adapter bugs (Prisma 6.19.3) are worked around here and ONLY here; the runtime
// client (libs/persistence/src/prisma-client.ts) uses a plain PrismaPg:
//  1. prisma/orm#27403: adapter-pg throws on Postgres system column types (`name`,
//     `"char"`, …) that the schema engine reads while introspecting. We report any
//     built-in type OID (< 16384) the adapter does not know as `text`.
//  2. The shadow database of `migrate dev` is opened with `{...config, database}`;
//     with a connectionString in config, the string wins, so migrations replay on the
//     main database (P3006); and the shadow DB is dropped while still connected. We
//     connect with separate host/port/user/database fields and drop WITH (FORCE).
// `allowExitOnIdle` stops every CLI command from idling ~10 s before exiting.
// 3. Found here: `migrate deploy`/`migrate dev` still linger 10 s after finishing:
//    the WebAssembly schema engine's 10 s advisory-lock timeout is a JS setTimeout
//    that is never cleared once the lock is taken. We unref the engine's timers (a
//    pending query keeps the process alive on its own socket), so the CLI exits
//    as soon as it is done.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { defineConfig } from 'prisma/config';

{
  // Only the Prisma CLI loads this file; only its WebAssembly engine's timers match.
  const originalSetTimeout = globalThis.setTimeout;
  const patched = (...args: Parameters<typeof setTimeout>): ReturnType<typeof setTimeout> => {
    const timer = originalSetTimeout(...args);
    if ((args[1] ?? 0) >= 1000 && new Error().stack?.includes('wasm-function')) timer.unref();
    return timer;
  };
  globalThis.setTimeout = Object.assign(patched, originalSetTimeout);
}

const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/fleetwatch';
process.env['DATABASE_URL'] ??= DEFAULT_DATABASE_URL;

// OIDs adapter-pg maps itself (see fieldToColumnType in @prisma/adapter-pg).
const b = pg.types.builtins;
const KNOWN_OIDS = new Set<number>([
  b.INT2,
  b.INT4,
  b.INT8,
  b.FLOAT4,
  b.FLOAT8,
  b.BOOL,
  b.DATE,
  b.TIME,
  b.TIMETZ,
  b.TIMESTAMP,
  b.TIMESTAMPTZ,
  b.NUMERIC,
  b.MONEY,
  b.JSON,
  b.JSONB,
  b.UUID,
  b.OID,
  b.BPCHAR,
  b.TEXT,
  b.VARCHAR,
  b.BIT,
  b.VARBIT,
  b.INET,
  b.CIDR,
  b.XML,
  b.BYTEA,
  1561,
  1000,
  1001,
  1014,
  1002,
  651,
  1182,
  1021,
  1022,
  1041,
  1005,
  1007,
  1016,
  3807,
  199,
  791,
  1231,
  1028,
  1009,
  1115,
  1185,
  1183,
  2951,
  1563,
  1015,
  143,
]);
const FIRST_NORMAL_OBJECT_ID = 16384;

type FieldLike = { dataTypeID: number };
function patchFields(result: unknown): void {
  const fields = (result as { fields?: FieldLike[] } | null)?.fields;
  if (!Array.isArray(fields)) return;
  for (const f of fields) {
    if (f.dataTypeID < FIRST_NORMAL_OBJECT_ID && !KNOWN_OIDS.has(f.dataTypeID)) f.dataTypeID = b.TEXT;
  }
}

// A pg.Client whose results never carry a built-in OID the adapter rejects. The
// adapter queries through the pool (which uses this class) and through checked-out
// clients inside transactions, so patching Client.query covers both paths.
class OidTolerantClient extends pg.Client {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- pg's overloads
  override query(...args: any[]): any {
    const last = args[args.length - 1];
    if (typeof last === 'function') {
      // Callback form, used by pg.Pool#query.
      args[args.length - 1] = (err: unknown, res: unknown) => {
        if (!err) patchAll(res);
        return last(err, res);
      };
    }
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const ret = (super.query as (...a: any[]) => any)(...args);
    if (ret && typeof ret.then === 'function') {
      return ret.then((r: unknown) => {
        patchAll(r);
        return r;
      });
    }
    return ret;
  }
}

function patchAll(r: unknown): void {
  if (Array.isArray(r)) r.forEach(patchFields);
  else patchFields(r);
}

function connectionFields(url: string): pg.PoolConfig {
  const u = new URL(url);
  const sslmode = u.searchParams.get('sslmode');
  return {
    host: decodeURIComponent(u.hostname) || '127.0.0.1',
    port: u.port ? Number(u.port) : 5432,
    user: decodeURIComponent(u.username) || 'postgres',
    password: u.password ? decodeURIComponent(u.password) : undefined,
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres',
    ssl: sslmode && sslmode !== 'disable' ? { rejectUnauthorized: sslmode === 'verify-full' } : undefined,
    allowExitOnIdle: true,
    max: 4,
    Client: OidTolerantClient,
  };
}

class MigrationPg extends PrismaPg {
  constructor(private readonly fields: pg.PoolConfig) {
    super(fields);
  }

  private async admin(sql: string): Promise<void> {
    const client = new pg.Client({ ...this.fields, Client: undefined } as pg.ClientConfig);
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  override async connectToShadowDb(): ReturnType<PrismaPg['connectToShadowDb']> {
    const database = `prisma_migrate_shadow_db_${randomUUID().replace(/-/g, '')}`;
    await this.admin(`CREATE DATABASE "${database}"`);
    const adapter = await new PrismaPg({ ...this.fields, database }).connect();
    const release = adapter.dispose.bind(adapter);
    adapter.dispose = async () => {
      await release();
      await this.admin(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    };
    return adapter;
  }
}

export default defineConfig({
  schema: path.join('libs', 'persistence', 'prisma', 'schema.prisma'),
  migrations: { path: path.join('libs', 'persistence', 'prisma', 'migrations') },
  engine: 'js',
  experimental: { adapter: true },
  adapter: async () => new MigrationPg(connectionFields(process.env['DATABASE_URL'] ?? DEFAULT_DATABASE_URL)),
});
