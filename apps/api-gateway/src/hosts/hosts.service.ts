import { Injectable } from '@nestjs/common';
import {
  HOST_RAW_MAX_MINUTES,
  HOST_SERIES_MAX_POINTS,
  hostMetricsPayloadSchema,
  Messages,
  TargetIds,
  TargetKind,
  type HostConflictView,
  type HostDetailView,
  type HostListResponse,
  type HostMetricsPayload,
  type HostMetricsQuery,
  type HostMetricsResponse,
  type HostRetirementAccepted,
  type HostSummaryView,
  type ListHostsQuery,
} from '@fleetwatch/contracts';
import { InvalidError, NotFoundError } from '@fleetwatch/domain';
import { LiveStateStore, toTargetView, type TargetRecord } from '@fleetwatch/live-state';
import { BusPublisher } from '@fleetwatch/messaging';
import { HostHistoryRepository, TargetStatesRepository, type HostSeries } from '@fleetwatch/persistence';
import type { Principal } from '../auth/principal';
import { actorOf } from '../checks/request-envelope';
import { CorruptRecords } from '../live/corrupt-records';
import { durableTargets } from '../live/durable-targets';
import { sendConfirmed } from '../web/bus-command';
import { findHosts, HostSystems } from './host-list';
import { parseConflictMark, parseSample, summarizeSample } from './host-summary';

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
  /** What hosts run, held for searches (one read of each host's sample per HOST_SYSTEM_TTL_MS, whatever the viewers). */
  private readonly systems: HostSystems;

  constructor(
    private readonly live: LiveStateStore,
    private readonly history: HostHistoryRepository,
    private readonly publisher: BusPublisher,
    private readonly states: TargetStatesRepository,
    private readonly corrupt: CorruptRecords,
  ) {
    this.systems = new HostSystems(live);
  }

  /** A page of the hosts the filter takes (findHosts: status and location from the indexes, `q` matched here). */
  async list(query: ListHostsQuery): Promise<HostListResponse> {
    const page = await findHosts(this.live, query, this.systems, this.corrupt.note);
    // A host whose record in live state cannot be read (corrupt) fails no page: listed from its durable state.
    const durable = await durableTargets(this.states, page.unreadable, this.corrupt.note);
    const live = new Map(page.items.map((t) => [t.id, t]));
    const listed = page.ids.filter((id) => live.has(id) || durable.has(id));
    // The page's hosts' conflict marks (a key of their own, the aggregator's: a few short strings, one pipeline).
    const marks = await this.live.getHostConflictsMany(listed.map(hostIdOf));
    const items: HostSummaryView[] = [];
    for (const id of listed) {
      const d = durable.get(id);
      const t = live.get(id) ?? d?.record;
      if (!t || t.kind !== TargetKind.Host) continue;
      const summary = summaryOf(
        t,
        parseSample(page.samples.get(hostIdOf(id))),
        parseConflictMark(marks.get(hostIdOf(id))),
      );
      items.push(d && !live.has(id) ? { ...summary, fromDurableState: { reason: d.reason } } : summary);
    }
    return {
      items,
      nextCursor: page.nextCursor,
      total: page.total,
    };
  }

  async get(id: string): Promise<HostDetailView> {
    checkHostId(id);
    const target = await this.live.getTarget(TargetIds.host(id));
    if (!target || target.kind !== TargetKind.Host) throw new NotFoundError(`host ${JSON.stringify(id)} not found`);
    // Live state first; the latest raw row when Redis lost it (it is restored at the next rebuild). The aggregator's
    // conflict mark is a key of its own (live state only).
    const [json, marks] = await Promise.all([this.live.getHostMetrics(id), this.live.getHostConflictsMany([id])]);
    const sample = parseSample(json) ?? parseSample((await this.history.latestSample(id))?.json);
    return {
      id,
      target: toTargetView(target),
      system: sample?.system ?? null,
      sample,
      conflict: parseConflictMark(marks.get(id)),
    };
  }

  /**
   * Takes a host out of service (decommissioned, renamed): `host.retire` to the aggregator, which owns live state,
   * sharded like the host's samples so that it is folded in order with them (SPEC §2, §3). Answers once the broker
   * confirmed it; the host leaves the list when the aggregator has folded it. A host not in live state (never known,
   * or retired already) is a 404; the broker away or blocking publishes, a 503 with Retry-After (nothing was sent).
   */
  async retire(principal: Principal, id: string, now = Date.now()): Promise<HostRetirementAccepted> {
    checkHostId(id);
    const targetId = TargetIds.host(id);
    const target = await this.live.getTarget(targetId);
    if (!target || target.kind !== TargetKind.Host) throw new NotFoundError(`host ${JSON.stringify(id)} not found`);
    const retiredAt = new Date(now).toISOString();
    // A retirement twice is one retirement: a publish not confirmed may be sent again.
    const envelope = await sendConfirmed(
      this.publisher,
      { notDone: 'the host was not retired', noun: 'retirement', field: 'id' },
      () => this.publisher.publish(Messages.HostRetire, { hostId: id, at: retiredAt, actor: actorOf(principal) }),
    );
    return { hostId: id, targetId, retiredAt, messageId: envelope.id };
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
      series: view(newestSteps(series, HOST_SERIES_MAX_POINTS)),
    };
  }
}

/**
 * The series' points of their newest `max` steps. A window of whole steps not aligned to them spans one step more
 * than it has whole ones (the partial one at its start): with minutes rolled up in the step holding `now` that is
 * one point too many, and the oldest step — the partial one — goes. Cut by the steps the answer holds, not the clock:
 * the step holding `now` has none until its first minute has ended and settled (then no step of the window goes).
 */
export function newestSteps(series: HostSeries[], max: number): HostSeries[] {
  const steps = new Set<number>();
  for (const s of series) for (const p of s.points) steps.add(p.at);
  if (steps.size <= max) return series;
  const from = [...steps].sort((a, b) => b - a)[max - 1];
  return series.map((s) => ({ ...s, points: s.points.filter((p) => p.at >= from) }));
}

function view(series: readonly HostSeries[]): HostMetricsResponse['series'] {
  return series.map((s) => ({
    series: s.series,
    device: s.device === '' ? null : s.device,
    points: s.points.map((p) => ({ at: new Date(p.at).toISOString(), avg: p.avg, max: p.max, count: p.count })),
  }));
}

function summaryOf(
  t: TargetRecord,
  sample: HostMetricsPayload | null,
  conflict: HostConflictView | null,
): HostSummaryView {
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
    conflict,
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
