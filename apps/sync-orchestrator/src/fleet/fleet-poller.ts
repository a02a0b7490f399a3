import type { FlowMetrics, FlowPoint, MemberPollRecord, MemberSnapshotView } from '@fleetwatch/contracts';
import {
  FleetPollFencedError,
  type FleetPollFence,
  type FleetPollOutcome,
  type FleetSitesRepository,
} from '@fleetwatch/persistence';
import type { Dispatcher } from 'undici';
import { ByteBudget } from './byte-budget';
import type { LeaderMember } from './leader-config';
import { createMemberAgent, messageOf, pollMember, type MemberPoll } from './member-client';
import { DEFAULT_MAX_INFLIGHT_BYTES, defaultMemberTimeoutMs } from './poll-defaults';

// One poll cycle of a leader (SPEC §8): every member in parallel, at most `concurrency` at a
// time, polling cut shortly before `timeoutMs` (requests still open are aborted, members not
// started yet are failed) so that the cycle, writes included, ends within it. Each member's
// last good data is kept in Redis with the new attempt; a failed member keeps it, flagged. The
// cache read before a cycle (the first, or after forget()) counts within the overall timeout too.
// The answers read at once share the cycle's in-flight byte budget (byte-budget.ts).

export interface PollCycleOptions {
  concurrency: number;
  timeoutMs: number;
  /**
   * One member's limit (FLEET_POLL_MEMBER_TIMEOUT_MS; default: half the overall timeout, at most 5 s), so hanging
   * members cannot hold every worker.
   */
  memberTimeoutMs?: number;
  /** Bytes of members' answers held at once in a cycle (FLEET_POLL_MAX_INFLIGHT_BYTES; DEFAULT_MAX_INFLIGHT_BYTES). */
  maxInflightBytes?: number;
  /** The HTTP agent members are called through (default: one of the poller's own, closed by close()). */
  dispatcher?: Dispatcher;
  /** The delay between cycles: with it, each attempt says by when a next is to have ended (`attempt.nextBy`). */
  intervalMs?: number;
}

/** Where each member's last attempt and last good data are kept (FleetCache, or the poller's FleetRecordStore). */
export interface MemberRecordStore {
  getMany(names: readonly string[]): Promise<Map<string, MemberPollRecord>>;
  /** With `epoch`: refused (FleetPollFencedError) once a newer holder of the fleet-poll lease has taken it. */
  setMany(records: ReadonlyMap<string, MemberPollRecord>, epoch?: number): Promise<void>;
}

export interface PollCycleResult {
  /** The whole cycle: polling, then writing the cache and the fleet table. */
  durationMs: number;
  /** Polling only (up to the overall timeout). */
  pollMs: number;
  ok: number;
  failed: number;
  /** Members not started before the overall timeout. */
  notStarted: number;
  /** CPU time of the whole process (user + system) during the cycle: what a cycle costs, whatever the load of the box. */
  cpuMs: number;
  /** The most bytes of members' answers held at once (read, not yet parsed): at most maxInflightBytes. */
  peakInflightBytes: number;
}

export type PollOne = (
  member: LeaderMember,
  signal: AbortSignal,
  flowMinutes: number,
  heldSnapshot: MemberSnapshotView | null,
  /** The cycle's in-flight byte budget, shared by every member's answers. */
  budget: ByteBudget,
) => Promise<MemberPoll>;

const FLOW_WINDOW_MINUTES = 60;

const sameFigures = (a: FlowPoint['ingress'], b: FlowPoint['ingress']) => a.count === b.count && a.bytes === b.bytes;
const samePoint = (a: FlowPoint | undefined, b: FlowPoint) =>
  a !== undefined &&
  sameFigures(a.ingress, b.ingress) &&
  sameFigures(a.egress, b.egress) &&
  sameFigures(a.stored, b.stored) &&
  sameFigures(a.deleted, b.deleted);
const sameSources = (a: FlowMetrics['sources'], b: FlowMetrics['sources']) => {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
};

