import { Injectable } from '@nestjs/common';
import {
  textProblem,
  HISTORY_MAX_POINTS_PER_LOCATION,
  HistoryPoint,
  HistoryResponse,
  ListTargetsQuery,
  type RecentTargetsQuery,
  type RecentTargetsResponse,
  TargetListResponse,
  TargetKind,
  TargetStatus,
  TargetView,
  type CheckMetric,
  type SparklinesResponse,
} from '@fleetwatch/contracts';
import { InvalidError, NotFoundError } from '@fleetwatch/domain';
import { CorruptRecordError, LiveStateStore, toTargetView, type CorruptPartListener } from '@fleetwatch/live-state';
import { HistoryReadRepository, HistoryWindow, TargetStatesRepository } from '@fleetwatch/persistence';
import { CorruptRecords } from '../live/corrupt-records';
import { durableTargets } from '../live/durable-targets';
import { sparklinesOf, sparklineWindow } from './sparklines';

/** Up to this many minutes, history is raw observations; beyond it, 1-minute rollups. */
export const RAW_HISTORY_MAX_MINUTES = 60;
/** The longest target id a route takes. */
export const MAX_TARGET_ID = 512;

/**
 * Targets read straight from live state (Redis) and history (Postgres); the
 * aggregator writes both.
 */
@Injectable()
export class TargetsService {
  constructor(
    private readonly live: LiveStateStore,
    private readonly history: HistoryReadRepository,
    private readonly states: TargetStatesRepository,
    private readonly corrupt: CorruptRecords,
  ) {}

  /**
   * A page of targets. One whose record in live state cannot be read (corrupt) fails no page: it is listed from its
   * durable state (Postgres), marked `fromDurableState`, where that holds it; counted and logged either way.
   */
  async list(query: ListTargetsQuery): Promise<TargetListResponse> {
    const page = await this.live.listTargets(
      { kind: query.kind, status: query.status, tag: query.tag, location: query.location },
      query.limit,
      query.cursor,
      this.corrupt.note,
    );
    const durable = await durableTargets(this.states, page.unreadable, this.corrupt.note);
    const live = new Map(page.items.map((t) => [t.id, t]));
    const items: TargetView[] = [];
    for (const id of page.ids) {
      const t = live.get(id);
      const d = t ? undefined : durable.get(id);
      if (t) items.push(toTargetView(t));
      else if (d) items.push({ ...toTargetView(d.record), fromDurableState: { reason: d.reason } });
    }
    return { items, nextCursor: page.nextCursor, total: page.total };
  }

  /** The targets whose status changed last; one whose record cannot be read (corrupt) is left out, and counted. */
  async recent(query: RecentTargetsQuery): Promise<RecentTargetsResponse> {
    return { items: (await this.live.recentlyChanged(query.limit, this.corrupt.note)).map(toTargetView) };
  }

  /**
   * One target's live view. A record that cannot be read (corrupt tags or labels) rejects with its CorruptRecordError
   * (a route answers 503 naming it: CorruptRecordInterceptor); a location entry that cannot be read is left out and told
   * to `corruptPart` (by default counted and logged as a REST route's read).
   */
  async get(id: string, corruptPart: CorruptPartListener = this.corrupt.note): Promise<TargetView> {
    checkId(id);
    const target = await this.live.getTarget(id, corruptPart);
    if (!target) throw new NotFoundError(`target ${JSON.stringify(id)} not found`);
    const view = toTargetView(target);
    // Service collectors' latest figures per location (issue 16).
    if (view.kind === TargetKind.Check) {
      const figures = await this.live.getCheckMetrics(id);
      for (const l of view.locations) {
        const f = figures.get(l.location);
        if (f) l.metrics = f.metrics as CheckMetric[];
      }
    }
    return view;
  }

  /** The last hour of each id, minute by minute, from the 1-minute rollups (ids without history: nulls). */
  async sparklines(ids: readonly string[], now = Date.now()): Promise<SparklinesResponse> {
    for (const id of ids) checkId(id);
    const { from, until } = sparklineWindow(now);
    const rows = await this.history.minuteTotals(ids, new Date(from), new Date(until));
    return sparklinesOf(ids, rows, now);
  }

