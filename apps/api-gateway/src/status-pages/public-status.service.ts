import { Inject, Injectable } from '@nestjs/common';
import {
  announcementsAt,
  maintenanceWindowSpecSchema,
  rateLimitKeyOf,
  STATUS_PAGE_LIMITS,
  statusPageSlugSchema,
  type PublicIncident,
  type PublicStatusComponent,
  type PublicStatusPage,
  type MaintenanceSchedule,
  type MaintenanceWindow,
  type StatusPageSpec,
} from '@fleetwatch/contracts';
import { maintenanceCovers, maintenanceWindowIssues, openingsWithin, openWindow } from '@fleetwatch/alerting';
import {
  dailyTotals,
  DAY_MS,
  dayStateOf,
  incidentsOf,
  maintenanceStretches,
  mergeDays,
  mergeIntervals,
  NotFoundError,
  outsideMaintenance,
  publicStateOf,
  RateLimitedError,
  startOfUtcDay,
  takeTokens,
  uptimeOf,
  windowUptime,
  worstState,
  type Bucket,
  type DayTotals,
  type IncidentSpan,
  type StatusChange,
  type TimeInterval,
} from '@fleetwatch/domain';
import { AlertConfigRepository, StatusPagesRepository, type StatusPageCoverage } from '@fleetwatch/persistence';
import { LRUCache } from 'lru-cache';

// What an anonymous visitor of a public status page gets (issue 17). Built from the page's own
// display texts, target_states (current status) and consensus status events (uptime bars, incidents)
// — never a target id or name, URL, host, check setting, failure reason, location or user. Answers
// are cached per slug for PUBLIC_CACHE_MS (one build at a time per slug; unknown and unpublished
// slugs cached as 404s too), and each client address has a token bucket, so anonymous traffic
// costs the database at most one build per slug per cache period.
// Planned maintenance (SPEC §7): the maintenance windows as stored now (one more read per build, however many
// targets) say when each target was under maintenance — its DOWN, PARTIAL and STALE time then is maintenance in the
// bars (not counted against uptime) and no incident, and a target covered by a window open now that is not UP reads
// "maintenance". A deleted window no longer excuses anything; an edited one excuses what its schedule and scope say
// now, for the past too (windows are not versioned). A window's open time is worked out only over the stretches a
// target it covers was DOWN, PARTIAL or STALE (elsewhere it changes nothing), one opening at a time as openWindow
// reads it (openingsWithin), what was decided kept per schedule across builds — see `openTime` for the bounds.

export const PUBLIC_STATUS_LIMITS = {
  cacheMs: 15_000,
  /** Published pages kept built; slugs that name no published page are kept apart (cachedMisses). */
  cachedSlugs: 1000,
  cachedMisses: 1000,
  /**
   * Requests per client address per minute (burst the same) that may read the database: a page not built within
   * cacheMs, a slug not known to be missing.
   */
  perAddressPerMinute: 120,
  /**
   * Requests per client address per minute answered from what is cached (a page built within cacheMs, a slug known
   * missing): these cost no database read, so the budget only bounds the CPU one address takes — an office behind one
   * NAT address reloading the page through an outage must not get 429s.
   */
  cachedPerAddressPerMinute: 1200,
  addresses: 100_000,
  /**
   * Status events read for one page: each target's newest changes, up to maxEvents ÷ its targets and never fewer
   * than minEventsPerTarget (so a page of more than 2,500 targets reads more: 50 × 200 targets, 200,000 at most).
   */
  maxEvents: 50_000,
  minEventsPerTarget: 20,
  /** Maintenance schedules whose open time worked out so far is kept (shared by every page)… */
  cachedSchedules: 1000,
  /** …holding this many intervals (walked and open) in all, at most (~80 B each: ~20 MB). */
  cachedScheduleIntervals: 250_000,
  /**
   * Steps (openingsWithin: one openWindow, and a nextOpening where closed; ≤ ~0.4 ms each) a build may spend on
   * maintenance windows' open time: newest first (today and yesterday of every target, then older hours newest first),
   * what it decided kept for the next builds, what it did not reach read as what the target was (no maintenance) —
   * until a later build gets there.
   */
  maintenanceStepsPerBuild: 10_000,
  /** Steps between yields to the event loop (≤ ~40 ms of synchronous work at a time)… */
  maintenanceStepsPerSlice: 100,
  /** …and maintenance windows read (checked, and whether open now) between them. */
  windowsPerSlice: 50,
  /**
   * The rest of a build (grouping the changes read, which windows cover each target and its non-UP stretches, each
   * target's day bars and incidents, each component's merge) yields once this long has gone by since the last yield:
   * ~0.15 ms a target: a page of 5,000 held the event loop 0.6–0.7 s in one go.
   */
  sliceMs: 10,
} as const;

