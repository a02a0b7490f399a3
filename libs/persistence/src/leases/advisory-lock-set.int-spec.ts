import { Client } from 'pg';
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { AdvisoryLockSet } from './advisory-lock-set';
import { SessionEndRace } from './session-race.int-helpers';

// Two replicas' lock sets on one database (real Postgres): exclusive per number, listed, freed by
// unlock, by close and by the holder's connection dying — which the holder hears about (onLost).
let isolated: IsolatedDatabase;
beforeAll(async () => {
  isolated = await createIsolatedDatabase();
});
afterAll(async () => {
  await isolated?.dispose();
});

const NAMESPACE = 0x7e570001;

describe('AdvisoryLockSet', () => {
  it('one holder per number; locked() lists every holder’s; unlock and close free them', async () => {
    const lost: string[] = [];
    const a = new AdvisoryLockSet({
      databaseUrl: isolated.databaseUrl,
      namespace: NAMESPACE,
      onLost: (r) => lost.push(r),
    });
    const b = new AdvisoryLockSet({
      databaseUrl: isolated.databaseUrl,
      namespace: NAMESPACE,
      onLost: (r) => lost.push(r),
    });
    const other = new AdvisoryLockSet({
      databaseUrl: isolated.databaseUrl,
      namespace: NAMESPACE + 1,
      onLost: () => undefined,
    });
    try {
      expect(await a.tryLock(0)).toBe(true);
      expect(await a.tryLock(1)).toBe(true);
      expect(await a.tryLock(1)).toBe(true); // already its own: not taken twice (one unlock frees it)
      expect(await b.tryLock(1)).toBe(false);
      expect(await b.tryLock(2)).toBe(true);
      expect(await other.tryLock(1)).toBe(true); // another namespace is another lock
      expect([...(await b.locked())].sort()).toEqual([0, 1, 2]);
      expect([...a.held].sort()).toEqual([0, 1]);
      await a.unlock(1);
      expect(await b.tryLock(1)).toBe(true);
      await b.close();
      expect(await a.tryLock(2)).toBe(true);
      expect([...(await a.locked())].sort()).toEqual([0, 2]);
      expect(lost).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close(), other.close()]);
    }
  });

  it('the holder’s connection killed: its locks are free at once and it is told (onLost), holding nothing', async () => {
    const lost: string[] = [];
    const a = new AdvisoryLockSet({
      databaseUrl: isolated.databaseUrl,
      namespace: NAMESPACE,
      onLost: (r) => lost.push(r),
    });
    const b = new AdvisoryLockSet({ databaseUrl: isolated.databaseUrl, namespace: NAMESPACE, onLost: () => undefined });
    const admin = new Client({ connectionString: isolated.databaseUrl });
    await admin.connect();
    try {
      expect(await a.tryLock(5)).toBe(true);
      expect(await b.tryLock(5)).toBe(false);
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND classid = $1::int::oid AND objid = 5 AND objsubid = 2 AND granted`,
        [NAMESPACE],
      );
      await waitFor(() => lost.length === 1, { timeoutMs: 5000, description: 'a told its locks are lost' });
      expect(a.held.size).toBe(0);
      expect(await b.tryLock(5)).toBe(true);
      // The set reconnects on its next call.
      expect(await a.tryLock(6)).toBe(true);
    } finally {
      await admin.end();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a session ended right after it granted a lock (answer and close in one read): the lock is not believed held', async () => {
    // Seen in CI: a replica kept a shard it no longer held (its session killed as it took the lock), and
    // another replica took it too — the first one's batches were fenced until they were dead-lettered.
    const race = await SessionEndRace.start(isolated.databaseUrl);
    const lost: string[] = [];
    const a = new AdvisoryLockSet({
      databaseUrl: race.url,
      namespace: NAMESPACE,
      applicationName: 'lock-set race a',
      onLost: (r) => lost.push(r),
    });
    const b = new AdvisoryLockSet({ databaseUrl: isolated.databaseUrl, namespace: NAMESPACE, onLost: () => undefined });
    try {
      await a.locked(); // connected
      expect(await race.endAsItAnswers('lock-set race a', () => a.tryLock(8))).toBe(false);
      expect(a.held.has(8)).toBe(false);
      // Free for another holder — and a knows it is not its own.
      expect(await b.tryLock(8)).toBe(true);
      expect(await a.tryLock(8)).toBe(false);
      expect(lost).toEqual([]); // it held nothing before
    } finally {
      await Promise.all([a.close(), b.close()]);
      await race.stop();
    }
  });

  it('locked() forgets a number believed held that the session does not hold', async () => {
    const a = new AdvisoryLockSet({
      databaseUrl: isolated.databaseUrl,
      namespace: NAMESPACE,
      applicationName: 'lock-set belief a',
      onLost: () => undefined,
    });
    try {
      expect(await a.tryLock(9)).toBe(true);
      expect(await a.tryLock(10)).toBe(true);
      // Freed behind the set's back, on its own session (no other session can): only 10 stays believed.
      await (a as unknown as { client: Client }).client.query('SELECT pg_advisory_unlock($1::int, 9)', [NAMESPACE]);
      expect([...(await a.locked())].sort((x, y) => x - y)).toEqual([10]);
      expect([...a.held]).toEqual([10]);
    } finally {
      await a.close();
    }
  });
});
