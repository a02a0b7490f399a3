import type { HistoryPoint, HistoryResponse } from '@fleetwatch/contracts';

export interface Trend {
  /** Epoch seconds, ascending. */
  times: number[];
  /** Mean of the locations' average latency in each bucket (ms). */
  latency: (number | null)[];
  /** Successful results / all results in each bucket, in percent. */
  uptime: (number | null)[];
}

/** One line across locations: the buckets of every location merged by time. */
export function trendOf(points: readonly HistoryPoint[]): Trend {
  const buckets = new Map<number, { n: number; ok: number; latSum: number; latN: number }>();
  for (const p of points) {
    const t = Math.floor(Date.parse(p.bucket) / 1000);
    if (Number.isNaN(t)) continue;
    const b = buckets.get(t) ?? { n: 0, ok: 0, latSum: 0, latN: 0 };
    b.n += p.count;
    b.ok += p.okCount;
    if (p.avgLatencyMs !== null) {
      b.latSum += p.avgLatencyMs;
      b.latN++;
    }
    buckets.set(t, b);
  }
  const rows = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  return {
    times: rows.map(([t]) => t),
    latency: rows.map(([, b]) => (b.latN ? Math.round((b.latSum / b.latN) * 10) / 10 : null)),
    uptime: rows.map(([, b]) => (b.n ? Math.round((b.ok / b.n) * 1000) / 10 : null)),
  };
}

export const RANGES = [
  { key: '1h', label: '1 h', minutes: 60 },
  { key: '24h', label: '24 h', minutes: 1440 },
  { key: '7d', label: '7 d', minutes: 10_080 },
  { key: '90d', label: '90 d', minutes: 129_600 },
] as const;
export type RangeKey = (typeof RANGES)[number]['key'];

export function rangeOf(key: string | null): (typeof RANGES)[number] {
  return RANGES.find((r) => r.key === key) ?? RANGES[0];
}

/**
 * A chart's time axis for a range (epoch seconds): the `minutes` up to `readAt` (when the data was read; now when
 * not yet), so a range with one point shows that point within it — or up to the newest point when that is later
 * (this browser's clock behind the server's: the newest points fell off the chart).
 */
export function chartRange(minutes: number, readAt: number, now = Date.now(), newest?: number): [number, number] {
  const to = Math.max((readAt > 0 ? readAt : now) / 1000, newest ?? -Infinity);
  return [to - minutes * 60, to];
}

/**
 * What a target's history shows while the answer for (id, minutes) loads (TanStack's placeholderData gets the
 * previous key's data): the previous answer only when it is this target's — the page stays mounted when only the id
 * changes (Back two entries, from one target to another), and another target's charts and status changes under this
 * target's name are wrong — cut to the new window when it is shorter (a change of 3 h ago is not "in this range" of
 * 1 h). A longer window shows the shorter one's data until its answer: a part of it, never something outside it.
 */
export function historyPlaceholder(
  previous: HistoryResponse | undefined,
  id: string,
  minutes: number,
  now = Date.now(),
): HistoryResponse | undefined {
  if (!previous || previous.targetId !== id) return undefined;
  if (minutes >= previous.minutes) return previous;
  const from = now - minutes * 60_000;
  return {
    ...previous,
    minutes,
    points: previous.points.filter((p) => Date.parse(p.bucket) >= from),
    events: previous.events.filter((e) => Date.parse(e.at) >= from),
  };
}

/**
 * The title of the latest-points card: raw results, 1-minute rollups, or rollups merged into longer steps (a range
 * past 24 h is answered in steps of `stepSeconds`, e.g. 90 minutes for 90 days) — each row is one such step.
 */
export function latestTitle(history: Pick<HistoryResponse, 'resolution' | 'stepSeconds'> | undefined): string {
  if (!history || history.resolution === 'raw') return 'Latest results';
  const step = history.stepSeconds ?? 60;
  if (step <= 60) return 'Latest minutes';
  const minutes = Math.round(step / 60);
  return minutes % 60 === 0 ? `Latest ${minutes / 60}-hour steps` : `Latest ${minutes}-minute steps`;
}

/**
 * A latency as the tables show it: rolled-up steps average many results (8.453333333333333 ms), so a value under
 * 10 ms keeps two decimals and larger ones none.
 */
export function latencyText(ms: number): string {
  const shown = ms < 10 ? Math.round(ms * 100) / 100 : Math.round(ms);
  return `${shown.toLocaleString('en-US')} ms`;
}
