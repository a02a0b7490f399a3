import { AsyncLocalStorage } from 'node:async_hooks';
import { PrismaPg } from '@prisma/adapter-pg';
import { Prisma, PrismaClient } from './generated/prisma/client';
import { pgPoolConfig, type PgConnectionOptions } from './pg-connection';
import { databaseReadinessReason, type DatabaseReadinessReason } from './readiness-reason';
import { failedInDatabase, isAborted, rethrowSql } from './sql/sql-pool';

// The database handle the rest of the code base sees. It is a PrismaClient at
// runtime, but its type is opaque: only repositories in this lib unwrap it (with
// prismaOf/queryClient below, which index.ts does not export), so generated Prisma
// types never leak into services.

declare const opaque: unique symbol;

/** An open database (a PrismaClient over a pg pool). Close it with `$disconnect()`. */
export interface DatabaseClient {
  readonly [opaque]: 'DatabaseClient';
  $connect(): Promise<void>;
  $disconnect(): Promise<void>;
}

/** A transaction in progress, handed to repository methods that must join it. */
export interface DatabaseTransaction {
  readonly [opaque]: 'DatabaseTransaction';
}

/** The connection limits (connect, statement, query timeouts, keep-alive) are PgConnectionOptions'. */
export interface DatabaseOptions extends PgConnectionOptions {
  /** Most connections in the pool (default 10). */
  poolSize?: number;
  /** Close idle connections after this long (default 30000 ms). */
  idleTimeoutMs?: number;
  /** `application_name` shown in pg_stat_activity (default `fleetwatch`). */
  applicationName?: string;
}

/** `new PrismaClient({ adapter: new PrismaPg(...) })` — the only way the code base opens Postgres. */
export function createPrismaClient(databaseUrl: string, options: DatabaseOptions = {}): DatabaseClient {
  const adapter = new PrismaPg(
    pgPoolConfig(databaseUrl, {
      ...options,
      max: options.poolSize ?? 10,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      applicationName: options.applicationName ?? 'fleetwatch',
    }),
  );
  return new PrismaClient({ adapter: watchingTransactions(adapter) }) as unknown as DatabaseClient;
}

/**
 * The transaction runInTransaction runs, and the first of its statements Postgres failed. A callback (or a repository
 * in it) may catch a failure and go on; Postgres then answers every later statement with 25P02, which says nothing of
 * the cause, and the COMMIT with ROLLBACK — which Prisma reports as success (its pg adapter sends COMMIT as a plain
 * statement and reads no answer): nothing written, success said. The adapter is told nothing of whose transaction it
 * opens: runInTransaction's watch reaches it through the async context the transaction is started in.
 */
interface TransactionWatch {
  joined: boolean;
  firstFailure?: unknown;
}
const transactionWatch = new AsyncLocalStorage<TransactionWatch>();

/** `factory`, whose transactions started by runInTransaction record their first statement that Postgres failed. */
function watchingTransactions(factory: PrismaPg): PrismaPg {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) => {
      const tx = await startTransaction(isolationLevel);
      discardOnFailedEnd(tx);
      const watch = transactionWatch.getStore();
      // runInTransaction's own is the first started in its context (before its callback runs); one the callback
      // starts is not (a nested runInTransaction brings its own watch).
      if (watch && !watch.joined) {
        watch.joined = true;
        const record = (err: unknown): never => {
          if (watch.firstFailure === undefined && failedInDatabase(err)) watch.firstFailure = err;
          throw err;
        };
        const [queryRaw, executeRaw] = [tx.queryRaw.bind(tx), tx.executeRaw.bind(tx)];
        tx.queryRaw = (query) => queryRaw(query).catch(record);
        tx.executeRaw = (query) => executeRaw(query).catch(record);
      }
      return tx;
    };
    return adapter;
  };
  return factory;
}

type AdapterTransaction = Awaited<ReturnType<Awaited<ReturnType<PrismaPg['connect']>>['startTransaction']>>;

/**
 * Prisma ends a transaction by sending COMMIT (or ROLLBACK) as a statement, then calling the adapter's commit() (or
 * rollback()), which gives the connection back to the pool. When that statement fails — a deferred constraint or a
 * serialization failure at COMMIT, the connection lost mid-transaction or at COMMIT — Prisma marks the transaction
 * closed and never calls them: the connection stays checked out for ever, and once the pool's last one is gone every
 * query waits for a free connection that never comes. Here the connection is given back at once, with the error, so
 * that pg closes it (its state is unknown) and opens a fresh one when needed.
 */
