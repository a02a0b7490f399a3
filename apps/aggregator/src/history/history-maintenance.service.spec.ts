import { UnavailableError } from '@fleetwatch/domain';
import { createLogger } from '@fleetwatch/observability';
import type { AdvisoryLease, HistoryRepository, HostHistoryRepository } from '@fleetwatch/persistence';
import type { AggregatorConfig } from '../config';
import {
  HistoryMaintenance,
  JOB_FIRST_RUN_MS,
  RETENTION_BATCH,
  CATCH_UP_MIN_PAUSE_MS,
  RETENTION_MAX_BATCHES,
  ROLLUP_CHUNK_REGROW_RUNS,
  ROLLUP_MAX_CHUNKS,
} from './history-maintenance.service';

// When the history jobs run (what they do is tested against Postgres in the aggregator's int-specs): the repositories
// here only record the calls.

const HOUR = 3_600_000;

type DeleteOlderThan = (
  table: string,
  before: Date,
  batchSize: number,
  maxBatches: number,
  stop: () => boolean,
) => Promise<number>;

function setUp(
  leaseHeld: boolean,
  deleteStatusUpdates: DeleteOlderThan = async () => 0,
  recompute: (limit: number) => Promise<number> = async () => 0,
) {
  const calls = { retention: [] as number[], rollups: [] as number[] };
  const lease = { isHeld: leaseHeld };
  const history = {
    recomputeDirtyRollups: async (limit: number) => {
      calls.rollups.push(Date.now());
      return recompute(limit);
    },
    deleteOlderThan: async (
      table: string,
      before: Date,
      batchSize: number,
      maxBatches: number,
      stop: () => boolean,
    ) => {
      if (table !== 'status_updates') return 0;
      calls.retention.push(Date.now());
      return deleteStatusUpdates(table, before, batchSize, maxBatches, stop);
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

describe('HistoryMaintenance: retention that falls behind', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'], now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('runs again soon while a run leaves rows past retention, then goes back to its interval', async () => {
    // A table with three runs' worth past retention, and a little more.
    let left = 3 * RETENTION_BATCH * RETENTION_MAX_BATCHES + 10;
    const { service, calls } = setUp(true, async (_t, _b, batchSize, maxBatches) => {
      const n = Math.min(left, batchSize * maxBatches);
      left -= n;
      return n;
    });
    const boot = Date.now();
    service.onApplicationBootstrap();
    await advance(JOB_FIRST_RUN_MS + 10 * CATCH_UP_MIN_PAUSE_MS, 250);
    expect(left).toBe(0);
    const runs = calls.retention.map((t) => t - boot);
    expect(runs).toHaveLength(4);
    expect(runs[0]).toBe(JOB_FIRST_RUN_MS);
    for (let i = 1; i < 4; i++) expect(runs[i] - runs[i - 1]).toBeLessThanOrEqual(CATCH_UP_MIN_PAUSE_MS + 250);
    // Caught up: the next run is an interval later.
    await advance(HOUR - 60_000, 60_000);
    expect(calls.retention).toHaveLength(4);
    await advance(2 * 60_000, 60_000);
    expect(calls.retention).toHaveLength(5);
    await service.onModuleDestroy();
  });

  it('while behind, pauses as long as the last run took before the next', async () => {
    let runs = 0;
    const { service, calls } = setUp(true, async (_t, _b, batchSize, maxBatches) => {
      runs++;
      await new Promise((r) => setTimeout(r, 5_000));
      return runs <= 2 ? batchSize * maxBatches : 0;
    });
    const boot = Date.now();
    service.onApplicationBootstrap();
    await advance(JOB_FIRST_RUN_MS + 30_000, 250);
    // Each run takes 5 s, the next starts 5 s after it ended: 60 s, 70 s, 80 s, then an interval later.
    expect(calls.retention.map((t) => t - boot)).toEqual([
      JOB_FIRST_RUN_MS,
      JOB_FIRST_RUN_MS + 10_000,
      JOB_FIRST_RUN_MS + 20_000,
    ]);
    await service.onModuleDestroy();
  });

  it('the lease lost stops a run between its batches, and no catch-up run follows', async () => {
    let batches = 0;
    const state = { lease: undefined as { isHeld: boolean } | undefined };
    const { service, calls, lease } = setUp(true, async (_t, _b, batchSize, maxBatches, stop) => {
      let n = 0;
      for (let i = 0; i < maxBatches && !stop(); i++) {
        batches++;
        n += batchSize;
        if (batches === 3 && state.lease) state.lease.isHeld = false;
        await new Promise((r) => setTimeout(r, 10));
      }
      return n;
    });
    state.lease = lease;
    service.onApplicationBootstrap();
    await advance(JOB_FIRST_RUN_MS + 30_000, 250);
    expect(batches).toBe(3);
    expect(calls.retention).toHaveLength(1);
    await service.onModuleDestroy();
  });

  it('a lease lost for a moment (and taken back) during a run: the run stops, and goes on soon, not an hour later', async () => {
    const state = { lease: undefined as { isHeld: boolean } | undefined, batches: 0 };
    const { service, calls, lease } = setUp(true, async (_t, _b, batchSize, maxBatches, stop) => {
      let n = 0;
      for (let i = 0; i < maxBatches && !stop(); i++) {
        state.batches++;
        n += batchSize;
        if (state.batches === 3 && state.lease) {
          const held = state.lease;
          held.isHeld = false;
          setTimeout(() => (held.isHeld = true), 1_000);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      return n;
    });
    state.lease = lease;
    const boot = Date.now();
    service.onApplicationBootstrap();
    await advance(JOB_FIRST_RUN_MS + 70_000, 250);
    const runs = calls.retention.map((t) => t - boot);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs[0]).toBe(JOB_FIRST_RUN_MS);
    expect(runs[1] - runs[0]).toBeLessThanOrEqual(JOB_FIRST_RUN_MS + 1_000);
    // A run may be in progress: its batches' timers need time to pass for it to stop.
    const destroyed = service.onModuleDestroy();
    await advance(1_000, 10);
    await destroyed;
  });

  it('a run that failed is tried again within a minute, not an interval later', async () => {
    let runs = 0;
    const { service, calls } = setUp(true, async () => {
      if (++runs === 1) throw new Error('Connection terminated unexpectedly');
      return 0;
    });
    const boot = Date.now();
    service.onApplicationBootstrap();
    await advance(2 * JOB_FIRST_RUN_MS + 1000, 1000);
    expect(calls.retention.map((t) => t - boot)).toEqual([JOB_FIRST_RUN_MS, 2 * JOB_FIRST_RUN_MS]);
    await service.onModuleDestroy();
  });

  it('a shutdown stops a run between its batches', async () => {
    jest.useRealTimers();
    let batches = 0;
    const { service } = setUp(true, async (_t, _b, _size, maxBatches, stop) => {
      for (let i = 0; i < maxBatches && !stop(); i++) {
        batches++;
        await new Promise((r) => setTimeout(r, 5));
      }
      return 0;
    });
    const run = service.applyRetention();
    await new Promise((r) => setTimeout(r, 50));
    const destroying = service.onModuleDestroy();
    await run;
    await destroying;
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThan(100);
  });
});

describe('HistoryMaintenance: rollups that fall behind', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate'], now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('a run stops at ROLLUP_MAX_CHUNKS chunks; the next follows soon (not an interval later) while minutes are left', async () => {
    // Two and a half runs' worth of marked minutes, each chunk taking 20 ms.
    let left = Math.floor(2.5 * ROLLUP_MAX_CHUNKS) * 1000;
    const { service, calls } = setUp(true, undefined, async (limit) => {
      await new Promise((r) => setTimeout(r, 20));
      const n = Math.min(left, limit);
      left -= n;
      return n;
    });
    const boot = Date.now();
    service.onApplicationBootstrap();
    // First run at 10 s: 100 chunks (2 s), a pause as long, 100 more, a pause, the rest — all within 10 s.
    await advance(10_000 + 10_000, 100);
    expect(left).toBe(0);
    const starts = calls.rollups.filter((t, i, all) => i === 0 || t - all[i - 1] > 100).map((t) => t - boot);
    expect(starts).toHaveLength(3);
    expect(starts[0]).toBe(10_000);
    for (let i = 1; i < 3; i++) {
      expect(starts[i] - starts[i - 1]).toBeGreaterThanOrEqual(2 * ROLLUP_MAX_CHUNKS * 20);
      expect(starts[i] - starts[i - 1]).toBeLessThan(10_000);
    }
    await service.onModuleDestroy();
  });

  it('a chunk cut by the statement timeout is taken again halved; the size is kept, and grows back after clean runs', async () => {
    // More than 250 minutes in one transaction run past the statement timeout (rolled back, marks kept).
    const limits: number[] = [];
    const { service } = setUp(true, undefined, async (limit) => {
      limits.push(limit);
      if (limit > 250) throw new UnavailableError('database unavailable: canceling statement (57014)', 5, '57014');
      return Math.min(limit, 10);
    });
    // After each cut the oldest minute alone (it fits: the chunk was too large as a whole), then the chunk halved.
    await expect(service.rollUp()).resolves.toBe(12);
    expect(limits).toEqual([1000, 1, 500, 1, 250]);
    limits.length = 0;
    // The next run starts at the size that went through, not with another statement cut after 30 s.
    await service.rollUp();
    expect(limits).toEqual([250]);
    for (let i = 1; i < ROLLUP_CHUNK_REGROW_RUNS; i++) await service.rollUp();
    limits.length = 0;
    await service.rollUp();
    expect(limits).toEqual([500, 1, 250]);
    // Another error is the run's failure, as before.
    const failing = setUp(true, undefined, () => Promise.reject(new UnavailableError('database unavailable', 5)));
    await expect(failing.service.rollUp()).rejects.toThrow('database unavailable');
  });

  it('runs that failed (the database away) do not count as clean: the halved size does not grow back during an outage', async () => {
    let down = false;
    const limits: number[] = [];
    const { service } = setUp(true, undefined, async (limit) => {
      if (down) throw new UnavailableError('database unavailable: Connection terminated', 5);
      limits.push(limit);
      if (limit > 250) throw new UnavailableError('database unavailable: canceling statement (57014)', 5, '57014');
      return 10;
    });
    await service.rollUp();
    down = true;
    for (let i = 0; i < ROLLUP_CHUNK_REGROW_RUNS; i++) await expect(service.rollUp()).rejects.toThrow('unavailable');
    down = false;
    // Back after the outage (a spool being replayed): still the size that went through, not another 30 s cut.
    limits.length = 0;
    await service.rollUp();
    expect(limits).toEqual([250]);
  });
});
