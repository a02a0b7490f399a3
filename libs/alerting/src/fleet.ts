import { TargetStatus, type AlertEndReason } from '@fleetwatch/contracts';
import { alertIdentity, seriesSuffix, type AlertIdentity, type CompiledAlertRule } from './rule';
import type { AlertTarget } from './selector';
import { sampleCondition, type TargetObservation } from './series';
import {
  stepAlert,
  type AlertNotification,
  type AlertSample,
  type AlertSeriesState,
  type AlertTransition,
} from './engine';

/** One target with what is known of it now. */
export interface ObservedTarget {
  target: AlertTarget;
  observation: TargetObservation;
}

export interface EvaluationInput {
  rules: readonly CompiledAlertRule[];
  /** The current states by key (as loaded from the store, or kept in memory). Not modified. */
  states: ReadonlyMap<string, AlertSeriesState>;
  now: number;
  /** Whether silences or maintenance mute an alert with these labels on this target now. */
  isMuted?: (labels: Readonly<Record<string, string>>, targetId: string) => boolean;
  /**
   * Rules that exist but this evaluator could not read (stored by a newer version, or damaged): their alerts are
   * left as they are — neither evaluated nor dropped as the alerts of a deleted rule (which would send a false
   * "resolved" for each firing one, and fire it again as new once a reader of the rule takes over).
   */
  unreadableRuleIds?: ReadonlySet<string>;
}

export interface EvaluationResult {
  /** States to write (a state) or delete (null), by key; keys not listed are unchanged. */
  changed: Map<string, AlertSeriesState | null>;
  notifications: AlertNotification[];
  transitions: AlertTransition[];
}

function emptyResult(): EvaluationResult {
  return { changed: new Map(), notifications: [], transitions: [] };
}

/** Why a target that does not report has no figures (any other status but these reports). */
const NOT_REPORTING: Readonly<Record<string, AlertEndReason>> = {
  [TargetStatus.Stale]: 'target_stale',
  [TargetStatus.Paused]: 'target_paused',
  [TargetStatus.Unknown]: 'target_unknown',
};

/** Finds the state of (rule, target, series suffix). */
type StateLookup = (ruleId: string, targetId: string, suffix: string) => AlertSeriesState | undefined;

function evaluateOne(
  input: EvaluationInput,
  out: EvaluationResult,
  seen: Set<AlertSeriesState> | null,
  find: StateLookup,
  { target, observation }: ObservedTarget,
): void {
  const isMuted = input.isMuted;
  for (const rule of input.rules) {
    if (!rule.rule.enabled || !rule.selector.matches(target)) continue;
    const condition = rule.rule.condition;
    if (condition.type === 'status') {
      // The common case, without allocating: one series per target.
      const active = (condition.statuses as readonly string[]).includes(observation.status);
      const prev = find(rule.id, target.id, '');
      if (!prev && !active) continue;
      // Not holding because the target stopped reporting (paused, STALE, retired) is no recovery: it ends saying so,
      // as a metric alert of that target does (whySeriesMissing).
      const notReporting = active ? undefined : NOT_REPORTING[observation.status];
      const sample: AlertSample = notReporting
        ? { active, value: null, endReason: notReporting }
        : { active, value: null };
      step(input, out, seen, rule, target, observation, prev, sample, NO_LABELS, isMuted);
      continue;
    }
    for (const sample of sampleCondition(condition, observation)) {
      const prev = find(rule.id, target.id, seriesSuffix(sample.seriesLabels));
      if (!prev && !sample.active) continue;
      step(input, out, seen, rule, target, observation, prev, sample, sample.seriesLabels, isMuted);
    }
  }
}

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

function step(
  input: EvaluationInput,
  out: EvaluationResult,
  seen: Set<AlertSeriesState> | null,
  rule: CompiledAlertRule,
  target: AlertTarget,
  observation: TargetObservation,
  prev: AlertSeriesState | undefined,
  sample: AlertSample,
  seriesLabels: Readonly<Record<string, string>>,
  isMuted: EvaluationInput['isMuted'],
): void {
  // Only alerts that have a state need remembering for the sweep of vanished series.
  if (prev) seen?.add(prev);
  let id: AlertIdentity | undefined;
  const identity = () => (id ??= alertIdentity(rule.rule, target, seriesLabels));
  const r = stepAlert(rule, prev, sample, identity, {
    now: input.now,
    isMuted: isMuted ? (labels) => isMuted(labels, target.id) : undefined,
    reportIntervalMs: observation.reportIntervalMs,
  });
  collect(out, prev?.key ?? identity().key, prev, r);
}

function collect(
  out: EvaluationResult,
  key: string,
  prev: AlertSeriesState | undefined,
  r: ReturnType<typeof stepAlert>,
): void {
  if (r.state !== prev) out.changed.set(key, r.state ?? null);
  if (r.notifications.length) out.notifications.push(...r.notifications);
  if (r.transition) out.transitions.push(r.transition);
}

/**
 * Evaluates the rules for one target, as on a status change or a new sample. Only this target's alerts
 * are touched; series it no longer has are left to the next full tick.
 */
export function evaluateTarget(input: EvaluationInput, observed: ObservedTarget): EvaluationResult {
  const out = emptyResult();
  const states = input.states;
  evaluateOne(
    input,
    out,
    null,
    (ruleId, targetId, suffix) => states.get(`${ruleId}\u0000${targetId}${suffix}`),
    observed,
  );
  return out;
}

/** Statuses of a target that reports: a metric series missing from its figures then is a gap in the data. */
const REPORTING: ReadonlySet<string> = new Set([TargetStatus.Up, TargetStatus.Down, TargetStatus.Partial]);

