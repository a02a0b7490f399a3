import { SPARKLINE_MINUTES, type SparklinesResponse, type TargetSparkline } from '@fleetwatch/contracts';

const MINUTE_MS = 60_000;

/** A target's summed minute as the history repository reads it. */
export interface MinuteTotal {
  targetId: string;
  bucket: Date;
  count: number;
  okCount: number;
  latencyMs: number | null;
}

/** The window the sparklines cover at `now`: the last SPARKLINE_MINUTES minute buckets, the current one last. */
export function sparklineWindow(now: number): { from: number; until: number } {
  const current = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  return { from: current - (SPARKLINE_MINUTES - 1) * MINUTE_MS, until: current + MINUTE_MS };
}

/**
 * One sparkline per requested id (in the order asked, each once), minute i at index i; minutes
 * without samples, and rows outside the window or for ids not asked, leave nulls / are ignored.
 */
export function sparklinesOf(ids: readonly string[], rows: readonly MinuteTotal[], now: number): SparklinesResponse {
  const { from } = sparklineWindow(now);
  const byId = new Map<string, TargetSparkline>();
  for (const id of ids)
    if (!byId.has(id))
      byId.set(id, {
        id,
        availability: new Array<number | null>(SPARKLINE_MINUTES).fill(null),
        latencyMs: new Array<number | null>(SPARKLINE_MINUTES).fill(null),
      });
  for (const r of rows) {
    const line = byId.get(r.targetId);
    const i = (r.bucket.getTime() - from) / MINUTE_MS;
    if (!line || !Number.isInteger(i) || i < 0 || i >= SPARKLINE_MINUTES || r.count <= 0) continue;
    line.availability[i] = Math.min(1, Math.max(0, r.okCount / r.count));
    // (+ 0: a -0 from the database goes out as 0, as JSON would carry it anyway.)
    line.latencyMs[i] = r.latencyMs !== null && Number.isFinite(r.latencyMs) ? r.latencyMs + 0 : null;
  }
  return { from: new Date(from).toISOString(), minutes: SPARKLINE_MINUTES, targets: [...byId.values()] };
}
