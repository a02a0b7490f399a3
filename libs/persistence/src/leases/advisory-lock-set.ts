import { Client } from 'pg';

export interface AdvisoryLockSetOptions {
  databaseUrl: string;
  /** First key of the two-key advisory locks (`pg_try_advisory_lock(int, int)`); the second is the member's number. */
  namespace: number;
  applicationName?: string;
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
  private connecting: Promise<Client> | null = null;
  private readonly mine = new Set<number>();

  constructor(private readonly options: AdvisoryLockSetOptions) {}

  /** Numbers this process holds. */
  get held(): ReadonlySet<number> {
    return this.mine;
  }

  /** Takes lock `n` if free; true when this process holds it (taken once: Postgres would stack a second take). */
  async tryLock(n: number): Promise<boolean> {
    if (this.mine.has(n)) return true;
    const c = await this.connection();
    const res = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int, $2::int) AS ok', [
      this.options.namespace,
      n,
    ]);
    const ok = res.rows[0]?.ok === true;
    if (ok) this.mine.add(n);
    return ok;
  }

  async unlock(n: number): Promise<void> {
    if (!this.mine.has(n)) return;
    const c = await this.connection();
    await c.query('SELECT pg_advisory_unlock($1::int, $2::int)', [this.options.namespace, n]);
    this.mine.delete(n);
  }

  /** Numbers whose lock some session (this one included) holds now, in this database. */
  async locked(): Promise<Set<number>> {
    const c = await this.connection();
    const res = await c.query<{ n: number }>(
      `SELECT objid::int AS n FROM pg_locks
       WHERE locktype = 'advisory' AND classid = $1::int::oid AND objsubid = 2 AND granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [this.options.namespace],
    );
    return new Set(res.rows.map((r) => r.n));
  }

  /** Frees every lock by closing the connection. */
  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    this.connecting = null;
    this.mine.clear();
    if (c) await c.end().catch(() => undefined);
  }

  private async connection(): Promise<Client> {
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      const client = new Client({
        connectionString: this.options.databaseUrl,
        connectionTimeoutMillis: this.options.connectTimeoutMs ?? 3000,
        application_name: this.options.applicationName ?? 'fleetwatch advisory locks',
      });
      const lost = (reason: string) => {
        if (this.client !== client) return;
        this.client = null;
        const had = this.mine.size > 0;
        this.mine.clear();
        void client.end().catch(() => undefined);
        if (had) this.options.onLost(reason);
      };
      client.on('error', (e: Error) => lost(e.message));
      client.on('end', () => lost('connection ended'));
      try {
        await client.connect();
      } catch (e) {
        this.connecting = null;
        throw e;
      }
      this.client = client;
      this.connecting = null;
      return client;
    })();
    return this.connecting;
  }
}
