import { createHash } from 'node:crypto';
import { DynamicModule, Inject, Module, OnModuleDestroy } from '@nestjs/common';
import { ConflictError, UnavailableError } from '@fleetwatch/domain';
import { Pool, type PoolClient, type QueryConfig, type QueryResultRow } from 'pg';
import type { DatabaseClient, DatabaseTransaction } from '../database';
import { pgPoolConfig, QueryTimeoutError, type PgConnectionOptions } from '../pg-connection';
import { withDatabaseReadinessReason } from '../readiness-reason';

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

/** The connection limits (connect, statement, query timeouts, keep-alive) are PgConnectionOptions'. */
export interface SqlPoolOptions extends PgConnectionOptions {
  max?: number;
  applicationName?: string;
  idleTimeoutMs?: number;
  /**
   * Run PreparedSql statements as named prepared statements (parsed and planned once per connection). Default
   * true; false behind a connection pooler in transaction mode that does not carry prepared statements
   * (PgBouncer before 1.21, or without `max_prepared_statements`): they then run as plain statements.
   */
  preparedStatements?: boolean;
}

/**
 * A hot statement of constant text, run as a named prepared statement: Postgres parses, analyses and plans it
 * once per connection instead of at every call (for the aggregator's multi-row upserts that was ~0.2 ms of
 * Postgres CPU per statement, several per commit). Create these once, at module level, from constant text only:
 * every distinct text becomes a statement kept on each connection of the pool.
 */
export interface PreparedSql {
  readonly name: string;
  readonly text: string;
}

export function preparedSql(text: string): PreparedSql {
  return { name: `fw_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`, text };
}

/** Pools created with preparedStatements: false, and the clients of their transactions. */
const unprepared = new WeakSet<object>();

export function createSqlPool(databaseUrl: string, options: SqlPoolOptions = {}): SqlPool {
  const pool = new Pool(
    pgPoolConfig(databaseUrl, {
      ...options,
      max: options.max ?? 4,
      applicationName: options.applicationName ?? 'fleetwatch',
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
    }),
  );
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  if (options.preparedStatements === false) unprepared.add(pool);
  return pool as unknown as SqlPool;
}

export async function closeSqlPool(pool: SqlPool): Promise<void> {
  await (pool as unknown as Pool).end().catch(() => undefined);
}

/**
 * SQLSTATE classes that blame the rows themselves: 21 cardinality violation (an upsert given the same key twice, a
 * scalar subquery answering several rows: the statement's input, the same at every retry), 22 data exception (a value the
 * type cannot hold), 23 integrity constraint violation, 54 program limit exceeded
 * (e.g. an index row too large), P0 raised by a trigger or function; and 25P02, a statement sent after an earlier one
 * of its transaction failed (runInSqlTransaction and runInTransaction surface that earlier error instead where they
 * saw it). Any other Postgres error — connection (08),
 * resources such as a full disk or memory (53), statement timeout or shutdown (57),
 * system I/O (58), lock conflicts (40, 55), read-only after a failover (25006), a
 * schema out of step with the code (42, 3D, 3F), credentials (28), internal (XX) —
 * would hit every row alike: it is an outage to wait out, never a reason to set
 * rows aside.
 */
export const DATA_ERROR_CLASSES = /^(21|22|23|54|P0|25P02$)/;
/** A SQLSTATE, not one of Prisma's own codes (P1xxx–P6xxx). */
const SQLSTATE = /^(?!P[1-9])[0-9A-Z]{5}$/;
/** Messages of a database away (pg's, the driver adapter's, Prisma's): both paths read them (errors.ts too). */
export const UNAVAILABLE_TEXT =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ECONNABORTED|EADDRNOTAVAIL|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|DatabaseNotReachable|too many clients|the database system is (starting up|shutting down)/i;

/**
 * The error's code: pg's SQLSTATE in `code`, the one Prisma's raw-query errors (P2010) carry in `meta`, or the one of
 * the driver adapter's own error (what a Prisma model query rejects with for a SQLSTATE Prisma has no code of its own
 * for: 57014, 40P01, 25P02 …).
 */
function codeOf(err: unknown): string {
  const e = err as {
    name?: unknown;
    code?: unknown;
    cause?: { originalCode?: unknown };
    meta?: { code?: unknown; driverAdapterError?: { cause?: { originalCode?: unknown } } };
  } | null;
  const fromPrisma =
    e?.meta?.driverAdapterError?.cause?.originalCode ??
    e?.meta?.code ??
    (e?.name === 'DriverAdapterError' ? e.cause?.originalCode : undefined);
  return typeof fromPrisma === 'string' ? fromPrisma : typeof e?.code === 'string' ? e.code : '';
}

