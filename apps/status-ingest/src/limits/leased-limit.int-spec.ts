import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { createRedis, RateBuckets, type BucketSpec } from '@fleetwatch/live-state';
import { testEnv } from '@fleetwatch/testing';
import { SharedKeyedLimiter } from './ingest-rate-limits';
import { SharedLimit, SharedRateLimiter } from './shared-rate-limiter';
import { SharedStateMetrics } from './shared-state.metrics';

// The per-key update limit (real Redis, two replicas' limiters on one bucket): under load a replica takes
// tokens ahead instead of one Redis round trip per request, and the limit stays one budget, never looser.

const prefix = `${testEnv().redisPrefix}leased-limit:`;
let redis: Redis[];

beforeAll(async () => {
  redis = [0, 1].map(() => createRedis({ url: testEnv().redisUrl, keyPrefix: prefix }));
  // Connected before the first take (else the limiter falls back to its own buckets).
  await Promise.all(redis.map((r) => r.ping()));
});
afterAll(async () => {
  const keys = await redis[0].keys(`${prefix}*`);
  if (keys.length) await redis[0].del(...keys.map((k) => k.slice(prefix.length)));
  for (const r of redis) r.disconnect();
});

/** Real RateBuckets, counting the calls that reach Redis. */
class CountedBuckets extends RateBuckets {
  calls = 0;
  override async takeUpTo(bucket: BucketSpec, min: number, max: number) {
    this.calls++;
    return super.takeUpTo(bucket, min, max);
  }
  override async take(buckets: readonly BucketSpec[]) {
    this.calls++;
    return super.take(buckets);
  }
}

function replica(r: Redis, perSecond: number, burst: number) {
  const buckets = new CountedBuckets(r);
  const shared = new SharedRateLimiter(
    buckets,
    () => r.status === 'ready',
    new SharedStateMetrics(),
    pino({ level: 'silent' }),
  );
  // The same family name on both replicas: one bucket per key over both.
  return { buckets, limiter: new SharedKeyedLimiter(new SharedLimit('ingest:key', perSecond, burst), shared) };
}

it('under load, requests are served from tokens taken ahead: far fewer Redis calls than requests', async () => {
  const a = replica(redis[0], 100_000, 1_000_000);
  const key = randomUUID();
  let allowed = 0;
  for (let round = 0; round < 20; round++) {
    const answers = await Promise.all(Array.from({ length: 25 }, () => a.limiter.take(key, 1)));
    allowed += answers.filter((d) => d.allowed).length;
  }
  expect(allowed).toBe(500);
  // One call per request before; now about one per round (the concurrent requests of a round share it).
  expect(a.buckets.calls).toBeGreaterThan(0);
  expect(a.buckets.calls).toBeLessThan(100);
});

it('two replicas under load never spend more than the bucket holds, and spend nearly all of it', async () => {
  const key = randomUUID();
  const [a, b] = redis.map((r) => replica(r, 0.001, 200));
  let allowed = 0;
  for (let round = 0; round < 10; round++) {
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).limiter.take(key, 1 + (i % 3))),
    );
    allowed += answers.reduce((sum, d, i) => sum + (d.allowed ? 1 + (i % 3) : 0), 0);
  }
  expect(allowed).toBeLessThanOrEqual(200);
  // What a lease drops is at most a tenth of the burst per replica.
  expect(allowed).toBeGreaterThanOrEqual(200 - 2 * 20 - 2);
});

it('what one replica spent is refused at once on the other', async () => {
  const key = randomUUID();
  const [a, b] = redis.map((r) => replica(r, 1, 20));
  expect((await a.limiter.take(key, 19)).allowed).toBe(true);
  expect((await a.limiter.take(key, 1)).allowed).toBe(true);
  const refused = await b.limiter.take(key, 1);
  expect(refused).toMatchObject({ allowed: false });
  expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  expect((await a.limiter.take(key, 1)).allowed).toBe(false);
  // A cost beyond the burst can never pass.
  expect((await b.limiter.take(randomUUID(), 21)).retryAfterSeconds).toBe(20);
});

it('tokens taken ahead are dropped after the lease (100 ms), not given back or kept', async () => {
  const key = randomUUID();
  const [a, b] = redis.map((r) => replica(r, 0.001, 100));
  // Load on a: it takes ahead (up to 10 tokens).
  for (let round = 0; round < 3; round++) await Promise.all(Array.from({ length: 5 }, () => a.limiter.take(key, 1)));
  const calls = a.buckets.calls;
  await new Promise((r) => setTimeout(r, 150));
  // b gets what is left in the shared bucket, a's leftovers included neither way.
  const left = await Promise.all(Array.from({ length: 100 }, () => b.limiter.take(key, 1)));
  const total = 15 + left.filter((d) => d.allowed).length;
  expect(total).toBeLessThanOrEqual(100);
  expect(total).toBeLessThan(100); // a's lease took more than a spent
  // a's lease ran out: its next request asks Redis again (refused: b spent the rest).
  expect((await a.limiter.take(key, 1)).allowed).toBe(false);
  expect(a.buckets.calls).toBe(calls + 1);
});
