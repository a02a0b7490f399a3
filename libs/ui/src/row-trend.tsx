import { memo } from 'react';

/** What a row's trend draws, in SVG user units (the viewBox is width × height). */
export interface TrendModel {
  /** Polyline point lists; a minute without samples breaks the line. */
  lines: string[];
  /** Minutes with failed samples: a bar from the bottom, as tall as the failed share. */
  fails: { x: number; y: number; w: number; h: number }[];
  /** 'latency' when any minute had a latency (checks), else 'availability' (pushed instances, heartbeats). */
  measure: 'latency' | 'availability' | 'none';
  label: string;
}

const round = (n: number) => Math.round(n * 10) / 10;

/**
 * The last hour of one target as a line and failure bars (pure: unit-tested). Latency when the
 * target has any (its scale from 0 to the hour's highest), else the share of good samples (0–100 %).
 */
export function trendModel(
  availability: readonly (number | null)[],
  latencyMs: readonly (number | null)[],
  width = 120,
  height = 24,
): TrendModel {
  const n = Math.max(availability.length, latencyMs.length);
  const step = n > 1 ? width / (n - 1) : width;
  const latencies = latencyMs.filter((v): v is number => v !== null && Number.isFinite(v));
  const measure = latencies.length > 0 ? 'latency' : availability.some((v) => v !== null) ? 'availability' : 'none';
  const top = measure === 'latency' ? Math.max(1, ...latencies) : 1;
  const series = measure === 'latency' ? latencyMs : availability;
  const pad = 1.5;
  const y = (v: number) => round(height - pad - (Math.min(Math.max(v, 0), top) / top) * (height - 2 * pad));

  const lines: string[] = [];
  let run: string[] = [];
  const flush = () => {
    // A lone minute gets a short tick so that it shows.
    if (run.length === 1) {
      const [x, yy] = run[0].split(',').map(Number);
      run = [`${round(Math.max(0, x - 1))},${yy}`, `${round(Math.min(width, x + 1))},${yy}`];
    }
    if (run.length > 0) lines.push(run.join(' '));
    run = [];
  };
  for (let i = 0; i < n; i++) {
    const v = series[i];
    if (v === null || v === undefined || !Number.isFinite(v)) flush();
    else run.push(`${round(i * step)},${y(v)}`);
  }
  flush();

  const fails: TrendModel['fails'] = [];
  let failing = 0;
  let sampled = 0;
  const barW = Math.max(1, round(step * 0.8));
  for (let i = 0; i < availability.length; i++) {
    const a = availability[i];
    if (a === null || !Number.isFinite(a)) continue;
    sampled += 1;
    if (a >= 1) continue;
    failing += 1;
    const h = Math.max(2, round((1 - Math.max(0, a)) * height));
    fails.push({
      x: round(Math.min(width - barW, Math.max(0, i * step - barW / 2))),
      y: round(height - h),
      w: barW,
      h,
    });
  }

  let label = 'Last hour: no data';
  if (measure === 'latency') {
    const lo = Math.round(Math.min(...latencies));
    const hi = Math.round(Math.max(...latencies));
    label = `Last hour: latency ${lo === hi ? `${lo}` : `${lo}–${hi}`} ms`;
  } else if (measure === 'availability') label = 'Last hour: availability';
  if (sampled > 0)
    label += failing === 0 ? `, no failures in ${sampled} min` : `, failures in ${failing} of ${sampled} min`;
  return { lines, fails, measure, label };
}

/**
 * A list row's last hour, drawn as plain SVG (cheap enough for every visible row of a long list:
 * no canvas, no chart instance; presentation comes from classes, which a strict CSP allows).
 */
export const RowTrend = memo(function RowTrend({
  availability,
  latencyMs,
  width = 120,
  height = 24,
}: {
  availability: readonly (number | null)[];
  latencyMs: readonly (number | null)[];
  width?: number;
  height?: number;
}) {
  const m = trendModel(availability, latencyMs, width, height);
  return (
    <svg
      className="fw-trend"
      data-measure={m.measure}
      data-fails={m.fails.length}
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={m.label}
    >
      <title>{m.label}</title>
      {m.measure === 'none' && <line className="fw-trend__none" x1={0} y1={height / 2} x2={width} y2={height / 2} />}
      {m.fails.map((f, i) => (
        <rect key={i} className="fw-trend__fail" x={f.x} y={f.y} width={f.w} height={f.h} />
      ))}
      {m.lines.map((points, i) => (
        <polyline key={i} className="fw-trend__line" points={points} />
      ))}
    </svg>
  );
});
