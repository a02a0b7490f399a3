import { createLogger } from '@fleetwatch/observability';
import type { AdvisoryLease, LeasedJob } from '@fleetwatch/persistence';
import type { AggregatorConfig } from '../config';
import type { StatusEventsRelay } from '../events/status-events.relay';
import type { LiveStateBoot } from '../live/live-state.boot';
import type { ObservationsHandler } from '../observations/observations.handler';
import { SweeperService } from './sweeper.service';
import type { DeadlineExpiry } from './deadline-expiry.service';

// A CI run's staleness spec waited 15 s for a STALE with Redis cut: the sweeper expired deadlines only after the leased
// jobs of its tick, and the deadline-cache job's Redis call, in flight at the cut, waited for Redis to come back
// (ioredis resends it after reconnecting). Expiry now runs on its own schedule.

const SWEEP_MS = 20;
const logger = createLogger('test', 'silent');

function sweeper(jobs: { rebuild: LeasedJob; cache: LeasedJob; relay: LeasedJob }) {
  const expiries: number[] = [];
  const lease = { isHeld: true, tryAcquire: async () => true, release: async () => undefined };
  const expire = {
    reconcileCache: jobs.cache,
    expireShards: async (cutoffs: ReadonlyMap<number, number>) => {
      expiries.push(cutoffs.size);
    },
  };
  const shards = {
    shards: [0, 1],
    caughtUp: async (s: readonly number[]) => [...s],
    expiryCutoffs: async (s: readonly number[], now: number) => new Map(s.map((x) => [x, now])),
    holds: () => true,
  };
  const service = new SweeperService(
    lease as unknown as AdvisoryLease,
    { sweepIntervalMs: SWEEP_MS } as AggregatorConfig,
    logger,
    jobs.rebuild as unknown as LiveStateBoot,
    expire as unknown as DeadlineExpiry,
    jobs.relay as unknown as StatusEventsRelay,
    shards as unknown as ObservationsHandler,
  );
  return { service, expiries };
}

const job = (name: string, run: () => Promise<unknown>): LeasedJob => ({ name, run });

describe('SweeperService schedule', () => {
  it('expires deadlines every interval while a leased job is held (a Redis call waiting for Redis to return)', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const runs: string[] = [];
    const { service, expiries } = sweeper({
      rebuild: job('rebuild', async () => runs.push('rebuild')),
      cache: job('deadline-cache', async () => {
        runs.push('deadline-cache');
        await held;
      }),
      relay: job('relay', async () => runs.push('relay')),
    });
    service.onApplicationBootstrap();
    try {
      await new Promise((r) => setTimeout(r, 20 * SWEEP_MS));
      // The leased loop is stuck in its first tick; expiry went on at its own pace.
      expect(runs).toEqual(['rebuild', 'deadline-cache']);
      expect(expiries.length).toBeGreaterThanOrEqual(5);
      expect(expiries.every((n) => n === 2)).toBe(true);
      // Released: the tick goes on with the jobs after it.
      release();
      await new Promise((r) => setTimeout(r, 5 * SWEEP_MS));
      expect(runs.slice(0, 3)).toEqual(['rebuild', 'deadline-cache', 'relay']);
    } finally {
      release();
      await service.onModuleDestroy();
    }
  });

  it('keeps expiring after an expiry round fails, and stops both loops on destroy', async () => {
    let calls = 0;
    const { service, expiries } = sweeper({
      rebuild: job('rebuild', async () => undefined),
      cache: job('deadline-cache', async () => undefined),
      relay: job('relay', async () => undefined),
    });
    const expire = (service as unknown as { expire: { expireShards: () => Promise<void> } }).expire;
    expire.expireShards = async () => {
      calls++;
      if (calls === 1) throw new Error('database unavailable');
      expiries.push(2);
    };
    service.onApplicationBootstrap();
    await new Promise((r) => setTimeout(r, 10 * SWEEP_MS));
    await service.onModuleDestroy();
    expect(calls).toBeGreaterThanOrEqual(3);
    const after = calls;
    await new Promise((r) => setTimeout(r, 5 * SWEEP_MS));
    expect(calls).toBe(after);
  });
});
