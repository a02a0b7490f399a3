import pg from 'pg';

// How every pool of the code base (the Prisma client's and the SqlPools) talks to Postgres: limits on the client's
// side as well as the server's, so that a network that drops packets without a reset fails the work in seconds
// instead of holding it — and its connection — until the kernel gives up on the socket (~15 min of retransmissions).

/** Connection settings shared by every pool (libs/config's DATABASE_* variables). */
export interface PgConnectionOptions {
  /** Give up opening a connection, or waiting for a free one of the pool, after this long (default 5000 ms). */
  connectionTimeoutMs?: number;
  /** Server-side limit per statement (`statement_timeout`, default 30000 ms): the server stops the work. */
  statementTimeoutMs?: number;
  /**
   * Client-side limit per query (default: the statement timeout + 5000 ms): a query with no answer by then fails,
   * and its connection is closed (never handed out again). Set it above the statement timeout, so that a slow
   * statement is stopped by the server (a statement timeout, 57014) and only a lost answer is cut here.
   */
  queryTimeoutMs?: number;
  /** TCP keep-alive probes start after the socket was idle this long (default 10000 ms). */
  keepAliveInitialDelayMs?: number;
  /**
   * Server-side limit on a transaction left open with nothing sent (`idle_in_transaction_session_timeout`, default
   * 60000 ms): the server ends such a session and frees its locks. A client frozen or cut off mid-transaction would
   * otherwise hold its row locks until the server's TCP keep-alive gives up (two hours by default). A transaction may
   * lower it for itself (`set_config(…, true)`), as the fleet poll's fenced writes do.
   */
  idleInTransactionTimeoutMs?: number;
}

export const PG_CONNECTION_DEFAULTS = {
  connectionTimeoutMs: 5000,
  statementTimeoutMs: 30_000,
  keepAliveInitialDelayMs: 10_000,
  idleInTransactionTimeoutMs: 60_000,
} as const;

/** The client-side query timeout: the one given, else the statement timeout + 5 s. */
export function queryTimeoutOf(options: PgConnectionOptions): number {
  return options.queryTimeoutMs ?? (options.statementTimeoutMs ?? PG_CONNECTION_DEFAULTS.statementTimeoutMs) + 5000;
}

/**
 * A query that got no answer within the client-side query timeout. Its connection has been closed: whatever the
 * server did with the query (nothing reached it, it ran, it committed) is unknown, as after a connection reset —
 * and, like a reset (`code` ETIMEDOUT, as the kernel reports a connection it gave up on), it is an outage to wait
 * out, never a verdict on the rows.
 */
export class QueryTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(readonly timeoutMs: number) {
    super(`Query read timeout: no answer from PostgreSQL within ${timeoutMs} ms (ETIMEDOUT); connection closed`);
    this.name = 'QueryTimeoutError';
  }
}

type Callback = (err: Error | null, result?: unknown) => void;
type QueryArgs = [config: unknown, values?: unknown, callback?: unknown];

/** A pg Client whose queries time out on the client's side (TimedClient.config). */
interface TimedClientConfig extends pg.ClientConfig {
  fleetwatchQueryTimeoutMs?: number;
  /** Set on each new connection (`SET idle_in_transaction_session_timeout`); 0: the server's own. */
  fleetwatchIdleInTransactionTimeoutMs?: number;
}

/**
 * pg's Client with two changes, for pools (PoolConfig.Client):
 * - A query without an answer within the query timeout fails with QueryTimeoutError, and the connection is closed at
 *   once. (pg's own `query_timeout` fails the query but keeps the connection, whose next query then waits behind the
 *   lost one; a Prisma transaction would even hand it back to the pool.) A closed client is dropped by the pool when
 *   it comes back. A query's own `query_timeout` (in its config object) overrides the client's for that query.
 * - A connection lost while the client is checked out (between two statements of a transaction) does not crash the
 *   process with an unhandled 'error' event: the loss reaches the holder through its queries (the one in flight fails,
 *   later ones are refused), and the pool drops the client when it is released.
 */
class TimedClient extends pg.Client {
  private readonly queryTimeoutMs: number;
  private readonly idleInTransactionTimeoutMs: number;

  constructor(config: TimedClientConfig) {
    super(config);
    this.queryTimeoutMs = config.fleetwatchQueryTimeoutMs ?? 0;
    this.idleInTransactionTimeoutMs = config.fleetwatchIdleInTransactionTimeoutMs ?? 0;
    this.on('error', () => undefined);
  }

