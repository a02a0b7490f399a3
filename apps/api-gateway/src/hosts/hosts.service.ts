import { Injectable } from '@nestjs/common';
import {
  HOST_RAW_MAX_MINUTES,
  HOST_SERIES_MAX_POINTS,
  hostMetricsPayloadSchema,
  TargetIds,
  TargetKind,
  type HostDetailView,
  type HostListResponse,
  type HostMetricsQuery,
  type HostMetricsResponse,
  type HostSummaryView,
  type ListHostsQuery,
} from '@fleetwatch/contracts';
import { InvalidError, NotFoundError } from '@fleetwatch/domain';
import { LiveStateStore, toTargetView, type TargetRecord } from '@fleetwatch/live-state';
import { HostHistoryRepository, type HostSeries } from '@fleetwatch/persistence';
import { parseSample, summarizeSample } from './host-summary';

const HOST_PREFIX = TargetIds.host('');
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The host id of a host target id (`host:{id}`). */
export function hostIdOf(targetId: string): string {
  return targetId.slice(HOST_PREFIX.length);
}

/**
 * Hosts (issue 16), read from live state (the host's target and latest sample, written by
 * the aggregator) and from host history in Postgres (raw samples and 1-minute rollups).
 */
@Injectable()
export class HostsService {
  constructor(
    private readonly live: LiveStateStore,
    private readonly history: HostHistoryRepository,
  ) {}

  async list(query: ListHostsQuery): Promise<HostListResponse> {
    const page = await this.live.listTargets(
      { kind: [TargetKind.Host] },
      query.limit,
      query.cursor === undefined ? undefined : TargetIds.host(query.cursor),
    );
    const ids = page.items.map((t) => hostIdOf(t.id));
    const samples = await this.live.getHostMetricsMany(ids);
    return {
      items: page.items.map((t) => summaryOf(t, parseSample(samples.get(hostIdOf(t.id))))),
      nextCursor: page.nextCursor === null ? null : hostIdOf(page.nextCursor),
      total: page.total,
    };
  }

  async get(id: string): Promise<HostDetailView> {
    checkHostId(id);
    const target = await this.live.getTarget(TargetIds.host(id));
    if (!target || target.kind !== TargetKind.Host) throw new NotFoundError(`host ${JSON.stringify(id)} not found`);
    // Live state first; the latest raw row when Redis lost it (it is restored at the next rebuild).
    const sample =
      parseSample(await this.live.getHostMetrics(id)) ?? parseSample((await this.history.latestSample(id))?.json);
    return { id, target: toTargetView(target), system: sample?.system ?? null, sample };
  }

  async metrics(id: string, query: HostMetricsQuery, now = Date.now()): Promise<HostMetricsResponse> {
    checkHostId(id);
    const target = await this.live.getTarget(TargetIds.host(id));
    if (!(target?.kind === TargetKind.Host) && !(await this.history.hostExists(id)))
      throw new NotFoundError(`host ${JSON.stringify(id)} not found`);
    const since = now - query.minutes * 60_000;
    if (query.minutes <= HOST_RAW_MAX_MINUTES) {
      const series = await this.history.rawSeries(id, since, now);
      return { hostId: id, minutes: query.minutes, resolution: 'raw', stepSeconds: null, series: view(series) };
    }
    const stepMinutes = Math.max(1, Math.ceil(query.minutes / HOST_SERIES_MAX_POINTS));
    // Steps are aligned to whole steps since the epoch; the first one covers the window's start.
    const stepMs = stepMinutes * 60_000;
    const series = await this.history.rollupSeries(id, Math.floor(since / stepMs) * stepMs, now, stepMinutes);
    return {
      hostId: id,
      minutes: query.minutes,
      resolution: 'rollup',
      stepSeconds: stepMinutes * 60,
      series: view(series),
    };
  }
}

function view(series: readonly HostSeries[]): HostMetricsResponse['series'] {
  return series.map((s) => ({
    series: s.series,
    device: s.device === '' ? null : s.device,
    points: s.points.map((p) => ({ at: new Date(p.at).toISOString(), avg: p.avg, max: p.max, count: p.count })),
  }));
}

function summaryOf(t: TargetRecord, sample: ReturnType<typeof parseSample>): HostSummaryView {
  return {
    id: hostIdOf(t.id),
    targetId: t.id,
    name: t.name,
    status: t.status,
    locations: Object.keys(t.locations).sort(),
    lastSeen: iso(t.lastSeen),
    since: iso(t.since),
    system: sample?.system ?? null,
    lastSample: sample ? summarizeSample(sample) : null,
  };
}

/** A host id as the contract allows it (1–256 characters a store can hold), else a 400 naming `id`. */
function checkHostId(id: string): void {
  const parsed = hostMetricsPayloadSchema.shape.hostId.safeParse(id);
  if (!parsed.success) {
    const message = parsed.error.issues[0]?.message ?? 'invalid host id';
    throw new InvalidError(`id: ${message}`, [{ path: 'id', message }]);
  }
}