export const PUBLIC_STATUS_OPTIONS = Symbol('fleetwatch.gateway.PublicStatusOptions');
export interface PublicStatusOptions {
  cacheMs: number;
  perAddressPerMinute: number;
  /** Requests per address per minute answered from the cache (default PUBLIC_STATUS_LIMITS'). */
  cachedPerAddressPerMinute?: number;
  /** This site's name: a maintenance window scoped to it covers every target here (targets carry no site). */
  site: string;
  now?: () => number;
  /** PUBLIC_STATUS_LIMITS.maintenanceStepsPerBuild unless given (tests). */
  maintenanceStepsPerBuild?: number;
  /** PUBLIC_STATUS_LIMITS.sliceMs unless given (tests: 0 yields at every chance, Infinity only where the walk does). */
  sliceMs?: number;
}

type Built = { page: PublicStatusPage } | { missing: true };
/** A schedule's open time worked out so far: the ranges walked, and its openings there (both mergeIntervals). */
type ScheduleRecord = { walked: TimeInterval[]; open: TimeInterval[] };

@Injectable()
export class PublicStatusService {
  private readonly cache: LRUCache<string, { at: number; result: Promise<Built> }>;
  /** When a slug was found to name no published page: random slugs cannot push built pages out of `cache`. */
  private readonly misses: LRUCache<string, number>;
  private readonly buckets: LRUCache<string, Bucket>;
  private readonly cachedBuckets: LRUCache<string, Bucket>;
  /**
   * Per schedule (its JSON): the ranges its open time was worked out over (`walked`) and its openings there (`open`),
   * both mergeIntervals — cron-parser takes ~0.1 ms an opening, so what a build decided is not worked out again by the
   * next (every 15 s); ranges before a page's first day are dropped.
   */
  private readonly openings: LRUCache<string, ScheduleRecord>;
  private readonly now: () => number;
  private readonly cacheMs: number;
  private readonly perMinute: number;
  private readonly cachedPerMinute: number;
  private readonly site: string;
  private readonly maintenanceSteps: number;
  private readonly sliceMs: number;

  constructor(
    private readonly repo: StatusPagesRepository,
    private readonly windowsRepo: AlertConfigRepository,
    @Inject(PUBLIC_STATUS_OPTIONS) options: PublicStatusOptions,
  ) {
    this.cache = new LRUCache({ max: PUBLIC_STATUS_LIMITS.cachedSlugs });
    this.misses = new LRUCache({ max: PUBLIC_STATUS_LIMITS.cachedMisses });
    this.buckets = new LRUCache({ max: PUBLIC_STATUS_LIMITS.addresses });
    this.cachedBuckets = new LRUCache({ max: PUBLIC_STATUS_LIMITS.addresses });
    this.openings = new LRUCache({
      max: PUBLIC_STATUS_LIMITS.cachedSchedules,
      maxSize: PUBLIC_STATUS_LIMITS.cachedScheduleIntervals,
      sizeCalculation: (m) => Math.max(1, m.walked.length + m.open.length),
    });
    this.now = options.now ?? Date.now;
    this.cacheMs = options.cacheMs;
    this.perMinute = options.perAddressPerMinute;
    this.cachedPerMinute = options.cachedPerAddressPerMinute ?? PUBLIC_STATUS_LIMITS.cachedPerAddressPerMinute;
    this.site = options.site;
    this.maintenanceSteps = options.maintenanceStepsPerBuild ?? PUBLIC_STATUS_LIMITS.maintenanceStepsPerBuild;
    this.sliceMs = options.sliceMs ?? PUBLIC_STATUS_LIMITS.sliceMs;
  }

