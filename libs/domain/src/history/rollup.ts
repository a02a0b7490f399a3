/** 1-minute rollup of results for one target at one location (SPEC §4). */
export interface Rollup {
  count: number;
  okCount: number;
  minLatencyMs: number | null;
  avgLatencyMs: number | null;
  maxLatencyMs: number | null;
  p95LatencyMs: number | null;
}

export const MINUTE_MS = 60_000;

export function minuteBucket(epochMs: number): number {
  return Math.floor(epochMs / MINUTE_MS) * MINUTE_MS;
}

/** Nearest-rank percentile of an unsorted sample (p in 0..100). */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

export function rollupOf(samples: readonly { ok: boolean; latencyMs: number | null }[]): Rollup {
  const latencies = samples.map((s) => s.latencyMs).filter((v): v is number => v !== null);
  const sum = latencies.reduce((a, b) => a + b, 0);
  return {
    count: samples.length,
    okCount: samples.filter((s) => s.ok).length,
    minLatencyMs: latencies.length ? Math.min(...latencies) : null,
    avgLatencyMs: latencies.length ? sum / latencies.length : null,
    maxLatencyMs: latencies.length ? Math.max(...latencies) : null,
    p95LatencyMs: percentile(latencies, 95),
  };
}
