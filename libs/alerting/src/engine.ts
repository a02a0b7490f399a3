import type { AlertEndReason } from '@fleetwatch/contracts';
import { absentGraceMs, RESOLVED_RETENTION_MS, type AlertIdentity, type CompiledAlertRule } from './rule';

// One alert's life (SPEC §7), with Prometheus' `for` semantics: inactive → pending when the condition
// first holds, → firing at the first evaluation at least `for` after that, → resolved when it stops
// holding (after `keepFiringFor`), → inactive after a retention. An evaluation that finds the condition
// not holding while pending drops the alert: a signal that flaps faster than `for` never fires.
// Evaluations run on every state change and on a tick; `nextDueAt` tells when one is next needed.
//
// The state holds every timestamp the decisions use (activeAt, firedAt, resolvedAt, keepFiringSince,
// lastSentAt, absentSince), so a state restored from the database continues exactly as if the process had never
// stopped: a firing alert that was notified is not notified again until its repeat interval.
//
// A sample may say the series is absent (a metric series missing from this evaluation while its target still
// reports): missing data is not "condition false". A pending or firing alert keeps its state — a pending one does not
// fire on no data, nor is it dropped — until the series has been absent for absentGraceMs (5 min, two of the target's
// report intervals, or keepFiringFor: the longest); then it ends with the reason 'series_absent'. A firing alert
// already kept up by keepFiringFor (its last figure said the condition stopped) goes on counting that down.
//
// Every end of an alert (resolved, or a pending one dropped) carries why (contracts' ALERT_END_REASONS): its
// condition cleared, its series absent past the grace, or what the sample says made it not hold (the caller's
// `endReason`: the target gone or not reporting, the rule disabled, changed or no longer selecting it).

export type AlertStateName = 'inactive' | 'pending' | 'firing' | 'resolved';

/** The remembered state of one alert; absent means inactive. Plain JSON: store it as is. */
export interface AlertSeriesState {
  key: string;
  ruleId: string;
  targetId: string;
  fingerprint: string;
  labels: Record<string, string>;
  state: 'pending' | 'firing' | 'resolved';
  /**
   * A metric condition's value when the alert last changed state or was notified (null for status
   * conditions). Not updated on every evaluation: a moving figure alone is no change to write.
   */
  value: number | null;
  /** When the condition began to hold (start of pending). */
  activeAt: number;
  firedAt: number | null;
  resolvedAt: number | null;
  /** While firing under keepFiringFor: when the condition stopped holding. */
  keepFiringSince: number | null;
  /** When a firing (or repeat) notification was last decided; null: never notified. */
  lastSentAt: number | null;
  /** While its series is missing from the evaluations: since when (absent in states stored before it existed). */
  absentSince?: number | null;
  /** The series its rule read when the episode began (CompiledAlertRule.seriesOf; metric rules only). */
  series?: string;
}

/** What one evaluation of a series found. */
export interface AlertSample {
  active: boolean;
  value: number | null;
  /** The series is missing from this evaluation while its target reports: no figure, which is not "not holding". */
  absent?: boolean;
  /**
   * Why the condition does not hold when no figure says so (the sweep of alerts without a series: the target gone or
   * not reporting, the rule disabled, changed, no longer selecting it): the reason its alert ends with. Absent: the
   * figures decide (`condition_cleared`).
   */
  endReason?: AlertEndReason;
}

export type { AlertEndReason };

export type AlertNotificationKind = 'firing' | 'resolved' | 'repeat';

/** An alert to announce to the rule's channels (the grouping scheduler batches these). */
export interface AlertNotification {
  kind: AlertNotificationKind;
  key: string;
  ruleId: string;
  targetId: string;
  fingerprint: string;
  labels: Record<string, string>;
  value: number | null;
  activeAt: number;
  firedAt: number | null;
  resolvedAt: number | null;
  at: number;
  /** A resolved notification: why the alert ended (absent in notifications stored before it existed). */
  endReason?: AlertEndReason;
  /** Ended as series_absent: since when the series was missing (for "no data for 20 min"). */
  absentSince?: number;
  /**
   * A resolved notification: a silence or maintenance window muted the alert when it resolved — a receiver its firing
   * never reached (the group had not sent it yet) is told nothing of it, even once the mute has ended (flushDue).
   */
  muted?: true;
}

