import { Inject, Injectable } from '@nestjs/common';
import { DRIFT_AREAS, memberNameSchema } from '@fleetwatch/contracts';
import type {
  ComponentsMatrixView,
  DriftCountsView,
  FlowFigures,
  FlowPoint,
  LeaderFlowView,
  LeaderMemberView,
  LeaderStatsView,
  MemberDriftView,
  MemberPollRecord,
  MemberSnapshotView,
} from '@fleetwatch/contracts';
import { diffSnapshots, driftCounts, NotFoundError, type DriftReport } from '@fleetwatch/domain';
import { FleetCache, LIVE_STATE_REDIS } from '@fleetwatch/live-state';
import { FleetSitesRepository, type FleetSiteRecord } from '@fleetwatch/persistence';
import type { Redis } from 'ioredis';
import { SnapshotService } from '../fleet-member/snapshot.service';

interface Member {
  site: FleetSiteRecord;
  poll: MemberPollRecord | null;
}

const FIGURES: (keyof FlowFigures)[] = ['ingress', 'egress', 'stored', 'deleted'];

/**
 * The cached record as far as it is this member's: none when its good data was read from another URL than the one
 * configured now (the member's URL changed, or its name was given to another site, since that poll): the attempt
 * that went with it was of the old site too. The poller drops such data at its next cycle.
 */
export function ofSite(site: FleetSiteRecord, poll: MemberPollRecord | null): MemberPollRecord | null {
  return poll?.good?.url !== undefined && poll.good.url !== site.url ? null : poll;
}

/**
 * A member's view: the last good data, flagged STALE with its age and error when the last poll failed, or when the
 * next poll is overdue (`attempt.nextBy` passed: nobody polls, and the last success would otherwise read OK for ever).
 */
export function memberView(site: FleetSiteRecord, poll: MemberPollRecord | null, now = Date.now()): LeaderMemberView {
  const nextBy = poll?.attempt.nextBy === undefined ? NaN : Date.parse(poll.attempt.nextBy);
  const overdue = now > nextBy;
  const state = poll === null ? 'NEVER' : poll.attempt.ok && !overdue ? 'OK' : poll.good ? 'STALE' : 'NEVER';
  const goodAt = poll?.good ? Date.parse(poll.good.at) : null;
  const error = overdue
    ? `no poll since ${poll?.attempt.at ?? '?'} (two cycles missed): the leader's poller is not running or cannot record its polls (sync-orchestrator down, no replica holding the fleet-poll lease, or its writes failing)${poll?.attempt.error ? `; last error: ${poll.attempt.error}` : ''}`
    : (poll?.attempt.error ?? null);
  return {
    name: site.name,
    url: site.url,
    tags: site.tags,
    failoverOrder: site.failoverOrder,
    state,
    stale: state !== 'OK',
    ageSeconds: goodAt === null ? null : Math.max(0, Math.round((now - goodAt) / 1000)),
    lastAttemptAt: poll?.attempt.at ?? null,
    lastSuccessAt: poll?.good?.at ?? null,
    error,
    report: poll?.good?.report ?? null,
    snapshotHash: poll?.good?.snapshot?.hash ?? null,
  };
}

/**
 * How old a member's snapshot is: stale also when the member is OK but its last good poll could not read the snapshot
 * (over the answer limit, too slow, its configuration owner away: the one held is older), aged from when it was read.
 */
