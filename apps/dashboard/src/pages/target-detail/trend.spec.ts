import type { HistoryPoint } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import { rangeOf, trendOf } from './trend';

const p = (bucket: string, location: string, count: number, okCount: number, avg: number | null): HistoryPoint => ({
  bucket,
  location,
  count,
  okCount,
  minLatencyMs: avg,
  avgLatencyMs: avg,
  maxLatencyMs: avg,
  p95LatencyMs: avg,
});

describe('trendOf', () => {
  it.each([
    ['nothing', [], { times: [], latency: [], uptime: [] }],
    [
      'two locations in one bucket merge',
      [p('2026-01-01T00:01:00Z', 'a', 2, 2, 10), p('2026-01-01T00:01:00Z', 'b', 2, 0, 30)],
      { times: [1767225660], latency: [20], uptime: [50] },
    ],
    [
      'buckets in time order, a bucket without latency is a gap',
      [p('2026-01-01T00:02:00Z', 'a', 1, 1, 5), p('2026-01-01T00:01:00Z', 'a', 3, 0, null)],
      { times: [1767225660, 1767225720], latency: [null, 5], uptime: [0, 100] },
    ],
  ])('%s', (_name, points, expected) => {
    expect(trendOf(points)).toEqual(expected);
  });
  it('ranges default to an hour', () => {
    expect(rangeOf(null).minutes).toBe(60);
    expect(rangeOf('7d').minutes).toBe(10_080);
    expect(rangeOf('1y').minutes).toBe(60);
  });
});
