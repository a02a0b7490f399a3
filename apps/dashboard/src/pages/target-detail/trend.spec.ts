import type { HistoryPoint, HistoryResponse } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import { chartRange, historyPlaceholder, latencyText, latestTitle, rangeOf, trendOf } from './trend';

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

describe('historyPlaceholder', () => {
  const now = Date.parse('2026-01-02T00:00:00Z');
  const ago = (min: number) => new Date(now - min * 60_000).toISOString();
  const day: HistoryResponse = {
    targetId: 'check:a',
    minutes: 1440,
    resolution: '1m',
    points: [p(ago(180), 'x', 1, 1, 5), p(ago(30), 'x', 1, 1, 6)],
    events: [
      { at: ago(180), location: null, from: 'UP', to: 'DOWN', reason: 'old' },
      { at: ago(20), location: null, from: 'DOWN', to: 'UP', reason: 'new' },
    ],
  };
  it("is never another target's answer (the page stays mounted when only the id changes)", () => {
    expect(historyPlaceholder(day, 'check:b', 1440, now)).toBeUndefined();
    expect(historyPlaceholder(undefined, 'check:a', 60, now)).toBeUndefined();
  });
  it('a shorter range keeps only what lies inside it', () => {
    const hour = historyPlaceholder(day, 'check:a', 60, now);
    expect(hour?.points.map((x) => x.bucket)).toEqual([ago(30)]);
    expect(hour?.events.map((e) => e.reason)).toEqual(['new']);
    expect(hour?.minutes).toBe(60);
  });
  it('a longer range shows the shorter one as it is until its answer', () => {
    expect(historyPlaceholder(day, 'check:a', 10_080, now)).toBe(day);
  });
});

describe('latestTitle', () => {
  it.each([
    ['no answer yet', undefined, 'Latest results'],
    ['raw points', { resolution: 'raw', stepSeconds: null }, 'Latest results'],
    ['1-minute rollups', { resolution: '1m', stepSeconds: 60 }, 'Latest minutes'],
    ['an older gateway (no stepSeconds)', { resolution: '1m' }, 'Latest minutes'],
    ['7 days: 7-minute steps', { resolution: '1m', stepSeconds: 420 }, 'Latest 7-minute steps'],
    ['90 days: 90-minute steps', { resolution: '1m', stepSeconds: 5400 }, 'Latest 90-minute steps'],
    ['whole hours', { resolution: '1m', stepSeconds: 7200 }, 'Latest 2-hour steps'],
  ] as const)('%s', (_, history, title) => {
    expect(latestTitle(history)).toBe(title);
  });
});

describe('chartRange', () => {
  it('is the chosen range up to when the data was read, in epoch seconds', () => {
    expect(chartRange(60, 7_200_000)).toEqual([3600, 7200]);
  });
  it('up to the newest point when it is later (this clock behind the server’s)', () => {
    expect(chartRange(60, 7_200_000, 0, 9000)).toEqual([5400, 9000]);
  });
  it('up to now before the first read', () => {
    expect(chartRange(1440, 0, 86_400_000)).toEqual([0, 86_400]);
  });
});

describe('latencyText', () => {
  it('rounds a rolled-up average: two decimals under 10 ms, none above', () => {
    expect(latencyText(8.453333333333333)).toBe('8.45 ms');
    expect(latencyText(3.71125)).toBe('3.71 ms');
    expect(latencyText(12)).toBe('12 ms');
    expect(latencyText(1234.56)).toBe('1,235 ms');
    expect(latencyText(0)).toBe('0 ms');
  });
});
