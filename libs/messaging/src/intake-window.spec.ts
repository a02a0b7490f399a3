import { IntakeWindow } from './intake-window';

describe('IntakeWindow', () => {
  it('sizes the first prefetch from the hint, so a backlog of maximal messages fits the budget', () => {
    const w = new IntakeWindow(1_000, { maxUnits: 20_000, unitsPerMessageHint: 1_000 });
    expect(w.targetPrefetch()).toBe(20);
  });

  it('pauses above the budget and resumes at half (units and bytes)', () => {
    const w = new IntakeWindow(100, { maxUnits: 1_000, maxBytes: 10_000 });
    for (let i = 0; i < 4; i++) w.add(250, 100);
    expect(w.overBudget).toBe(false);
    w.add(1, 100);
    expect(w.overBudget).toBe(true);
    expect(w.canResume).toBe(false);
    w.remove(250, 100);
    w.remove(250, 100);
    expect(w.overBudget).toBe(false);
    expect(w.canResume).toBe(false); // 501 units > half
    w.remove(1, 100);
    expect(w.canResume).toBe(true);
    w.add(1, 20_000);
    expect(w.overBudget).toBe(true);
    expect(w.held).toEqual({ units: 501, bytes: 20_200, messages: 3 });
  });

  it('shrinks the prefetch at once when larger messages arrive, widens it only after they are gone', () => {
    const w = new IntakeWindow(1_000, { maxUnits: 10_000, maxBytes: 1_000_000 });
    expect(w.targetPrefetch()).toBe(976); // bytes hint 1 KiB
    w.add(1_000, 1_000);
    expect(w.targetPrefetch()).toBe(10);
    // Small messages for a while: the large one is still remembered…
    for (let i = 0; i < 300; i++) w.add(1, 1_000);
    expect(w.targetPrefetch()).toBe(10);
    // …and forgotten after two windows of deliveries.
    for (let i = 0; i < 300; i++) w.add(1, 1_000);
    expect(w.targetPrefetch()).toBe(1_000);
  });

  it('with a worst case given, never widens past what a window of maximal messages fits, however small the recent ones', () => {
    const w = new IntakeWindow(1_000, {
      maxUnits: 10_000,
      maxBytes: 16 * 1024 * 1024,
      worstCase: { units: 1_000, bytes: 1024 * 1024 },
    });
    expect(w.targetPrefetch()).toBe(10);
    for (let i = 0; i < 2_000; i++) w.add(1, 500);
    expect(w.targetPrefetch()).toBe(10);
    // A burst of maximal messages, a whole window of them, stays within the budget.
    const burst = new IntakeWindow(1_000, {
      maxUnits: 10_000,
      maxBytes: 16 * 1024 * 1024,
      worstCase: { units: 1_000, bytes: 1024 * 1024 },
    });
    for (let i = 0; i < burst.targetPrefetch(); i++) burst.add(1_000, 1024 * 1024);
    expect(burst.held.units).toBeLessThanOrEqual(burst.maxUnits);
    expect(burst.held.bytes).toBeLessThanOrEqual(burst.maxBytes);
  });

  it('a channel that closed holds nothing; the prefetch is never below 1 nor above the configured one', () => {
    const w = new IntakeWindow(50, { maxUnits: 10 });
    w.add(500, 10);
    expect(w.targetPrefetch()).toBe(1);
    w.reset();
    expect(w.held).toEqual({ units: 0, bytes: 0, messages: 0 });
    expect(new IntakeWindow(50, {}).targetPrefetch()).toBe(50);
    expect(() => new IntakeWindow(50, { maxUnits: 0 })).toThrow(RangeError);
  });
});
