import { LoginRateLimiter } from './login-rate-limiter';

describe('LoginRateLimiter', () => {
  it('allows perMinute attempts per address and username, then names the wait', () => {
    let now = 1_000_000;
    const limiter = new LoginRateLimiter(3, 1000, () => now);
    expect([1, 2, 3].map(() => limiter.take('10.0.0.1', 'admin'))).toEqual([0, 0, 0]);
    expect(limiter.take('10.0.0.1', 'admin')).toBe(20);
    expect(limiter.take('10.0.0.1', 'ADMIN')).toBeGreaterThan(0);
    // Another address or another username has its own budget.
    expect(limiter.take('10.0.0.2', 'admin')).toBe(0);
    expect(limiter.take('10.0.0.1', 'alice')).toBe(0);
    now += 20_000;
    expect(limiter.take('10.0.0.1', 'admin')).toBe(0);
    expect(limiter.take('10.0.0.1', 'admin')).toBeGreaterThan(0);
  });

  it('stays bounded', () => {
    let now = 0;
    const limiter = new LoginRateLimiter(5, 100, () => now);
    for (let i = 0; i < 1000; i++) {
      now += 1000;
      limiter.take(`10.0.${i >> 8}.${i & 255}`, 'x');
    }
    expect(limiter.size).toBeLessThanOrEqual(101);
  });
});
