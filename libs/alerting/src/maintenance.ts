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
  try {
    const it = CronExpressionParser.parse(expr, {
      tz: 'UTC',
      currentDate: new Date(wallClock(t, timezone) + (direction < 0 ? 1 : 0)),
    });
    // The wall-clock occurrence nearest `t` may lie on the other side of it once placed (a skipped time moves
    // forward): a few candidates in the direction asked.
    for (let i = 0; i < 3; i++) {
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
  return at === null || (until !== undefined && at >= until) ? null : at;
}

/** Openings of one window looked at for a past range (windowIntervals): an hourly window over 90 days is 2,160. */
export const MAINTENANCE_HISTORY_MAX_OPENINGS = 2_500;

/**
 * When a window was (or is) open during [from, to): its openings' [start, end) in ms, oldest first, overlapping and
 * touching ones joined — what a status page needs to show past planned maintenance (the window as stored now: its
 * schedule is not versioned). A recurring window's openings are read backwards from `to` with one parse of its
 * cron, at most `maxOpenings` of them (the newest: a window recurring every few minutes is cut off beyond that);
 * an occurrence the clock jumped over on a spring-forward night opens after the jump, as openWindow has it.
 */
export function windowIntervals(
  schedule: MaintenanceSchedule,
  from: number,
  to: number,
  maxOpenings = MAINTENANCE_HISTORY_MAX_OPENINGS,
): Array<{ start: number; end: number }> {
  if (schedule.type === 'once') {
    const start = Date.parse(schedule.startsAt);
    const end = Date.parse(schedule.endsAt);
    return start < to && end > from && end > start ? [{ start, end }] : [];
  }
  const duration = durationMs(schedule.duration);
  const seriesFrom = schedule.from ? Date.parse(schedule.from) : -Infinity;
  const until = schedule.until ? Date.parse(schedule.until) : Infinity;
  // Openings before `earliest` closed before `from`; those at or after `latest` are past `to` or the series' end.
  const earliest = Math.max(from - duration, seriesFrom);
  const latest = Math.min(to, until);
  if (!(latest > earliest)) return [];
  const starts: number[] = [];
  try {
    const it = CronExpressionParser.parse(schedule.cron, { tz: schedule.timezone, currentDate: new Date(latest) });
    while (starts.length < maxOpenings) {
      const at = it.prev().getTime();
      if (at < earliest) break;
      if (at < latest) starts.push(at);
    }
  } catch {
    // An expression cron-parser cannot read (the loaders leave such windows out), or no occurrence left.
  }
  // cron-parser skips an occurrence whose time of day the clock jumped over: on each day the zone's clock went
  // forward, every wall-clock occurrence inside the jumped-over stretch, placed after the jump (instantOf, as
  // openWindow has it). Not only the day's last one: 02:00 daily is jumped over while 12:00 is not, and the next
  // day's 02:00 can fall on this UTC day's end.
  const oldest = starts.length >= maxOpenings ? starts[starts.length - 1] : earliest;
  for (let day = Math.floor(oldest / DAY_MS) * DAY_MS; day < latest; day += DAY_MS) {
    for (const skipped of jumpedOver(schedule.cron, schedule.timezone, day))
      if (skipped >= oldest && skipped < latest && !starts.includes(skipped)) starts.push(skipped);
  }
  starts.sort((a, b) => a - b);
  const out: Array<{ start: number; end: number }> = [];
  for (const start of starts) {
    const end = start + duration;
    if (end <= from) continue;
    const last = out[out.length - 1];
    if (last && start <= last.end) last.end = Math.max(last.end, end);
    else out.push({ start, end });
  }
  return out;
}

/**
 * The occurrences of `expr` on UTC day `day` whose wall-clock time in `timezone` the clock jumped over (it went
 * forward that day), each at instantOf's instant; none on a day it did not.
 */
function jumpedOver(expr: string, timezone: string, day: number): number[] {
  const before = offsetAt(day, timezone);
  const after = offsetAt(day + DAY_MS, timezone);
  if (after <= before) return [];
  // The first whole minute on the new offset (zones change on whole minutes).
  let lo = day;
  let hi = day + DAY_MS;
  while (hi - lo > 60_000) {
    const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
    if (offsetAt(mid, timezone) === before) lo = mid;
    else hi = mid;
  }
  // Wall-clock times [hi + before, hi + after) did not exist that day.
  const out: number[] = [];
  try {
    const it = CronExpressionParser.parse(expr, { tz: 'UTC', currentDate: new Date(hi + before - 1) });
    for (let wall = it.next().getTime(); wall < hi + after; wall = it.next().getTime())
      out.push(instantOf(wall, timezone));
  } catch {
    // No occurrence left, or an expression cron-parser cannot read.
  }
  return out;
}
