import type { Client } from 'pg';
import { openLockSession } from './lock-session';

export interface AdvisoryLeaseOptions {
  databaseUrl: string;
  /** Lease name; hashed to the advisory lock key. Every replica must use the same name. */
  name: string;
  connectTimeoutMs?: number;
  applicationName?: string;
  /**
   * Names of shared advisory locks (hashtextextended(name, 0)) the lease's session holds for as long as it lives,
   * whether it holds the lease or not, taken when it connects: tells other processes that this one is running
   * (sync-orchestrator: a replica with a leader configuration). They go with the session.
   */
  sharedLocks?: readonly string[];
}

/**
 * A singleton-job lease (SPEC §8: sweeper, sync scheduler): a Postgres session
 * advisory lock held on a dedicated connection. Only one holder at a time across
 * replicas; when the holder dies (even SIGKILL) its connection closes and the lock
 * is free at once. `tryAcquire()` is called before each run: it confirms the held
 * lock's connection is alive, or tries to take the lock.
 */
export class AdvisoryLease {
  private client: Client | null = null;
  private pid: number | undefined;
  private held = false;
  private taken = 0;
  private connecting: Promise<Client> | null = null;

  constructor(private readonly options: AdvisoryLeaseOptions) {}

  get isHeld(): boolean {
    return this.held;
  }

  /**
   * How many times this process has taken the lease. A new count means it was not held in between: another
   * replica may have run the jobs meanwhile, so what this process remembers of their work may be out of date.
   */
  get acquisitions(): number {
    return this.taken;
  }

  /**
   * The Postgres backend pid of the lease's session (undefined while there is none): lets a fencing token be advanced
   * only while this session holds the lock (pg_locks).
   */
  get sessionPid(): number | undefined {
    return this.client ? this.pid : undefined;
  }

  /** True when this process holds the lease now. Never throws: a database problem means "not held". */
  async tryAcquire(): Promise<boolean> {
    try {
      const client = await this.connection();
      if (this.held) {
        await client.query('SELECT 1');
        if (this.client === client) return true;
        this.held = false;
        return false;
      }
      const res = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [
        this.options.name,
      ]);
      // The session may have ended right after it answered (heard before this line runs): the lock went with it.
      this.held = res.rows[0]?.ok === true && this.client === client;
      if (this.held) this.taken++;
      return this.held;
    } catch {
      this.drop();
      return false;
    }
  }

  async release(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.connecting = null;
    const wasHeld = this.held;
    this.held = false;
    if (!client) return;
    try {
      if (wasHeld) await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [this.options.name]);
    } catch {
      /* closing the connection frees the lock anyway */
    }
    await client.end().catch(() => undefined);
  }

  private async connection(): Promise<Client> {
    if (this.client) return this.client;
    this.connecting ??= (async () => {
      let client: Client;
      try {
        client = await openLockSession(
          {
            databaseUrl: this.options.databaseUrl,
            applicationName: this.options.applicationName ?? `fleetwatch lease ${this.options.name}`,
            connectTimeoutMs: this.options.connectTimeoutMs,
          },
          // Only this session's end: an earlier one's, heard late, must not drop its successor.
          (c) => {
            if (this.client === c) this.drop();
          },
        );
      } catch (e) {
        this.connecting = null;
        throw e;
      }
      try {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        for (const name of this.options.sharedLocks ?? [])
          await client.query('SELECT pg_advisory_lock_shared(hashtextextended($1, 0))', [name]);
        this.pid = rows[0]?.pid;
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

  private drop(): void {
    const client = this.client;
    this.held = false;
    this.client = null;
    this.connecting = null;
    if (client) void client.end().catch(() => undefined);
  }
}