/**
 * A member's flow over the last hour from what was held and what just came: points by minute,
 * the newer answer winning for a minute both have (the current minute grows), oldest first.
 * When the fresh answer changes nothing, the held object itself (its serialised form is then reused).
 * Points are on the member's clock: a held point after the fresh answer's newest was stamped while that clock ran
 * ahead (since corrected) and is dropped — kept, the newest 60 would be those for as long as the clock was ahead. A
 * point whose time does not read is dropped.
 */
export function mergeFlow(
  held: FlowMetrics | undefined,
  fresh: FlowMetrics,
  windowMinutes = FLOW_WINDOW_MINUTES,
): FlowMetrics {
  let newest = -Infinity;
  for (const p of fresh.points) {
    const t = Date.parse(p.at);
    if (t > newest) newest = t;
  }
  const heldNewest = held?.points.length ? Date.parse(held.points[held.points.length - 1].at) : -Infinity;
  if (
    held &&
    held.minutes === windowMinutes &&
    held.site === fresh.site &&
    held.stepSeconds === fresh.stepSeconds &&
    sameSources(held.sources, fresh.sources) &&
    (newest === -Infinity || heldNewest <= newest)
  ) {
    const heldAt = new Map(held.points.map((p) => [p.at, p]));
    const oldest = held.points[0]?.at;
    // Unchanged: every fresh point already held with the same figures (or older than the window held).
    if (
      fresh.points.every(
        (p) =>
          samePoint(heldAt.get(p.at), p) ||
          (held.points.length >= windowMinutes && oldest !== undefined && Date.parse(p.at) < Date.parse(oldest)),
      )
    )
      return held;
  }
  const byAt = new Map((held?.points ?? []).map((p) => [p.at, p]));
  for (const p of fresh.points) byAt.set(p.at, p);
  // Each time parsed once (not in the comparator: 60 points × 1,000 members on a leader's first cycle).
  const points = [...byAt.values()]
    .map((p) => ({ t: Date.parse(p.at), p }))
    .filter(({ t }) => Number.isFinite(t) && (newest === -Infinity || t <= newest))
    .sort((a, b) => a.t - b.t)
    .slice(-windowMinutes)
    .map(({ p }) => p);
  return { ...fresh, minutes: windowMinutes, points };
}

/** Whether good data was read from `url` (a record of a poller before MemberPollRecord's `url`: taken as so). */
const sameSite = (good: NonNullable<MemberPollRecord['good']>, url: string | undefined) =>
  good.url === undefined || good.url === url;

export class FleetPoller {
  /**
   * Each member's last hour of flow, kept in memory: after the first full hour, a cycle asks only
   * for the minutes since the last point (JSON and validation of 60 points × 1,000 members per
   * cycle were most of a cycle's CPU). A restarted leader starts from the hour in the cache.
   */
  private readonly flows = new Map<string, FlowMetrics>();
  /**
   * When each member's held flow hour was last read (this leader's clock): the next asks for the minutes since. Not the
   * last good poll's time — a poll whose flow call failed is good, and asking from it left the minutes of the failed
   * polls out of the hour for good.
   */
  private readonly flowAt = new Map<string, number>();
  private readonly good = new Map<string, NonNullable<MemberPollRecord['good']>>();
  private loaded = false;
  /**
   * How each member's last attempt on this poller ended (none yet: absent), and how many cycles in a row it was not
   * started: the order of the next cycle (see order()).
   */
  private readonly lastOutcome = new Map<string, 'ok' | 'failed' | 'notStarted'>();
  /** The cycle each member was last started in (members never started: absent). */
  private readonly lastStarted = new Map<string, number>();
  private cycles = 0;
  private readonly ownAgent: Dispatcher | undefined;
  private readonly pollOne: PollOne;

