import type { Redis } from 'ioredis';
import { testEnv } from '@fleetwatch/testing';
import { RateBuckets, type BucketSpec } from './rate-buckets';
import { createRedis } from './redis';

// Token buckets shared by replicas (real Redis): two processes' worth of clients
// never spend more than the bucket holds, and a refusal by one bucket takes nothing
// from the others.

const prefix = `${testEnv().redisPrefix}rate-buckets:`;
let replicas: Redis[];

beforeAll(() => {
  replicas = [0, 1].map(() => createRedis({ url: testEnv().redisUrl, keyPrefix: prefix }));
});
afterAll(async () => {
  const keys = await replicas[0].keys(`${prefix}*`);
  if (keys.length) await replicas[0].del(...keys.map((k) => k.slice(prefix.length)));
  for (const r of replicas) r.disconnect();
});

const bucket = (name: string, burst: number, cost = 1): BucketSpec => ({
  name,
  cost,
  burst,
  ratePerSecond: burst / 60,
});

it('two replicas racing for one bucket of 10 get exactly 10 between them', async () => {
  const [a, b] = replicas.map((r) => new RateBuckets(r));
  const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).take([bucket('race', 10)])));
  expect(answers.filter((x) => x.allowed)).toHaveLength(10);
  const refused = answers.find((x) => !x.allowed);
  expect(refused).toMatchObject({ allowed: false, refusedBy: 0 });
  expect(refused && !refused.allowed && refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
});

it('all or nothing: when the second bucket refuses, the first keeps its tokens', async () => {
  const buckets = new RateBuckets(replicas[0]);
  expect(await buckets.take([bucket('full', 3), bucket('tiny', 1)])).toEqual({ allowed: true });
  // "tiny" is empty now; "full" has 2 left and must keep them.
  for (let i = 0; i < 5; i++)
    expect(await buckets.take([bucket('full', 3), bucket('tiny', 1)])).toMatchObject({ allowed: false, refusedBy: 1 });
  expect(await buckets.take([bucket('full', 3)])).toEqual({ allowed: true });
  expect(await buckets.take([bucket('full', 3)])).toEqual({ allowed: true });
  expect(await buckets.take([bucket('full', 3)])).toMatchObject({ allowed: false, refusedBy: 0 });
});

it('refills over time at its rate, and an idle bucket expires from Redis', async () => {
  const buckets = new RateBuckets(replicas[0]);
  // A token every 250 ms. The three takes are sent together (Redis runs them back to back): taken one after the other
  // by a client on a busy box, more than a token's time could pass between them (a CI run saw the third allowed).
  const fast: BucketSpec = { name: 'fast', cost: 1, burst: 2, ratePerSecond: 4 };
  const first = await Promise.all([buckets.take([fast]), buckets.take([fast]), buckets.take([fast])]);
  expect(first.map((d) => d.allowed)).toEqual([true, true, false]);
  await new Promise((r) => setTimeout(r, 400));
  expect((await buckets.take([fast])).allowed).toBe(true);
  const ttl = await replicas[0].pttl('rate:fast');
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(2_000);
});

it('takeUpTo grants as many whole tokens as the bucket holds within [min, max], or none below min', async () => {
  const [a, b] = replicas.map((r) => new RateBuckets(r));
  const lease = bucket('lease', 10);
  expect(await a.takeUpTo(lease, 2, 6)).toEqual({ allowed: true, granted: 6 });
  // 4 left (and a trickle of refill): at least 5 is refused, and takes nothing.
  const refused = await b.takeUpTo(lease, 5, 5);
  expect(refused).toMatchObject({ allowed: false });
  expect(refused.allowed === false && refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  expect(await b.takeUpTo(lease, 1, 100)).toEqual({ allowed: true, granted: 4 });
  expect((await a.take([bucket('lease', 10)])).allowed).toBe(false);
  // The same bucket as take's: what one takes, the other cannot.
  const shared = bucket('lease-shared', 5);
  expect(await a.take([{ ...shared, cost: 3 }])).toEqual({ allowed: true });
  expect(await b.takeUpTo(shared, 1, 10)).toEqual({ allowed: true, granted: 2 });
});