  /**
   * The maintenance windows as the evaluator reads them (a row that no longer passes the contract, or whose cron
   * cannot be read, is left out), each with whether it is open now.
   */
  private async maintenanceWindows(now: number): Promise<Array<{ window: MaintenanceWindow; openNow: boolean }>> {
    const rows = await this.windowsRepo.all('maintenanceWindows');
    const out: Array<{ window: MaintenanceWindow; openNow: boolean }> = [];
    for (const [i, row] of rows.entries()) {
      // ~0.5 ms a window (its contract, its cron, openWindow): 200 of them held the event loop ~110 ms.
      if (i > 0 && i % PUBLIC_STATUS_LIMITS.windowsPerSlice === 0) await yieldToEventLoop();
      const parsed = maintenanceWindowSpecSchema.safeParse(row.spec);
      if (!parsed.success || maintenanceWindowIssues(parsed.data).length > 0) continue;
      const window = { ...parsed.data, id: row.id } as MaintenanceWindow;
      out.push({ window, openNow: openWindow(window.schedule, now) !== null });
    }
    return out;
  }

  /**
   * When any of `schedules` was open within `stretches` (a target's DOWN, PARTIAL and STALE time, maintenanceStretches)
   * from `floor` on: their openings there, joined, as openWindow reads them at every instant. Each schedule is walked
   * (openingsWithin) only where the stretches are still undecided: not yet excused by a schedule before it, not walked
   * by an earlier build (`openings`) — hour by hour, newest first, while `budget.steps` last, yielding to the event loop
   * every maintenanceStepsPerSlice steps. What the budget leaves unwalked is not excused (a later build walks it).
   * `since`: the page's first day — what a schedule's record holds from before it is dropped.
   */
  private async openTime(
    schedules: readonly MaintenanceSchedule[],
    stretches: readonly TimeInterval[],
    floor: number,
    since: number,
    budget: { steps: number; sinceYield: number; view: Map<string, ScheduleRecord>; slicer: Slicer },
  ): Promise<TimeInterval[]> {
    // The build's own view of each schedule's record: the shared one as read the first time the build needs it, plus
    // what the build walked since — never read again after a yield. Read again, another build's doings showed through:
    // one pushing it out of `openings` meanwhile (more than cachedSchedules schedules between two pages) left only what
    // this walk found, and one from after UTC midnight had dropped the day before its first — either way what the first
    // read had excused (and so was not walked) read as an outage for a cache period.
    const recordOf = (key: string): ScheduleRecord => {
      let record = budget.view.get(key);
      if (!record) budget.view.set(key, (record = this.openings.get(key) ?? { walked: [], open: [] }));
      return record;
    };
    let found: TimeInterval[] = [];
    for (const schedule of schedules) {
      const key = JSON.stringify(schedule);
      const before = recordOf(key);
      const todo = less(less(clipped(stretches, floor), found), before.walked);
      const walked: TimeInterval[] = [];
      const open: TimeInterval[] = [];
      // Newest first, an hour at a time (walks go forward: a budget cut leaves the oldest hours unexcused, and at most
      // the end of the hour it stopped in).
      for (let p = todo.length - 1; p >= 0 && budget.steps > 0; p--) {
        for (let chunkEnd = todo[p].end; chunkEnd > todo[p].start && budget.steps > 0;) {
          const chunkStart = Math.max(todo[p].start, Math.floor((chunkEnd - 1) / HOUR_MS) * HOUR_MS);
          let at = chunkStart;
          while (at < chunkEnd && budget.steps > 0) {
            const slice = Math.min(budget.steps, PUBLIC_STATUS_LIMITS.maintenanceStepsPerSlice - budget.sinceYield);
            const r = openingsWithin(schedule, at, chunkEnd, Math.max(1, slice));
            walked.push({ start: at, end: r.reached });
            open.push(...r.open);
            at = r.reached;
            budget.steps -= r.steps;
            budget.sinceYield += r.steps;
            if (budget.sinceYield >= PUBLIC_STATUS_LIMITS.maintenanceStepsPerSlice) {
              budget.sinceYield = 0;
              await budget.slicer.yield();
            }
          }
          chunkEnd = chunkStart;
        }
      }
      let memo = before;
      if (walked.length > 0) {
        memo = fromDay({ walked: [...before.walked, ...walked], open: [...before.open, ...open] }, since);
        budget.view.set(key, memo);
        // The shared record: what it holds now (another build may have walked this schedule meanwhile) and what this
        // build knows — both true openings of the schedule over what they walked, so together they are too.
        const shared = this.openings.get(key);
        this.openings.set(
          key,
          shared
            ? fromDay({ walked: [...shared.walked, ...memo.walked], open: [...shared.open, ...memo.open] }, since)
            : memo,
        );
      }
      found = mergeIntervals([...found, ...overlapping(memo.open, stretches)]);
    }
    return found;
  }

