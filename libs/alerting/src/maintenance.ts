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

/** The latest occurrence of a cron expression at or before `now` (ms), or null when there is none. */
export function latestOccurrence(expr: string, timezone: string, now: number, from?: number): number | null {
  // Occurrences fall on whole minutes; starting 1 ms after now makes `prev()` include an occurrence at now.
  const it = CronExpressionParser.parse(expr, { tz: timezone, currentDate: new Date(now + 1) });
  try {
    const at = it.prev().getTime();
    return from !== undefined && at < from ? null : at;
  } catch {
    return null;
  }
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
  const start = latestOccurrence(schedule.cron, schedule.timezone, now, from);
  if (start === null || (until !== undefined && start >= until)) return null;
  const end = start + durationMs(schedule.duration);
  return now < end ? { start, end } : null;
}

export function maintenanceActive(window: Pick<MaintenanceWindow, 'schedule'>, now: number): boolean {
  return openWindow(window.schedule, now) !== null;
}

/** Whether a window's scope covers a target: listed by id, carrying one of its tags, or in one of its sites. */
export function maintenanceCovers(window: Pick<MaintenanceWindow, 'scope'>, target: AlertTarget): boolean {
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
  const it = CronExpressionParser.parse(schedule.cron, {
    tz: schedule.timezone,
    currentDate: new Date(Math.max(now, (from ?? now) - 1)),
  });
  try {
    const at = it.next().getTime();
    return until !== undefined && at >= until ? null : at;
  } catch {
    return null;
  }
}
