import { UnavailableError } from '@fleetwatch/domain';
import { BoundedLookups } from './bounded-lookups';

// Credential lookups when the database hangs: a request waits the timeout at most (503 + Retry-After), one query per
// key whoever asks, and no more than maxConcurrent queries under way — the next distinct key is refused at once.

const limits = { timeoutMs: 1000, maxConcurrent: 2, retryAfterSeconds: 5 };

/** A lookup that answers only when told. */
function hanging<T>() {
  let answer!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (answer = resolve));
  return { lookup: jest.fn(() => promise), answer };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

it('a request waits the timeout at most, then UnavailableError with the Retry-After; the lookup runs on', async () => {
  const bounded = new BoundedLookups(limits);
  const q = hanging<string>();
  const waiting = bounded.run('a', q.lookup);
  const refused = expect(waiting).rejects.toMatchObject({ retryAfterSeconds: 5 });
  await jest.advanceTimersByTimeAsync(999);
  expect(bounded.size).toBe(1);
  await jest.advanceTimersByTimeAsync(1);
  await refused;
  await expect(waiting).rejects.toBeInstanceOf(UnavailableError);
  // Still under way: a later request for the same key joins it (no second query) and gets its answer.
  expect(bounded.size).toBe(1);
  const later = bounded.run('a', q.lookup);
  q.answer('found');
  await expect(later).resolves.toBe('found');
  expect(q.lookup).toHaveBeenCalledTimes(1);
  expect(bounded.size).toBe(0);
});

it('concurrent requests for one key share one query', async () => {
  const bounded = new BoundedLookups(limits);
  const q = hanging<number>();
  const all = Promise.all(Array.from({ length: 50 }, () => bounded.run('k', q.lookup)));
  q.answer(7);
  expect(await all).toEqual(Array(50).fill(7));
  expect(q.lookup).toHaveBeenCalledTimes(1);
});

it('beyond maxConcurrent queries under way, a new key is refused at once (timed-out ones still count)', async () => {
  const bounded = new BoundedLookups(limits);
  const [a, b, c] = [hanging<string>(), hanging<string>(), hanging<string>()];
  const first = bounded.run('a', a.lookup).catch((e: unknown) => e);
  const second = bounded.run('b', b.lookup).catch((e: unknown) => e);
  await jest.advanceTimersByTimeAsync(1000);
  expect(await first).toBeInstanceOf(UnavailableError);
  expect(await second).toBeInstanceOf(UnavailableError);
  // Both queries still hang: a third key costs no query and no wait.
  await expect(bounded.run('c', c.lookup)).rejects.toMatchObject({
    retryAfterSeconds: 5,
    message: expect.stringMatching(/2 key lookups under way/),
  });
  expect(c.lookup).not.toHaveBeenCalled();
  // …a key already under way is still joined.
  const joined = bounded.run('a', a.lookup);
  a.answer('A');
  await expect(joined).resolves.toBe('A');
  // One settled: room for another.
  const third = bounded.run('c', c.lookup);
  c.answer('C');
  await expect(third).resolves.toBe('C');
});

it('a failing lookup fails its requests with its own error and frees its place', async () => {
  const bounded = new BoundedLookups({ ...limits, maxConcurrent: 1 });
  const boom = new UnavailableError('database away', 5);
  await expect(bounded.run('x', () => Promise.reject(boom))).rejects.toBe(boom);
  expect(bounded.size).toBe(0);
  await expect(bounded.run('y', async () => 'ok')).resolves.toBe('ok');
});

it('a database slower than the timeout: the answer of the query the 503 gave up on is kept for the retry', async () => {
  const bounded = new BoundedLookups(limits);
  const q = hanging<string>();
  const first = bounded.run('a', q.lookup).catch((e: unknown) => e);
  await jest.advanceTimersByTimeAsync(1000);
  expect(await first).toBeInstanceOf(UnavailableError);
  // The query answers after the request gave up; the client's retry (Retry-After: 5 s) gets that answer, not a new
  // query that would outlast the timeout again — for as long as the database stays that slow.
  await jest.advanceTimersByTimeAsync(2000);
  q.answer('found');
  await jest.advanceTimersByTimeAsync(2000);
  await expect(bounded.run('a', q.lookup)).resolves.toBe('found');
  expect(q.lookup).toHaveBeenCalledTimes(1);
  // Taken once: the next miss asks the database again.
  const again = hanging<string>();
  const third = bounded.run('a', again.lookup);
  again.answer('again');
  await expect(third).resolves.toBe('again');
});

it('a kept answer expires after the Retry-After, and a failed query is not kept', async () => {
  const bounded = new BoundedLookups(limits);
  const q = hanging<string>();
  const first = bounded.run('a', q.lookup).catch((e: unknown) => e);
  await jest.advanceTimersByTimeAsync(1000);
  await first;
  q.answer('stale');
  await jest.advanceTimersByTimeAsync(5001);
  const fresh = hanging<string>();
  const late = bounded.run('a', fresh.lookup);
  fresh.answer('fresh');
  await expect(late).resolves.toBe('fresh');

  let fail!: (e: Error) => void;
  const failing = jest.fn(() => new Promise<string>((_resolve, reject) => (fail = reject)));
  const second = bounded.run('b', failing).catch((e: unknown) => e);
  await jest.advanceTimersByTimeAsync(1000);
  await second;
  fail(new Error('connection terminated'));
  await jest.advanceTimersByTimeAsync(10);
  const retry = hanging<string>();
  const third = bounded.run('b', retry.lookup);
  retry.answer('ok');
  await expect(third).resolves.toBe('ok');
  expect(retry.lookup).toHaveBeenCalledTimes(1);
});