export function snapshotFreshness(
  site: FleetSiteRecord,
  poll: MemberPollRecord | null,
  now = Date.now(),
): { stale: boolean; ageSeconds: number | null } {
  const view = memberView(site, poll, now);
  const good = poll?.good;
  if (!good?.snapshotAt) return { stale: view.stale, ageSeconds: view.ageSeconds };
  const readAt = Date.parse(good.snapshotAt);
  return {
    stale: view.stale || good.snapshotAt !== good.at,
    ageSeconds: Number.isFinite(readAt) ? Math.max(0, Math.round((now - readAt) / 1000)) : view.ageSeconds,
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The cached snapshot when drift can read it: its areas compared are lists of items with a string key (an area left
 * out is an older member's, not compared). Anything else — a record the cache holds from another writer, damaged — is
 * no snapshot to compare: it made the drift of every member a 500.
 */
export function readableSnapshot(snap: unknown): MemberSnapshotView | null {
  if (!isObject(snap) || typeof snap.hash !== 'string' || !isObject(snap.areas)) return null;
  const areas = snap.areas;
  const ok = DRIFT_AREAS.every((a) => {
    const items = areas[a];
    return (
      items === undefined || (Array.isArray(items) && items.every((i) => isObject(i) && typeof i.key === 'string'))
    );
  });
  return ok ? (snap as unknown as MemberSnapshotView) : null;
}

/**
 * What a leader shows of its fleet (SPEC §8 leader endpoints), read from the fleet tables
 * and the member reports cache that sync-orchestrator's poller writes. Drift compares this
 * site's own current snapshot with each member's last good one, overridden properties excluded.
 */
@Injectable()
export class FleetLeaderService {
  private readonly cache: FleetCache;

  constructor(
    private readonly sites: FleetSitesRepository,
    @Inject(LIVE_STATE_REDIS) redis: Redis,
    private readonly snapshots: SnapshotService,
  ) {
    this.cache = new FleetCache(redis);
  }

  private async all(): Promise<Member[]> {
    const sites = await this.sites.list();
    const polls = await this.cache.getMany(sites.map((s) => s.name));
    return sites.map((site) => ({ site, poll: ofSite(site, polls.get(site.name) ?? null) }));
  }

  private async one(name: string): Promise<Member> {
    // A name no member can have (FLEETWATCH_LEADER_CONFIG names are checked): not looked up — Postgres refuses a NUL.
    if (!memberNameSchema.safeParse(name).success) throw new NotFoundError(`member ${JSON.stringify(name)} not found`);
    const site = await this.sites.find(name);
    if (!site) throw new NotFoundError(`member ${JSON.stringify(name)} not found`);
    return { site, poll: ofSite(site, await this.cache.get(name)) };
  }

  async members(tag?: string, now = Date.now()): Promise<{ items: LeaderMemberView[] }> {
    const all = await this.all();
    const items = all
      .filter((m) => tag === undefined || m.site.tags.includes(tag))
      .map((m) => memberView(m.site, m.poll, now));
    return { items };
  }

  async stats(): Promise<LeaderStatsView> {
    const views = (await this.all()).map((m) => memberView(m.site, m.poll));
    const out: LeaderStatsView = {
      members: {
        total: views.length,
        ok: views.filter((v) => v.state === 'OK').length,
        stale: views.filter((v) => v.state === 'STALE').length,
        never: views.filter((v) => v.state === 'NEVER').length,
      },
      status: {},
      errors: { down: 0, failedResults15m: 0, deadLettered: 0 },
      inFlight: 0,
      queued: 0,
      hosts: 0,
    };
    for (const r of views.map((v) => v.report)) {
      if (!r) continue;
      for (const [s, n] of Object.entries(r.status)) out.status[s] = (out.status[s] ?? 0) + n;
      out.errors.down += r.errors?.down ?? 0;
      out.errors.failedResults15m += r.errors?.failedResults15m ?? 0;
      out.errors.deadLettered += r.errors?.deadLettered ?? 0;
      out.inFlight += r.broker?.inFlight ?? 0;
      out.queued += r.broker?.queued ?? 0;
      out.hosts += r.hosts?.count ?? 0;
    }
    return out;
  }

  /**
   * Each member's points of the last `minutes` minutes by time (on the leader's clock, a member clock up to
   * FLOW_SKEW_MS behind still counting; at most `minutes` points, the newest), and `total` per minute summed over the
   * members that are OK: a STALE member's points (kept from its last good poll, possibly hours old) are listed under it,
   * flagged, but left out of the total; NEVER members have none. A figure of the total is null when no member summed
   * reported it for that minute (an older member without it), else the sum of those that did.
   */
  async flow(minutes: number, now = Date.now()): Promise<LeaderFlowView> {
    const totals = new Map<number, FlowPoint>();
    const from = Math.floor(now / 60_000) * 60_000 - (minutes - 1) * 60_000 - FLOW_SKEW_MS;
    const members = (await this.all()).map((m) => {
      const view = memberView(m.site, m.poll, now);
      // The member's own points (its clock and minute boundaries, not the leader's) within the window.
      const held = m.poll?.good?.flow?.points;
      const points = held ? held.filter((p) => Date.parse(p.at) >= from).slice(-minutes) : null;
      if (!view.stale)
        for (const p of points ?? []) {
          const at = Date.parse(p.at);
          const t = totals.get(at) ?? emptyPoint(p.at);
          for (const f of FIGURES) {
            t[f].count = add(t[f].count, p[f].count);
            t[f].bytes = add(t[f].bytes, p[f].bytes);
          }
          totals.set(at, t);
        }
      return { name: m.site.name, stale: view.stale, points };
    });
    return { minutes, members, total: [...totals.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p) };
  }

  async components(): Promise<ComponentsMatrixView> {
    const all = await this.all();
    const names = new Set<string>();
    const members = all.map((m) => {
      const versions: Record<string, string | null> = {};
      for (const c of m.poll?.good?.report?.components ?? []) {
        versions[c.component] = c.version;
        names.add(c.component);
      }
      return { name: m.site.name, stale: memberView(m.site, m.poll).stale, versions };
    });
    const components = [...names].sort();
    const differing = components.filter((c) => {
      const seen = new Set(members.map((m) => m.versions[c]).filter((v) => v !== undefined && v !== null));
      return seen.size > 1;
    });
    return { components, members, differing };
  }

  async snapshot(name: string): Promise<MemberSnapshotView & { stale: boolean; ageSeconds: number | null }> {
    const m = await this.one(name);
    const snap = m.poll?.good?.snapshot;
    if (!snap) throw new NotFoundError(`no snapshot of member ${JSON.stringify(name)} yet`);
    return { ...snap, ...snapshotFreshness(m.site, m.poll) };
  }

  async drift(): Promise<DriftCountsView> {
    const [leader, all] = await Promise.all([this.snapshots.current(), this.all()]);
    return {
      leaderHash: leader.hash,
      members: all.map((m) => {
        const snap = readableSnapshot(m.poll?.good?.snapshot);
        const { stale, ageSeconds } = snapshotFreshness(m.site, m.poll);
        if (!snap)
          return {
            name: m.site.name,
            stale,
            ageSeconds: null,
            snapshotHash: null,
            count: null,
            areas: null,
            notCompared: null,
          };
        const counts = driftCounts(this.diff(leader, snap, m.site));
        return {
          name: m.site.name,
          stale,
          ageSeconds,
          snapshotHash: snap.hash,
          count: counts.count,
          areas: counts.areas,
          notCompared: counts.notCompared,
        };
      }),
    };
  }

  async driftOf(name: string): Promise<MemberDriftView> {
    const [leader, m] = await Promise.all([this.snapshots.current(), this.one(name)]);
    const snap = readableSnapshot(m.poll?.good?.snapshot);
    if (!snap) throw new NotFoundError(`no snapshot of member ${JSON.stringify(name)} yet`);
    return {
      member: name,
      ...snapshotFreshness(m.site, m.poll),
      leaderHash: leader.hash,
      memberHash: snap.hash,
      overriddenProperties: Object.keys(m.site.propertyOverrides).sort(),
      ...this.diff(leader, snap, m.site),
    };
  }

  private diff(leader: MemberSnapshotView, member: MemberSnapshotView, site: FleetSiteRecord): DriftReport {
    return diffSnapshots(leader.areas, member.areas, {
      overriddenProperties: Object.keys(site.propertyOverrides),
      // Areas an older member does not have: not compared (else every leader item there reads missing).
      memberAbsentAreas: member.absentAreas,
    });
  }
}

/** How far behind the leader's a member's clock may be and its points of the window still count. */
const FLOW_SKEW_MS = 60_000;

/** A figure summed: null while no member reported it (null + null), else the sum of those that did. */
const add = (a: number | null, b: number | null): number | null => (b === null ? a : (a ?? 0) + b);

function emptyPoint(at: string): FlowPoint {
  const z = () => ({ count: null, bytes: null });
  return { at, ingress: z(), egress: z(), stored: z(), deleted: z() };
}
