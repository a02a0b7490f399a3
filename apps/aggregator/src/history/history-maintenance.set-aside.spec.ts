import { UnavailableError } from '@fleetwatch/domain';
import { createLogger } from '@fleetwatch/observability';
import type {
  AdvisoryLease,
  HistoryRepository,
  HostHistoryRepository,
  RecomputeOptions,
  RollupKey,
} from '@fleetwatch/persistence';
import type { AggregatorConfig } from '../config';
import { HistoryMaintenance, ROLLUP_CHUNK_REGROW_RUNS, ROLLUP_SET_ASIDE_MS } from './history-maintenance.service';

// How many statement timeouts a minute too heavy for one statement costs (each is a full
// DATABASE_STATEMENT_TIMEOUT_MS, 30 s by default, with no other minute rolled up meanwhile). ROLLUP_SET_ASIDE_MS's doc:
// "a restart (or another lease holder) tries it again once".

function setUp() {
  // Marked minutes 0..49, oldest first; minute 0 alone exceeds the statement timeout.
  const marks = new Set(Array.from({ length: 50 }, (_, i) => i * 60_000));
  let timeouts = 0;
  const history = {
    recomputeDirtyRollups: async (
      limit: number,
      _open: number,
      _cutoff: number,
      options: RecomputeOptions<RollupKey>,
    ) => {
      const excluded = new Set((options.exclude ?? []).map((k) => k.bucket));
      const picked = [...marks].filter((b) => !excluded.has(b)).slice(0, limit);
      options.picked?.(picked.map((bucket) => ({ targetId: 't', location: 'l', bucket })));
      if (picked.includes(0)) {
        timeouts++;
        throw new UnavailableError('canceling statement due to statement timeout', 1, '57014');
      }
      for (const b of picked) marks.delete(b);
      return picked.length;
    },
  };
  const hosts = { recomputeDirtyRollups: async () => 0 };
  const config = {
    rollupIntervalMs: 10_000,
    retentionIntervalMs: 3_600_000,
    retention: { rawDays: 7, rollupDays: 90 },
  } as unknown as AggregatorConfig;
  const service = new HistoryMaintenance(
    history as unknown as HistoryRepository,
    hosts as unknown as HostHistoryRepository,
    { isHeld: true } as unknown as AdvisoryLease,
    config,
    createLogger('aggregator', 'silent'),
  );
  return { service, marks, timeouts: () => timeouts };
}

afterEach(() => jest.restoreAllMocks());

it('a fresh lease holder (or a restart) tries a set-aside minute again once, not once per halving', async () => {
  const { service, marks, timeouts } = setUp();
  await expect(service.rollUp()).resolves.toBe(49);
  expect([...marks]).toEqual([0]);
  expect(timeouts()).toBeLessThanOrEqual(2);
});

it('the retry an hour later costs one statement timeout, not one per halving of the regrown chunk', async () => {
  const { service, timeouts } = setUp();
  await service.rollUp();
  const before = timeouts();
  const now = Date.now();
  // The job's runs during the hour (clean: the minute is left out), the chunk growing back meanwhile.
  for (let i = 0; i < 6 * ROLLUP_CHUNK_REGROW_RUNS; i++) await service.rollUp();
  jest.spyOn(Date, 'now').mockReturnValue(now + ROLLUP_SET_ASIDE_MS + 1);
  await service.rollUp();
  expect(timeouts() - before).toBeLessThanOrEqual(2);
});
