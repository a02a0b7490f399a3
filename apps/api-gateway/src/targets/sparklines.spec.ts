import { isDeepStrictEqual } from 'node:util';
import { SPARKLINE_MINUTES } from '@fleetwatch/contracts';
import fc from 'fast-check';
import { sparklinesOf, sparklineWindow, type MinuteTotal } from './sparklines';

const NOW = Date.parse('2026-12-03T10:15:42.123Z');
const row = (
  targetId: string,
  minutesAgo: number,
  count: number,
  okCount: number,
  latencyMs: number | null,
): MinuteTotal => ({
  targetId,
  bucket: new Date(Math.floor(NOW / 60_000) * 60_000 - minutesAgo * 60_000),
  count,
  okCount,
  latencyMs,
});

describe('sparklineWindow', () => {
  it('covers the last 60 minute buckets, the current one last', () => {
    const w = sparklineWindow(NOW);
    expect(new Date(w.from).toISOString()).toBe('2026-12-03T09:16:00.000Z');
    expect(new Date(w.until).toISOString()).toBe('2026-12-03T10:16:00.000Z');
    expect((w.until - w.from) / 60_000).toBe(SPARKLINE_MINUTES);
  });
});

describe('sparklinesOf', () => {
  it('places each minute at its index; the current minute is last, 59 minutes ago first', () => {
    const out = sparklinesOf(['a'], [row('a', 0, 4, 3, 12), row('a', 59, 2, 2, null)], NOW);
    expect(out.from).toBe('2026-12-03T09:16:00.000Z');
    expect(out.targets[0].availability[59]).toBe(0.75);
    expect(out.targets[0].latencyMs[59]).toBe(12);
    expect(out.targets[0].availability[0]).toBe(1);
    expect(out.targets[0].latencyMs[0]).toBeNull();
    expect(out.targets[0].availability.slice(1, 59).every((v) => v === null)).toBe(true);
  });

  it('ignores rows outside the window, off a minute, for ids not asked, or without samples', () => {
    const off = { ...row('a', 3, 1, 1, 5), bucket: new Date(row('a', 3, 1, 1, 5).bucket.getTime() + 500) };
    const out = sparklinesOf(
      ['a'],
      [row('a', 60, 1, 1, 1), row('a', -1, 1, 1, 1), off, row('b', 1, 1, 1, 1), row('a', 2, 0, 0, 1)],
      NOW,
    );
    expect(out.targets).toHaveLength(1);
    expect(out.targets[0].availability.every((v) => v === null)).toBe(true);
    expect(out.targets[0].latencyMs.every((v) => v === null)).toBe(true);
  });

  it('keeps the order asked, each id once, with __proto__ as a plain id', () => {
    const out = sparklinesOf(['z', '__proto__', 'a', 'z'], [row('__proto__', 1, 2, 1, 3)], NOW);
    expect(out.targets.map((t) => t.id)).toEqual(['z', '__proto__', 'a']);
    expect(out.targets[1].availability[58]).toBe(0.5);
  });

  it('always answers 60 values per series, availability within 0–1 and latencies finite or null', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 10 }),
        fc.array(
          fc.record({
            id: fc.nat(12),
            minutesAgo: fc.integer({ min: -5, max: 70 }),
            count: fc.integer({ min: 0, max: 1000 }),
            ok: fc.integer({ min: 0, max: 1000 }),
            latency: fc.option(fc.double(), { nil: null }),
          }),
          { maxLength: 50 },
        ),
        (ids, raw) => {
          // ok is drawn apart from count (more good than samples included): the share is still kept within 0–1.
          const rows = raw.map((r) => row(ids[r.id % ids.length] ?? 'x', r.minutesAgo, r.count, r.ok, r.latency));
          const out = sparklinesOf(ids, rows, NOW);
          // Plain checks (an expect per value made 100 runs take seconds).
          const sameIds = JSON.stringify(out.targets.map((t) => t.id)) === JSON.stringify([...new Set(ids)]);
          const shaped = out.targets.every(
            (t) =>
              t.availability.length === SPARKLINE_MINUTES &&
              t.latencyMs.length === SPARKLINE_MINUTES &&
              t.availability.every((v) => v === null || (v >= 0 && v <= 1)) &&
              t.latencyMs.every((v) => v === null || Number.isFinite(v)),
          );
          // What goes out is what JSON carries unchanged (no NaN/Infinity turned into null on the way).
          const jsonSafe = isDeepStrictEqual(JSON.parse(JSON.stringify(out)), out);
          return sameIds && shaped && jsonSafe;
        },
      ),
    );
  });
});