  async historyOf(
    id: string,
    query: { minutes: number; location?: string },
    now = Date.now(),
  ): Promise<HistoryResponse> {
    checkId(id);
    if (!(await this.liveExists(id)) && !(await this.history.targetExists(id)))
      throw new NotFoundError(`target ${JSON.stringify(id)} not found`);
    const window: HistoryWindow = {
      targetId: id,
      since: new Date(now - query.minutes * 60_000),
      until: new Date(now),
      location: query.location,
    };
    const raw = query.minutes <= RAW_HISTORY_MAX_MINUTES;
    // Long windows merge their minutes into steps: at most HISTORY_MAX_POINTS_PER_LOCATION points a location.
    const stepMinutes = Math.max(1, Math.ceil(query.minutes / HISTORY_MAX_POINTS_PER_LOCATION));
    const [points, events] = await Promise.all([
      raw ? this.rawPoints(window) : this.rollupPoints(window, stepMinutes),
      this.history.statusEvents(window),
    ]);
    return {
      targetId: id,
      minutes: query.minutes,
      resolution: raw ? 'raw' : '1m',
      stepSeconds: raw ? null : stepMinutes * 60,
      points,
      events: events.map((e) => ({
        at: e.at.toISOString(),
        location: e.location,
        from: e.from ?? TargetStatus.Unknown,
        to: e.to,
        reason: e.reason ?? '',
      })),
    };
  }

  /** Live state holds the target: one whose record cannot be read (corrupt) is held too (counted), its history read. */
  private async liveExists(id: string): Promise<boolean> {
    try {
      return (await this.live.getTarget(id, this.corrupt.note)) !== null;
    } catch (err) {
      if (!(err instanceof CorruptRecordError)) throw err;
      this.corrupt.note(err);
      return true;
    }
  }

  /** Each observation as a point of count 1. */
  private async rawPoints(window: HistoryWindow): Promise<HistoryPoint[]> {
    return (await this.history.rawObservations(window)).map((o) => ({
      bucket: o.at.toISOString(),
      location: o.location,
      count: 1,
      okCount: o.ok ? 1 : 0,
      minLatencyMs: o.latencyMs,
      avgLatencyMs: o.latencyMs,
      maxLatencyMs: o.latencyMs,
      p95LatencyMs: o.latencyMs,
      ...(o.metrics ? { metrics: o.metrics } : {}),
    }));
  }

  private async rollupPoints(window: HistoryWindow, stepMinutes: number): Promise<HistoryPoint[]> {
    // Rollup buckets are minute starts, steps are aligned to whole steps since the epoch: include the step the
    // window starts in.
    const stepMs = stepMinutes * 60_000;
    const since = new Date(Math.floor(window.since.getTime() / stepMs) * stepMs);
    const rollups = await this.history.rollups({ ...window, since }, stepMinutes);
    return newestStepsPerLocation(rollups, HISTORY_MAX_POINTS_PER_LOCATION).map((r) => ({
      ...r,
      bucket: r.bucket.toISOString(),
    }));
  }
}

/**
 * Each location's points of its newest `max` steps. A window of whole steps not aligned to them spans one step more
 * than it has whole ones (the partial one at its start): with minutes rolled up in the step holding `now` that is one
 * point too many (1,441 of "at most 1,440"), and the oldest — the partial one — goes. Cut by the steps a location's
 * points hold, not by the clock: the step holding `now` has none until its first minute has ended and settled.
 */
export function newestStepsPerLocation<T extends { location: string; bucket: Date }>(points: T[], max: number): T[] {
  const steps = new Map<string, Set<number>>();
  for (const p of points) {
    const own = steps.get(p.location) ?? new Set<number>();
    own.add(p.bucket.getTime());
    steps.set(p.location, own);
  }
  const from = new Map<string, number>();
  for (const [location, own] of steps) if (own.size > max) from.set(location, [...own].sort((a, b) => b - a)[max - 1]);
  return from.size === 0 ? points : points.filter((p) => p.bucket.getTime() >= (from.get(p.location) ?? -Infinity));
}

/** A target id a route can look up (400 naming `id` otherwise). */
export function checkId(id: string): void {
  if (id.length === 0 || id.length > MAX_TARGET_ID)
    throw new InvalidError(`id: must be 1–${MAX_TARGET_ID} characters`, [
      { path: 'id', message: `must be 1–${MAX_TARGET_ID} characters` },
    ]);
  // A NUL or lone surrogate could never name a stored target, and Postgres would refuse the lookup.
  const problem = textProblem(id);
  if (problem) throw new InvalidError(`id: ${problem}`, [{ path: 'id', message: problem }]);
}
