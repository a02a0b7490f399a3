import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { RowTrend, trendModel } from './row-trend';

const empty = () => new Array<number | null>(60).fill(null);

describe('trendModel', () => {
  it('draws latency when there is any, broken where a minute had no sample', () => {
    const lat = empty();
    const av = empty();
    for (const i of [0, 1, 2, 10, 11]) {
      lat[i] = 10 * (i + 1);
      av[i] = 1;
    }
    const m = trendModel(av, lat, 118, 24);
    expect(m.measure).toBe('latency');
    expect(m.lines).toHaveLength(2);
    expect(m.lines[0].split(' ')).toHaveLength(3);
    // x: 2 units per minute (118 / 59); the hour's highest latency (120 ms) sits at the top pad, 0 at the bottom.
    expect(m.lines[1]).toBe('20,3.3 22,1.5'); // 110 ms: 22.5 - 110/120 × 21
    expect(m.fails).toEqual([]);
    expect(m.label).toBe('Last hour: latency 10–120 ms, no failures in 5 min');
  });

  it('marks failed minutes with bars as tall as the failed share', () => {
    const av = empty();
    av[59] = 0; // the current minute: all failed
    av[30] = 0.75;
    av[31] = 1;
    const m = trendModel(av, empty(), 118, 24);
    expect(m.measure).toBe('availability');
    expect(m.fails).toHaveLength(2);
    const last = m.fails.find((f) => f.x > 100);
    expect(last?.h).toBe(24);
    expect((last?.x ?? Infinity) + (last?.w ?? 0)).toBeLessThanOrEqual(118);
    expect(m.fails.find((f) => f.x < 100)?.h).toBe(6);
    expect(m.label).toBe('Last hour: availability, failures in 2 of 3 min');
  });

  it('shows a lone minute as a short tick, and says when there is no data', () => {
    const av = empty();
    av[20] = 1;
    expect(trendModel(av, empty(), 118, 24).lines).toEqual(['39,1.5 41,1.5']);
    const none = trendModel(empty(), empty());
    expect(none).toEqual({ lines: [], fails: [], measure: 'none', label: 'Last hour: no data' });
  });

  it('never draws outside its box, whatever the values', () => {
    const lat = [0, -5, 1e9, Number.NaN, Infinity, 3, null];
    const av = [1, 0, -1, 2, 0.5, Number.NaN, null];
    const m = trendModel(av, lat, 60, 20);
    for (const line of m.lines)
      for (const p of line.split(' ')) {
        const [x, y] = p.split(',').map(Number);
        expect(x >= 0 && x <= 60 && y >= 0 && y <= 20).toBe(true);
      }
    for (const f of m.fails) expect(f.x >= 0 && f.y >= 0 && f.x + f.w <= 60 && f.y + f.h <= 20).toBe(true);
  });
});

describe('RowTrend', () => {
  it('renders SVG with classes only (no style attribute) and its label', () => {
    const av = empty();
    av[1] = 0.5;
    const html = renderToStaticMarkup(<RowTrend availability={av} latencyMs={empty()} />);
    expect(html).not.toContain('style=');
    expect(html).toContain('role="img"');
    expect(html).toContain('aria-label="Last hour: availability, failures in 1 of 1 min"');
    expect(html).toContain('class="fw-trend__fail"');
    expect(html).not.toContain('fw-trend__none');
  });

  it('draws a dashed baseline when the hour had no sample', () => {
    const html = renderToStaticMarkup(<RowTrend availability={empty()} latencyMs={empty()} />);
    expect(html).toContain('class="fw-trend__none"');
    expect(html).toContain('aria-label="Last hour: no data"');
  });
});