  /**
   * One request's share of the client address's budget; a 429 with Retry-After when spent. Counted per IPv4
   * address and per IPv6 /64 (rateLimitKeyOf, as logins are): one host holds a whole /64 and could rotate
   * addresses past a per-address limit; an IPv4-mapped address is its IPv4 one.
   */
  admit(address: string, slug?: string): void {
    const now = this.now();
    const key = rateLimitKeyOf(address);
    // Answered from the cache (no database read): the larger budget, its own bucket.
    const cached = slug !== undefined && this.answersFromCache(slug, now);
    const buckets = cached ? this.cachedBuckets : this.buckets;
    const perMinute = cached ? this.cachedPerMinute : this.perMinute;
    const d = takeTokens(buckets.get(key), 1, now, perMinute / 60, perMinute);
    buckets.set(key, d.bucket);
    if (!d.allowed) throw new RateLimitedError('too many status page requests from this address', d.retryAfterSeconds);
  }

  /** Whether view(slug) now would answer without reading the database (a build within cacheMs, a known miss). */
  private answersFromCache(slug: string, now: number): boolean {
    const missedAt = this.misses.get(slug);
    if (missedAt !== undefined && now - missedAt < this.cacheMs) return true;
    const entry = this.cache.get(slug);
    return entry !== undefined && now - entry.at < this.cacheMs;
  }

  /**
   * How long ago `slug` was found to name no published page, as the 404 of view(slug) just thrown says (0 where none is
   * known: a malformed slug): what a 404's Age header tells shared caches, so they keep it no longer than the gateway.
   */
  missAgeMs(slug: string): number {
    const missedAt = this.misses.peek(slug);
    return missedAt === undefined ? 0 : Math.max(0, this.now() - missedAt);
  }

  /** The published page `slug` as the public sees it; unknown, unpublished or malformed → 404. */
  async view(slug: string): Promise<{ page: PublicStatusPage; ageMs: number }> {
    const notFound = () => new NotFoundError(`no status page "${slug.slice(0, 64)}"`);
    if (!statusPageSlugSchema.safeParse(slug).success) throw notFound();
    const now = this.now();
    const missedAt = this.misses.get(slug);
    if (missedAt !== undefined && now - missedAt < this.cacheMs) throw notFound();
    let entry = this.cache.get(slug);
    if (!entry || now - entry.at >= this.cacheMs) {
      entry = { at: now, result: this.build(slug, now) };
      this.cache.set(slug, entry);
      const own = entry;
      own.result.then(
        // No published page: remembered apart, so its place among the built pages is freed.
        (built) => {
          if (!('missing' in built)) return this.misses.delete(slug);
          if (this.cache.get(slug) === own) this.cache.delete(slug);
          this.misses.set(slug, own.at);
        },
        // A failed build (database away) is not kept: the next request tries again.
        () => {
          if (this.cache.get(slug) === own) this.cache.delete(slug);
        },
      );
    }
    const built = await entry.result;
    if ('missing' in built) throw notFound();
    return { page: built.page, ageMs: Math.max(0, now - entry.at) };
  }

