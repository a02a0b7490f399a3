import { Client } from 'pg';
import { createIsolatedDatabase, TcpProxy, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { AdvisoryLease } from './advisory-lease';

// The singleton-job lease (sweeper, sync scheduler) on real Postgres: one holder; a holder whose
// session ends as the lock is granted does not believe it holds it (no second holder).
let isolated: IsolatedDatabase;
beforeAll(async () => {
  isolated = await createIsolatedDatabase();
});
afterAll(async () => {
  await isolated?.dispose();
});

describe('AdvisoryLease', () => {
  it('one holder; release frees it for the next', async () => {
    const a = new AdvisoryLease({ databaseUrl: isolated.databaseUrl, name: 'lease-one' });
    const b = new AdvisoryLease({ databaseUrl: isolated.databaseUrl, name: 'lease-one' });
    try {
      expect(await a.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(true);
      expect(await b.tryAcquire()).toBe(false);
      await a.release();
      expect(a.isHeld).toBe(false);
      expect(await b.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(false);
    } finally {
      await Promise.all([a.release(), b.release()]);
    }
  });

  it('a session ended right after it granted the lease (answer and close in one read): not held, one holder', async () => {
    const proxy = TcpProxy.forUrl(isolated.databaseUrl);
    await proxy.start();
    const a = new AdvisoryLease({
      databaseUrl: proxy.rewriteUrl(isolated.databaseUrl),
      name: 'lease-race',
      applicationName: 'lease race a',
    });
    const b = new AdvisoryLease({ databaseUrl: isolated.databaseUrl, name: 'lease-race' });
    const admin = new Client({ connectionString: isolated.databaseUrl });
    await admin.connect();
    try {
      // Connected, not holding: another holder has it.
      expect(await b.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(false);
      await b.release();
      const session = await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE application_name = 'lease race a'`,
      );
      expect(session.rows).toHaveLength(1);
      proxy.hold();
      const taking = a.tryAcquire();
      await waitFor(() => proxy.heldBytes > 0, { timeoutMs: 5000, description: 'the grant answered (held back)' });
      await admin.query('SELECT pg_terminate_backend($1)', [session.rows[0]?.pid]);
      await waitFor(() => proxy.heldClose, { timeoutMs: 5000, description: 'the session closed by the server' });
      proxy.release();
      expect(await taking).toBe(false);
      expect(a.isHeld).toBe(false);
      expect(await b.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(false);
    } finally {
      proxy.release();
      await admin.end();
      await Promise.all([a.release(), b.release()]);
      await proxy.stop();
    }
  });

  it('a holder whose session ends as it confirms the lease (SELECT 1 answered, then closed, in one read): not held', async () => {
    const proxy = TcpProxy.forUrl(isolated.databaseUrl);
    await proxy.start();
    const a = new AdvisoryLease({
      databaseUrl: proxy.rewriteUrl(isolated.databaseUrl),
      name: 'lease-confirm-race',
      applicationName: 'lease confirm race a',
    });
    const b = new AdvisoryLease({ databaseUrl: isolated.databaseUrl, name: 'lease-confirm-race' });
    const admin = new Client({ connectionString: isolated.databaseUrl });
    await admin.connect();
    try {
      expect(await a.tryAcquire()).toBe(true);
      const session = await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE application_name = 'lease confirm race a'`,
      );
      expect(session.rows).toHaveLength(1);
      proxy.hold();
      const confirming = a.tryAcquire();
      await waitFor(() => proxy.heldBytes > 0, {
        timeoutMs: 5000,
        description: 'the confirmation answered (held back)',
      });
      await admin.query('SELECT pg_terminate_backend($1)', [session.rows[0]?.pid]);
      await waitFor(() => proxy.heldClose, { timeoutMs: 5000, description: 'the session closed by the server' });
      proxy.release();
      expect(await confirming).toBe(false);
      expect(a.isHeld).toBe(false);
      expect(await b.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(false);
    } finally {
      proxy.release();
      await admin.end();
      await Promise.all([a.release(), b.release()]);
      await proxy.stop();
    }
  });
});
