import {
  hostMetricsPayloadSchema,
  isoDateTimeSchema,
  type HostConflictView,
  type HostMetricsPayload,
  type HostSampleSummary,
} from '@fleetwatch/contracts';
import { z } from 'zod';

/**
 * A stored sample as the gateway serves it: the contract's shape, where raw rows stored before
 * the whole payload was kept lack the host, location and time (live state restored from them).
 */
const storedSampleSchema = hostMetricsPayloadSchema.partial({ hostId: true, location: true, sampledAt: true });

/** Sum of the known values (null when none is known). Saturates at the largest float instead of Infinity. */
function sumKnown(values: ReadonlyArray<number | null | undefined>): number | null {
  let sum: number | null = null;
  for (const v of values) if (typeof v === 'number') sum = (sum ?? 0) + v;
  return sum === null ? null : Math.min(sum, Number.MAX_VALUE);
}

function maxKnown(values: ReadonlyArray<number | null | undefined>): number | null {
  let max: number | null = null;
  for (const v of values) if (typeof v === 'number' && (max === null || v > max)) max = v;
  return max;
}

/** The figures of a sample a hosts list shows (totals over disks and interfaces, the hottest GPU, GPUs lost). Pure. */
export function summarizeSample(s: HostMetricsPayload): HostSampleSummary {
  return {
    sampledAt: s.sampledAt,
    cpuPct: s.cpu.usagePct,
    cores: s.cpu.cores,
    load1: s.cpu.load1,
    memoryUsedBytes: s.memory.usedBytes,
    memoryTotalBytes: s.memory.totalBytes,
    swapUsedBytes: s.memory.swapUsedBytes ?? null,
    swapTotalBytes: s.memory.swapTotalBytes ?? null,
    diskUsedBytes: sumKnown(s.disks.map((d) => d.usedBytes)) ?? 0,
    diskTotalBytes: sumKnown(s.disks.map((d) => d.totalBytes)) ?? 0,
    networkRxBytesPerSec: sumKnown(s.network.map((n) => n.rxBytesPerSec)),
    networkTxBytesPerSec: sumKnown(s.network.map((n) => n.txBytesPerSec)),
    gpuCount: s.gpus.length,
    gpuMaxUtilizationPct: maxKnown(s.gpus.map((g) => g.utilizationPct)),
    gpuMaxTemperatureC: maxKnown(s.gpus.map((g) => g.temperatureC)),
    gpusMissing: s.missingGpus?.length ?? null,
  };
}

/**
 * A stored sample's JSON, or null when it is not one (a corrupt or foreign value is never served):
 * checked against the contract, so one bad value cannot make the hosts list or /metrics throw. A `conflict` an
 * aggregator of before wrote into the sample (it keeps its marks in a key of their own now: parseConflictMark) is left
 * out, never served: it stays on a sample of a host gone STALE — dropped here for one release after that change.
 */
export function parseSample(json: string | null | undefined): HostMetricsPayload | null {
  if (!json) return null;
  try {
    const v = JSON.parse(json) as HostMetricsPayload & { conflict?: unknown };
    if (!storedSampleSchema.safeParse(v).success) return null;
    const { conflict: _dropped, ...sample } = v;
    return sample;
  } catch {
    return null;
  }
}

/** The aggregator's mark of a host id two collectors report (live state `host:{hostId}:conflict`). */
const conflictSchema = z.object({ reporters: z.number().int().min(2), since: isoDateTimeSchema });

/** A host's conflict mark as the hosts API serves it (its owner left out), or null: none, or not a mark. */
export function parseConflictMark(json: string | null | undefined): HostConflictView | null {
  if (!json) return null;
  try {
    const mark = conflictSchema.safeParse(JSON.parse(json));
    return mark.success ? { reporters: mark.data.reporters, since: mark.data.since } : null;
  } catch {
    return null;
  }
}
