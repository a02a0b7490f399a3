import { Inject, Injectable } from '@nestjs/common';
import {
  TargetKind,
  TargetStatus,
  type BrokerCounts,
  type FlowFigures,
  type FlowMetrics,
  type FlowPoint,
  type HostsSummary,
  type MemberReport,
} from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { SERVICE_IDENTITY, type ServiceIdentity } from '@fleetwatch/observability';
import { FlowRepository } from '@fleetwatch/persistence';
import type { GatewayConfig } from '../config';
import { parseSample, summarizeSample } from '../hosts/host-summary';
import { GATEWAY_CONFIG } from '../tokens';
import { brokerCounts, vhostFlow, type VhostMinute } from './broker-stats';
import { componentVersions } from './component-versions';

const REPORT_FLOW_MINUTES = 5;
const HOSTS_SCAN_LIMIT = 1000;

/** What each flow figure is measured from (served with the series). */
export const FLOW_SOURCES = {
  ingress:
    "messages published into the site's RabbitMQ vhost (count) and bytes its clients sent to the broker, per minute, from the management API's vhost samples; null without the management plugin",
  egress:
    "messages the broker delivered to the site's consumers (deliver + get) and bytes it sent to its clients, per minute, from the same samples",
  stored:
    'rows written into the raw history tables (status_updates, check_results, host_metrics, heartbeat_pings) by observation minute, and their stored size (pg_column_size of each row)',
  deleted:
    'not recorded over time: the aggregator counts retention deletes only in its own process (fleetwatch_aggregator_retention_deleted_rows_total on its /metrics); always null here',
} as const;

const pct = (used: number, total: number) => (total > 0 ? (used / total) * 100 : null);
const avg = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

/**
 * A member's report and flow series (SPEC §8), answered by every site for its leader:
 * live state (status counts, hosts), RabbitMQ itself (queued, in-flight, dead letters),
 * Postgres (failed results, stored rows) and the sibling services (versions).
 */
@Injectable()
export class MemberReportService {
  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(SERVICE_IDENTITY) private readonly identity: ServiceIdentity,
    private readonly live: LiveStateStore,
    private readonly flowRepo: FlowRepository,
  ) {}

  async report(now = Date.now()): Promise<MemberReport> {
    const endpoints = { amqpUrl: this.config.amqpUrl };
    const [status, broker, failed, hosts, flow, components] = await Promise.all([
      this.live.countByStatus(),
      brokerCounts(endpoints).then(
        (b): [BrokerCounts | null, string | null] => [b, null],
        (e: unknown): [BrokerCounts | null, string | null] => [null, e instanceof Error ? e.message : String(e)],
      ),
      this.flowRepo.failedResultsSince(now - 15 * 60_000).catch(() => null),
      hostsSummary(this.live).catch(() => null),
      this.flow(REPORT_FLOW_MINUTES, now).then(sumPoints, () => null),
      componentVersions(this.identity, this.config.componentUrls),
    ]);
    return {
      site: this.config.site,
      role: this.config.role,
      generatedAt: new Date(now).toISOString(),
      status,
      errors: {
        down: status[TargetStatus.Down] ?? 0,
        failedResults15m: failed,
        deadLettered: broker[0]?.deadLettered ?? null,
      },
      broker: broker[0],
      brokerError: broker[1],
      hosts,
      flow,
      components,
    };
  }

  async flow(minutes: number, now = Date.now()): Promise<FlowMetrics> {
    const end = Math.floor(now / 60_000) * 60_000 + 60_000;
    const start = end - minutes * 60_000;
    const [stored, vhost] = await Promise.all([
      this.flowRepo.storedPerMinute(start, end),
      vhostFlow({ amqpUrl: this.config.amqpUrl }, minutes).catch(() => null as Map<number, VhostMinute> | null),
    ]);
    const storedAt = new Map(stored.map((s) => [s.at, s]));
    const points: FlowPoint[] = [];
    for (let at = start; at < end; at += 60_000) {
      const s = storedAt.get(at);
      const v =
        vhost === null ? null : (vhost.get(at) ?? { published: 0, delivered: 0, receivedBytes: 0, sentBytes: 0 });
      points.push({
        at: new Date(at).toISOString(),
        ingress: { count: v?.published ?? null, bytes: v?.receivedBytes ?? null },
        egress: { count: v?.delivered ?? null, bytes: v?.sentBytes ?? null },
        stored: { count: s?.rows ?? 0, bytes: s?.bytes ?? 0 },
        deleted: { count: null, bytes: null },
      });
    }
    return { site: this.config.site, minutes, stepSeconds: 60, points, sources: { ...FLOW_SOURCES } };
  }
}

/**
 * The hosts part of the report: how many hosts live state holds and how many are UP (from its indexes, every host),
 * and averages (and GPUs) over the latest samples of the first HOSTS_SCAN_LIMIT UP hosts (by id) that have one. A
 * STALE host's last sample stays in live state but measures nothing now: it is left out, as /metrics and the alert
 * rules leave it out.
 */
export async function hostsSummary(
  live: Pick<LiveStateStore, 'listTargets' | 'listTargetIds' | 'getHostMetricsMany'>,
): Promise<HostsSummary> {
  const [all, upIds] = await Promise.all([
    // Only its total is read.
    live.listTargets({ kind: [TargetKind.Host] }, 1),
    live.listTargetIds({ kind: [TargetKind.Host], status: [TargetStatus.Up] }),
  ]);
  const ids = upIds.slice(0, HOSTS_SCAN_LIMIT).map((id) => id.slice('host:'.length));
  const samples = await live.getHostMetricsMany(ids);
  const cpu: number[] = [];
  const mem: number[] = [];
  const disk: number[] = [];
  const gpu: number[] = [];
  let gpuCount = 0;
  for (const id of ids) {
    const sample = parseSample(samples.get(id));
    if (!sample) continue;
    const s = summarizeSample(sample);
    cpu.push(s.cpuPct);
    const m = pct(s.memoryUsedBytes, s.memoryTotalBytes);
    if (m !== null) mem.push(m);
    const d = pct(s.diskUsedBytes, s.diskTotalBytes);
    if (d !== null) disk.push(d);
    gpuCount += s.gpuCount;
    if (s.gpuMaxUtilizationPct !== null) gpu.push(s.gpuMaxUtilizationPct);
  }
  return {
    count: all.total,
    up: upIds.length,
    cpuPct: avg(cpu),
    memoryUsedPct: avg(mem),
    diskUsedPct: avg(disk),
    gpuCount,
    gpuUtilPct: avg(gpu),
  };
}

/** Totals of a flow series (a null figure stays null only when every point is null). */
export function sumPoints(flow: FlowMetrics): FlowFigures {
  const sum = (pick: (p: FlowPoint) => number | null) => {
    const known = flow.points.map(pick).filter((n): n is number => n !== null);
    return known.length === 0 ? null : known.reduce((a, b) => a + b, 0);
  };
  const figure = (k: keyof FlowFigures) => ({ count: sum((p) => p[k].count), bytes: sum((p) => p[k].bytes) });
  return { ingress: figure('ingress'), egress: figure('egress'), stored: figure('stored'), deleted: figure('deleted') };
}