  private async build(slug: string, now: number): Promise<Built> {
    const stored = await this.repo.findBySlug<StatusPageSpec>(slug);
    if (!stored || !stored.spec.published) return { missing: true };
    const spec = stored.spec;
    const days = STATUS_PAGE_LIMITS.days;
    const from = startOfUtcDay(now) - (days - 1) * DAY_MS;

    const windows = await this.maintenanceWindows(now);
    const open = windows.filter((w) => w.openNow).map((w) => w.window.scope);
    const openNow: StatusPageCoverage = {
      targetIds: [...new Set(open.flatMap((s) => s.targetIds))],
      tags: [...new Set(open.flatMap((s) => s.tags))],
      all: open.some((s) => s.sites.includes(this.site)),
    };
    const selected = await Promise.all(
      spec.components.map((c) =>
        // Targets deleted within the page's days too (bars and incidents only): a delete does not rewrite the history.
        this.repo.selectTargets(
          { tags: c.tags, ids: c.targetIds },
          STATUS_PAGE_LIMITS.targetsPerComponent,
          openNow,
          from,
        ),
      ),
    );
    // Live targets first, deleted ones after (every component's): pods come and go, and a tag-selected component fills
    // its 200 with dead ones — whose history must take nothing the live targets need. Read before them, a live target's
    // share of the events was maxEvents ÷ every target, dead ones included (a flapping target's older outages left the
    // page), and their DOWN stretches (a pod terminating) spent the maintenance walk's budget before another
    // component's live targets were walked (their maintenance read as outages).
    const sampled = [...new Map(selected.flatMap((s) => s.sample).map((t) => [t.targetId, t])).values()];
    sampled.sort((a, b) => Number(a.deleted === true) - Number(b.deleted === true));
    const live = sampled.filter((t) => t.deleted !== true).map((t) => t.targetId);
    const dead = sampled.filter((t) => t.deleted === true).map((t) => t.targetId);
    const perTarget = Math.max(
      PUBLIC_STATUS_LIMITS.minEventsPerTarget,
      Math.floor(PUBLIC_STATUS_LIMITS.maxEvents / Math.max(1, live.length)),
    );
    const read = await this.repo.changesSince(live, from, perTarget);
    // The deleted targets' history from what the live ones left of maxEvents (none left: their days read no data).
    const left = PUBLIC_STATUS_LIMITS.maxEvents - read.changes.length;
    const perDead = dead.length === 0 ? 0 : Math.floor(left / dead.length);
    const more = perDead >= 1 ? await this.repo.changesSince(dead, from, perDead) : { initial: [], changes: [] };
    const initial = new Map([...read.initial, ...more.initial]);
    const changes = read.changes.concat(more.changes);
    // From here on the work grows with the page (up to 10,000 targets, 200,000 changes): it yields to the event loop
    // every sliceMs (the walk below every maintenanceStepsPerSlice steps too). Everything it reads is this build's own
    // (what the repository returned, `windows`, and each schedule's record as openTime first read it: `view`).
    const slicer = new Slicer(this.sliceMs);
    const byTarget = new Map<string, StatusChange[]>();
    for (const [i, c] of changes.entries()) {
      if (i % 256 === 255 && slicer.due()) await slicer.yield();
      let list = byTarget.get(c.targetId);
      if (!list) byTarget.set(c.targetId, (list = []));
      list.push({ at: c.at, to: c.to });
    }
    // Each sampled target's maintenance: the windows covering it, open while it was not UP — today and yesterday of
    // every target first, then the rest (one budget for the build).
    const maintenance = new Map<string, TimeInterval[]>();
    const budget = { steps: this.maintenanceSteps, sinceYield: 0, view: new Map<string, ScheduleRecord>(), slicer };
    for (const floor of [startOfUtcDay(now) - DAY_MS, from]) {
      for (const t of sampled) {
        if (slicer.due()) await slicer.yield();
        const covering = windows.filter((w) =>
          maintenanceCovers(w.window, { id: t.targetId, site: this.site, tags: t.tags }),
        );
        if (covering.length === 0) continue;
        const stretches = maintenanceStretches(
          initial.get(t.targetId) ?? null,
          byTarget.get(t.targetId) ?? [],
          from,
          now,
        );
        if (stretches.length === 0) continue;
        const schedules = covering.map((w) => w.window.schedule);
        maintenance.set(t.targetId, await this.openTime(schedules, stretches, floor, from, budget));
      }
    }
    const totals = new Map<string, DayTotals[]>();
    const totalsOf = (id: string) => {
      let t = totals.get(id);
      if (!t) {
        t = dailyTotals({
          days,
          now,
          initial: initial.get(id) ?? null,
          changes: byTarget.get(id) ?? [],
          maintenance: maintenance.get(id),
        });
        totals.set(id, t);
      }
      return t;
    };

    const components: PublicStatusComponent[] = [];
    const incidents: PublicIncident[] = [];
    for (const [i, c] of spec.components.entries()) {
      const targets = selected[i].sample;
      const targetTotals: DayTotals[][] = [];
      for (const t of targets) {
        if (slicer.due()) await slicer.yield();
        targetTotals.push(totalsOf(t.targetId));
      }
      if (slicer.due()) await slicer.yield();
      const merged = targets.length ? mergeDays(targetTotals) : emptyDays(days, now);
      components.push({
        name: c.name,
        description: c.description,
        // Every target the component selects, not only the sample its bars are drawn from; those under maintenance now
        // that are not UP read "maintenance".
        state: worstState([
          ...selected[i].statuses.map((s) => publicStateOf(s)),
          ...selected[i].covered.map((s) => publicStateOf(s, true)),
        ]),
        uptime: windowUptime(merged),
        days: merged.map((d) => ({
          date: new Date(d.start).toISOString().slice(0, 10),
          uptime: uptimeOf(d),
          state: dayStateOf(d),
        })),
      });
      // Time under maintenance is no incident: what lies outside the windows is.
      const spans: IncidentSpan[] = [];
      for (const t of targets) {
        if (slicer.due()) await slicer.yield();
        spans.push(
          ...outsideMaintenance(
            incidentsOf(initial.get(t.targetId) ?? null, byTarget.get(t.targetId) ?? [], from, now),
            maintenance.get(t.targetId) ?? [],
            now,
          ),
        );
      }
      if (slicer.due()) await slicer.yield();
      for (const s of mergeSpans(spans))
        incidents.push({
          component: c.name,
          state: s.state,
          startedAt: new Date(s.start).toISOString(),
          endedAt: s.end === null ? null : new Date(s.end).toISOString(),
        });
    }
    incidents.sort(newestFirst);

    return {
      page: {
        slug: spec.slug,
        title: spec.title,
        description: spec.description,
        // The worst known state: a component with no target left (all deleted: no data, nothing to know) or one whose
        // state is not known (a target STALE) made the headline "not known" while every other component was UP.
        state: worstState(components.map((c) => c.state).filter((s) => s !== 'unknown')),
        unknownComponents: components.filter(
          (c, i) => c.state === 'unknown' && selected[i].statuses.length + selected[i].covered.length > 0,
        ).length,
        components,
        incidents: newestIncidents(incidents, 50, 10),
        announcements: announcementsAt(spec.announcements, now).map((a) => ({
          title: a.title,
          body: a.body,
          severity: a.severity,
          startsAt: a.startsAt,
          endsAt: a.endsAt ?? null,
          state: a.state,
        })),
        days,
        generatedAt: new Date(now).toISOString(),
      },
    };
  }
}

