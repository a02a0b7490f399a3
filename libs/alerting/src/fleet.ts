import { alertIdentity, alertKey, type CompiledAlertRule } from './rule';
import type { AlertTarget } from './selector';
import { sampleCondition, type TargetObservation } from './series';
import { stepAlert, type AlertNotification, type AlertSeriesState, type AlertTransition } from './engine';

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

function evaluateOne(
  input: EvaluationInput,
  out: EvaluationResult,
  seen: Set<string> | null,
  { target, observation }: ObservedTarget,
): void {
  const isMuted = input.isMuted;
  for (const rule of input.rules) {
    if (!rule.rule.enabled || !rule.selector.matches(target)) continue;
    for (const sample of sampleCondition(rule.rule.condition, observation)) {
      const key = alertKey(rule.id, target.id, sample.seriesLabels);
      seen?.add(key);
      const prev = input.states.get(key);
      if (!prev && !sample.active) continue;
      const r = stepAlert(rule, prev, sample, () => alertIdentity(rule.rule, target, sample.seriesLabels), {
        now: input.now,
        isMuted: isMuted ? () => isMuted(labelsOf(prev, rule, target, sample.seriesLabels), target.id) : undefined,
      });
      collect(out, key, prev, r);
    }
  }
}

function labelsOf(
  prev: AlertSeriesState | undefined,
  rule: CompiledAlertRule,
  target: AlertTarget,
  seriesLabels: Readonly<Record<string, string>>,
): Record<string, string> {
  return prev?.labels ?? alertIdentity(rule.rule, target, seriesLabels).labels;
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
  evaluateOne(input, out, null, observed);
  return out;
}

/**
 * A full tick: every rule against every target, then every remembered alert that no longer has a series
 * (target gone, no longer selected, series vanished, rule disabled) is evaluated as not holding — it
 * resolves like a Prometheus alert whose expression stopped returning it. Alerts of rules that no longer
 * exist are dropped; if they had been notified as firing, a resolved notification goes out.
 */
export function evaluateFleet(input: EvaluationInput, targets: Iterable<ObservedTarget>): EvaluationResult {
  const out = emptyResult();
  const seen = new Set<string>();
  for (const t of targets) evaluateOne(input, out, seen, t);
  const rules = new Map(input.rules.map((r) => [r.id, r]));
  const isMuted = input.isMuted;
  for (const [key, prev] of input.states) {
    if (seen.has(key)) continue;
    const rule = rules.get(prev.ruleId);
    if (!rule) {
      out.changed.set(key, null);
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
        });
      continue;
    }
    const r = stepAlert(rule, prev, { active: false, value: null }, prev, {
      now: input.now,
      isMuted: isMuted ? () => isMuted(prev.labels, prev.targetId) : undefined,
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