/** 25P02: a statement sent to a transaction that an earlier failure aborted (already classified: UnavailableError). */
export const isAborted = (err: unknown): boolean =>
  codeOf(err) === '25P02' || (err instanceof UnavailableError && err.sqlState === '25P02');

/** The Postgres SQLSTATE of a driver error (pg's, or one Prisma carries: see codeOf); '' for any other. */
export function sqlStateOf(err: unknown): string {
  const code = codeOf(err);
  return SQLSTATE.test(code) ? code : '';
}

/** A statement Postgres answered with an error (a SQLSTATE): inside a transaction, it aborted the transaction. */
export const failedInDatabase = (err: unknown): boolean => sqlStateOf(err) !== '';

/** pg errors → domain errors (unique violation → ConflictError, anything but a data error → UnavailableError); else unchanged. Always throws. */
export function rethrowSql(err: unknown, conflict?: string): never {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = codeOf(err);
  if (conflict && code === '23505') throw new ConflictError(conflict);
  // No answer in time: the connection is closed, what the server did is unknown — an outage, as a reset is.
  if (err instanceof QueryTimeoutError) throw new UnavailableError(`database unavailable: ${err.message}`, 5);
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

type Statement = string | PreparedSql;
type PgRunner<R> = {
  query: (config: string | { name: string; text: string; values: unknown[] }, params?: unknown[]) => Promise<R>;
};

/**
 * A named statement that no longer fits its connection: planned against an older schema (a migration changed the
 * type of a column it returns: "cached plan must not change result type"), or dropped behind the driver's back
 * (DEALLOCATE, DISCARD): it would fail the same way at every later execution on that connection.
 */
const STALE_STATEMENT = new Set(['0A000', '26000']);
/** Transaction clients whose prepared statements went stale: runInSqlTransaction discards them (the retry re-prepares). */
const stale = new WeakSet<object>();

/**
 * Transactions whose BEGIN is not sent yet: runInSqlTransaction defers it to the transaction's first statement, so
 * that a first statement of plain text without parameters (the aggregator's shard-epoch check) travels with it in
 * one simple-protocol query (`BEGIN; …`): one round trip less per commit. A first statement with parameters is
 * preceded by its own BEGIN, as before; a transaction that runs no statement sends neither BEGIN nor COMMIT.
 */
const beginPending = new WeakSet<object>();
/** The BEGIN of a transaction whose first statement is not sent yet, when it is not a plain `BEGIN` (runInSqlSnapshot). */
const beginText = new WeakMap<object, string>();

async function beginWith<R>(on: SqlTx, statement: Statement, params: unknown[]): Promise<R> {
  beginPending.delete(on);
  const begin = beginText.get(on) ?? 'BEGIN';
  beginText.delete(on);
  const runner = on as unknown as PgRunner<R | R[]>;
  if (typeof statement === 'string' && params.length === 0) {
    // Each statement of a simple query runs as its own statement (its own snapshot at READ COMMITTED), as if sent
    // one after the other; the BEGIN opens the block the rest of the transaction runs in.
    const results = (await runner.query(`${begin};\n${statement}`, [])) as R | R[];
    // (A text of no statement, only a comment say, answers as BEGIN alone did: one result, not a list.)
    if (!Array.isArray(results)) return results;
    return (results.length === 2 ? results[1] : results.slice(1)) as R;
  }
  // Both queued now, in this order (the client sends its queue one by one): the statement must not wait for BEGIN's
  // answer, or one the callback did not wait for would be queued after its COMMIT or ROLLBACK (outside the
  // transaction, on a connection already released) and after statements started later.
  const [, result] = await Promise.all([runner.query(begin), runPg<R>(on, statement, params)]);
  return result;
}

/**
 * Clients of open transactions, and the first error a statement of each raised: every statement after it fails with
 * 25P02 (in_failed_sql_transaction), which says nothing of the cause. runInSqlTransaction answers with this one.
 */
const openTx = new WeakSet<object>();
const firstFailure = new WeakMap<object, unknown>();

function runPg<R>(on: SqlHandle | SqlTx, statement: Statement, params: unknown[]): Promise<R> {
  const run = sendPg<R>(on, statement, params);
  if (!openTx.has(on)) return run;
  return run.catch((err: unknown) => {
    if (!firstFailure.has(on)) firstFailure.set(on, err);
    throw err;
  });
}

function sendPg<R>(on: SqlHandle | SqlTx, statement: Statement, params: unknown[]): Promise<R> {
  if (beginPending.has(on)) return beginWith<R>(on as SqlTx, statement, params);
  const runner = on as unknown as PgRunner<R>;
  if (typeof statement === 'string') return runner.query(statement, params);
  if (unprepared.has(on)) return runner.query(statement.text, params);
  // (A pool's own query already discards its client on any error.)
  return runner.query({ name: statement.name, text: statement.text, values: params }).catch((err: unknown) => {
    if (STALE_STATEMENT.has(String((err as { code?: unknown } | null)?.code))) stale.add(on);
    throw err;
  });
}

/** For repositories only: run one statement on the pool or inside the transaction. */
export async function sqlQuery<R extends QueryResultRow>(
  on: SqlHandle | SqlTx,
  statement: Statement,
  params: unknown[] = [],
): Promise<R[]> {
  const text = typeof statement === 'string' ? statement : statement.text;
  if (isPrisma(on)) return on.$queryRawUnsafe<R>(text, ...params);
  return (await runPg<{ rows: R[] }>(on, statement, params)).rows;
}

/** For repositories only: rows affected by one statement. */
export async function sqlExecute(on: SqlHandle | SqlTx, statement: Statement, params: unknown[] = []): Promise<number> {
  const text = typeof statement === 'string' ? statement : statement.text;
  if (isPrisma(on)) return on.$executeRawUnsafe(text, ...params);
  return (await runPg<{ rowCount: number | null }>(on, statement, params)).rowCount ?? 0;
}

/** Runs `fn` in one transaction (READ COMMITTED); commits when it resolves, rolls back when it throws. */
export async function runInSqlTransaction<T>(pool: SqlPool, fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
  return inTransaction(pool, fn, null);
}

/**
 * For repositories only: runs `fn` in one REPEATABLE READ, READ ONLY transaction. Every statement in it reads the
 * same snapshot (taken at its first statement), so reads of several tables see exactly the writes that had committed
 * by then, all of each or none; no locks are taken and no writer waits for it.
 */
export async function runInSqlSnapshot<T>(pool: SqlPool, fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
  return inTransaction(pool, fn, 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
}

async function inTransaction<T>(
  pool: SqlPool,
  fn: (tx: SqlTransaction) => Promise<T>,
  begin: string | null,
): Promise<T> {
  let client: PoolClient;
  try {
    client = await (pool as unknown as Pool).connect();
  } catch (err) {
    return rethrowSql(err);
  }
  let broken = false;
  if (unprepared.has(pool)) unprepared.add(client);
  // BEGIN goes with the first statement (beginWith); nothing to end if none ran.
  beginPending.add(client);
  if (begin) beginText.set(client, begin);
  openTx.add(client);
  try {
    const result = await fn(client as unknown as SqlTransaction);
    if (!beginPending.has(client)) {
      const end = await client.query('COMMIT');
      // Postgres answers the COMMIT of a transaction a statement's failure aborted (the callback caught the error and
      // went on) with ROLLBACK, not an error: nothing was written, and the caller must not be told it was.
      if (end.command === 'ROLLBACK')
        throw (
          firstFailure.get(client) ??
          new UnavailableError('database unavailable: the transaction was rolled back at COMMIT', 5)
        );
    }
    return result;
  } catch (err) {
    // A query that timed out closed the connection: nothing to roll back there (the server does when it hears).
    if (err instanceof QueryTimeoutError) broken = true;
    else if (!beginPending.has(client))
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
    if (!isAborted(err)) return rethrowSql(err);
    // 25P02 only follows an earlier failure in the transaction: that one is the cause, classified as itself (a
    // cardinality violation set aside, a statement timeout waited out), never as the 25P02 that hid it.
    const first = firstFailure.get(client);
    if (first !== undefined && !isAborted(first)) return rethrowSql(first);
    // Aborted before its first statement: a connection handed over inside a failed transaction. Its state, not the
    // rows: discarded, and the work retried on another.
    broken = true;
    throw new UnavailableError('database unavailable: connection left in a failed transaction (25P02)', 5, '25P02');
  } finally {
    openTx.delete(client);
    firstFailure.delete(client);
    beginPending.delete(client);
    beginText.delete(client);
    // A client whose connection failed mid-transaction is discarded, not reused; so is one whose prepared statements
    // went stale (the next transaction gets a connection that prepares them anew).
    client.release(broken || stale.has(client) ? true : undefined);
  }
}

/**
 * Readiness: `SELECT 1` on the pool, failing after `timeoutMs` (default 2000, /readyz's own limit) with its connection
 * closed: probes of a database that does not answer must not keep pool connections for the whole query timeout.
 */
export async function pingSqlPool(pool: SqlPool, timeoutMs = 2000): Promise<void> {
  // (pg's types lack a query's own query_timeout; the pool's clients honour it: pg-connection.ts.)
  const ping: QueryConfig & { query_timeout: number } = { text: 'SELECT 1', query_timeout: timeoutMs };
  // Tagged with what /readyz shows (`unreachable`, `timeout`): pg's `Connection terminated unexpectedly` and its query
  // timeout carry no code for /readyz to read.
  await (pool as unknown as Pool).query(ping).catch((err: unknown) => {
    throw withDatabaseReadinessReason(err);
  });
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
