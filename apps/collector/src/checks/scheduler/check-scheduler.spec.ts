import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { CheckScheduler, type SchedulableCheck, type SkipReason, type SlotTiming } from './check-scheduler';
import { ManualClock } from './clock';
import { nextSlotAtOrAfter, phaseOf } from './phase';

interface TestCheck extends SchedulableCheck {
  /** How long one run takes, in clock ms. */
  durationMs: number;
  label?: string;
}

interface RunRecord {
  id: string;
  label?: string;
  plannedAt: number;
  startedAt: number;
  endedAt: number;
}

/** A scheduler on a ManualClock whose runs take `durationMs` of clock time, with everything recorded. */
function harness(concurrency: number, start = 1_700_000_000_000) {
  const clock = new ManualClock(start);
  const runs: RunRecord[] = [];
  const skips: Array<{ id: string; reason: SkipReason; slots: number }> = [];
  let running = 0;
  let maxRunning = 0;
  const runningIds = new Set<string>();
  const overlaps: string[] = [];
  const scheduler = new CheckScheduler<TestCheck>(
    {
      run: async (check, slot: SlotTiming) => {
        if (runningIds.has(check.id)) overlaps.push(check.id);
        runningIds.add(check.id);
        running++;
        maxRunning = Math.max(maxRunning, running);
        await clock.sleep(check.durationMs);
        running--;
        runningIds.delete(check.id);
        runs.push({ id: check.id, label: check.label, ...slot, endedAt: clock.now() });
      },
      onSkip: (check, reason, slots) => skips.push({ id: check.id, reason, slots }),
    },
    { concurrency, clock },
  );
  return { clock, scheduler, runs, skips, overlaps, maxRunning: () => maxRunning };
}

const checkArb = fc.record({
  intervalSeconds: fc.integer({ min: 1, max: 120 }),
  durationFraction: fc.double({ min: 0, max: 3, noNaN: true }),
});

describe('phase', () => {
  it('spreads 10,000 checks of one minute evenly over the minute', () => {
    const buckets = new Array<number>(60).fill(0);
    for (let i = 0; i < 10_000; i++) buckets[Math.floor(phaseOf(randomUUID(), 60_000) / 1000)]++;
    // Mean 166.7 per second; a uniform spread keeps every second within ±35 % (≈ 4.5 σ).
    expect(Math.min(...buckets)).toBeGreaterThan(108);
    expect(Math.max(...buckets)).toBeLessThan(225);
  });

  it('is stable per id and inside the interval', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 86_400_000 }), (id, interval) => {
        const p = phaseOf(id, interval);
        expect(p).toBe(phaseOf(id, interval));
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThan(interval);
      }),
    );
  });

  it('the next slot is on the grid and within one interval', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 42 }),
        fc.integer({ min: 1, max: 86_400_000 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (now, interval, f) => {
          const phase = Math.floor(f * interval);
          const at = nextSlotAtOrAfter(now, interval, phase);
          expect(at).toBeGreaterThanOrEqual(now);
          expect(at - now).toBeLessThan(interval);
          expect((((at - phase) % interval) + interval) % interval).toBe(0);
        },
      ),
    );
  });
});

