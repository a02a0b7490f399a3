import { Client } from 'pg';
import { TcpProxy, waitFor } from '@fleetwatch/testing';

/**
 * A lock holder's Postgres session ended by the server right after it answers one call: through a
 * TcpProxy the race owns, the answer and the server's close reach the client in one read — so the
 * client hears its session end before the code awaiting the answer goes on.
 */
export class SessionEndRace {
  private constructor(
    private readonly proxy: TcpProxy,
    private readonly admin: Client,
    private readonly databaseUrl: string,
  ) {}

  static async start(databaseUrl: string): Promise<SessionEndRace> {
    const proxy = TcpProxy.forUrl(databaseUrl);
    await proxy.start();
    const admin = new Client({ connectionString: databaseUrl });
    await admin.connect();
    return new SessionEndRace(proxy, admin, databaseUrl);
  }

  /** The database URL through the proxy: give it to the holder under test. */
  get url(): string {
    return this.proxy.rewriteUrl(this.databaseUrl);
  }

  /**
   * Runs `call` on the (connected) session named `applicationName` and ends that session as it answers:
   * the answer is held back, the session terminated, then both delivered together. Resolves with what
   * `call` resolved to.
   */
  async endAsItAnswers<T>(applicationName: string, call: () => Promise<T>): Promise<T> {
    const { rows } = await this.admin.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    );
    const pid = rows[0]?.pid;
    if (rows.length !== 1 || pid === undefined)
      throw new Error(`expected one session named ${applicationName}, found ${rows.length}`);
    this.proxy.hold();
    try {
      const answer = call();
      answer.catch(() => undefined); // awaited below; not unhandled if a wait fails first
      await waitFor(() => this.proxy.heldBytes > 0, { timeoutMs: 5000, description: 'the answer (held back)' });
      await this.admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await waitFor(() => this.proxy.heldClose, { timeoutMs: 5000, description: 'the session closed by the server' });
      this.proxy.release();
      return await answer;
    } finally {
      this.proxy.release();
    }
  }

  async stop(): Promise<void> {
    this.proxy.release();
    await this.admin.end().catch(() => undefined);
    await this.proxy.stop();
  }
}
