import { TargetIds, TargetKind, TargetStatus, type HostMetricsPayload } from '@fleetwatch/contracts';
import { hostStaleReason, type Observation } from '@fleetwatch/domain';
import type { HostMetricRow } from '@fleetwatch/persistence';

/** A host turns STALE after two missed sampling intervals plus this slack (sampling time, bus latency). */
export const HOST_STALE_SLACK_MS = 5_000;

export interface MappedHostSample {
  targetId: string;
  row: HostMetricRow;
  observation: Observation;
  metrics: { hostId: string; json: string };
  /** Who sent it (host-conflicts.service): undefined from a collector of before, which says nothing. */
  reporter: { id: string; intervalMs: number } | undefined;
}

/**
 * A sample's reporter as one key: the machine, as the boot it runs in. Two collectors on one machine (one per location,
 * each with its own spool and so its own installation id) sample the same machine: one reporter, never a conflict.
 * Clones differ in boot id even when their spool directories (installation ids) were copied with the image. Without a
 * boot id (not Linux) the installation stands for the machine.
 */
export function reporterKey(r: NonNullable<HostMetricsPayload['reporter']>): string {
  return r.bootId ? `boot:${r.bootId}` : `install:${r.installId}`;
}

/**
 * One host.metrics sample as the aggregator stores it (the raw row keeps the whole payload,
 * so the live-state rebuild restores the latest sample from it) and folds it: the host's
 * target `host:{hostId}` is UP at the collector's location while samples arrive, and STALE
 * when none arrives within two sampling intervals (plus slack), or within
 * `staleAfterSeconds` for a collector that does not say its interval. Pure.
 */
export function mapHostSample(
  p: HostMetricsPayload,
  messageId: string,
  staleAfterSeconds: number,
  /** The sample's time as the aggregator takes it (a collector clock far ahead is clamped: observation.mapper). */
  at: number = Date.parse(p.sampledAt),
  /** Where the STALE deadline counts from: the sample's time, or its arrival when later (observation.mapper `heardAt`). */
  heard: number = at,
): MappedHostSample {
  const targetId = TargetIds.host(p.hostId);
  const deadline = p.intervalSeconds
    ? {
        at: heard + 2 * p.intervalSeconds * 1000 + HOST_STALE_SLACK_MS,
        expireTo: TargetStatus.Stale,
        reason: hostStaleReason(p.intervalSeconds),
      }
    : {
        at: heard + staleAfterSeconds * 1000,
        expireTo: TargetStatus.Stale,
        reason: `no metrics for ${staleAfterSeconds}s`,
      };
  return {
    targetId,
    row: {
      messageId,
      hostId: p.hostId,
      location: p.location,
      sampledAt: at,
      cpuPct: p.cpu.usagePct,
      load1: p.cpu.load1,
      memUsedBytes: p.memory.usedBytes,
      memTotalBytes: p.memory.totalBytes,
      data: { ...p },
    },
    observation: {
      targetId,
      kind: TargetKind.Host,
      name: p.hostId,
      location: p.location,
      at,
      status: TargetStatus.Up,
      reason: 'metrics received',
      deadline,
    },
    metrics: { hostId: p.hostId, json: JSON.stringify(p) },
    reporter: p.reporter
      ? { id: reporterKey(p.reporter), intervalMs: (p.intervalSeconds ?? staleAfterSeconds) * 1000 }
      : undefined,
  };
}

/**
 * The sample to project into live state for each host of one commit: its newest, not the last delivered (two
 * collectors reporting one host id from two locations deliver in any order; the older one was written until the next
 * commit).
 */
export function newestPerHost(
  samples: Iterable<{ hostId: string; json: string; at: number }>,
): Map<string, { json: string; at: number }> {
  const out = new Map<string, { json: string; at: number }>();
  for (const s of samples) {
    const held = out.get(s.hostId);
    if (held === undefined || s.at >= held.at) out.set(s.hostId, { json: s.json, at: s.at });
  }
  return out;
}
