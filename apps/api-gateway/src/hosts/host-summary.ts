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
 * checked against the contract, so one bad value cannot make the hosts list or /metrics throw.
 */
export function parseSample(json: string | null | undefined): HostMetricsPayload | null {
  return parseStoredSample(json)?.sample ?? null;
}

/** The aggregator's mark on a host's latest sample in live state (host-conflicts.service): not the collector's. */
const conflictSchema = z.object({ reporters: z.number().int().min(2), since: isoDateTimeSchema });

/**
 * A stored sample (as parseSample) and the host-id conflict the aggregator marked on it (null: none, or a sample
 * from Postgres, which never holds one).
 */
export function parseStoredSample(
  json: string | null | undefined,
): { sample: HostMetricsPayload; conflict: HostConflictView | null } | null {
  if (!json) return null;
  try {
    const v = JSON.parse(json) as HostMetricsPayload & { conflict?: unknown };
    if (!storedSampleSchema.safeParse(v).success) return null;
    const { conflict, ...sample } = v;
    const mark = conflict === undefined ? undefined : conflictSchema.safeParse(conflict);
    return { sample, conflict: mark?.success ? mark.data : null };
  } catch {
    return null;
  }
}