export interface AlertTransition {
  key: string;
  ruleId: string;
  targetId: string;
  fingerprint: string;
  labels: Record<string, string>;
  from: AlertStateName;
  to: AlertStateName;
  value: number | null;
  at: number;
  /** Set when the alert ended (resolved, or a pending one dropped): why (its condition cleared, its series absent …). */
  reason?: AlertEndReason;
  /** Ended as series_absent: since when the series was missing (the history's "no data for 20 min"). */
  absentSince?: number;
}

export interface AlertStepContext {
  now: number;
  /**
   * Whether a silence or maintenance window mutes the alert with these labels now; asked only when a notification is
   * due, with the labels the notification would carry.
   */
  isMuted?: (labels: Readonly<Record<string, string>>) => boolean;
  /** How often the alert's target reports its figures (TargetObservation.reportIntervalMs): the absent grace scales. */
  reportIntervalMs?: number | null;
}

export interface AlertStepResult {
  /** The new state; undefined: inactive (delete what is stored). */
  state: AlertSeriesState | undefined;
  notifications: AlertNotification[];
  transition: AlertTransition | null;
}

const NONE: AlertNotification[] = [];

/**
 * One evaluation of one alert: (state, sample, now) → (state, notifications). Pure: the same inputs give
 * the same outputs, and an unchanged alert returns the very same state object (nothing to write).
 */
export function stepAlert(
  rule: CompiledAlertRule,
  prev: AlertSeriesState | undefined,
  sample: AlertSample,
  identity: AlertIdentity | (() => AlertIdentity),
  ctx: AlertStepContext,
): AlertStepResult {
  const now = ctx.now;
  let next: AlertSeriesState | undefined = prev;
  let reason: AlertEndReason | undefined;
  if (
    sample.absent &&
    prev &&
    (prev.state === 'pending' || (prev.state === 'firing' && prev.keepFiringSince === null))
  ) {
    // No figure: the alert keeps its state for the grace, then ends as "series absent".
    const since = prev.absentSince ?? now;
    if (now - since < absentGraceMs(rule, ctx.reportIntervalMs)) {
      if (prev.absentSince !== since) next = { ...prev, absentSince: since };
    } else {
      reason = 'series_absent';
      next =
        prev.state === 'pending'
          ? undefined
          : { ...withFigures(prev), state: 'resolved', resolvedAt: now, keepFiringSince: null };
    }
  } else if (!prev || prev.state === 'resolved') {
    if (sample.active) {
      // A new episode is the rule as it is now: a resolved alert's labels are those of the rule when it last fired
      // (a rule edited since — severity, labels, name — would page with the old ones, and silences would match those).
      const id = typeof identity === 'function' ? identity() : identity;
      next = {
        key: id.key,
        ruleId: id.ruleId,
        targetId: id.targetId,
        fingerprint: id.fingerprint,
        labels: id.labels,
        state: 'pending',
        value: sample.value,
        activeAt: now,
        firedAt: null,
        resolvedAt: null,
        keepFiringSince: null,
        lastSentAt: null,
        ...(rule.seriesOf !== null ? { series: rule.seriesOf } : {}),
      };
      if (rule.forMs === 0) next = { ...next, state: 'firing', firedAt: now };
    } else if (prev && now - (prev.resolvedAt ?? now) >= RESOLVED_RETENTION_MS) next = undefined;
  } else {
    // Figures again (or, kept firing, none still): what it was absent for is over.
    const cur = sample.absent ? prev : withFigures(prev);
    next = cur;
    if (cur.state === 'pending') {
      if (!sample.active) next = undefined;
      else if (now - cur.activeAt >= rule.forMs) next = { ...cur, state: 'firing', firedAt: now, value: sample.value };
    } else if (sample.active) {
      if (cur.keepFiringSince !== null) next = { ...cur, keepFiringSince: null };
    } else {
      const since = cur.keepFiringSince ?? now;
      if (rule.keepFiringForMs > 0 && now - since < rule.keepFiringForMs) {
        if (cur.keepFiringSince === null) next = { ...cur, keepFiringSince: since };
      } else next = { ...cur, state: 'resolved', resolvedAt: now, keepFiringSince: null };
    }
  }

  const from: AlertStateName = prev?.state ?? 'inactive';
  const to: AlertStateName = next?.state ?? 'inactive';
  // An end: what the sample said made it not hold, else its figures.
  if ((from === 'pending' || from === 'firing') && (to === 'resolved' || to === 'inactive'))
    reason ??= sample.endReason ?? 'condition_cleared';
  // From resolved straight back to pending/firing is a new episode: report it as such.
  const changed = from !== to || (prev !== undefined && next !== undefined && next.activeAt !== prev.activeAt);
  const absentSince = reason === 'series_absent' ? (prev?.absentSince ?? undefined) : undefined;
  const transitionOf = (s: AlertSeriesState): AlertTransition => ({
    key: s.key,
    ruleId: s.ruleId,
    targetId: s.targetId,
    fingerprint: s.fingerprint,
    labels: s.labels,
    from,
    to,
    value: next?.value ?? prev?.value ?? null,
    at: now,
    ...(reason ? { reason } : {}),
    ...(absentSince !== undefined ? { absentSince } : {}),
  });
  const transition = changed ? transitionOf((next ?? prev) as AlertSeriesState) : null;

  let notifications = NONE;
  if (next?.state === 'firing') {
    const kind: AlertNotificationKind | null =
      next.lastSentAt === null ? 'firing' : now - next.lastSentAt >= rule.repeatIntervalMs ? 'repeat' : null;
    if (kind && !(ctx.isMuted?.(next.labels) ?? false)) {
      next = { ...next, lastSentAt: now, value: sample.active ? sample.value : next.value };
      notifications = [notificationOf(kind, next, now)];
    }
  } else if (next?.state === 'resolved' && from === 'firing' && next.lastSentAt !== null) {
    // A receiver that was told "firing" is always told "resolved", even under a silence: otherwise its
    // incident would stay open forever.
    const resolved = notificationOf('resolved', next, now, { reason: reason ?? 'condition_cleared', absentSince });
    notifications = [ctx.isMuted?.(next.labels) ? { ...resolved, muted: true } : resolved];
  }
  return { state: next, notifications, transition };
}

