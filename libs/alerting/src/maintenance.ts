import { CronExpressionParser } from 'cron-parser';
import { durationMs, type MaintenanceWindow, type MaintenanceSchedule } from '@fleetwatch/contracts';
import type { AlertTarget } from './selector';

// Maintenance windows (SPEC §7): while one is open, alerts of the targets it covers are muted; checks
// and evaluation go on. A recurring window is open from each cron occurrence (in its time zone, so
// "0 9 * * *" in Europe/Berlin is 09:00 local on both sides of a DST change) for its duration. Open at
// `now` means: the latest occurrence ≤ now is less than `duration` ago — any earlier occurrence that
// would still cover now ends no later than that one's window, so the latest is the only one to test.

/** Why a cron expression cannot be used, or null (the contract checks the shape; this parses it). */
export function cronProblem(expr: string, timezone = 'UTC'): string | null {
  try {
    CronExpressionParser.parse(expr, { tz: timezone, currentDate: new Date(0) }).next();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Wall-clock time in `timezone` at instant `t`, as if that clock were UTC (ms). Formatters are kept per zone.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();
function wallClock(t: number, timezone: string): number {
  let f = formatters.get(timezone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timezone, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(t)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  // Years before 100 map to 19xx in Date.UTC; not a time a maintenance window is evaluated at.
  return wall + (((t % 1000) + 1000) % 1000);
}

const offsetAt = (t: number, timezone: string): number => wallClock(t, timezone) - t;

/**
 * Every instant a wall-clock time `wall` (ms, as UTC) names in `timezone`, earliest first: two where the clock went
 * back over it (02:30 on a fall-back night in Europe/Berlin: CEST, then CET), one where it did not change; where it
 * went forward over it (a time that does not exist that day: 02:30 on a spring-forward night), the instant that is as
 * far after the change as the time is after its start (03:30 CEST) — as Temporal's `compatible` and Go's time.Date do.
 */
function instantsOf(wall: number, timezone: string): number[] {
  const before = wall - offsetAt(wall - DAY_MS, timezone);
  const after = wall - offsetAt(wall + DAY_MS, timezone);
  const valid = (before === after ? [before] : [before, after].sort((a, b) => a - b)).filter(
    (i) => wallClock(i, timezone) === wall,
  );
  return valid.length > 0 ? valid : [before];
}
const DAY_MS = 86_400_000;

/** The least and greatest UTC offset of `timezone` over [t − 1 day, t + 1 day] (as sampled: one change a day). */
function offsetsAround(t: number, timezone: string): { lo: number; hi: number } {
  const o = [offsetAt(t - DAY_MS, timezone), offsetAt(t, timezone), offsetAt(t + DAY_MS, timezone)];
  return { lo: Math.min(...o), hi: Math.max(...o) };
}

/**
 * Cron occurrences a walk reads at most beyond the minutes the zone's offsets about `t` span (one a minute over the
 * ~2 h a clock change moves an answer by is ~120; Pacific/Apia skipping a day, 24 h: 1,440 more).
 */
const MAX_OCCURRENCE_STEPS = 1_000;

/**
 * The occurrence of a cron expression in `timezone` nearest `t`: `direction` -1, the latest at or before `t`; +1, the
 * first after it. Null when none (or none within MAX_OCCURRENCE_STEPS cron reads).
 *
 * The cron is read in wall-clock time (cron-parser in UTC: no clock changes) and each wall time placed by instantsOf.
 * cron-parser's own zone handling is not used: about a clock change of 30 minutes (Australia/Lord_Howe) its prev()
 * and next() ran into their 10,000-step limit and threw — for up to a week after the October change, 0.15–1.3 s each,
 * on every mute check of such a window — and it skipped occurrences the clock jumped over or passed twice. Wall times
 * are walked from the nearest on: an instant from wall time w lies within [w − hi, w − lo] (the zone's offsets about
 * it), so the walk stops once no later wall time can beat the best found.
 */
function occurrence(expr: string, timezone: string, t: number, direction: -1 | 1): number | null {
  let it: ReturnType<typeof CronExpressionParser.parse>;
  let steps = MAX_OCCURRENCE_STEPS;
  try {
    const { lo, hi } = offsetsAround(t, timezone);
    // Five-field crons: at most one wall time a minute between the first read and the first that can land past t.
    steps += Math.ceil((hi - lo) / 60_000);
    // Walls whose instants may be ≤ t go up to t + hi (prev() from 1 ms after includes it); those > t start after t + lo.
    it = CronExpressionParser.parse(expr, { tz: 'UTC', currentDate: new Date(direction < 0 ? t + hi + 1 : t + lo) });
  } catch {
    return null;
  }
  let best: number | null = null;
  let bound = 0;
  for (let step = 0; step < steps; step++) {
    let wall: number;
    try {
      wall = (direction < 0 ? it.prev() : it.next()).getTime();
    } catch {
      break; // none further (cron-parser's own limit, in UTC: a date that never comes)
    }
    if (best !== null && (direction < 0 ? wall <= bound : wall >= bound)) break;
    for (const at of instantsOf(wall, timezone)) {
      const better = direction < 0 ? at <= t && (best === null || at > best) : at > t && (best === null || at < best);
      if (better) {
        best = at;
        const { lo, hi } = offsetsAround(at, timezone);
        bound = direction < 0 ? at + lo : at + hi;
      }
    }
  }
  return best;
}

/** The latest occurrence of a cron expression at or before `now` (ms), or null when there is none. */
export function latestOccurrence(expr: string, timezone: string, now: number, from?: number): number | null {
  // Occurrences fall on whole minutes, each instant a wall time names counts: 02:00 daily on a spring-forward night
  // opens at the jump (a nightly window of 02:00–04:00 stayed shut that night: people paged through planned work), and
  // 02:30 on a fall-back night opens twice.
  const at = occurrence(expr, timezone, now, -1);
  return at === null || (from !== undefined && at < from) ? null : at;
}

/** The open window at `now`: [start, end) in ms, or null when closed. */
export function openWindow(schedule: MaintenanceSchedule, now: number): { start: number; end: number } | null {
  if (schedule.type === 'once') {
    const start = Date.parse(schedule.startsAt);
    const end = Date.parse(schedule.endsAt);
    return start <= now && now < end ? { start, end } : null;
  }
  const from = schedule.from ? Date.parse(schedule.from) : undefined;
  const until = schedule.until ? Date.parse(schedule.until) : undefined;
  if (from !== undefined && now < from) return null;
  const duration = durationMs(schedule.duration);
  // The latest occurrence before `until` (one at or after it is not in the series): an hourly window of 2 h with
  // `until` 10:00 is open at 10:30 from its 09:00 occurrence, as it would be with `until` 10:15.
  const last = until !== undefined ? Math.min(now, until - 1) : now;
  const start = latestOccurrence(schedule.cron, schedule.timezone, last, from);
  if (start === null) return null;
  const end = start + duration;
  return now < end ? { start, end } : null;
}

export function maintenanceActive(window: Pick<MaintenanceWindow, 'schedule'>, now: number): boolean {
  return openWindow(window.schedule, now) !== null;
}

/** Whether a window's scope covers a target: listed by id, carrying one of its tags, or in one of its sites. */
export function maintenanceCovers(
  window: Pick<MaintenanceWindow, 'scope'>,
  target: Pick<AlertTarget, 'id' | 'site' | 'tags'>,
): boolean {
  const s = window.scope;
  return (
    s.targetIds.includes(target.id) || s.sites.includes(target.site) || s.tags.some((t) => target.tags.includes(t))
  );
}

/** The windows muting a target now. */
export function maintenanceFor(
  windows: readonly MaintenanceWindow[],
  target: AlertTarget,
  now: number,
): MaintenanceWindow[] {
  return windows.filter((w) => maintenanceCovers(w, target) && maintenanceActive(w, now));
}

/**
 * When a window next opens after `now` (ms), for schedulers and the dashboard; null when it never will.
 */
export function nextOpening(schedule: MaintenanceSchedule, now: number): number | null {
  if (schedule.type === 'once') {
    const start = Date.parse(schedule.startsAt);
    return start > now ? start : null;
  }
  const until = schedule.until ? Date.parse(schedule.until) : undefined;
  const from = schedule.from ? Date.parse(schedule.from) : undefined;
  const after = Math.max(now, (from ?? now) - 1);
  // As latestOccurrence: an occurrence whose time the clock jumps over opens after the jump, and one the clock passes
  // twice opens at both (cron-parser's next() gave the next day's for the second).
  const at = occurrence(schedule.cron, schedule.timezone, after, 1);
  return at === null || (until !== undefined && at >= until) ? null : at;
}

/**
 * When a window is open during [from, to), as openWindow (muting, the live state) reads it at every instant: the
 * openings open at some time in the range, each whole ([start, end) in ms, so one may begin before `from` or end
 * after `to`), oldest first, overlapping and touching ones joined — what a status page needs to show past planned
 * maintenance over a target's DOWN, PARTIAL or STALE stretches (the window as stored now: its schedule is not
 * versioned). Walked one opening at a time from `from`: where the window is open at t (openWindow) it stays open to
 * that opening's end, and a later occurrence before then keeps it open past it (openWindow at that end finds it);
 * where it is closed, nothing opens before nextOpening. So the work is one or two cron reads (~0.1–0.3 ms) per
 * opening inside the range, not per opening of the window's history — and at most `maxSteps` of them: `reached` is
 * how far the walk got ([from, reached) is decided; `to` when done), `steps` how many it took.
 */
export function openingsWithin(
  schedule: MaintenanceSchedule,
  from: number,
  to: number,
  maxSteps = Infinity,
): { open: Array<{ start: number; end: number }>; reached: number; steps: number } {
  const open: Array<{ start: number; end: number }> = [];
  let t = from;
  let steps = 0;
  while (t < to && steps < maxSteps) {
    steps++;
    const o = openWindow(schedule, t);
    if (o !== null) {
      const last = open[open.length - 1];
      if (last && o.start <= last.end) last.end = Math.max(last.end, o.end);
      else open.push({ start: o.start, end: o.end });
      // o.end > t: open at t means t < end.
      t = o.end;
      continue;
    }
    // Closed at t: closed until the next opening (an occurrence at t itself would have it open).
    const next = nextOpening(schedule, t);
    t = next === null ? to : next;
  }
  return { open, reached: Math.min(t, to), steps };
}
