import { PrismaPg } from '@prisma/adapter-pg';
import { Prisma, PrismaClient } from './generated/prisma/client';
import { pgPoolConfig, type PgConnectionOptions } from './pg-connection';

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
  return new PrismaClient({ adapter }) as unknown as DatabaseClient;
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
 */
export async function runInTransaction<T>(
  db: DatabaseClient,
  fn: (tx: DatabaseTransaction) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  return prismaOf(db).$transaction((tx) => fn(tx as unknown as DatabaseTransaction), {
    timeout: options.timeoutMs ?? 10_000,
    maxWait: options.maxWaitMs ?? 5000,
    ...(options.isolationLevel ? { isolationLevel: options.isolationLevel } : {}),
  });
}

export interface DatabasePing {
  ok: boolean;
  latencyMs: number;
  error?: string;
}

/** Readiness check: `SELECT 1` within `timeoutMs`. Never throws. */
export async function pingDatabase(db: DatabaseClient, timeoutMs = 2000): Promise<DatabasePing> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      prismaOf(db).$queryRaw`SELECT 1`,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, latencyMs: Math.round(performance.now() - started) };
  } catch (err) {
    return { ok: false, latencyMs: Math.round(performance.now() - started), error: describeError(err) };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n').filter(Boolean).slice(-1)[0] ?? err.name;
  return String(err);
}
