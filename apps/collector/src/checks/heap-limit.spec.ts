import { heapTooSmallFor } from './checks.service';

describe('heapTooSmallFor (the collector warns when its capped heap is tight for an assignment)', () => {
  const MB = 1024 * 1024;
  // --max-old-space-size=64 gives a 70 MB heap limit (old space plus the 2 MB semi-spaces), npm start's 96 gives 102 MB.
  it.each([
    [0, 70 * MB, false],
    [10_000, 70 * MB, false],
    [24_000, 70 * MB, false],
    [25_000, 70 * MB, true],
    [100_000, 70 * MB, true],
    [40_000, 102 * MB, false],
    [60_000, 102 * MB, true],
    [100_000, 4144 * MB, false],
  ])('%d checks with a %d-byte limit: tight = %s', (checks, limit, tight) => {
    expect(heapTooSmallFor(checks, limit) !== undefined).toBe(tight);
  });

  it('says how much it would need and what it has', () => {
    expect(heapTooSmallFor(50_000, 70 * MB)).toEqual({ neededMb: 81, heapLimitMb: 70 });
  });
});
