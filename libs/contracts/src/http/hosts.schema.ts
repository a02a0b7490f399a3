import { z } from 'zod';
import { storableText } from '../common/store-safe';
import type { HostMetricsPayload } from '../events/observations.schema';
import type { TargetView } from './gateway.schema';
import { hostListFilterShape } from './host-list.schema';

/** Longest window of `GET /api/v1/hosts/{id}/metrics` (the default rollup retention, 90 days). */
export const HOST_METRICS_MAX_MINUTES = 60 * 24 * 90;
/** Up to this many minutes, host series are raw samples; beyond it, 1-minute rollups merged into steps. */
export const HOST_RAW_MAX_MINUTES = 60;
/** Rollup windows are merged into steps of whole minutes so that a series has at most this many points. */
export const HOST_SERIES_MAX_POINTS = 720;

export const listHostsQuerySchema = z.strictObject({
  ...hostListFilterShape,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** The previous page's `nextCursor`. */
  cursor: storableText(512, 1).optional(),
});
export type ListHostsQuery = z.infer<typeof listHostsQuerySchema>;

export const hostMetricsQuerySchema = z.strictObject({
  minutes: z.coerce.number().int().min(1).max(HOST_METRICS_MAX_MINUTES).default(60),
});
export type HostMetricsQuery = z.infer<typeof hostMetricsQuerySchema>;

/** The figures of a host's latest sample that a list shows. */
export interface HostSampleSummary {
  sampledAt: string;
  cpuPct: number;
  cores: number;
  load1: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
  swapUsedBytes: number | null;
  swapTotalBytes: number | null;
  /** Sums over the host's disks. */
  diskUsedBytes: number;
  diskTotalBytes: number;
  /** Sums over the host's interfaces (null: no rate known yet). */
  networkRxBytesPerSec: number | null;
  networkTxBytesPerSec: number | null;
  gpuCount: number;
  /** Highest over the host's GPUs (null: none reported). */
  gpuMaxUtilizationPct: number | null;
  gpuMaxTemperatureC: number | null;
  /**
   * GPUs the collector saw on this host earlier and does not see now (fallen off the bus; the sample's `missingGpus`
   * lists them). Null: the collector does not say (it never saw a GPU here, or predates the count).
   */
  gpusMissing: number | null;
}

/**
 * Two or more collectors report this host id at once (VMs cloned from one image, one COLLECTOR_HOST_ID configured
 * twice): their samples interleave, so the host's figures, history and alerts mix machines. Found by the aggregator
 * from the samples' `reporter` (collectors that send one); clears once one reporter alone has been heard for about
 * ten sampling intervals.
 */
export interface HostConflictView {
  /** How many reporters are interleaving. */
  reporters: number;
  /** Since when (the aggregator noticed it). */
  since: string;
}

/** A host in `GET /api/v1/hosts`: its target's live status and its latest sample's summary. */
export interface HostSummaryView {
  /** The collector's host id (`/api/v1/hosts/{id}`). */
  id: string;
  /** Its target id: `host:{id}`. */
  targetId: string;
  name: string;
  status: TargetView['status'];
  /** Where the collector runs. */
  locations: string[];
  lastSeen: string | null;
  since: string | null;
  system: NonNullable<HostMetricsPayload['system']> | null;
  lastSample: HostSampleSummary | null;
  /** Null: one reporter (or a collector that does not say). Absent from a gateway of before. */
  conflict?: HostConflictView | null;
  /**
   * Only where this host's record in live state (Redis) cannot be read (corrupt): the row is its durable state
   * (Postgres) as last committed, and `reason` says why. Gone once the host is next written.
   */
  fromDurableState?: { reason: string };
}

export interface HostListResponse {
  items: HostSummaryView[];
  nextCursor: string | null;
  total: number;
}

/** `GET /api/v1/hosts/{id}`: the host's target and its latest full sample. */
export interface HostDetailView {
  id: string;
  target: TargetView;
  system: NonNullable<HostMetricsPayload['system']> | null;
  /** The latest sample as the collector sent it (null: none kept). */
  sample: HostMetricsPayload | null;
  /** Null: one reporter (or a collector that does not say). Absent from a gateway of before. */
  conflict?: HostConflictView | null;
}

/**
 * `DELETE /api/v1/hosts/{id}` (202): the retirement is on the bus, confirmed by the broker; the aggregator folds it in
 * order with the host's samples. The host leaves the list once it has (GET answers 404 then); a sample stamped after
 * `retiredAt` brings it back.
 */
export interface HostRetirementAccepted {
  hostId: string;
  targetId: string;
  retiredAt: string;
  /** The retirement's message id (status events and the aggregator's record name it). */
  messageId: string;
}

export interface HostSeriesPointView {
  at: string;
  avg: number;
  max: number;
  count: number;
}

export interface HostSeriesView {
  /** `cpu_pct`, `load1`, `mem_used_bytes`, `disk_used_bytes`, `net_rx_bps`, `gpu_temp_c` … */
  series: string;
  /** Mount, interface or GPU index; null for host-wide series. */
  device: string | null;
  points: HostSeriesPointView[];
}

export interface HostMetricsResponse {
  hostId: string;
  minutes: number;
  /** `raw`: every sample a point; `rollup`: 1-minute rollups merged into `stepSeconds` steps. */
  resolution: 'raw' | 'rollup';
  stepSeconds: number | null;
  series: HostSeriesView[];
}
