// Rates from two readings of cumulative counters (network bytes, disk sectors, CPU
// ticks). Pure: the sampler keeps the previous reading and passes both in.
//
// A rate is null — unknown, never a made-up zero — when there is no previous reading
// (the first sample, an interface or disk that just appeared), when no time passed,
// or when the counter went backwards: a reset (driver reload, interface re-created,
// counter wrapped). A 32-bit wrap cannot be told from a reset with certainty, and a
// guessed figure from a reset would be a spike of up to 4 GiB/s on a graph: one
// interval of "unknown" is the honest answer, the next sample is a number again.

/** Per second between two readings of a monotonic counter; null when it cannot be known. */
export function counterRate(prev: number | undefined, cur: number, elapsedMs: number): number | null {
  if (prev === undefined || !Number.isFinite(prev) || !Number.isFinite(cur)) return null;
  if (!(elapsedMs > 0)) return null;
  const delta = cur - prev;
  if (delta < 0) return null;
  const r = (delta * 1000) / elapsedMs;
  return Number.isFinite(r) ? r : null;
}

/** One reading of an interface's counters (bytes and errors since it came up). */
export interface NetCounters {
  rxBytes: number;
  txBytes: number;
  rxErrors: number;
  txErrors: number;
}

export interface NetRates {
  iface: string;
  rxBytesPerSec: number | null;
  txBytesPerSec: number | null;
  rxErrorsPerSec: number | null;
  txErrorsPerSec: number | null;
}

/**
 * Rates for every interface in `cur` (an interface that went away is simply not reported; one that
 * appeared has null rates until its second reading).
 */
export function networkRates(
  prev: ReadonlyMap<string, NetCounters> | undefined,
  cur: ReadonlyMap<string, NetCounters>,
  elapsedMs: number,
): NetRates[] {
  const out: NetRates[] = [];
  for (const [iface, c] of cur) {
    const p = prev?.get(iface);
    out.push({
      iface,
      rxBytesPerSec: counterRate(p?.rxBytes, c.rxBytes, elapsedMs),
      txBytesPerSec: counterRate(p?.txBytes, c.txBytes, elapsedMs),
      rxErrorsPerSec: counterRate(p?.rxErrors, c.rxErrors, elapsedMs),
      txErrorsPerSec: counterRate(p?.txErrors, c.txErrors, elapsedMs),
    });
  }
  return out;
}

/** Bytes read and written by a block device since boot. */
export interface DiskCounters {
  readBytes: number;
  writeBytes: number;
}

export interface DiskRates {
  readBytesPerSec: number | null;
  writeBytesPerSec: number | null;
}

export function diskRates(prev: DiskCounters | undefined, cur: DiskCounters, elapsedMs: number): DiskRates {
  return {
    readBytesPerSec: counterRate(prev?.readBytes, cur.readBytes, elapsedMs),
    writeBytesPerSec: counterRate(prev?.writeBytes, cur.writeBytes, elapsedMs),
  };
}

/** CPU time of one logical core, in any unit (ms from os.cpus()), as cumulative counters. */
export interface CpuTimes {
  user: number;
  nice: number;
  sys: number;
  idle: number;
  irq: number;
}

/**
 * Busy percentage of one core between two readings, 0–100. Without a previous reading (or across a
 * reset) it is the average since boot — what the counters hold — rather than nothing, because the
 * contract needs a figure and since-boot is a true one.
 */
export function cpuBusyPct(prev: CpuTimes | undefined, cur: CpuTimes): number {
  const busy = (t: CpuTimes) => t.user + t.nice + t.sys + t.irq;
  const total = (t: CpuTimes) => busy(t) + t.idle;
  let b = busy(cur);
  let t = total(cur);
  if (prev && total(prev) <= t && busy(prev) <= b && prev.idle <= cur.idle) {
    b -= busy(prev);
    t -= total(prev);
  }
  if (!(t > 0)) return 0;
  return clampPct((b * 100) / t);
}

/** Per-core and total busy percentage; cores are matched by position (a core that appeared has no previous). */
export function cpuUsage(
  prev: readonly CpuTimes[] | undefined,
  cur: readonly CpuTimes[],
): { totalPct: number; perCorePct: number[] } {
  const sameShape = prev !== undefined && prev.length === cur.length;
  const perCorePct = cur.map((c, i) => round2(cpuBusyPct(sameShape ? prev[i] : undefined, c)));
  const sum = (xs: readonly CpuTimes[]): CpuTimes =>
    xs.reduce(
      (a, x) => ({
        user: a.user + x.user,
        nice: a.nice + x.nice,
        sys: a.sys + x.sys,
        idle: a.idle + x.idle,
        irq: a.irq + x.irq,
      }),
      { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 },
    );
  const totalPct = round2(cpuBusyPct(sameShape ? sum(prev) : undefined, sum(cur)));
  return { totalPct, perCorePct };
}

function clampPct(x: number): number {
  return Number.isFinite(x) ? Math.min(100, Math.max(0, x)) : 0;
}

/** Two decimals are plenty for a percentage and keep samples small. */
export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