  /**
   * Connects, then sets the session's idle-in-transaction limit — a statement of its own, not a startup parameter:
   * a pooler refuses startup parameters it does not know (PgBouncer ≥ 1.20 parses `options` and refuses an untracked
   * `-c`), while a SET passes any of them. A connection whose SET fails is closed and the connect fails.
   */
  override connect(...args: unknown[]): never {
    const callback = args[0] as ((err: Error | null, client?: pg.Client) => void) | undefined;
    const superConnect = () => (super.connect as unknown as () => Promise<unknown>).call(this);
    const ready = (async (): Promise<pg.Client> => {
      await superConnect();
      if (this.idleInTransactionTimeoutMs > 0) {
        try {
          await this.query(`SET idle_in_transaction_session_timeout = ${this.idleInTransactionTimeoutMs}`);
        } catch (err) {
          this.abandon();
          throw err;
        }
      }
      return this;
    })();
    if (typeof callback === 'function') {
      ready.then(
        (client) => callback(null, client),
        (err: Error) => callback(err),
      );
      return undefined as never;
    }
    return ready as never;
  }

  // pg's overloads are many; the forms pools and Prisma use are (config | text, values?, callback?).
  override query(...args: QueryArgs): never {
    const superQuery = (...a: QueryArgs) => (super.query as unknown as (...q: QueryArgs) => unknown).apply(this, a);
    let [config, values, callback] = args;
    const own = config !== null && typeof config === 'object' ? (config as { query_timeout?: unknown }) : undefined;
    // Custom query objects (cursors, streams) are passed on as they are.
    if (own && typeof (own as { submit?: unknown }).submit === 'function') return superQuery(...args) as never;
    const timeoutMs = typeof own?.query_timeout === 'number' ? own.query_timeout : this.queryTimeoutMs;
    if (!(timeoutMs > 0)) return superQuery(...args) as never;
    // Ours instead of pg's: pg's would fail the query and leave the connection queued behind it.
    if (own && 'query_timeout' in own) config = { ...own, query_timeout: undefined };
    if (typeof values === 'function') [values, callback] = [undefined, values];
    const timed = (done: Callback) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.abandon();
        done(new QueryTimeoutError(timeoutMs));
      }, timeoutMs);
      superQuery(config, values, (err: Error | null, result?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        done(err, result);
      });
    };
    if (typeof callback === 'function') {
      timed(callback as Callback);
      return undefined as never;
    }
    return new Promise((resolve, reject) => timed((err, result) => (err ? reject(err) : resolve(result)))) as never;
  }

  /** Closes the connection now: the query in flight and any queued behind it fail; nothing waits for the server. */
  private abandon(): void {
    this.end().catch(() => undefined);
    // end() waits for the server's goodbye when no query is in flight: not in a blackhole.
    const stream = (this as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
    stream?.destroy();
  }
}

/** Pool settings for `databaseUrl` with the connection limits (defaults filled in) and keep-alive. */
export function pgPoolConfig(
  databaseUrl: string,
  options: PgConnectionOptions & { max: number; idleTimeoutMs: number; applicationName: string },
): pg.PoolConfig {
  const config: pg.PoolConfig & TimedClientConfig = {
    connectionString: databaseUrl,
    max: options.max,
    application_name: options.applicationName.slice(0, 63),
    idleTimeoutMillis: options.idleTimeoutMs,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? PG_CONNECTION_DEFAULTS.connectionTimeoutMs,
    statement_timeout: options.statementTimeoutMs ?? PG_CONNECTION_DEFAULTS.statementTimeoutMs,
    fleetwatchQueryTimeoutMs: queryTimeoutOf(options),
    fleetwatchIdleInTransactionTimeoutMs: Math.max(
      0,
      Math.floor(options.idleInTransactionTimeoutMs ?? PG_CONNECTION_DEFAULTS.idleInTransactionTimeoutMs),
    ),
    // Sessions in UTC whatever the server's or database's `timezone`: Prisma's pg adapter sends a Date as wall time
    // without an offset and reads a timestamptz's wall time as UTC (prisma/orm#26786, #28629), so in any other zone
    // every instant it wrote or read was off by the zone's offset (pg's own parsing is right in any zone). An
    // `options` parameter in the URL replaces this one (pg lets the URL win).
    options: '-c TimeZone=UTC',
    keepAlive: true,
    keepAliveInitialDelayMillis: options.keepAliveInitialDelayMs ?? PG_CONNECTION_DEFAULTS.keepAliveInitialDelayMs,
    Client: TimedClient as unknown as pg.PoolConfig['Client'],
  };
  return config;
}