const HOUR_MS = 3_600_000;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One build's turns on the event loop: `due()` once `sliceMs` has gone by since its last yield (any of its yields,
 * the maintenance walk's included), `yield()` lets the rest of the gateway (requests, WebSocket messages) run.
 */
class Slicer {
  private last = performance.now();

  constructor(private readonly sliceMs: number) {}

  due(): boolean {
    return performance.now() - this.last >= this.sliceMs;
  }

  async yield(): Promise<void> {
    await yieldToEventLoop();
    this.last = performance.now();
  }
}

/** The parts of `sorted` (mergeIntervals) from `floor` on. */
function clipped(sorted: readonly TimeInterval[], floor: number): TimeInterval[] {
  return sorted.filter((i) => i.end > floor).map((i) => (i.start < floor ? { start: floor, end: i.end } : i));
}

/**
 * `record` (its parts in any order, each as openingsWithin gave them) from the page's first day `since` on, merged: the
 * openings that end after `since`, and what was walked cut at it — kept whole, a range walked across `since` went on
 * saying "walked" of the time before it, whose openings were dropped, and a build from before UTC midnight (its first
 * day the day before) read that time as never open.
 */
function fromDay(record: ScheduleRecord, since: number): ScheduleRecord {
  return {
    walked: clipped(mergeIntervals(record.walked), since),
    open: mergeIntervals(record.open.filter((i) => i.end > since)),
  };
}