  constructor(
    private readonly cache: MemberRecordStore,
    private readonly sites: FleetSitesRepository,
    private readonly options: PollCycleOptions,
    pollOne?: PollOne,
  ) {
    const dispatcher = options.dispatcher ?? (pollOne ? undefined : (this.ownAgent = createMemberAgent()));
    this.pollOne =
      pollOne ??
      ((m, s, minutes, heldSnapshot, budget) => pollMember(m, s, minutes, { dispatcher, heldSnapshot, budget }));
  }

  /** Closes the poller's own connections to members. */
  async close(): Promise<void> {
    await this.ownAgent?.close();
  }

  /**
   * Forgets each member's last good data and flow hour held in memory: they are read from the cache again
   * before the next cycle. For a poller taking the lease back: meanwhile another replica's cycles wrote
   * newer data than it remembers, which a failed poll would otherwise replace with the older.
   */
  forget(): void {
    this.loaded = false;
    this.good.clear();
    this.flows.clear();
    this.flowAt.clear();
  }

  /**
   * Once, before the first cycle (and after forget()): each member's last good data from the cache (a restarted leader
   * then asks only for the flow minutes since its last point, and for the snapshot conditionally).
   */
  private async load(members: readonly LeaderMember[], signal: AbortSignal): Promise<void> {
    if (this.loaded) return;
    // A cache that cannot be read fails the cycle (tried again next tick): going on without what it holds, a
    // member failing this cycle would be written without its last good data, erasing it there. So does one that
    // has not answered by the overall timeout (the read is left to end on its own; what it brings is not taken).
    const reading = this.cache.getMany(members.map((m) => m.name));
    let onAbort: (() => void) | undefined;
    const cut = new Promise<never>((_, reject) => {
      onAbort = () =>
        reject(
          new Error(
            `reading the members' last good data from the cache: ${String((signal.reason as Error)?.message ?? 'aborted')}`,
          ),
        );
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    reading.catch(() => undefined);
    cut.catch(() => undefined);
    let cached: Map<string, MemberPollRecord>;
    try {
      cached = await Promise.race([reading, cut]);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
    this.loaded = true;
    const urls = new Map(members.map((m) => [m.name, m.url]));
    for (const [name, r] of cached) {
      // Read from another URL (the member's changed, or its name now another site's): not this site's data.
      if (!r.good || !sameSite(r.good, urls.get(name))) continue;
      this.good.set(name, r.good);
      if (r.good.flow && r.good.flow.points.length > 0) {
        this.flows.set(name, r.good.flow);
        this.flowAt.set(name, Date.parse(r.good.flowAt ?? r.good.at));
      }
    }
  }

  /** Forgets what it holds of members no longer configured, and of those whose data was read from another URL. */
  private prune(members: readonly LeaderMember[]): void {
    const urls = new Map(members.map((m) => [m.name, m.url]));
    for (const [name, good] of this.good)
      if (!urls.has(name) || !sameSite(good, urls.get(name))) {
        this.good.delete(name);
        this.flows.delete(name);
        this.flowAt.delete(name);
      }
    for (const name of this.flows.keys())
      if (!urls.has(name)) {
        this.flows.delete(name);
        this.flowAt.delete(name);
      }
  }

  /**
   * The order members are started in this cycle. Config order alone let members that hang early in the list hold every
   * worker for memberTimeoutMs each, cycle after cycle, so that healthy members after them were never started before the
   * overall timeout (NEVER / STALE for ever). First those that answered last time (quick: they give their worker back
   * at once), in config order; then every other one, the one started longest ago (or never) first — a round robin, so
   * however many hang, each is started within ⌈their number / the starts a cycle makes⌉ cycles and none waits for ever.
   */
  private order(members: readonly LeaderMember[]): LeaderMember[] {
    const rank = (m: LeaderMember) => (this.lastOutcome.get(m.name) === 'ok' ? 0 : 1);
    return members
      .map((m, i) => ({ m, i, r: rank(m), s: this.lastStarted.get(m.name) ?? -1 }))
      .sort((a, b) => a.r - b.r || (a.r === 1 ? a.s - b.s : 0) || a.i - b.i)
      .map(({ m }) => m);
  }

  /**
   * One cycle. With `fence` (the fleet-poll lease's epoch this replica took it under), its writes are refused
   * (FleetPollFencedError) once another replica has taken the lease: a holder whose lease session died mid-cycle
   * must not write its older data over the next holder's.
   */
  async cycle(
    members: readonly LeaderMember[],
    now: () => number = Date.now,
    fence?: FleetPollFence,
  ): Promise<PollCycleResult> {
    const started = now();
    const cpu0 = process.cpuUsage();
    const abort = new AbortController();
    // Polling is cut a little before the overall timeout, so that writing the cache and the fleet
    // table still ends within it (a tenth of it, at most 2 s: ~0.3 s for 1,000 members on a quiet box).
    // The clock runs from the cycle's start: reading the cache first (load) takes from the same time.
    const pollLimitMs = this.options.timeoutMs - Math.min(2_000, Math.floor(this.options.timeoutMs / 10));
    const timer = setTimeout(
      () => abort.abort(new Error(`overall poll timeout (${this.options.timeoutMs} ms) reached`)),
      pollLimitMs,
    );
    try {
      await this.load(members, abort.signal);
    } catch (err) {
      clearTimeout(timer);
      throw err;
    }
    this.prune(members);
    const results = new Map<string, { at: number; durationMs: number; poll?: MemberPoll; error?: string }>();
    const memberTimeoutMs = this.options.memberTimeoutMs ?? defaultMemberTimeoutMs(this.options.timeoutMs);
    const budget = new ByteBudget(this.options.maxInflightBytes ?? DEFAULT_MAX_INFLIGHT_BYTES);
    const ordered = this.order(members);
    const cycle = ++this.cycles;
    let next = 0;
    const worker = async () => {
      while (next < ordered.length && !abort.signal.aborted) {
        const member = ordered[next++];
        this.lastStarted.set(member.name, cycle);
        const t0 = now();
        // One signal per member: its requests' listeners go with it, and a member that hangs
        // gives its worker back after memberTimeoutMs instead of holding it to the overall timeout.
        const own = new AbortController();
        const onOverall = () => own.abort(abort.signal.reason);
        abort.signal.addEventListener('abort', onOverall, { once: true });
        const timer = setTimeout(
          () => own.abort(new Error(`no answer within ${memberTimeoutMs} ms (member timeout)`)),
          memberTimeoutMs,
        );
        try {
          const held = this.flows.get(member.name);
          // The minutes since the held hour was fetched, on this leader's clock (the points' times are on the
          // member's: one running ahead asked for too few minutes and left holes; a time that does not read asked
          // for NaN, refused, on every later poll). Not known (none held): the whole hour.
          const fetchedAt = held ? (this.flowAt.get(member.name) ?? NaN) : NaN;
          const minutes = Number.isFinite(fetchedAt)
            ? Math.min(FLOW_WINDOW_MINUTES, Math.max(2, Math.ceil((t0 - fetchedAt) / 60_000) + 1))
            : FLOW_WINDOW_MINUTES;
          const poll = await this.pollOne(
            member,
            own.signal,
            minutes,
            this.good.get(member.name)?.snapshot ?? null,
            budget,
          );
          if (poll.flow) {
            this.flows.set(member.name, (poll.flow = mergeFlow(held, poll.flow)));
            this.flowAt.set(member.name, t0);
          }
          // A flow call that failed this time keeps the hour held (asked for again next cycle); none answered: none.
          else if (poll.partial?.flow !== undefined) poll.flow = held ?? null;
          else this.flows.delete(member.name);
          results.set(member.name, { at: now(), durationMs: now() - t0, poll });
        } catch (err) {
          results.set(member.name, { at: now(), durationMs: now() - t0, error: messageOf(err) });
        } finally {
          clearTimeout(timer);
          abort.signal.removeEventListener('abort', onOverall);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.options.concurrency, members.length) }, worker));
    } finally {
      clearTimeout(timer);
    }
    let notStarted = 0;
    // The next cycle's order (members no longer configured are forgotten).
    this.lastOutcome.clear();
    const configured = new Set(members.map((m) => m.name));
    for (const name of this.lastStarted.keys()) if (!configured.has(name)) this.lastStarted.delete(name);
    for (const m of members) {
      const r = results.get(m.name);
      this.lastOutcome.set(m.name, r ? (r.poll ? 'ok' : 'failed') : 'notStarted');
    }
    for (const m of members)
      if (!results.has(m.name)) {
        notStarted++;
        results.set(m.name, {
          at: now(),
          durationMs: 0,
          error: `not polled: overall poll timeout (${this.options.timeoutMs} ms) reached first`,
        });
      }

    const pollMs = now() - started;
    const records = new Map<string, MemberPollRecord>();
    const outcomes: FleetPollOutcome[] = [];
    let ok = 0;
    for (const m of members) {
      const r = results.get(m.name) ?? { at: now(), durationMs: 0, error: 'not polled' };
      const at = new Date(r.at).toISOString();
      const before = this.good.get(m.name);
      // What a part not read this time keeps: the time it was last read.
      const keptAt = (part: 'flowAt' | 'snapshotAt') => before?.[part] ?? before?.at ?? at;
      const good: MemberPollRecord['good'] = r.poll
        ? {
            at,
            report: r.poll.report,
            flow: r.poll.flow,
            snapshot: r.poll.snapshot,
            flowAt: r.poll.partial?.flow !== undefined ? keptAt('flowAt') : at,
            snapshotAt: r.poll.partial?.snapshot !== undefined ? keptAt('snapshotAt') : at,
            url: m.url,
          }
        : (before ?? null);
      if (good) this.good.set(m.name, good);
      if (r.poll) ok++;
      const nextBy =
        this.options.intervalMs === undefined
          ? {}
          : // Two whole cycles (delay + overall timeout each) after this one: one cycle lost (its writes refused, a
            // lease changing hands) or run to its timeout is not taken for a poller that stopped.
            { nextBy: new Date(r.at + 2 * (this.options.intervalMs + this.options.timeoutMs)).toISOString() };
      // A poll that succeeded with its flow or snapshot missing says which, and why (the drift view is as old as
      // the snapshot's generatedAt).
      const partial = r.poll?.partial;
      const error =
        r.error ??
        (partial
          ? [
              partial.snapshot !== undefined ? `snapshot not read (the last one kept): ${partial.snapshot}` : null,
              partial.flow !== undefined ? `flow not read: ${partial.flow}` : null,
            ]
              .filter((x): x is string => x !== null)
              .join('; ')
              .slice(0, 500)
          : null);
      records.set(m.name, {
        attempt: { at, ok: r.poll !== undefined, error, durationMs: r.durationMs, ...nextBy },
        good,
      });
      outcomes.push({ name: m.name, at: new Date(r.at), ok: r.poll !== undefined, error });
    }
    // The attempts go to Postgres even when the cache refuses them (Redis away, or slower than SYNC_REDIS_TIMEOUT_MS):
    // fleet_sites keeps each member's last attempt and error, and the cycle still fails, logged, for the cache.
    // A fenced refusal is not an outage: nothing of a cycle whose lease was taken is written.
    let cacheError: unknown;
    try {
      await this.cache.setMany(records, fence?.epoch);
    } catch (e) {
      if (e instanceof FleetPollFencedError) throw e;
      cacheError = e;
    }
    await this.sites.recordPolls(outcomes, fence);
    if (cacheError !== undefined) throw cacheError;
    const cpu = process.cpuUsage(cpu0);
    return {
      durationMs: now() - started,
      pollMs,
      ok,
      failed: members.length - ok,
      notStarted,
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      peakInflightBytes: budget.peakHeldBytes,
    };
  }
}