/** The state without its absence mark (the same object when it has none). */
function withFigures(s: AlertSeriesState): AlertSeriesState {
  if (s.absentSince === undefined || s.absentSince === null) return s;
  const { absentSince: _absentSince, ...rest } = s;
  return rest;
}

export function notificationOf(
  kind: AlertNotificationKind,
  s: AlertSeriesState,
  at: number,
  end?: { reason: AlertEndReason; absentSince?: number },
): AlertNotification {
  return {
    kind,
    key: s.key,
    ruleId: s.ruleId,
    targetId: s.targetId,
    fingerprint: s.fingerprint,
    labels: s.labels,
    value: s.value,
    activeAt: s.activeAt,
    firedAt: s.firedAt,
    resolvedAt: s.resolvedAt,
    at,
    ...(end ? { endReason: end.reason } : {}),
    ...(end?.absentSince !== undefined ? { absentSince: end.absentSince } : {}),
  };
}

/**
 * When this alert next needs an evaluation even if nothing changes (pending → firing, keepFiringFor
 * running out, a repeat, the end of retention, of an absent series' grace — which scales with how often its target
 * reports, `reportIntervalMs`); null when only a change can move it.
 */
export function nextDueAt(
  rule: CompiledAlertRule,
  s: AlertSeriesState | undefined,
  reportIntervalMs?: number | null,
): number | null {
  if (!s) return null;
  // Absent (and not kept firing already): the grace's end, when it ends as "series absent".
  const absentEnd =
    s.absentSince !== undefined && s.absentSince !== null && s.keepFiringSince === null
      ? s.absentSince + absentGraceMs(rule, reportIntervalMs)
      : null;
  switch (s.state) {
    case 'pending':
      // No figure, no firing: only the grace's end moves it.
      return absentEnd ?? s.activeAt + rule.forMs;
    case 'firing': {
      const repeat = s.lastSentAt === null ? null : s.lastSentAt + rule.repeatIntervalMs;
      // Kept firing: its end, or its next repeat if sooner (a day of keepFiringFor hid hourly repeats from isDue).
      const end = s.keepFiringSince === null ? absentEnd : s.keepFiringSince + rule.keepFiringForMs;
      if (end === null) return repeat;
      return repeat === null ? end : Math.min(end, repeat);
    }
    case 'resolved':
      return (s.resolvedAt ?? s.activeAt) + RESOLVED_RETENTION_MS;
  }
}
