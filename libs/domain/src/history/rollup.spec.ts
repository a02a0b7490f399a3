import { minuteBucket, percentile, rollupOf } from './rollup';
import { occurredAtProblem, takeTokens } from '../ingest/limits';

describe('rollups', () => {
  it('buckets to the minute', () =>
    expect(minuteBucket(Date.UTC(2026, 0, 1, 0, 1, 59, 999))).toBe(Date.UTC(2026, 0, 1, 0, 1)));
  it('nearest-rank p95', () => {
    expect(percentile([], 95)).toBeNull();
    expect(percentile([5], 95)).toBe(5);
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        95,
      ),
    ).toBe(95);
    expect(
      percentile(
        Array.from({ length: 20 }, (_, i) => 20 - i),
        95,
      ),
    ).toBe(19);
  });
  it('summarises a minute', () => {
    expect(
      rollupOf([
        { ok: true, latencyMs: 10 },
        { ok: false, latencyMs: 30 },
        { ok: true, latencyMs: null },
      ]),
    ).toEqual({
      count: 3,
      okCount: 2,
      minLatencyMs: 10,
      avgLatencyMs: 20,
      maxLatencyMs: 30,
      p95LatencyMs: 30,
    });
  });
});

describe('ingest limits', () => {
  const now = Date.UTC(2026, 5, 1);
  const w = { maxFutureSkewMs: 300_000, maxAgeMs: 7 * 86_400_000 };
  it.each([
    [new Date(now).toISOString(), null],
    [new Date(now + 299_000).toISOString(), null],
    [new Date(now + 301_000).toISOString(), 'in the future'],
    [new Date(now - 8 * 86_400_000).toISOString(), 'older than the history retention'],
  ])('occurredAt %s', (t, problem) => {
    const p = occurredAtProblem(t, now, w);
    if (problem === null) expect(p).toBeNull();
    else expect(p).toContain(problem);
  });
  it('token bucket refills and refuses with Retry-After', () => {
    let d = takeTokens(undefined, 10, 0, 10, 10);
    expect(d.allowed).toBe(true);
    d = takeTokens(d.bucket, 1, 0, 10, 10);
    expect(d).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
    d = takeTokens(d.bucket, 5, 500, 10, 10);
    expect(d.allowed).toBe(true);
    expect(takeTokens(undefined, 50, 0, 10, 10)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
  });
});
