import type { HostMetricsResponse } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import { bytes, devicesOf, metricsPlaceholder, pct, percentOf, plain } from './host-series';

const at = (s: number) => new Date(s * 1000).toISOString();
const pt = (s: number, avg: number) => ({ at: at(s), avg, max: avg, count: 1 });
const r: HostMetricsResponse = {
  hostId: 'h',
  minutes: 60,
  resolution: 'raw',
  stepSeconds: null,
  series: [
    { series: 'cpu_pct', device: null, points: [pt(20, 50), pt(10, 25)] },
    { series: 'disk_used_bytes', device: '/', points: [pt(10, 10), pt(20, 20)] },
    { series: 'disk_used_bytes', device: '/data', points: [pt(10, 30), pt(20, 30)] },
    { series: 'disk_total_bytes', device: '/', points: [pt(10, 100), pt(20, 100)] },
    { series: 'disk_total_bytes', device: '/data', points: [pt(10, 100)] },
  ],
};

describe('host series for charts', () => {
  it('orders a series by time', () => {
    expect(plain(r, 'cpu_pct')).toEqual({ times: [10, 20], values: [25, 50] });
  });
  it('sums devices and divides by the summed total, in percent', () => {
    // At 20 only one mount reported a total: 50 / 100, as the sums stand.
    expect(percentOf(r, 'disk_used_bytes', 'disk_total_bytes')).toEqual({ times: [10, 20], values: [20, 50] });
  });
  it('a missing total gives no value, not a division by zero', () => {
    expect(percentOf(r, 'cpu_pct', 'mem_total_bytes').values).toEqual([null, null]);
  });
  it('lists devices', () => {
    expect(devicesOf(r, 'disk_used_bytes')).toEqual(['/', '/data']);
    expect(devicesOf(undefined, 'x')).toEqual([]);
  });
  it.each([
    [null, '—'],
    [512, '512 B'],
    [1536, '1.5 KiB'],
    [5 * 1024 ** 3, '5.0 GiB'],
    [300 * 1024 ** 2, '300 MiB'],
  ])('bytes(%s) = %s', (n, s) => expect(bytes(n)).toBe(s));
  it.each([
    [1, 4, '25.0 %'],
    [1, 0, '—'],
    [null, 4, '—'],
  ])('pct(%s, %s) = %s', (u, t, s) => expect(pct(u, t)).toBe(s));
});

describe('metricsPlaceholder', () => {
  it("is never another host's series, and a shorter range keeps only what lies inside it", () => {
    expect(metricsPlaceholder(r, 'other', 60, 30_000)).toBeUndefined();
    expect(metricsPlaceholder(r, 'h', 1440, 30_000)).toBe(r);
    // 15 s before "now" = 1/4 minute: only the points at 20 s and later are inside.
    const cut = metricsPlaceholder(r, 'h', 0.25, 35_000);
    expect(cut?.series.map((s) => s.points.map((x) => x.at))).toEqual([[at(20)], [at(20)], [at(20)], [at(20)], []]);
  });
});
