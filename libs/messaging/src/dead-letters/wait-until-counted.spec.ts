import { waitUntilCounted } from './wait-until-counted';

describe('waitUntilCounted (a look giving its messages back)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** A ready count that rises by one a second from 0, up to `max`. */
  function climbing(max: number): () => Promise<number> {
    const start = Date.now();
    return () => Promise.resolve(Math.min(max, Math.floor((Date.now() - start) / 1_000)));
  }

  /** Runs the wait on fake time; resolves with its result and the (fake) milliseconds it took. */
  async function timed(wait: Promise<number>): Promise<{ count: number; ms: number }> {
    const start = Date.now();
    let done: number | undefined;
    void wait.then((count) => (done = count));
    while (done === undefined && Date.now() - start < 60_000) await jest.advanceTimersByTimeAsync(100);
    if (done === undefined) throw new Error('still waiting after 60 s');
    return { count: done, ms: Date.now() - start };
  }

  it('waits as long as the count still climbs, past the quiet time in all, until it counts them all', async () => {
    // A large DLQ: 8 messages given back, counted ready again one a second.
    const { count, ms } = await timed(waitUntilCounted(climbing(8), 0, 8, 5_000, 60_000));
    expect(count).toBe(8);
    expect(ms).toBeGreaterThanOrEqual(8_000);
    expect(ms).toBeLessThan(8_500);
  });

  it('stops once the count has not risen for the quiet time (a concurrent consumer keeps some)', async () => {
    const { count, ms } = await timed(waitUntilCounted(climbing(3), 0, 8, 5_000, 60_000));
    expect(count).toBe(3);
    expect(ms).toBeGreaterThanOrEqual(8_000);
    expect(ms).toBeLessThan(8_500);
  });

  it('returns at once when they are counted already', async () => {
    const ready = jest.fn(() => Promise.resolve(5));
    const { count, ms } = await timed(waitUntilCounted(ready, 5, 5, 5_000, 60_000));
    expect(count).toBe(5);
    expect(ms).toBeLessThanOrEqual(100);
    expect(ready).not.toHaveBeenCalled();
  });
  it('a count flipping up and down (a replay draining while dead letters come) stops once it sets no new high', async () => {
    let n = 0;
    const flipping = () => Promise.resolve(n++ % 2);
    const { count, ms } = await timed(waitUntilCounted(flipping, 0, 8, 5_000, 60_000));
    expect(count).toBeLessThan(8);
    expect(ms).toBeGreaterThanOrEqual(5_000);
    expect(ms).toBeLessThan(5_500);
  });

  it('stops after maxMs in all, however slowly the count still climbs', async () => {
    // One more every 4 s (under the quiet time) towards 100: 400 s without a bound.
    const start = Date.now();
    const slow = () => Promise.resolve(Math.floor((Date.now() - start) / 4_000));
    const { count, ms } = await timed(waitUntilCounted(slow, 0, 100, 5_000, 30_000));
    expect(count).toBeLessThan(100);
    expect(ms).toBeGreaterThanOrEqual(30_000);
    expect(ms).toBeLessThan(30_500);
  });
});
