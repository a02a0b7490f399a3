import { randomUUID } from 'node:crypto';
import { createIsolatedDatabase, waitFor, type IsolatedDatabase } from '@fleetwatch/testing';
import { AdvisoryLease } from './advisory-lease';
import { LeasedLoop } from './leased-loop';

// Two replicas' loops on one advisory lock (a real, isolated database): one runs the jobs; the other takes over when it stops.
let isolated: IsolatedDatabase;
beforeAll(async () => {
  isolated = await createIsolatedDatabase();
});
afterAll(async () => {
  await isolated?.dispose();
});

describe('LeasedLoop on an AdvisoryLease', () => {
  it('only the holder runs the jobs; the other replica takes over within an interval of the holder stopping', async () => {
    const name = `test-loop-${randomUUID()}`;
    const runs = { a: 0, b: 0 };
    const loop = (who: 'a' | 'b') =>
      new LeasedLoop({
        lease: new AdvisoryLease({ databaseUrl: isolated.databaseUrl, name }),
        intervalMs: 50,
        jobs: [{ name: 'count', run: async () => void runs[who]++ }],
      });
    const a = loop('a');
    const b = loop('b');
    try {
      expect(await a.tick()).toBe(true);
      a.start();
      b.start();
      await waitFor(() => runs.a >= 5, { description: 'a few ticks of the holder' });
      expect(runs.b).toBe(0);
      expect(b.lease.isHeld).toBe(false);
      await a.stop();
      const stoppedAt = Date.now();
      await waitFor(() => runs.b > 0, { timeoutMs: 3000, intervalMs: 5, description: 'b takes over' });
      expect(Date.now() - stoppedAt).toBeLessThan(1000);
      const aRuns = runs.a;
      await new Promise((r) => setTimeout(r, 150));
      expect(runs.a).toBe(aRuns);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
