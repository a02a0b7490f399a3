import fc from 'fast-check';
import {
  hostConflictOf,
  newHostReporters,
  observeReporter,
  ReporterConflicts,
  type ReporterConflictChange,
  type ReporterSample,
} from './reporter-conflict';

const I = 5_000;
const T0 = Date.parse('2026-12-07T00:00:00Z');

/** Feeds samples in order (heardAt as given); returns every change. */
function run(samples: readonly ReporterSample[]) {
  const s = newHostReporters();
  const changes: ReporterConflictChange[] = samples.map((x) => observeReporter(s, x));
  return { state: s, changes, conflict: hostConflictOf(s) };
}

/** `n` samples of `reporter`, one per interval from `start` (sample time), each heard `lag` ms after it. */
function series(reporter: string, n: number, start: number, lag = 100): ReporterSample[] {
  return Array.from({ length: n }, (_, i) => ({
    reporter,
    sampledAt: start + i * I,
    heardAt: start + i * I + lag,
    intervalMs: I,
  }));
}

const byHeard = (a: ReporterSample, b: ReporterSample) => a.heardAt - b.heardAt;

describe('reporter conflicts (two collectors, one host id)', () => {
  it('raises when two reporters interleave, with the number of reporters and since when', () => {
    const samples = [...series('a', 6, T0), ...series('b', 6, T0 + 2_000)].sort(byHeard);
    const { changes, conflict } = run(samples);
    expect(changes.filter((c) => c === 'raised')).toHaveLength(1);
    expect(conflict).toEqual({ reporters: 2, since: expect.any(Number) });
    // A B A B is noticed, then confirmed once each went on for three intervals more: within five intervals.
    expect(changes.indexOf('raised')).toBeLessThanOrEqual(9);
  });

  it('counts three reporters', () => {
    const samples = [...series('a', 8, T0), ...series('b', 8, T0 + 1_000), ...series('c', 8, T0 + 3_000)];
    expect(run(samples.sort(byHeard)).conflict?.reporters).toBe(3);
  });

  it('does not raise for A then B (a restart under a new identity), even with A’s spool drained after B’s first', () => {
    const a = series('a', 10, T0);
    const b = series('b', 10, T0 + 10 * I + 1_500);
    // B's process drains A's last samples after publishing its own first ones.
    const arrival = [...a.slice(0, 7), b[0], b[1], ...a.slice(7).map((x) => ({ ...x, heardAt: b[1].heardAt + 1 }))];
    arrival.push(...b.slice(2));
    expect(run(arrival).changes).not.toContain('raised');
  });

  it.each([1, 2, 3])(
    'does not raise for a collector replaced with an overlap of %i interval(s) (a rolling update with surge: old and new pod both send)',
    (k) => {
      // The old pod samples until slot 19; the new one (another installation, the same node) from k intervals before.
      const a = series('a', 20, T0);
      const b = series('b', 40, T0 + (20 - k) * I + 2_000);
      const { changes } = run([...a, ...b].sort(byHeard));
      expect(changes).not.toContain('raised');
    },
  );

  it('does not raise for a reboot whose clock is far behind (B stamped before A’s last; A never heard again)', () => {
    const a = series('a', 1_000, T0);
    const end = a[a.length - 1].heardAt;
    const b = series('b', 20, T0 + 500 * I).map((x, i) => ({ ...x, heardAt: end + 1_000 + i * I }));
    expect(run([...a, ...b]).changes).not.toContain('raised');
  });

  it('clears after ten intervals with one reporter, and raises again when the second comes back', () => {
    const both = [...series('a', 6, T0), ...series('b', 6, T0 + 2_000)].sort(byHeard);
    const aAlone = series('a', 20, T0 + 6 * I);
    const bAgain = [...series('a', 6, T0 + 26 * I), ...series('b', 6, T0 + 26 * I + 2_000)].sort(byHeard);
    const { changes } = run([...both, ...aAlone, ...bAgain]);
    expect(changes.filter(Boolean)).toEqual(['raised', 'cleared', 'raised']);
    // Not before ten intervals: B was last heard at ≈ T0 + 5 I, the clear comes at ≥ T0 + 15 I plus the window.
    const clearedAt = [...both, ...aAlone, ...bAgain][changes.indexOf('cleared')].heardAt;
    expect(clearedAt - (T0 + 5 * I)).toBeGreaterThan(10 * I);
  });

  it('keeps the mark while both keep reporting', () => {
    const { changes, conflict } = run([...series('a', 200, T0), ...series('b', 200, T0 + 2_500)].sort(byHeard));
    expect(changes.filter(Boolean)).toEqual(['raised']);
    expect(conflict?.reporters).toBe(2);
  });

  it('a backlog drained at once after an outage of the aggregator neither clears nor raises the mark again', () => {
    // B's clock a minute behind A's; both sample every interval for 40 intervals, then the aggregator is away for
    // 6 intervals and takes the 12 samples waiting in one burst (one heard time), then goes on live.
    const a = series('a', 60, T0);
    const b = series('b', 60, T0 + 2_000).map((x) => ({ ...x, sampledAt: x.sampledAt - 60_000 }));
    const all = [...a, ...b].sort(byHeard);
    const burstAt = T0 + 46 * I + 500;
    const arrival = all.map((x) => (x.heardAt >= T0 + 40 * I && x.heardAt < burstAt ? { ...x, heardAt: burstAt } : x));
    const { changes } = run(arrival);
    expect(changes.filter(Boolean)).toEqual(['raised']);
  });

  it('ReporterConflicts counts marked hosts, and sweep forgets hosts gone quiet', () => {
    const c = new ReporterConflicts();
    for (const x of [...series('a', 6, T0), ...series('b', 6, T0 + 2_000)].sort(byHeard)) c.observe('web-1', x);
    for (const x of series('a', 6, T0)) c.observe('web-2', x);
    expect(c.conflicts).toBe(1);
    expect(c.conflictOf('web-1')?.reporters).toBe(2);
    expect(c.conflictOf('web-2')).toBeNull();
    expect(c.sweep(T0 + 6 * I + 5 * I)).toEqual([]);
    expect(c.sweep(T0 + 6 * I + 11 * I)).toEqual(['web-1']);
    expect(c.conflicts).toBe(0);
    expect(c.size).toBe(0);
  });

  describe('properties', () => {
    /** Samples of one reporter at distinct interval slots, with arrival jitter. */
    const oneReporter = fc
      .array(fc.record({ slot: fc.integer({ min: 0, max: 400 }), lag: fc.integer({ min: 0, max: 60_000 }) }), {
        minLength: 1,
        maxLength: 120,
      })
      .map((xs) =>
        xs.map(({ slot, lag }): ReporterSample => ({
          reporter: 'a',
          sampledAt: T0 + slot * I,
          heardAt: T0 + slot * I + lag,
          intervalMs: I,
        })),
      );

    it('one reporter, in any order and with any redeliveries, never raises', () => {
      fc.assert(
        fc.property(
          oneReporter,
          fc.array(fc.nat(), { maxLength: 40 }),
          fc.array(fc.nat(), { maxLength: 120 }),
          (samples, dupes, order) => {
            const all = [...samples, ...dupes.map((d) => samples[d % samples.length])];
            // Any arrival order (a permutation driven by `order`), heard times made non-decreasing as a consumer's are.
            const shuffled = all.map((x, i) => ({ x, k: order[i] ?? i })).sort((p, q) => p.k - q.k);
            let heard = 0;
            const arrival = shuffled.map(({ x }) => ({ ...x, heardAt: (heard = Math.max(heard, x.heardAt)) }));
            const { changes, conflict } = run(arrival);
            expect(changes).not.toContain('raised');
            expect(conflict).toBeNull();
          },
        ),
      );
    });

    it('a restart under a new identity (stamps go on from the old ones), in any arrival order, never raises', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 60 }),
          fc.integer({ min: 1, max: 60 }),
          fc.integer({ min: 1, max: 4 * I }),
          fc.array(fc.nat(), { maxLength: 120 }),
          fc.array(fc.nat(), { maxLength: 20 }),
          (na, nb, gap, order, dupes) => {
            const a = series('a', na, T0);
            const b = series('b', nb, a[na - 1].sampledAt + gap);
            const all = [...a, ...b];
            const withDupes = [...all, ...dupes.map((d) => all[d % all.length])];
            const shuffled = withDupes.map((x, i) => ({ x, k: order[i] ?? i })).sort((p, q) => p.k - q.k);
            let heard = 0;
            const arrival = shuffled.map(({ x }) => ({ ...x, heardAt: (heard = Math.max(heard, x.heardAt)) }));
            expect(run(arrival).changes).not.toContain('raised');
          },
        ),
      );
    });

    it('two reporters interleaving (any offset, skew, redeliveries) always raise, a few intervals after their spans meet', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: I - 1 }),
          fc.integer({ min: -120_000, max: 120_000 }),
          fc.integer({ min: 0, max: 2_000 }),
          fc.array(fc.nat(), { maxLength: 20 }),
          (offset, skew, lag, dupes) => {
            // B's clock is `skew` off (its stamps, not its arrivals): their spans meet once both ran that long; the
            // overlap is confirmed once each went on for three intervals more.
            const n = 9 + Math.ceil(Math.abs(skew) / I);
            const a = series('a', n, T0, lag);
            const b = series('b', n, T0 + offset, lag).map((x) => ({ ...x, sampledAt: x.sampledAt + skew }));
            const all = [...a, ...b].sort(byHeard);
            const withDupes = [...all];
            for (const d of dupes) {
              // Redelivered a little after the original (never before it).
              const x = all[d % all.length];
              withDupes.splice(Math.min(withDupes.length, withDupes.indexOf(x) + 1 + (d % 3)), 0, x);
            }
            let heard = 0;
            const arrival = withDupes.map((x) => ({ ...x, heardAt: (heard = Math.max(heard, x.heardAt)) }));
            const { changes, conflict } = run(arrival);
            expect(changes).toContain('raised');
            expect(conflict?.reporters).toBe(2);
          },
        ),
      );
    });
  });
});
