import { z } from 'zod';
import { ConfigError, env } from './env';

/**
 * PostgreSQL for every service that has one (SPEC §10, §11: `DATABASE_URL`), with the limits of its connections.
 * Spread into a service's shape; read the values back with `databaseSettings`.
 */
export const databaseShape = {
  DATABASE_URL: env.databaseUrl(),
  /** Give up opening a connection (or waiting for a free one of the pool) after this long. */
  DATABASE_CONNECT_TIMEOUT_MS: env.int(5000, 100, 120_000),
  /** Server-side limit per statement (`statement_timeout`): the server stops a statement that runs longer. */
  DATABASE_STATEMENT_TIMEOUT_MS: env.int(30_000, 100, 3_600_000),
  /**
   * Client-side limit per query (default: the statement timeout + 5 s, must be above it): a query with no answer by
   * then fails as an outage and its connection is closed — a network that drops packets without a reset holds it
   * otherwise until the kernel gives up (~15 min).
   */
  DATABASE_QUERY_TIMEOUT_MS: z.coerce
    .number({ message: 'must be a number' })
    .int('must be a whole number')
    .min(200, 'must be ≥ 200')
    .max(3_600_000, 'must be ≤ 3600000')
    .optional(),
  /** TCP keep-alive probes on an idle connection start after this long (interval and count are the OS's). */
  DATABASE_KEEPALIVE_DELAY_MS: env.int(10_000, 1000, 7_200_000),
  /**
   * Server-side limit on a transaction left open with nothing sent (`idle_in_transaction_session_timeout`): the
   * server ends the session and releases its row locks. A replica frozen or cut off mid-commit (SIGSTOP, a paused
   * VM, a black-holed network) otherwise holds them until the server's TCP keep-alive gives up (hours by default) —
   * and every writer waiting on those rows (the aggregator's next shard holder) waits as long.
   */
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: env.int(60_000, 1000, 86_400_000),
};

/** What a pool needs (libs/persistence's PgConnectionOptions, plus the URL). */
export interface DatabaseSettings {
  databaseUrl: string;
  connectionTimeoutMs: number;
  statementTimeoutMs: number;
  queryTimeoutMs: number;
  keepAliveInitialDelayMs: number;
  idleInTransactionTimeoutMs: number;
}

type DatabaseValues = z.output<z.ZodObject<typeof databaseShape>>;

/** The parsed `databaseShape` values as settings; the query timeout must exceed the statement timeout. */
export function databaseSettings(values: DatabaseValues): DatabaseSettings {
  const statement = values.DATABASE_STATEMENT_TIMEOUT_MS;
  const query = values.DATABASE_QUERY_TIMEOUT_MS ?? statement + 5000;
  if (query <= statement) {
    throw new ConfigError([
      {
        variable: 'DATABASE_QUERY_TIMEOUT_MS',
        message: `must be above DATABASE_STATEMENT_TIMEOUT_MS (${statement}): a slow statement is the server's to stop, only a lost answer is cut here`,
      },
    ]);
  }
  return {
    databaseUrl: values.DATABASE_URL,
    connectionTimeoutMs: values.DATABASE_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: statement,
    queryTimeoutMs: query,
    keepAliveInitialDelayMs: values.DATABASE_KEEPALIVE_DELAY_MS,
    idleInTransactionTimeoutMs: values.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
  };
}

/**
 * Services that hold Postgres advisory locks (aggregator: shard locks, sweeper and evaluator leases;
 * sync-orchestrator: fleet-poll lease) hold them on a session of their own. A session lock needs a session: behind a
 * pooler in transaction mode (PgBouncer `pool_mode = transaction`) it stays on a pooled server connection that other
 * clients then share — two replicas would both "hold" it, and a crashed holder's lock would outlive it. Point
 * `DATABASE_LOCK_URL` straight at Postgres (or at a session-mode pool) there; unset, the lock sessions use DATABASE_URL.
 */
export const databaseLockShape = {
  DATABASE_LOCK_URL: z.string().max(4096).optional(),
};

type DatabaseLockValues = z.output<z.ZodObject<typeof databaseLockShape>> & { DATABASE_URL: string };

/** The URL the advisory-lock sessions connect to: DATABASE_LOCK_URL, checked as DATABASE_URL is, else DATABASE_URL. */
export function databaseLockUrl(values: DatabaseLockValues): string {
  const raw = values.DATABASE_LOCK_URL?.trim();
  if (!raw) return values.DATABASE_URL;
  const parsed = env.databaseUrl().safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(
      parsed.error.issues.map((issue) => ({ variable: 'DATABASE_LOCK_URL', message: issue.message })),
    );
  return parsed.data;
}