/** `a` less `b` (both mergeIntervals). */
function less(a: readonly TimeInterval[], b: readonly TimeInterval[]): TimeInterval[] {
  const out: TimeInterval[] = [];
  let j = 0;
  for (const i of a) {
    let start = i.start;
    while (j < b.length && b[j].end <= start) j++;
    for (let k = j; k < b.length && b[k].start < i.end; k++) {
      if (b[k].start > start) out.push({ start, end: b[k].start });
      start = Math.max(start, b[k].end);
    }
    if (start < i.end) out.push({ start, end: i.end });
  }
  return out;
}

/** The intervals of `sorted` (mergeIntervals) that overlap one of `stretches` (mergeIntervals), whole. */
function overlapping(sorted: readonly TimeInterval[], stretches: readonly TimeInterval[]): TimeInterval[] {
  const out: TimeInterval[] = [];
  let j = 0;
  for (const i of sorted) {
    while (j < stretches.length && stretches[j].end <= i.start) j++;
    if (j === stretches.length) break;
    if (stretches[j].start < i.end) out.push(i);
  }
  return out;
}

function emptyDays(days: number, now: number): DayTotals[] {
  return dailyTotals({ days, now, initial: null, changes: [] });
}

/** One component's incidents: overlapping spans of its targets as one (the worse state wins). */
export function mergeSpans(spans: readonly IncidentSpan[]): IncidentSpan[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const out: IncidentSpan[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && (last.end === null || s.start <= last.end)) {
      last.end = last.end === null || s.end === null ? null : Math.max(last.end, s.end);
      if (s.state === 'outage') last.state = 'outage';
    } else out.push({ ...s });
  }
  return out;
}

const newestFirst = (a: PublicIncident, b: PublicIncident): number =>
  a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0;

/**
 * The newest `max` incidents of a page (newest first, `sorted` so): those still going on first, then each component's
 * newest `perComponent`, then the rest. One flapping component's incidents of the last hours filled the list, and
 * another's outage of last week was not on it; and an incident going on since long ago (a component degraded for
 * weeks) was pushed off by newer ones that had ended — the page said "degraded" with no incident to show for it.
 */
export function newestIncidents(
  sorted: readonly PublicIncident[],
  max: number,
  perComponent: number,
): PublicIncident[] {
  const taken = new Map<string, number>();
  const ongoing: PublicIncident[] = [];
  const first: PublicIncident[] = [];
  const rest: PublicIncident[] = [];
  for (const incident of sorted) {
    const n = taken.get(incident.component) ?? 0;
    taken.set(incident.component, n + 1);
    (incident.endedAt === null ? ongoing : n < perComponent ? first : rest).push(incident);
  }
  return [...ongoing, ...first, ...rest].slice(0, max).sort(newestFirst);
}
