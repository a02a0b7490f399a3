import { createLogger } from '@fleetwatch/observability';
import type { AdvisoryLease, HistoryRepository, HostHistoryRepository } from '@fleetwatch/persistence';
import type { AggregatorConfig } from '../config';
import { HistoryMaintenance, JOB_FIRST_RUN_MS } from './history-maintenance.service';

// When the history jobs run (what they do is tested against Postgres in the aggregator's int-specs): the repositories
// here only record the calls.

const HOUR = 3_600_000;

function setUp(leaseHeld: boolean) {
  const calls = { retention: [] as number[], rollups: [] as number[] };
  const lease = { isHeld: leaseHeld };
  const history = {
    recomputeDirtyRollups: async () => {
      calls.rollups.push(Date.now());
      return 0;
    },
    deleteOlderThan: async (table: string) => {
      if (table === 'status_updates') calls.retention.push(Date.now());
      return 0;
    },
  };
  const hosts = { recomputeDirtyRollups: async () => 0 };
  const config = {
    rollupIntervalMs: 10_000,
    retentionIntervalMs: HOUR,
    retention: { rawDays: 7, rollupDays: 90 },
  } as unknown as AggregatorConfig;
  const service = new HistoryMaintenance(
    history as unknown as HistoryRepository,
    hosts as unknown as HostHistoryRepository,
    lease as unknown as AdvisoryLease,
    config,
    createLogger('aggregator', 'silent'),
  );
  return { service, calls, lease };
}

/** Advances fake time in steps, letting each job's promises settle between them. */
async function advance(ms: number, step = 1000): Promise<void> {
  for (let t = 0; t < ms; t += step) await jest.advanceTimersByTimeAsync(Math.min(step, ms - t));
}

describe('HistoryMaintenance: when retention and rollups run', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'], now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('retention first runs a minute after boot, then every interval — not an interval after each boot', async () => {
    const { service, calls } = setUp(true);
    const boot = Date.now();
    service.onApplicationBootstrap();
    await advance(JOB_FIRST_RUN_MS + 1000);
    expect(calls.retention.map((t) => t - boot)).toEqual([JOB_FIRST_RUN_MS]);
    await advance(HOUR);
    expect(calls.retention.map((t) => t - boot)).toEqual([JOB_FIRST_RUN_MS, JOB_FIRST_RUN_MS + HOUR]);
    // Rollups keep their own, shorter interval.
    expect(calls.rollups.length).toBeGreaterThanOrEqual(Math.floor((JOB_FIRST_RUN_MS + HOUR) / 10_000) - 1);
    await service.onModuleDestroy();
  });

  it('a replica that takes the lease later runs retention within a minute of taking it', async () => {
    const { service, calls, lease } = setUp(false);
    service.onApplicationBootstrap();
    await advance(5 * 60_000);
    expect(calls.retention).toEqual([]);
    expect(calls.rollups).toEqual([]);
    lease.isHeld = true;
    const taken = Date.now();
    await advance(JOB_FIRST_RUN_MS + 1000);
    expect(calls.retention).toHaveLength(1);
    expect(calls.retention[0] - taken).toBeLessThanOrEqual(JOB_FIRST_RUN_MS);
    await service.onModuleDestroy();
  });

  it('stops scheduling once destroyed', async () => {
    const { service, calls } = setUp(true);
    service.onApplicationBootstrap();
    await service.onModuleDestroy();
    await advance(2 * HOUR, 60_000);
    expect(calls).toEqual({ retention: [], rollups: [] });
  });
});
