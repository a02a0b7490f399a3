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
 * The instant a wall-clock time `wall` (ms, as UTC) names in `timezone`: the earlier one when the clock went back
 * (it names two); when it went forward over it (a time that does not exist that day: 02:30 on a spring-forward night
 * in Europe/Berlin), the instant that is as far after the change as the time is after its start (03:30 CEST) — as
 * Temporal's `compatible` and Go's time.Date do.
 */
function instantOf(wall: number, timezone: string): number {
  const before = wall - offsetAt(wall - DAY_MS, timezone);
  const after = wall - offsetAt(wall + DAY_MS, timezone);
  const valid = [before, after].filter((i) => wallClock(i, timezone) === wall);
  return valid.length > 0 ? Math.min(...valid) : before;
}
const DAY_MS = 86_400_000;

/**
 * An occurrence cron-parser skips: one whose time of day the clock jumped over (spring forward), taken at instantOf's
 * instant. `direction` -1: the latest at or before `t`; +1: the first after `t`. Null when none, or when it is the
 * one cron-parser gives anyway.
 */
function occurrenceByWallClock(expr: string, timezone: string, t: number, direction: -1 | 1): number | null {
  // Forward from a time just after the clock jumped (03:10 CEST on a spring-forward night): an occurrence it jumped
  // over has a wall time before t's (02:30) yet opens after t (03:30 CEST). Read from the wall clock that far back —
  // starting at t's own wall time missed it, and nextOpening (a status page's walk) gave the next day's.
  const jump = direction > 0 ? Math.max(0, offsetAt(t, timezone) - offsetAt(t - DAY_MS, timezone)) : 0;
  try {
    const it = CronExpressionParser.parse(expr, {
      tz: 'UTC',
      currentDate: new Date(wallClock(t, timezone) - jump + (direction < 0 ? 1 : 0)),
    });
    // The wall-clock occurrence nearest `t` may lie on the other side of it once placed (a skipped time moves
    // forward): a few candidates in the direction asked — and those of the wall time read again after a jump (at
    // most one a minute).
    const tries = 3 + Math.ceil(jump / 60_000);
    for (let i = 0; i < tries; i++) {
      const wall = (direction < 0 ? it.prev() : it.next()).getTime();
      const at = instantOf(wall, timezone);
      if (direction < 0 ? at <= t : at > t) return at;
    }
  } catch {
    return null;
  }
  return null;
}

/** The latest occurrence of a cron expression at or before `now` (ms), or null when there is none. */
export function latestOccurrence(
  expr: string,
  timezone: string,
  now: number,
  from?: number,
  lookbackMs = DAY_MS,
): number | null {
  // Occurrences fall on whole minutes; starting 1 ms after now makes `prev()` include an occurrence at now.
  let at: number | null;
  try {
    at = CronExpressionParser.parse(expr, { tz: timezone, currentDate: new Date(now + 1) })
      .prev()
      .getTime();
  } catch {
    at = null;
  }
  // cron-parser skips an occurrence whose time the clock jumped over: 02:00 daily on a spring-forward night, and a
  // nightly window of 02:00–04:00 stayed shut that night (people paged through planned work). Looked for only when
  // the offset changed within the look-back (every window's evaluation would pay for a second parse otherwise).
  if (offsetAt(now, timezone) !== offsetAt(now - lookbackMs - DAY_MS, timezone)) {
    const skipped = occurrenceByWallClock(expr, timezone, now, -1);
    if (skipped !== null && (at === null || skipped > at)) at = skipped;
  }
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
  const start = latestOccurrence(schedule.cron, schedule.timezone, last, from, duration);
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
  let at: number | null;
  try {
    at = CronExpressionParser.parse(schedule.cron, { tz: schedule.timezone, currentDate: new Date(after) })
      .next()
      .getTime();
  } catch {
    at = null;
  }
  // As latestOccurrence: an occurrence whose time the clock jumps over opens after the jump.
  const skipped = occurrenceByWallClock(schedule.cron, schedule.timezone, after, 1);
  if (skipped !== null && (at === null || skipped < at)) at = skipped;
  // cron-parser's next() passes over an occurrence in the hour the clock went back over (02:30 on a fall-back night
  // in Europe/Berlin, the second time: 01:30Z from 00:40Z gave the next day's), which openWindow opens at (prev()
  // finds it): when the offset changed before `at`, the earliest occurrence after `after` as latestOccurrence reads it.
  if (at !== null && offsetAt(after, schedule.timezone) !== offsetAt(at, schedule.timezone)) {
    for (;;) {
      const earlier = latestOccurrence(schedule.cron, schedule.timezone, at - 1);
      if (earlier === null || earlier <= after) break;
      at = earlier;
    }
  }
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
