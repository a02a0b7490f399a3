import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

// uPlot draws on canvas and positions through the CSSOM (never style attributes), so a
// strict CSP (style-src 'self') does not refuse it. Colours come from the theme's CSS
// variables and are read again when the theme changes.

export interface ChartSeries {
  label: string;
  /** A theme variable (`--fw-chart-1`) or a colour. */
  color?: string;
  values: (number | null)[];
}

function cssColor(value: string | undefined, fallback: string): string {
  const v = value ?? fallback;
  if (!v.startsWith('--')) return v;
  return getComputedStyle(document.documentElement).getPropertyValue(v).trim() || '#888';
}

/** Calls `build` now and whenever `data-theme` on <html> changes; `build` returns its own cleanup. */
function useThemed(build: () => () => void, deps: unknown[]): void {
  useEffect(() => {
    let dispose = build();
    const observer = new MutationObserver(() => {
      dispose();
      dispose = build();
    });
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    return () => {
      observer.disconnect();
      dispose();
    };
  }, deps);
}

/**
 * A time-series chart with axes and legend; `times` in epoch seconds; x axis in the viewer's time zone. `xRange`
 * fixes the time axis (the range the viewer chose: one result in the last hour was drawn over years, uPlot's own
 * range around a single point); `yRange` the value axis (percentages 0–100: an uptime of 100 % read up to 200 %).
 */
export function TimeChart({
  times,
  series,
  height = 200,
  label,
  yFormat,
  xRange,
  yRange,
}: {
  times: number[];
  series: ChartSeries[];
  height?: number;
  /** Accessible name of the chart. */
  label: string;
  yFormat?: (v: number) => string;
  /** [from, to] in epoch seconds. */
  xRange?: readonly [number, number];
  yRange?: readonly [number, number];
}) {
  const [x0, x1] = xRange ?? [undefined, undefined];
  const [y0, y1] = yRange ?? [undefined, undefined];
  const el = useRef<HTMLDivElement>(null);
  useThemed(() => {
    const node = el.current;
    if (!node) return () => undefined;
    const text = cssColor('--fw-text-muted', '#666');
    const grid = cssColor('--fw-border', '#ddd');
    const axis: uPlot.Axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const opts: uPlot.Options = {
      width: Math.max(200, node.clientWidth),
      height,
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: cssColor(s.color, `--fw-chart-${(i % 3) + 1}`),
          width: 1.5,
          spanGaps: false,
          value: yFormat ? (_u: uPlot, v: number | null) => (v === null ? '—' : yFormat(v)) : undefined,
        })),
      ],
      axes: [axis, { ...axis, size: 60, values: yFormat ? (_u, vals) => vals.map((v) => yFormat(v)) : undefined }],
      scales: {
        x: x0 !== undefined && x1 !== undefined ? { time: true, range: [x0, x1] } : { time: true },
        ...(y0 !== undefined && y1 !== undefined ? { y: { range: [y0, y1] } } : {}),
      },
    };
    const plot = new uPlot(opts, [times, ...series.map((s) => s.values)] as uPlot.AlignedData, node);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(200, node.clientWidth), height }));
    resize.observe(node);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [times, series, height, yFormat, x0, x1, y0, y1]);
  return <div ref={el} className="fw-chart" role="img" aria-label={label} />;
}

/** A tiny trend line without axes (a list row's last hour). */
export function Sparkline({
  times,
  values,
  color = '--fw-chart-1',
  label,
  max,
}: {
  times: number[];
  values: (number | null)[];
  color?: string;
  label: string;
  /** Fixed top of the scale (100 for percentages); else the data's own range. */
  max?: number;
}) {
  const el = useRef<HTMLSpanElement>(null);
  useThemed(() => {
    const node = el.current;
    if (!node || times.length < 2) return () => undefined;
    const opts: uPlot.Options = {
      width: 120,
      height: 32,
      pxAlign: false,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      axes: [{ show: false }, { show: false }],
      scales: { x: { time: false }, y: max === undefined ? {} : { range: [0, max] } },
      series: [{}, { stroke: cssColor(color, '#888'), width: 1.25, points: { show: false } }],
    };
    const plot = new uPlot(opts, [times, values] as uPlot.AlignedData, node);
    return () => plot.destroy();
  }, [times, values, color, max]);
  return (
    <span ref={el} className="fw-sparkline" role="img" aria-label={label}>
      {times.length < 2 && <span className="fw-muted">—</span>}
    </span>
  );
}
