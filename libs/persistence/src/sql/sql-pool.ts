import { DynamicModule, Inject, Module, OnModuleDestroy } from '@nestjs/common';
import { ConflictError, UnavailableError } from '@fleetwatch/domain';
import { Pool, type PoolClient, type QueryResultRow } from 'pg';
import type { DatabaseClient, DatabaseTransaction } from '../database';

// A plain pg pool for hot, batched write paths (the aggregator commits thousands of
// rows a second with multi-row unnest statements): Prisma's raw-query path costs about
// twice the time per statement there. Like DatabaseClient, the handles are opaque:
// only repositories in this lib run SQL on them.

declare const opaque: unique symbol;

export interface SqlPool {
  readonly [opaque]: 'SqlPool';
}

/** A transaction on a SqlPool, handed to repository methods that must join it. */
export interface SqlTransaction {
  readonly [opaque]: 'SqlTransaction';
}

export interface SqlPoolOptions {
  max?: number;
  applicationName?: string;
  connectionTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Server-side limit per statement (default 30 s). */
  statementTimeoutMs?: number;
}

export function createSqlPool(databaseUrl: string, options: SqlPoolOptions = {}): SqlPool {
  const pool = new Pool({
    connectionString: databaseUrl,
    max: options.max ?? 4,
    application_name: options.applicationName ?? 'fleetwatch',
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool as unknown as SqlPool;
}

export async function closeSqlPool(pool: SqlPool): Promise<void> {
  await (pool as unknown as Pool).end().catch(() => undefined);
}

/**
 * SQLSTATE classes that blame the rows themselves: 22 data exception (a value the
 * type cannot hold), 23 integrity constraint violation, 54 program limit exceeded
 * (e.g. an index row too large), P0 raised by a trigger or function. Any other Postgres error — connection (08),
 * resources such as a full disk or memory (53), statement timeout or shutdown (57),
 * system I/O (58), lock conflicts (40, 55), read-only after a failover (25006), a
 * schema out of step with the code (42, 3D, 3F), credentials (28), internal (XX) —
 * would hit every row alike: it is an outage to wait out, never a reason to set
 * rows aside.
 */
const DATA_ERROR_CLASSES = /^(22|23|54|P0)/;
/** A SQLSTATE, not one of Prisma's own codes (P1xxx–P6xxx). */
const SQLSTATE = /^(?!P[1-9])[0-9A-Z]{5}$/;
const UNAVAILABLE_TEXT =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ECONNABORTED|EADDRNOTAVAIL|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i;

/** pg errors → domain errors (unique violation → ConflictError, anything but a data error → UnavailableError); else unchanged. Always throws. */
export function rethrowSql(err: unknown, conflict?: string): never {
  const e = err as {
    code?: unknown;
    message?: unknown;
    meta?: { code?: unknown; driverAdapterError?: { cause?: { originalCode?: unknown } } };
  } | null;
  // pg puts the SQLSTATE in `code`; Prisma's raw-query errors (P2010) carry it in `meta`.
  const fromPrisma = e?.meta?.driverAdapterError?.cause?.originalCode ?? e?.meta?.code;
  const code = typeof fromPrisma === 'string' ? fromPrisma : typeof e?.code === 'string' ? e.code : '';
  if (conflict && code === '23505') throw new ConflictError(conflict);
  if (SQLSTATE.test(code) && !DATA_ERROR_CLASSES.test(code))
    throw new UnavailableError(`database unavailable: ${String(e?.message ?? '')} (${code})`, 5, code);
  // A Node system error (DNS, socket: it carries a syscall) is the way to the database failing, never the rows.
  if (
    typeof (e as { syscall?: unknown } | null)?.syscall === 'string' ||
    UNAVAILABLE_TEXT.test(`${String(e?.message ?? '')} ${code}`)
  ) {
    throw new UnavailableError('database unavailable', 5);
  }
  throw err;
}

/**
 * Where a repository of the SQL kind runs: its pg pool or transaction — or, for
 * code that holds the Prisma handles (tests seeding data, one-off tools), the
 * DatabaseClient or a DatabaseTransaction, through Prisma's raw queries.
 */
export type SqlHandle = SqlPool | DatabaseClient;
export type SqlTx = SqlTransaction | DatabaseTransaction;

interface PrismaRaw {
  $queryRawUnsafe<R>(text: string, ...params: unknown[]): Promise<R[]>;
  $executeRawUnsafe(text: string, ...params: unknown[]): Promise<number>;
}
const isPrisma = (on: unknown): on is PrismaRaw => typeof (on as Partial<PrismaRaw>).$queryRawUnsafe === 'function';

/** For repositories only: run one statement on the pool or inside the transaction. */
export async function sqlQuery<R extends QueryResultRow>(
  on: SqlHandle | SqlTx,
  text: string,
  params: unknown[] = [],
): Promise<R[]> {
  if (isPrisma(on)) return on.$queryRawUnsafe<R>(text, ...params);
  const runner = on as unknown as { query: (text: string, params: unknown[]) => Promise<{ rows: R[] }> };
  return (await runner.query(text, params)).rows;
}

/** For repositories only: rows affected by one statement. */
export async function sqlExecute(on: SqlHandle | SqlTx, text: string, params: unknown[] = []): Promise<number> {
  if (isPrisma(on)) return on.$executeRawUnsafe(text, ...params);
  const runner = on as unknown as { query: (text: string, params: unknown[]) => Promise<{ rowCount: number | null }> };
  return (await runner.query(text, params)).rowCount ?? 0;
}

/** Runs `fn` in one transaction (READ COMMITTED); commits when it resolves, rolls back when it throws. */
export async function runInSqlTransaction<T>(pool: SqlPool, fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
  let client: PoolClient;
  try {
    client = await (pool as unknown as Pool).connect();
  } catch (err) {
    return rethrowSql(err);
  }
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client as unknown as SqlTransaction);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true;
    }
    return rethrowSql(err);
  } finally {
    // A client whose connection failed mid-transaction is discarded, not reused.
    client.release(broken ? true : undefined);
  }
}

/** Readiness: `SELECT 1` on the pool. */
export async function pingSqlPool(pool: SqlPool): Promise<void> {
  await sqlQuery(pool, 'SELECT 1');
}

/** Nest injection token of the SqlPool that SqlPoolModule provides. */
export const SQL_POOL = Symbol.for('fleetwatch.persistence.SqlPool');

/** A SqlPool for a service (token SQL_POOL, global), closed on shutdown. */
@Module({})
export class SqlPoolModule implements OnModuleDestroy {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlPool) {}

  static forRoot(options: SqlPoolOptions & { databaseUrl: string }): DynamicModule {
    return {
      module: SqlPoolModule,
      global: true,
      providers: [{ provide: SQL_POOL, useFactory: () => createSqlPool(options.databaseUrl, options) }],
      exports: [SQL_POOL],
    };
  }

  async onModuleDestroy(): Promise<void> {
    await closeSqlPool(this.pool);
  }
}
