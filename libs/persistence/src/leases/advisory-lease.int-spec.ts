import { createIsolatedDatabase, type IsolatedDatabase } from '@fleetwatch/testing';
import { AdvisoryLease } from './advisory-lease';
import { SessionEndRace } from './session-race.int-helpers';

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
      // Taken once, confirmed once: one acquisition; B has none yet.
      expect([a.acquisitions, b.acquisitions]).toEqual([1, 0]);
      await a.release();
      expect(a.isHeld).toBe(false);
      expect(await b.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(false);
      await b.release();
      // Taken again after someone else held it: a new acquisition.
      expect(await a.tryAcquire()).toBe(true);
      expect([a.acquisitions, b.acquisitions]).toEqual([2, 1]);
    } finally {
      await Promise.all([a.release(), b.release()]);
    }
  });

  it('a session ended right after it granted the lease (answer and close in one read): not held, one holder', async () => {
    const race = await SessionEndRace.start(isolated.databaseUrl);
    const a = new AdvisoryLease({ databaseUrl: race.url, name: 'lease-race', applicationName: 'lease race a' });
    const b = new AdvisoryLease({ databaseUrl: isolated.databaseUrl, name: 'lease-race' });
    try {
      // Connected, not holding: another holder has it.
      expect(await b.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(false);
      await b.release();
      expect(await race.endAsItAnswers('lease race a', () => a.tryAcquire())).toBe(false);
      expect(a.isHeld).toBe(false);
      expect(await b.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(false);
    } finally {
      await Promise.all([a.release(), b.release()]);
      await race.stop();
    }
  });

  it('a holder whose session ends as it confirms the lease (SELECT 1 answered, then closed, in one read): not held', async () => {
    const race = await SessionEndRace.start(isolated.databaseUrl);
    const a = new AdvisoryLease({ databaseUrl: race.url, name: 'lease-confirm', applicationName: 'lease confirm a' });
    const b = new AdvisoryLease({ databaseUrl: isolated.databaseUrl, name: 'lease-confirm' });
    try {
      expect(await a.tryAcquire()).toBe(true);
      expect(await race.endAsItAnswers('lease confirm a', () => a.tryAcquire())).toBe(false);
      expect(a.isHeld).toBe(false);
      expect(await b.tryAcquire()).toBe(true);
      expect(await a.tryAcquire()).toBe(false);
    } finally {
      await Promise.all([a.release(), b.release()]);
      await race.stop();
    }
  });
});
