import fc from 'fast-check';
import { CheckScheduler, type SchedulableCheck, type SlotTiming } from './check-scheduler';
import { ManualClock } from './clock';
import { nextSlotAtOrAfter, phaseOf } from './phase';

// Found in review of the aggregator's peer bound (peerResultGraceMs: "every collector runs a check at the same
// instants"): a collector that placed its checks with a wrong wall clock (booted before NTP synced) kept that offset
// in real time after NTP stepped its clock right — the scheduler carried its plan through the step — so its results of
// a run came 40 s after every other location's. After a step the scheduler puts each slot back on the grid.

const T0 = 1_700_000_000_000;

it('a collector whose clock was stepped 40 s forward runs on the shared grid after the step', async () => {
  const clock = new ManualClock(T0 - 40_000); // 40 s behind real time
  const started: number[] = [];
  const s = new CheckScheduler<SchedulableCheck>(
    { run: async (_c, slot: SlotTiming) => void started.push(slot.startedAt) },
    { concurrency: 1, clock },
  );
  s.replaceAll([{ id: 'daily-ish', intervalSeconds: 3600 }]);
  s.start();
  await clock.advance(1000);
  clock.step(40_000); // NTP: now right
  await clock.advance(2 * 3_600_000);
  await s.stop();
  const phase = phaseOf('daily-ish', 3_600_000);
  expect(started.length).toBeGreaterThanOrEqual(2);
  // Where every collector with a right clock runs it (the grid), and where this one does.
  for (const at of started) expect(at).toBe(nextSlotAtOrAfter(at, 3_600_000, phase));
});

describe('after a step of the wall clock (either way, the clock wrong before it or after it)', () => {
  it('each check runs on the grid, each slot covered by exactly one run: none twice, none skipped', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 4 }),
        fc.double({ min: -3, max: 3, noNaN: true }), // the step, in intervals of the first check
        fc.double({ min: 0, max: 3, noNaN: true }), // when it comes, in intervals of the first check
        async (intervals, stepFraction, whenFraction) => {
          const checks = intervals.map((intervalSeconds, i) => ({ id: `c${i}-${intervalSeconds}`, intervalSeconds }));
          const firstMs = intervals[0] * 1000;
          let step = Math.round(stepFraction * firstMs);
          if (Math.abs(step) < 1000) step = step < 0 ? -1000 : 1000; // smaller is no step (STEP_BACK_TOLERANCE_MS)
          const clock = new ManualClock(T0 - step); // wrong by `step` until the step
          // Real time: the monotonic clock plus the step (the wall clock after the step).
          const runs = new Map<string, Array<{ plannedAt: number; startedAt: number; real: number }>>();
          const skips: string[] = [];
          const s = new CheckScheduler<SchedulableCheck>(
            {
              run: async (c, slot) => {
                const mine = runs.get(c.id) ?? [];
                mine.push({ ...slot, real: clock.monotonic() + step });
                runs.set(c.id, mine);
                await clock.sleep(10);
              },
              onSkip: (c, reason) => skips.push(`${c.id} ${reason}`),
            },
            { concurrency: 100, clock },
          );
          s.replaceAll(checks);
          s.start();
          const when = Math.round(whenFraction * firstMs);
          await clock.advance(when);
          const stepAt = clock.monotonic() + step;
          clock.step(step);
          await clock.advance(4 * Math.max(...intervals) * 1000 + 10_000);
          await s.stop();
          expect(skips).toEqual([]);
          for (const c of checks) {
            const I = c.intervalSeconds * 1000;
            const phase = phaseOf(c.id, I);
            const mine = runs.get(c.id) ?? [];
            // The slot a run covers: the grid slot (real time) nearest its start.
            const covered = mine.map((r) => nextSlotAtOrAfter(r.real - I / 2, I, phase));
            for (let i = 1; i < covered.length; i++) expect(covered[i] - covered[i - 1]).toBe(I);
            const after = mine.filter((r) => r.real > stepAt);
            expect(after.length).toBeGreaterThanOrEqual(3);
            for (const r of after) expect(r.plannedAt).toBe(nextSlotAtOrAfter(r.plannedAt, I, phase));
            // Late (at most half an interval) only for a slot the step put behind the clock; then on time.
            expect(after[0].startedAt - after[0].plannedAt).toBeLessThanOrEqual(I / 2);
            for (const r of after.slice(1)) expect(r.startedAt).toBe(r.plannedAt);
          }
        },
      ),
      // 50 runs: 100 took over 60 s beside the rest of the unit suite on a 2-core machine.
      { numRuns: 50 },
    );
  }, 180_000);
});

describe('catchUpFrom and a step of the wall clock during the boot (NTP syncing while the assignment is fetched)', () => {
  it.each([
    ['forward', 3_600_000],
    ['back', -3_600_000],
  ])('a step %s: only the slots that fell during the boot (real time) run at start, no burst', async (_way, step) => {
    const processStart = T0;
    const bootMs = 5_000;
    const clock = new ManualClock(processStart);
    const started: string[] = [];
    const skips: string[] = [];
    const s = new CheckScheduler<SchedulableCheck>(
      { run: async (c) => void started.push(c.id), onSkip: (c, reason) => skips.push(`${c.id} ${reason}`) },
      { concurrency: 1000, clock, catchUpFrom: processStart },
    );
    await clock.advance(1_000);
    clock.step(step); // the clock was wrong by `step` at the process start
    await clock.advance(bootMs - 1_000);
    const checks = Array.from({ length: 200 }, (_, i) => ({ id: `boot-${i}`, intervalSeconds: 60 }));
    s.replaceAll(checks);
    s.start();
    await clock.advance(0);
    // In real time (the clock after the step) the process started at processStart + step.
    const realStart = processStart + step;
    const fellDuringBoot = checks.filter((c) => {
      const slot = nextSlotAtOrAfter(realStart, 60_000, phaseOf(c.id, 60_000));
      return slot <= realStart + bootMs;
    });
    expect(skips).toEqual([]);
    expect(started.sort()).toEqual(fellDuringBoot.map((c) => c.id).sort());
    await s.stop();
  });
});
