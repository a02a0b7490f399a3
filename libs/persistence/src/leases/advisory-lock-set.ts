import type { Client } from 'pg';
import { openLockSession } from './lock-session';

export interface AdvisoryLockSetOptions {
  databaseUrl: string;
  /** First key of the two-key advisory locks (`pg_try_advisory_lock(int, int)`); the second is the member's number. */
  namespace: number;
  applicationName?: string;
  /** A query slower than this fails, and the connection (with its locks) is dropped. Default 5 s. */
  queryTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Called once when the connection holding the locks is lost: every lock is gone with it. */
  onLost: (reason: string) => void;
}

/**
 * A numbered set of exclusive locks shared by replicas (the aggregator's observation
 * shards): Postgres session advisory locks on one dedicated connection. At most one
 * process holds a number; when it dies (even SIGKILL) its connection closes and its
 * locks are free at once. Every method throws on a database problem; losing the
 * connection reports `onLost` and forgets the locks.
 */
export class AdvisoryLockSet {
  private client: Client | null = null;
  private clientPid: number | undefined;
  private connecting: Promise<Client> | null = null;
  private readonly mine = new Set<number>();

  constructor(private readonly options: AdvisoryLockSetOptions) {}

  /** Numbers this process holds. */
  get held(): ReadonlySet<number> {
    return this.mine;
  }

  /**
   * The Postgres backend pid of the session holding the locks (undefined while there is none): lets a
   * statement on another connection check, in `pg_locks`, that a lock is still held by this set.
   */
  get sessionPid(): number | undefined {
    return this.client ? this.clientPid : undefined;
  }

  /** Takes lock `n` if free; true when this process holds it (taken once: Postgres would stack a second take). */
  async tryLock(n: number): Promise<boolean> {
    if (this.mine.has(n)) return true;
    const { rows, client } = await this.queryOn<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock($1::int, $2::int) AS ok',
      [this.options.namespace, n],
    );
    // The session may have ended right after it answered (the answer and the server's close in one read: the
    // end is heard before this line runs). The lock went with it: believing it held would let two replicas hold n.
    if (rows[0]?.ok !== true || this.client !== client) return false;
    this.mine.add(n);
    return true;
  }

  async unlock(n: number): Promise<void> {
    if (!this.mine.has(n)) return;
    await this.query('SELECT pg_advisory_unlock($1::int, $2::int)', [this.options.namespace, n]);
    this.mine.delete(n);
  }

  /**
   * Numbers whose lock some session (this one included) holds now, in this database. Also checks this
   * process's belief: a number it believes held that its session does not hold in Postgres is forgotten
   * (`held` no longer lists it), so the caller stops using it.
   */
  async locked(): Promise<Set<number>> {
    const { rows, client } = await this.queryOn<{ n: number; ours: boolean }>(
      `SELECT objid::int AS n, pid = pg_backend_pid() AS ours FROM pg_locks
       WHERE locktype = 'advisory' AND classid = $1::int::oid AND objsubid = 2 AND granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [this.options.namespace],
    );
    if (this.client === client) {
      const ours = new Set(rows.filter((r) => r.ours).map((r) => r.n));
      for (const n of [...this.mine]) if (!ours.has(n)) this.mine.delete(n);
    }
    return new Set(rows.map((r) => r.n));
  }

  /** Frees every lock by closing the connection. */
  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    this.connecting = null;
    this.mine.clear();
    if (c) await c.end().catch(() => undefined);
  }

  /** Any failed query drops the connection: whether its locks are still held is unknown, so they are given up. */
  private async query<R extends object>(sql: string, params: unknown[]): Promise<R[]> {
    return (await this.queryOn<R>(sql, params)).rows;
  }

  /** `query`, with the connection it ran on (compare with `this.client` after: it may have been lost since). */
  private async queryOn<R extends object>(sql: string, params: unknown[]): Promise<{ rows: R[]; client: Client }> {
    const c = await this.connection();
    try {
      return { rows: (await c.query<R>(sql, params)).rows, client: c };
    } catch (e) {
      this.lost(c, `lock query failed: ${(e as Error).message}`);
      throw e;
    }
  }

  private lost(client: Client, reason: string): void {
    if (this.client !== client) return;
    this.client = null;
    const had = this.mine.size > 0;
    this.mine.clear();
    void client.end().catch(() => undefined);
    if (had) this.options.onLost(reason);
  }

  private async connection(): Promise<Client> {
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      let client: Client;
      try {
        client = await openLockSession(
          {
            databaseUrl: this.options.databaseUrl,
            applicationName: this.options.applicationName ?? 'fleetwatch advisory locks',
            connectTimeoutMs: this.options.connectTimeoutMs,
            queryTimeoutMs: this.options.queryTimeoutMs,
          },
          (c, reason) => this.lost(c, reason),
        );
      } catch (e) {
        this.connecting = null;
        throw e;
      }
      try {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        this.clientPid = rows[0]?.pid;
      } catch (e) {
        this.connecting = null;
        void client.end().catch(() => undefined);
        throw e;
      }
      this.client = client;
      this.connecting = null;
      return client;
    })();
    return this.connecting;
  }
}
