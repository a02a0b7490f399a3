import { KeyedRateLimiter, takeAllLocally } from './rate-limiter';

describe('KeyedRateLimiter', () => {
  it('charges per key, refills over time and says when to retry', () => {
    const limiter = new KeyedRateLimiter(10, 20);
    const t = 1_000_000;
    expect(limiter.take('a', 20, t)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    expect(limiter.take('a', 1, t)).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect(limiter.take('b', 5, t).allowed).toBe(true);
    expect(limiter.take('a', 15, t + 500)).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect(limiter.take('a', 10, t + 1000).allowed).toBe(true);
  });
  it('forgets refilled buckets on sweep', () => {
    const limiter = new KeyedRateLimiter(10, 20);
    limiter.take('a', 20, 0);
    limiter.take('b', 1, 0);
    limiter.sweep(50);
    expect(limiter.size).toBe(2);
    limiter.sweep(150);
    expect(limiter.size).toBe(1);
    limiter.sweep(2_000);
    expect(limiter.size).toBe(0);
  });

  it('keeps at most maxKeys buckets (keys may be client addresses)', () => {
    const limiter = new KeyedRateLimiter(1, 1, 100);
    for (let i = 0; i < 1000; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`, 1, 0);
    expect(limiter.size).toBe(100);
  });

  it('drops the least recently used bucket first when full', () => {
    const limiter = new KeyedRateLimiter(1, 2, 2);
    limiter.take('a', 1, 0);
    limiter.take('b', 1, 0);
    limiter.take('a', 1, 0); // a is now empty and the most recently used
    limiter.take('c', 1, 0); // b goes
    expect(limiter.size).toBe(2);
    expect(limiter.take('a', 1, 0).allowed).toBe(false);
    expect(limiter.take('b', 1, 0).allowed).toBe(true); // a fresh bucket
  });
});

describe('takeAllLocally', () => {
  it('takes from every bucket or from none, naming the first that refuses', () => {
    const wide = new KeyedRateLimiter(1, 3);
    const narrow = new KeyedRateLimiter(1, 1);
    const both = () => [
      { limiter: wide, key: 'k', cost: 1 },
      { limiter: narrow, key: 'k', cost: 1 },
    ];
    expect(takeAllLocally(both(), 0)).toEqual({ allowed: true, retryAfterSeconds: 0, refusedBy: -1 });
    expect(takeAllLocally(both(), 0)).toEqual({ allowed: false, retryAfterSeconds: 1, refusedBy: 1 });
    expect(takeAllLocally(both(), 0)).toMatchObject({ allowed: false, refusedBy: 1 });
    // The refusals took nothing from the wide bucket: 2 tokens are left.
    expect(wide.take('k', 2, 0).allowed).toBe(true);
    expect(takeAllLocally([{ limiter: wide, key: 'k', cost: 0 }], 0).allowed).toBe(true);
  });
});
