import { TargetStatus } from '@fleetwatch/contracts';

// Daily uptime bars of a public status page (issue 17): from a target's consensus status events
// (status_events with no location), how long each UTC day it spent up, degraded (PARTIAL) or down.
// STALE, UNKNOWN and PAUSED are no data: a day with none of the three has no uptime (a grey bar),
// which is not the same as a day fully up. Several targets of one component add up (mergeDays).
// Planned maintenance (SPEC §7: maintenance windows mute, checks go on): time a target spent DOWN, PARTIAL or
// STALE inside a window that covers it is maintenance — shown as such, not counted against uptime (as PAUSED is),
// and not an incident. The windows come as plain intervals (libs/alerting openingsWithin walks them, over the
// stretches maintenanceStretches gives: only there can a window change what the page says).

export const DAY_MS = 86_400_000;

/** One status change: from `at` on, the target was `to`. */
export interface StatusChange {
  at: number;
  to: TargetStatus;
}

export interface DayTotals {
  /** Start of the UTC day (ms). */
  start: number;
  upMs: number;
  degradedMs: number;
  downMs: number;
  /** Time in PAUSED (maintenance: shown, not counted against uptime). */
  pausedMs: number;
  /** Time DOWN, PARTIAL or STALE inside a maintenance window (planned: shown, not counted against uptime). */
  maintenanceMs: number;
}

/** A stretch of time [start, end) in ms. */
export interface TimeInterval {
  start: number;
  end: number;
}

export interface UptimeInput {
  /** How many days, the last being the one holding `now`. */
  days: number;
  now: number;
  /** The status in force at the window's start (the last change before it), or null if none. */
  initial: TargetStatus | null;
  /**
   * Changes inside the window in the order they happened — the target's event sequence, not their times (see
   * inEffect); those before the window start or after `now` are ignored.
   */
  changes: readonly StatusChange[];
  /** Maintenance windows covering the target: sorted by start, not overlapping (mergeIntervals). */
  maintenance?: readonly TimeInterval[];
}

/** Sorted by start, overlapping and touching ones joined; empty ones left out. */
export function mergeIntervals(intervals: readonly TimeInterval[]): TimeInterval[] {
  const sorted = intervals.filter((i) => i.end > i.start).sort((a, b) => a.start - b.start);
  const out: TimeInterval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.start <= last.end) last.end = Math.max(last.end, i.end);
    else out.push({ ...i });
  }
  return out;
}

/** The statuses a maintenance window turns into maintenance: those it is there to excuse. */
export function excusedByMaintenance(status: TargetStatus | null): boolean {
  return status === TargetStatus.Down || status === TargetStatus.Partial || status === TargetStatus.Stale;
}

/** Index of the first of `sorted` (mergeIntervals) that ends after `t`; sorted.length when none. */
function firstEndingAfter(sorted: readonly TimeInterval[], t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid].end <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** How much of [a, b) lies inside `sorted` (mergeIntervals). */
function overlapMs(sorted: readonly TimeInterval[], a: number, b: number): number {
  let ms = 0;
  for (let i = firstEndingAfter(sorted, a); i < sorted.length && sorted[i].start < b; i++)
    ms += Math.min(b, sorted[i].end) - Math.max(a, sorted[i].start);
  return ms;
}

/**
 * The time each change took effect, in the order given (a target's event sequence): its own, or the one before it's
 * when that is later. Consensus events stored before their times were kept in order (aggregator, target-state.ts
 * `consensusAt`) were dated by the observation that caused them, and a slow probe's result is dated at its start: a
 * change can be dated seconds before the one it follows. Read in time order, the later change came first and the
 * target was left at a status it had left (an open "degraded" incident for a target UP).
 */
export function inEffect(changes: readonly StatusChange[]): StatusChange[] {
  let last = -Infinity;
  return changes.map((c) => {
    last = Math.max(last, c.at);
    return last === c.at ? c : { at: last, to: c.to };
  });
}

export const startOfUtcDay = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;

function emptyDays(days: number, now: number): DayTotals[] {
  const first = startOfUtcDay(now) - (days - 1) * DAY_MS;
  return Array.from({ length: days }, (_, i) => ({
    start: first + i * DAY_MS,
    upMs: 0,
    degradedMs: 0,
    downMs: 0,
    pausedMs: 0,
    maintenanceMs: 0,
  }));
}

