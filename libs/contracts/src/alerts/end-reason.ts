import { z } from 'zod';

// Why an alert ended (resolved, or a pending one dropped): the alert evaluator's own distinctions (libs/alerting
// fleet/engine), kept with the change in alert_events, on `alert.state-changed`, in the history API and in the resolved
// notification. Only `condition_cleared` says the figures recovered; every other reason says the alert ended without
// them — `series_absent` above all (a disk unmounted, a GPU fallen off the bus, a check that read nothing).
// Do not rename: the codes are stored and published.

export const ALERT_END_REASONS = [
  /** Its condition stopped holding (the value back within the threshold, the status back), after keepFiringFor. */
  'condition_cleared',
  /**
   * A metric series missing from the figures of a target that still reports, for its grace (5 min, two of the target's
   * report intervals, or keepFiringFor: the longest).
   */
  'series_absent',
  /** The target is no longer monitored (deleted, or gone from the evaluator's view). */
  'target_gone',
  /** The target stopped reporting past its deadline (STALE): its figures are known gone. */
  'target_stale',
  /** The target is paused. */
  'target_paused',
  /** The target's status is UNKNOWN (a retired host). */
  'target_unknown',
  /** The rule no longer selects the target (its selector or the target's tags, site, kind changed). */
  'not_selected',
  /** The rule was disabled. */
  'rule_disabled',
  /** The rule's condition was edited to another series (metric, mount, device) or kind of condition. */
  'rule_changed',
  /** The rule was deleted. */
  'rule_deleted',
] as const;
export const alertEndReasonSchema = z.enum(ALERT_END_REASONS);
export type AlertEndReason = z.infer<typeof alertEndReasonSchema>;

const KNOWN: ReadonlySet<string> = new Set(ALERT_END_REASONS);

/** The reason if it is one this version knows (a newer writer may store more), else null. */
export function alertEndReasonOf(value: unknown): AlertEndReason | null {
  return typeof value === 'string' && KNOWN.has(value) ? (value as AlertEndReason) : null;
}

const TEXT: Record<AlertEndReason, string> = {
  condition_cleared: 'condition cleared',
  series_absent: 'series absent',
  target_gone: 'target no longer monitored',
  target_stale: 'target stale (stopped reporting)',
  target_paused: 'target paused',
  target_unknown: 'target status unknown (retired)',
  not_selected: 'rule no longer selects the target',
  rule_disabled: 'rule disabled',
  rule_changed: 'rule changed to another series',
  rule_deleted: 'rule deleted',
};

/** "5 min", "90 s", "3 h", "2 d": a span as a person reads it (rounded down). */
export function spanText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

/**
 * The reason as a person reads it: "series absent (no data for 5 min)" when how long the series was missing is known
 * (`absentForMs`), "rule deleted", …
 */
export function alertEndReasonText(reason: AlertEndReason, absentForMs?: number | null): string {
  const text = TEXT[reason] ?? reason;
  return reason === 'series_absent' && absentForMs !== undefined && absentForMs !== null && absentForMs >= 0
    ? `${text} (no data for ${spanText(absentForMs)})`
    : text;
}