function discardOnFailedEnd(tx: AdapterTransaction): void {
  // PgTransaction's own (not part of the adapter interface): the pool client it holds, and its error listener.
  const held = tx as unknown as { client?: { release?: (err?: Error | boolean) => void }; cleanup?: () => void };
  let released = false;
  const release = (err?: unknown): void => {
    if (released) return;
    released = true;
    held.cleanup?.();
    held.client?.release?.(err instanceof Error ? err : true);
  };
  const [executeRaw, commit, rollback] = [tx.executeRaw.bind(tx), tx.commit.bind(tx), tx.rollback.bind(tx)];
  tx.executeRaw = (query) =>
    query.sql === 'COMMIT' || query.sql === 'ROLLBACK'
      ? executeRaw(query).catch((err: unknown) => {
          release(err);
          throw err;
        })
      : executeRaw(query);
  // Given back once only (pg throws at a second release).
  const once = (end: () => Promise<void>) => async (): Promise<void> => {
    if (released) return;
    released = true;
    await end();
  };
  tx.commit = once(commit);
  tx.rollback = once(rollback);
}

/** For repositories only. */
export function prismaOf(db: DatabaseClient): PrismaClient {
  return db as unknown as PrismaClient;
}

/** For repositories only: the transaction when given, else the client. */
export function queryClient(db: DatabaseClient, tx?: DatabaseTransaction): PrismaClient | Prisma.TransactionClient {
  return tx ? (tx as unknown as Prisma.TransactionClient) : prismaOf(db);
}

export interface TransactionOptions {
  /** Roll back if the callback runs longer (default 10000 ms). */
  timeoutMs?: number;
  /** Wait this long for a pool connection (default 5000 ms). */
  maxWaitMs?: number;
  isolationLevel?: 'ReadCommitted' | 'RepeatableRead' | 'Serializable';
}

/**
 * Runs `fn` in one transaction; repository calls given the `tx` join it. Commits when
 * `fn` resolves, rolls back when it throws. Use it to commit a side effect together
 * with its idempotency claim (ProcessedMessagesRepository.claim).
 *
 * As runInSqlTransaction: a statement that failed inside the transaction aborted it, whatever `fn` made of the error.
 * When `fn` resolves after one, it is rolled back and rejects with that failure (classified: a statement timeout is
 * the outage it is), never resolves as if committed; a 25P02 it rejects with is answered with that failure too.
 */
export async function runInTransaction<T>(
  db: DatabaseClient,
  fn: (tx: DatabaseTransaction) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const watch: TransactionWatch = { joined: false };
  try {
    return await transactionWatch.run(watch, () =>
      prismaOf(db).$transaction(
        async (tx) => {
          const result = await fn(tx as unknown as DatabaseTransaction);
          // Aborted: Postgres would answer the COMMIT with ROLLBACK. Thrown, so that Prisma rolls back.
          if (watch.firstFailure !== undefined) throw watch.firstFailure;
          return result;
        },
        {
          timeout: options.timeoutMs ?? 10_000,
          maxWait: options.maxWaitMs ?? 5000,
          ...(options.isolationLevel ? { isolationLevel: options.isolationLevel } : {}),
        },
      ),
    );
  } catch (err) {
    const first = watch.firstFailure;
    // 25P02 only follows an earlier failure in the transaction: that one is the cause, classified as itself.
    if (first !== undefined && (err === first || (isAborted(err) && !isAborted(first)))) return rethrowSql(first);
    throw err;
  }
}

export interface DatabasePing {
  ok: boolean;
  latencyMs: number;
  error?: string;
  /** What /readyz shows of the failure (databaseReadinessReason): read from the error's code or cause, not its text. */
  reason?: DatabaseReadinessReason;
}

/** Readiness check: `SELECT 1` within `timeoutMs`. Never throws. */
export async function pingDatabase(db: DatabaseClient, timeoutMs = 2000): Promise<DatabasePing> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      prismaOf(db).$queryRaw`SELECT 1`,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
          timeoutMs,
        );
      }),
    ]);
    return { ok: true, latencyMs: Math.round(performance.now() - started) };
  } catch (err) {
    const reason = databaseReadinessReason(err);
    return {
      ok: false,
      latencyMs: Math.round(performance.now() - started),
      error: describeError(err),
      ...(reason ? { reason } : {}),
    };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n').filter(Boolean).slice(-1)[0] ?? err.name;
  return String(err);
}