function add(day: DayTotals, status: TargetStatus, ms: number): void {
  if (status === TargetStatus.Up) day.upMs += ms;
  else if (status === TargetStatus.Partial) day.degradedMs += ms;
  else if (status === TargetStatus.Down) day.downMs += ms;
  else if (status === TargetStatus.Paused) day.pausedMs += ms;
}

/** One target's totals per UTC day, oldest first; time after `now` is not counted. */
export function dailyTotals(input: UptimeInput): DayTotals[] {
  const days = emptyDays(Math.max(1, Math.floor(input.days)), input.now);
  const windowStart = days[0].start;
  const maintenance = input.maintenance ?? [];
  let status = input.initial;
  let from = windowStart;
  const spend = (until: number) => {
    if (status === null || until <= from) return;
    for (let d = Math.floor((from - windowStart) / DAY_MS); d < days.length; d++) {
      const day = days[d];
      const a = Math.max(from, day.start);
      const b = Math.min(until, day.start + DAY_MS);
      if (b <= a) break;
      const excused = maintenance.length > 0 && excusedByMaintenance(status) ? overlapMs(maintenance, a, b) : 0;
      day.maintenanceMs += excused;
      add(day, status, b - a - excused);
    }
  };
  for (const c of inEffect(input.changes)) {
    if (c.at > input.now) break;
    if (c.at < windowStart) {
      status = c.to;
      continue;
    }
    spend(c.at);
    status = c.to;
    from = c.at;
  }
  spend(input.now);
  return days;
}

/**
 * When a target was DOWN, PARTIAL or STALE from `from` to `now` (oldest first, joined where touching), read as
 * dailyTotals and incidentsOf read its changes: the only time a maintenance window can excuse (an incident is DOWN or
 * PARTIAL time; the bars excuse those and STALE). One going on at `now` ends at now + 1 ms: a window opening at `now`
 * itself ends an incident going on (outsideMaintenance), so an opening at now is asked about too.
 */
export function maintenanceStretches(
  initial: TargetStatus | null,
  changes: readonly StatusChange[],
  from: number,
  now: number,
): TimeInterval[] {
  const out: TimeInterval[] = [];
  let status = initial;
  let since = from;
  const close = (until: number) => {
    if (!excusedByMaintenance(status) || until <= since) return;
    const last = out[out.length - 1];
    if (last && since <= last.end) last.end = Math.max(last.end, until);
    else out.push({ start: since, end: until });
  };
  for (const c of inEffect(changes)) {
    const at = Math.min(c.at, now);
    if (at > since) {
      close(at);
      since = at;
    }
    status = c.to;
  }
  close(now + 1);
  return out;
}

/** Several targets' totals day by day (all from dailyTotals with the same days and now). */
export function mergeDays(all: readonly DayTotals[][]): DayTotals[] {
  if (all.length === 0) return [];
  return all[0].map((d, i) => {
    const out = { ...d };
    for (const other of all.slice(1)) {
      const o = other[i];
      out.upMs += o.upMs;
      out.degradedMs += o.degradedMs;
      out.downMs += o.downMs;
      out.pausedMs += o.pausedMs;
      out.maintenanceMs += o.maintenanceMs;
    }
    return out;
  });
}

export type DayState = 'operational' | 'degraded' | 'outage' | 'maintenance' | 'unknown';

/** Up (degraded counts as up) over the known time, 0–1; null with no known time. */
export function uptimeOf(d: Pick<DayTotals, 'upMs' | 'degradedMs' | 'downMs'>): number | null {
  const known = d.upMs + d.degradedMs + d.downMs;
  return known === 0 ? null : (d.upMs + d.degradedMs) / known;
}

/**
 * The worst state a day saw: any down time is an outage, any degraded time degraded. Time excused by a maintenance
 * window marks the day maintenance even when the rest of it was up (a planned maintenance is shown, as status pages
 * do); PAUSED time only when nothing else is known (a pause is not planned work that took the service away).
 */
export function dayStateOf(d: DayTotals): DayState {
  if (d.downMs > 0) return 'outage';
  if (d.degradedMs > 0) return 'degraded';
  if (d.maintenanceMs > 0) return 'maintenance';
  if (d.upMs > 0) return 'operational';
  if (d.pausedMs > 0) return 'maintenance';
  return 'unknown';
}

