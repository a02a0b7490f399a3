import type { HostMetricsResponse } from '@fleetwatch/contracts';

/** Columns for a chart: epoch seconds and one value per time (null where a series has no point). */
export interface Aligned {
  times: number[];
  values: (number | null)[];
}

/** The average of one series, summed over its devices (disks, interfaces) at each time. */
export function seriesSum(r: HostMetricsResponse | undefined, name: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const s of r?.series ?? []) {
    if (s.series !== name) continue;
    for (const p of s.points) {
      const t = Math.floor(Date.parse(p.at) / 1000);
      out.set(t, (out.get(t) ?? 0) + p.avg);
    }
  }
  return out;
}

function align(m: Map<number, number | null>): Aligned {
  const times = [...m.keys()].sort((a, b) => a - b);
  return { times, values: times.map((t) => m.get(t) ?? null) };
}

/** One series as it is (`cpu_pct`, `load1`), summed over devices. */
export function plain(r: HostMetricsResponse | undefined, name: string): Aligned {
  return align(seriesSum(r, name));
}

/** used / total in percent at each time both are known (memory, disk over all mounts). */
export function percentOf(r: HostMetricsResponse | undefined, used: string, total: string): Aligned {
  const u = seriesSum(r, used);
  const t = seriesSum(r, total);
  const out = new Map<number, number | null>();
  for (const [at, v] of u) {
    const whole = t.get(at);
    out.set(at, whole ? Math.round((v / whole) * 1000) / 10 : null);
  }
  return align(out);
}

/** Distinct devices of a series (mounts, interfaces, GPU indexes), for per-device charts. */
export function devicesOf(r: HostMetricsResponse | undefined, name: string): string[] {
  const out = new Set<string>();
  for (const s of r?.series ?? []) if (s.series === name && s.device !== null) out.add(s.device);
  return [...out].sort();
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${n < 0 ? '-' : ''}${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function pct(used: number | null | undefined, total: number | null | undefined): string {
  if (used === null || used === undefined || !total) return '—';
  return `${((used / total) * 100).toFixed(1)} %`;
}

/**
 * What a host's charts show while the answer for (id, minutes) loads: the previous answer only when it is this
 * host's (the page stays mounted when only the id changes), cut to the new window when it is shorter; never another
 * host's series under this host's name.
 */
export function metricsPlaceholder(
  previous: HostMetricsResponse | undefined,
  id: string,
  minutes: number,
  now = Date.now(),
): HostMetricsResponse | undefined {
  if (!previous || previous.hostId !== id) return undefined;
  if (minutes >= previous.minutes) return previous;
  const from = now - minutes * 60_000;
  return {
    ...previous,
    minutes,
    series: previous.series.map((s) => ({ ...s, points: s.points.filter((p) => Date.parse(p.at) >= from) })),
  };
}