/**
 * Why an alert of this rule has no series in this evaluation. `series_absent` when it is only missing a figure (a late
 * sample, a missed scrape, a disk or GPU gone from one sample) — kept as it is for a grace (engine: absentGraceMs, longer
 * for a target that reports less often) —
 * rather than gone: the target is observed, still reports (UP, DOWN, PARTIAL), and the rule, enabled, still selects it
 * and reads the series the alert began on (its condition not edited to another metric since; a state stored before
 * states recorded it ends at once, as before, as series_absent too). Otherwise what took the series away: a target
 * gone, STALE (it stopped reporting past its deadline: its figures are known gone), PAUSED or UNKNOWN (retired); the
 * rule disabled, no longer selecting the target, or changed.
 */
function whySeriesMissing(
  rule: CompiledAlertRule,
  prev: AlertSeriesState,
  observed: ObservedTarget | undefined,
): { reason: AlertEndReason; grace: boolean } {
  const end = (reason: AlertEndReason) => ({ reason, grace: false });
  if (!rule.rule.enabled) return end('rule_disabled');
  if (observed === undefined) return end('target_gone');
  const notReporting = NOT_REPORTING[observed.observation.status];
  if (notReporting) return end(notReporting);
  if (!REPORTING.has(observed.observation.status)) return end('target_unknown');
  if (!rule.selector.matches(observed.target)) return end('not_selected');
  if (rule.rule.condition.type !== 'metric') return end('rule_changed');
  if (prev.series === undefined) return end('series_absent');
  if (prev.series !== rule.seriesOf) return end('rule_changed');
  return { reason: 'series_absent', grace: true };
}

/**
 * A full tick: every rule against every target, then every remembered alert that no longer has a series is evaluated:
 * a series missing from the figures of a target that still reports as absent (it keeps its state for a grace, then
 * ends as "series_absent"); one whose target is gone, not reporting or no longer selected, or whose rule is disabled
 * or changed, as not holding — it resolves like a Prometheus alert whose expression stopped returning it, with that
 * reason (whySeriesMissing). Alerts of rules that no
 * longer exist are dropped; if they had been notified as firing, a resolved notification goes out. Alerts of rules
 * that exist but could not be read (unreadableRuleIds) are left alone.
 */
export function evaluateFleet(input: EvaluationInput, targets: Iterable<ObservedTarget>): EvaluationResult {
  const out = emptyResult();
  // States by rule, then by the rest of the key: a status rule finds a target's state without building a key.
  const byRule = new Map<string, Map<string, AlertSeriesState>>();
  for (const s of input.states.values()) {
    let m = byRule.get(s.ruleId);
    if (!m) byRule.set(s.ruleId, (m = new Map()));
    m.set(s.key.slice(s.ruleId.length + 1), s);
  }
  const find: StateLookup = (ruleId, targetId, suffix) =>
    byRule.get(ruleId)?.get(suffix ? targetId + suffix : targetId);
  const seen = new Set<AlertSeriesState>();
  const observed = new Map<string, ObservedTarget>();
  for (const t of targets) {
    observed.set(t.target.id, t);
    evaluateOne(input, out, seen, find, t);
  }
  const rules = new Map(input.rules.map((r) => [r.id, r]));
  const isMuted = input.isMuted;
  for (const [key, prev] of input.states) {
    if (seen.has(prev)) continue;
    const rule = rules.get(prev.ruleId);
    if (!rule && input.unreadableRuleIds?.has(prev.ruleId)) continue;
    if (!rule) {
      out.changed.set(key, null);
      // Its history ends here: a firing alert is resolved (so told, when it was told firing), a pending one dropped.
      if (prev.state !== 'resolved')
        out.transitions.push({
          key,
          ruleId: prev.ruleId,
          targetId: prev.targetId,
          fingerprint: prev.fingerprint,
          labels: prev.labels,
          from: prev.state,
          to: prev.state === 'firing' ? 'resolved' : 'inactive',
          value: prev.value,
          at: input.now,
          reason: 'rule_deleted',
        });
      if (prev.state === 'firing' && prev.lastSentAt !== null)
        out.notifications.push({
          kind: 'resolved',
          key,
          ruleId: prev.ruleId,
          targetId: prev.targetId,
          fingerprint: prev.fingerprint,
          labels: prev.labels,
          value: prev.value,
          activeAt: prev.activeAt,
          firedAt: prev.firedAt,
          resolvedAt: input.now,
          at: input.now,
          endReason: 'rule_deleted',
          // As the engine marks a resolution under a mute (flushDue: nothing to say to a receiver never told it fired).
          ...(isMuted?.(prev.labels, prev.targetId) ? { muted: true as const } : {}),
        });
      continue;
    }
    const its = observed.get(prev.targetId);
    const why = whySeriesMissing(rule, prev, its);
    const sample: AlertSample = why.grace
      ? { active: false, value: null, absent: true }
      : { active: false, value: null, endReason: why.reason };
    const r = stepAlert(rule, prev, sample, prev, {
      now: input.now,
      isMuted: isMuted ? (labels) => isMuted(labels, prev.targetId) : undefined,
      // The grace scales with how often the target reports: a check run hourly misses its figures for longer.
      reportIntervalMs: its?.observation.reportIntervalMs,
    });
    collect(out, key, prev, r);
  }
  return out;
}

/** Applies a result's changes to a state map (for callers that keep states in memory). */
export function applyChanges(
  states: Map<string, AlertSeriesState>,
  changed: ReadonlyMap<string, AlertSeriesState | null>,
): void {
  for (const [k, v] of changed) {
    if (v) states.set(k, v);
    else states.delete(k);
  }
}