/** The whole window's uptime (sums of every day). */
export function windowUptime(days: readonly DayTotals[]): number | null {
  return uptimeOf(
    days.reduce(
      (s, d) => ({ upMs: s.upMs + d.upMs, degradedMs: s.degradedMs + d.degradedMs, downMs: s.downMs + d.downMs }),
      { upMs: 0, degradedMs: 0, downMs: 0 },
    ),
  );
}

/** A current status as visitors see it; `inMaintenance`: a maintenance window covering the target is open. */
export function publicStateOf(status: TargetStatus, inMaintenance = false): DayState {
  if (inMaintenance && excusedByMaintenance(status)) return 'maintenance';
  switch (status) {
    case TargetStatus.Up:
      return 'operational';
    case TargetStatus.Partial:
      return 'degraded';
    case TargetStatus.Down:
      return 'outage';
    case TargetStatus.Paused:
      return 'maintenance';
    default:
      return 'unknown';
  }
}

const RANK: Record<DayState, number> = { outage: 4, degraded: 3, unknown: 2, maintenance: 1, operational: 0 };

/** The worst of several states (a component's targets, a page's components); none → unknown. */
export function worstState(states: readonly DayState[]): DayState {
  if (states.length === 0) return 'unknown';
  return states.reduce((w, s) => (RANK[s] > RANK[w] ? s : w));
}

export interface IncidentSpan {
  state: 'degraded' | 'outage';
  start: number;
  /** null: still going on. */
  end: number | null;
}

/**
 * Incidents of one target: each stretch spent DOWN or PARTIAL, from the change that started it to
 * the next change to another status (a DOWN → PARTIAL change ends one and starts the next).
 * `initial` in force at `from`: an incident already going on then starts at `from`. `changes` in the order they
 * happened (the target's event sequence; see inEffect). One dated after `now` (a clock ahead: ingest and collectors
 * are allowed minutes of skew) is in force now — the target's live status already is it — not at its later time.
 */
export function incidentsOf(
  initial: TargetStatus | null,
  changes: readonly StatusChange[],
  from: number,
  now = Infinity,
): IncidentSpan[] {
  const out: IncidentSpan[] = [];
  let open: IncidentSpan | null = null;
  const stateOf = (s: TargetStatus | null) =>
    s === TargetStatus.Down ? 'outage' : s === TargetStatus.Partial ? 'degraded' : null;
  const s0 = stateOf(initial);
  if (s0) open = { state: s0, start: from, end: null };
  for (const change of inEffect(changes)) {
    const c = change.at > now ? { at: now, to: change.to } : change;
    if (c.at < from) continue;
    const s = stateOf(c.to);
    if (open && open.state === s) continue;
    if (open) {
      open.end = c.at;
      // One that lasted no time is left out: changes in one instant (PARTIAL then DOWN, dated alike) are one incident.
      if (open.end > open.start) out.push(open);
      open = null;
    }
    if (s) open = { state: s, start: c.at, end: null };
  }
  if (open) out.push(open);
  return out;
}

/**
 * Incidents less the time maintenance windows excuse (`maintenance`: mergeIntervals): a part inside a window is
 * maintenance, not an incident; an incident that runs past a window's end goes on as one from that end. An incident
 * still going on (end null) is taken to `now`; the part of it that reaches `now` outside any window stays open.
 */
export function outsideMaintenance(
  spans: readonly IncidentSpan[],
  maintenance: readonly TimeInterval[],
  now: number,
): IncidentSpan[] {
  if (maintenance.length === 0) return [...spans];
  const out: IncidentSpan[] = [];
  for (const span of spans) {
    // An incident going on is one at `now` itself unless a window is open then ([start, end), as openWindow has it):
    // one begun this instant, or going on as a window closes this instant, stays open; a window opening this instant
    // ends it.
    const open = span.end === null;
    const end = span.end ?? Math.max(now, span.start);
    const reaches = (t: number) => (open ? t <= end : t < end);
    let from = span.start;
    for (let i = firstEndingAfter(maintenance, from); i < maintenance.length && reaches(maintenance[i].start); i++) {
      const w = maintenance[i];
      if (w.start > from) out.push({ state: span.state, start: from, end: w.start });
      from = Math.max(from, w.end);
    }
    if (reaches(from)) out.push({ state: span.state, start: from, end: span.end });
  }
  return out;
}
