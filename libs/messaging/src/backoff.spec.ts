import { backoffDelay } from './backoff';

describe('backoffDelay', () => {
  const opts = { initialDelayMs: 100, maxDelayMs: 2_000, factor: 2, jitter: 0.5 };

  it.each([
    [1, 100],
    [2, 200],
    [3, 400],
    [5, 1_600],
    [6, 2_000],
    [50, 2_000],
  ])('attempt %i without jitter draw waits %i ms', (attempt, expected) => {
    expect(backoffDelay(attempt, opts, () => 0)).toBe(expected);
  });

  it('jitter only shortens the delay, by at most the jitter fraction', () => {
    expect(backoffDelay(3, opts, () => 0.999999)).toBe(200);
    for (let i = 0; i < 1_000; i++) {
      const d = backoffDelay(10, opts);
      expect(d).toBeGreaterThanOrEqual(1_000);
      expect(d).toBeLessThanOrEqual(2_000);
    }
  });

  it('treats nonsense attempts and factors as the first attempt', () => {
    expect(backoffDelay(0, opts, () => 0)).toBe(100);
    expect(backoffDelay(-3, { ...opts, factor: 0.5 }, () => 0)).toBe(100);
  });

  it('never overflows with huge attempts', () => {
    expect(backoffDelay(10_000, opts, () => 0)).toBe(2_000);
  });
});
