import fc from 'fast-check';
import { durationSchema, formatDuration, parseDuration } from './duration';

describe('Prometheus-style durations', () => {
  it.each([
    ['0', 0],
    ['0s', 0],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1d', 86_400_000],
    ['2w', 14 * 86_400_000],
    ['1y', 365 * 86_400_000],
    ['1h0m5s250ms', 3_605_250],
    ['500ms', 500],
  ])('%s = %d ms', (text, ms) => expect(parseDuration(text)).toEqual({ ms }));

  it.each([
    ['', /empty/],
    ['5', /has no unit/],
    ['5 m', /cannot read/],
    ['-5m', /cannot read/],
    ['1.5h', /cannot read/],
    ['5M', /cannot read/],
    ['30m1h', /largest to smallest/],
    ['1m1m', /given twice/],
    ['10x', /unknown unit "x"/],
    ['1h 30m', /cannot read/],
    ['PT5M', /cannot read/],
    ['9'.repeat(40) + 's', /longer than 32/],
  ])('%j is refused (%s)', (text, message) => {
    const r = parseDuration(text);
    expect(r.ms).toBeUndefined();
    expect(r.problem).toMatch(message);
  });

  it('formats the shortest form, and what it formats reads back', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(8 * 86_400_000)).toBe('8d');
    expect(formatDuration(14 * 86_400_000)).toBe('2w');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 365 * 86_400_000 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toEqual({ ms });
      }),
    );
  });

  it('the schema bounds values and keeps the text as written', () => {
    const s = durationSchema({ min: 60_000, max: 3_600_000 });
    expect(s.parse('1m')).toBe('1m');
    expect(s.safeParse('30s').error?.issues[0].message).toBe('at least 1m');
    expect(s.safeParse('2h').error?.issues[0].message).toBe('at most 1h');
    expect(s.safeParse('1hour').error?.issues[0].message).toMatch(/^not a duration: unknown unit "hour"/);
  });
});