describe('CheckScheduler', () => {
  it('never runs a check twice at once, never exceeds its concurrency, and starts only on the grid', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(checkArb, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 6 }),
        async (specs, concurrency) => {
          const h = harness(concurrency);
          const checks = specs.map((s, i) => ({
            id: `c${i}`,
            intervalSeconds: s.intervalSeconds,
            durationMs: Math.round(s.durationFraction * s.intervalSeconds * 1000),
          }));
          h.scheduler.replaceAll(checks);
          h.scheduler.start();
          await h.clock.advance(240_000);
          expect(h.overlaps).toEqual([]);
          expect(h.maxRunning()).toBeLessThanOrEqual(concurrency);
          for (const r of h.runs) {
            const c = checks.find((x) => x.id === r.id) as TestCheck;
            const interval = c.intervalSeconds * 1000;
            expect((r.plannedAt - phaseOf(c.id, interval)) % interval).toBe(0);
            expect(r.startedAt).toBeGreaterThanOrEqual(r.plannedAt);
          }
          // Every planned slot of every check either ran or was counted as skipped.
          for (const c of checks) {
            const interval = c.intervalSeconds * 1000;
            const ran = h.runs.filter((r) => r.id === c.id);
            const skipped = h.skips.filter((s) => s.id === c.id).reduce((n, s) => n + s.slots, 0);
            const last = h.clock.now() - (c.durationMs + interval);
            const planned =
              Math.floor((last - nextSlotAtOrAfter(1_700_000_000_000, interval, phaseOf(c.id, interval))) / interval) +
              1;
            expect(ran.length + skipped).toBeGreaterThanOrEqual(planned);
          }
          const stopped = h.scheduler.stop();
          await h.clock.advance(400_000);
          await stopped;
        },
      ),
      { numRuns: 40 },
    );
  });

  it('with room to spare, each check runs once per interval exactly at its planned instant (no drift)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 90 }), { minLength: 1, maxLength: 20 }),
        fc.double({ min: 0, max: 0.95, noNaN: true }),
        async (intervals, busy) => {
          const h = harness(intervals.length);
          const checks = intervals.map((s) => ({
            id: randomUUID(),
            intervalSeconds: s,
            durationMs: Math.floor(busy * s * 1000),
          }));
          h.scheduler.replaceAll(checks);
          h.scheduler.start();
          const window = 600_000;
          await h.clock.advance(window);
          for (const c of checks) {
            const starts = h.runs.filter((r) => r.id === c.id).map((r) => r.startedAt);
            const interval = c.intervalSeconds * 1000;
            const expected = Math.floor((window - c.durationMs) / interval);
            expect(Math.abs(starts.length - expected)).toBeLessThanOrEqual(1);
            for (let i = 1; i < starts.length; i++) expect(starts[i] - starts[i - 1]).toBe(interval);
          }
          for (const r of h.runs) expect(r.startedAt).toBe(r.plannedAt);
          expect(h.skips).toEqual([]);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('under contention starts late but keeps the grid: lag is bounded by the queue, not accumulated', async () => {
    // 50 checks of 10 s, each run taking 1 s, 5 at once: 50 s of work per 10 s keeps all 5 runners busy.
    // Every run starts within one interval of its slot, and later slots do not slide further.
    const h = harness(5);
    const checks = Array.from({ length: 50 }, (_, i) => ({ id: `k${i}`, intervalSeconds: 10, durationMs: 1_000 }));
    h.scheduler.replaceAll(checks);
    h.scheduler.start();
    await h.clock.advance(300_000);
    const lags = h.runs.map((r) => r.startedAt - r.plannedAt);
    expect(Math.max(...lags)).toBeLessThan(10_000);
    const early = h.runs.filter((r) => r.plannedAt < 1_700_000_000_000 + 60_000).map((r) => r.startedAt - r.plannedAt);
    const late = h.runs.filter((r) => r.plannedAt > 1_700_000_000_000 + 240_000).map((r) => r.startedAt - r.plannedAt);
    expect(Math.max(...late)).toBeLessThanOrEqual(Math.max(...early) + 1_000);
    expect(h.skips).toEqual([]);
  });

  it('skips and counts a slot whose previous run is still going', async () => {
    const h = harness(4);
    h.scheduler.upsert({ id: 'slow', intervalSeconds: 10, durationMs: 25_000 });
    h.scheduler.start();
    await h.clock.advance(10_000 + 30_000);
    const runs = h.runs.filter((r) => r.id === 'slow');
    expect(runs.length).toBe(1);
    expect(runs[0].endedAt - runs[0].startedAt).toBe(25_000);
    // The run spans 25 s: the two slots after its start come due while it runs.
    expect(h.skips).toEqual([
      { id: 'slow', reason: 'overlap', slots: 1 },
      { id: 'slow', reason: 'overlap', slots: 1 },
    ]);
    expect(h.overlaps).toEqual([]);
  });

  it('after a stall runs the latest missed slot once and counts the others as behind', async () => {
    const h = harness(2);
    h.scheduler.upsert({ id: 'a', intervalSeconds: 5, durationMs: 10 });
    h.scheduler.start();
    await h.clock.advance((h.scheduler.nextPlannedAt('a') as number) - h.clock.now() + 100);
    expect(h.runs.length).toBe(1);
    // Time jumps 31 s in one step (a stalled event loop): 6 slots passed unseen.
    await h.clock.advance(0);
    const clock = h.clock as unknown as { current: number };
    clock.current += 31_000;
    await h.clock.advance(100);
    expect(h.runs.length).toBe(2);
    expect(h.skips.reduce((n, s) => n + (s.reason === 'behind' ? s.slots : 0), 0)).toBeGreaterThanOrEqual(5);
  });

  it('a step back of the wall clock (NTP) moves the plan back with it: checks run on at their pace, not after the step', async () => {
    const h = harness(4);
    h.scheduler.replaceAll([
      { id: 'a', intervalSeconds: 10, durationMs: 10 },
      { id: 'b', intervalSeconds: 60, durationMs: 10 },
    ]);
    h.scheduler.start();
    await h.clock.advance(120_000);
    const before = h.runs.length;
    const lastA = (h.runs.filter((r) => r.id === 'a').at(-1) as RunRecord).plannedAt;
    h.clock.step(-10 * 60_000);
    await h.clock.advance(120_000);
    const after = h.runs.slice(before);
    // Two minutes: 12 runs of a, 2 of b — as without the step (not none until the clock is back where it was).
    expect(after.filter((r) => r.id === 'a')).toHaveLength(12);
    expect(after.filter((r) => r.id === 'b')).toHaveLength(2);
    // Still 10 s apart across the step (planned times in the stepped clock's terms), none skipped or late.
    const a = after.filter((r) => r.id === 'a');
    expect(a[0].plannedAt - (lastA - 10 * 60_000)).toBe(10_000);
    for (let i = 1; i < a.length; i++) expect(a[i].plannedAt - a[i - 1].plannedAt).toBe(10_000);
    for (const r of after) expect(r.startedAt).toBe(r.plannedAt);
    expect(h.skips).toEqual([]);
    // A check added after the step is planned in the clock's new terms.
    h.scheduler.upsert({ id: 'c', intervalSeconds: 5, durationMs: 10 });
    await h.clock.advance(10_000);
    expect(h.runs.filter((r) => r.id === 'c').length).toBeGreaterThanOrEqual(1);
  });

  it('a step forward of the wall clock moves the plan forward with it: no burst of every check at once, none run twice in an interval', async () => {
    const h = harness(10_000);
    h.scheduler.replaceAll(
      Array.from({ length: 200 }, (_, i) => ({ id: `c${i}`, intervalSeconds: 60, durationMs: 10 })),
    );
    h.scheduler.start();
    await h.clock.advance(120_000);
    const before = h.runs.length;
    h.clock.step(10 * 60_000);
    await h.clock.advance(120_000);
    const after = h.runs.slice(before);
    // Spread over the interval as before the step (phases kept), not all 200 at the first wake after it.
    const perInstant = new Map<number, number>();
    for (const r of after) perInstant.set(r.startedAt, (perInstant.get(r.startedAt) ?? 0) + 1);
    expect(Math.max(...perInstant.values())).toBeLessThan(10);
    // Each check at its pace: twice in two minutes, 60 s apart.
    for (let i = 0; i < 200; i++) {
      const mine = after.filter((r) => r.id === `c${i}`);
      expect(mine).toHaveLength(2);
      expect(mine[1].plannedAt - mine[0].plannedAt).toBe(60_000);
    }
    expect(h.skips).toEqual([]);
  });

  it('after a restart every check runs again within one interval, at the same phase', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 3_600_000 }),
        async (intervals, restartAfter) => {
          const checks = intervals.map((s) => ({ id: randomUUID(), intervalSeconds: s, durationMs: 5 }));
          const first = harness(64);
          first.scheduler.replaceAll(checks);
          first.scheduler.start();
          await first.clock.advance(restartAfter);
          void first.scheduler.stop();
          const second = harness(64, first.clock.now());
          const restartAt = second.clock.now();
          second.scheduler.replaceAll(checks);
          second.scheduler.start();
          await second.clock.advance(300_000);
          for (const c of checks) {
            const interval = c.intervalSeconds * 1000;
            const firstRun = second.runs.find((r) => r.id === c.id) as RunRecord;
            expect(firstRun.startedAt - restartAt).toBeLessThan(interval);
            const before = first.runs.filter((r) => r.id === c.id);
            if (before.length > 0) expect((firstRun.plannedAt - before[0].plannedAt) % interval).toBe(0);
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it('with catchUpFrom, slots that fell while the process was starting run at start: all within one interval of the process start', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 5_000 }),
        async (intervals, bootMs) => {
          const processStart = 1_700_000_000_000;
          const clock = new ManualClock(processStart + bootMs);
          const firstRun = new Map<string, SlotTiming>();
          const s = new CheckScheduler<SchedulableCheck>(
            {
              run: async (c, slot) => {
                if (!firstRun.has(c.id)) firstRun.set(c.id, slot);
              },
            },
            { concurrency: 64, clock, catchUpFrom: processStart },
          );
          const checks = intervals.map((sec) => ({ id: randomUUID(), intervalSeconds: sec }));
          s.replaceAll(checks);
          s.start();
          await clock.advance(121_000);
          for (const c of checks) {
            const interval = c.intervalSeconds * 1000;
            const slot = firstRun.get(c.id) as SlotTiming;
            // The slot is on the grid, the first at or after the process start (or, when the boot outlasted the
            // interval, the latest that passed meanwhile); run then, or at start if that was earlier.
            const first = nextSlotAtOrAfter(processStart, interval, phaseOf(c.id, interval));
            const started = processStart + bootMs;
            const expected = first <= started ? first + Math.floor((started - first) / interval) * interval : first;
            expect(slot.plannedAt).toBe(expected);
            expect(slot.startedAt).toBe(Math.max(slot.plannedAt, processStart + bootMs));
            if (bootMs < interval) expect(slot.startedAt - processStart).toBeLessThan(interval);
          }
          // A check added later (after start) plans from its own arrival, as any new check.
          const late = { id: randomUUID(), intervalSeconds: 30 };
          s.upsert(late);
          expect((s.nextPlannedAt(late.id) as number) - clock.now()).toBeGreaterThanOrEqual(0);
          void s.stop();
        },
      ),
      { numRuns: 40 },
    );
  });

  it('applies assignment changes without disturbing the other checks', async () => {
    const h = harness(8);
    const stay = { id: 'stay', intervalSeconds: 10, durationMs: 100 };
    const gone = { id: 'gone', intervalSeconds: 10, durationMs: 3_000 };
    const change = { id: 'change', intervalSeconds: 10, durationMs: 100, label: 'v1' };
    h.scheduler.replaceAll([stay, gone, change]);
    h.scheduler.start();
    await h.clock.advance(25_000);
    const stayBefore = h.runs.filter((r) => r.id === 'stay').map((r) => r.plannedAt);

    // New check: first run within its interval. Removed: nothing after (a run in flight may finish). Changed: new spec next.
    const changedAt = h.clock.now();
    const added = { id: 'added', intervalSeconds: 7, durationMs: 100 };
    h.scheduler.replaceAll([stay, { ...change, label: 'v2' }, added]);
    expect(h.scheduler.has('gone')).toBe(false);
    expect(h.scheduler.size).toBe(3);
    await h.clock.advance(60_000);

    const addedRuns = h.runs.filter((r) => r.id === 'added');
    expect(addedRuns[0].startedAt - changedAt).toBeLessThan(7_000);
    expect(h.runs.filter((r) => r.id === 'gone' && r.startedAt >= changedAt)).toEqual([]);
    const changedRuns = h.runs.filter((r) => r.id === 'change' && r.startedAt >= changedAt);
    expect(changedRuns.length).toBeGreaterThanOrEqual(5);
    expect(changedRuns.every((r) => r.label === 'v2')).toBe(true);
    // The untouched check kept its grid.
    const stayAfter = h.runs.filter((r) => r.id === 'stay').map((r) => r.plannedAt);
    for (let i = 1; i < stayAfter.length; i++) expect(stayAfter[i] - stayAfter[i - 1]).toBe(10_000);
    expect(stayAfter.slice(0, stayBefore.length)).toEqual(stayBefore);
  });

  it('a changed interval moves the check to its new grid; removal while running waits for the run, re-adding never overlaps', async () => {
    const h = harness(4);
    h.scheduler.upsert({ id: 'x', intervalSeconds: 10, durationMs: 8_000 });
    h.scheduler.start();
    const removedAt = (h.scheduler.nextPlannedAt('x') as number) + 1_000;
    await h.clock.advance(removedAt - h.clock.now());
    expect(h.scheduler.running).toBe(1);
    h.scheduler.remove('x');
    h.scheduler.upsert({ id: 'x', intervalSeconds: 3, durationMs: 100 });
    await h.clock.advance(30_000);
    expect(h.overlaps).toEqual([]);
    const later = h.runs.filter((r) => r.startedAt > removedAt && r.endedAt - r.startedAt === 100);
    expect(later.length).toBeGreaterThanOrEqual(8);
    for (const r of later) expect((r.plannedAt - phaseOf('x', 3_000)) % 3_000).toBe(0);
  });

  it('stop() drops queued slots and waits for runs in flight', async () => {
    const h = harness(1);
    h.scheduler.replaceAll([
      { id: 'a', intervalSeconds: 60, durationMs: 5_000 },
      { id: 'b', intervalSeconds: 60, durationMs: 5_000 },
    ]);
    h.scheduler.start();
    await h.clock.advance(60_000);
    let stopped = false;
    const stopping = h.scheduler.stop().then(() => (stopped = true));
    await h.clock.advance(0);
    const inFlight = h.scheduler.running;
    if (inFlight > 0) {
      expect(stopped).toBe(false);
      await h.clock.advance(5_000);
    }
    await stopping;
    expect(stopped).toBe(true);
    const before = h.runs.length;
    await h.clock.advance(300_000);
    expect(h.runs.length).toBe(before);
  });

  it('a run that throws is reported and the scheduler goes on', async () => {
    const clock = new ManualClock(0);
    const errors: unknown[] = [];
    let runs = 0;
    const s = new CheckScheduler<SchedulableCheck>(
      {
        run: () => {
          runs++;
          throw new Error('bug');
        },
        onError: (_c, e) => errors.push(e),
      },
      { concurrency: 1, clock },
    );
    s.upsert({ id: 'boom', intervalSeconds: 1 });
    s.start();
    await clock.advance(10_000);
    expect(runs).toBeGreaterThanOrEqual(10);
    expect(errors.length).toBe(runs);
    expect(s.running).toBe(0);
  });
});
