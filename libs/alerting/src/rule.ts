import { createHash } from 'node:crypto';
import {
  DEFAULT_ALERT_GROUPING,
  RESERVED_ALERT_LABELS,
  durationMs,
  type AlertGrouping,
  type AlertRule,
} from '@fleetwatch/contracts';
import { compileSelector, type AlertTarget, type CompiledSelector } from './selector';

/** How long a resolved alert is remembered before it is dropped (Prometheus keeps resolved alerts 15 min). */
export const RESOLVED_RETENTION_MS = 15 * 60_000;

/**
 * How long a metric alert's series may be missing from the evaluations of a target that still reports (UP, DOWN,
 * PARTIAL) before the alert ends as "series absent" (Prometheus' lookback window): a late sample or a missed scrape is
 * a gap in the data, not the condition ceasing to hold. At least this; longer for a target that reports less often
 * (ABSENT_SERIES_GRACE_INTERVALS) and for a rule's longer `keepFiringFor`.
 */
export const ABSENT_SERIES_GRACE_MS = 5 * 60_000;

/**
 * A target that reports every N (a check's interval, a host's sampling interval) keeps its alerts' state this many N
 * while a series is missing: a check run every 10 minutes (or hourly) whose one run read nothing, or whose figures come
 * only with its runs, has a gap of one interval — ended after 5 minutes, its firing alert sent a false RESOLVED, then a
 * new FIRING. As many intervals as the target takes to turn STALE (its deadline: two intervals).
 */
export const ABSENT_SERIES_GRACE_INTERVALS = 2;

/**
 * How long this rule's alerts of a target keep their state while their series is missing: ABSENT_SERIES_GRACE_MS, or
 * ABSENT_SERIES_GRACE_INTERVALS of the target's report interval (`reportIntervalMs`, when known), or the rule's
 * keepFiringFor — the longest.
 */
export function absentGraceMs(
  rule: Pick<CompiledAlertRule, 'keepFiringForMs'>,
  reportIntervalMs?: number | null,
): number {
  const byInterval =
    reportIntervalMs !== undefined && reportIntervalMs !== null && reportIntervalMs > 0
      ? ABSENT_SERIES_GRACE_INTERVALS * reportIntervalMs
      : 0;
  return Math.max(ABSENT_SERIES_GRACE_MS, rule.keepFiringForMs, byInterval);
}

/** A rule with its durations read and its selector prepared, once per configuration version. */
export interface CompiledAlertRule {
  id: string;
  rule: AlertRule;
  selector: CompiledSelector;
  forMs: number;
  keepFiringForMs: number;
  repeatIntervalMs: number;
  grouping: AlertGrouping;
  /**
   * What series a metric condition reads (its `metric`, as JSON), null for a status condition: an alert whose series
   * is missing keeps its state only while the rule still reads that series — not after the condition was edited to
   * another metric, mount or device (its old alerts then end at once).
   */
  seriesOf: string | null;
}

export function compileAlertRule(
  rule: AlertRule,
  siteGrouping: AlertGrouping = DEFAULT_ALERT_GROUPING,
): CompiledAlertRule {
  const grouping = rule.grouping ?? siteGrouping;
  return {
    id: rule.id,
    rule,
    selector: compileSelector(rule.selector),
    forMs: durationMs(rule.for),
    keepFiringForMs: rule.keepFiringFor ? durationMs(rule.keepFiringFor) : 0,
    repeatIntervalMs: durationMs(rule.repeatInterval ?? grouping.repeatInterval),
    grouping,
    seriesOf: rule.condition.type === 'metric' ? JSON.stringify(rule.condition.metric) : null,
  };
}

/** Who an alert is: one per (rule, target, series). */
export interface AlertIdentity {
  /** The engine's key for the alert's state: rule, target and series labels. */
  key: string;
  ruleId: string;
  targetId: string;
  labels: Record<string, string>;
  /** Stable hash of the labels (Alertmanager's fingerprint): dedup keys, silences from an alert, UI links. */
  fingerprint: string;
}

const RESERVED = new Set<string>(RESERVED_ALERT_LABELS);

/** The part of an alert's key that tells series of one target apart ("" for a single series). */
export function seriesSuffix(seriesLabels: Readonly<Record<string, string>>): string {
  const names = Object.keys(seriesLabels);
  if (!names.length) return '';
  if (names.length > 1) names.sort();
  let suffix = '';
  for (const n of names) suffix += `\u0000${n}=${seriesLabels[n]}`;
  return suffix;
}

/** The state key of an alert: rule, target and series; cheap, so a tick computes it without hashing. */
export function alertKey(ruleId: string, targetId: string, seriesLabels: Readonly<Record<string, string>>): string {
  return `${ruleId}\u0000${targetId}${seriesSuffix(seriesLabels)}`;
}

/**
 * An alert's labels: the series' own (renamed `exported_<name>` where they would shadow one of the
 * engine's, as Prometheus does), the rule's, then alertname, severity, rule_id and target.
 */
export function alertLabels(
  rule: AlertRule,
  targetId: string,
  seriesLabels: Readonly<Record<string, string>>,
): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(seriesLabels))
    labels[RESERVED.has(k) || Object.hasOwn(rule.labels, k) ? `exported_${k}` : k] = v; // own: not `toString`
  Object.assign(labels, rule.labels);
  labels['alertname'] = rule.name;
  labels['severity'] = rule.severity;
  labels['rule_id'] = rule.id;
  labels['target'] = targetId;
  return labels;
}

/**
 * Byte 0xff between names and values, as Alertmanager's fingerprint: it never occurs in UTF-8 text. The character
 * U+00FF (ÿ, which a label value may hold: bytes C3 BF) as separator made {a: "p", b: "qÿbÿr"} and {a: "pÿbÿq", b: "r"}
 * one fingerprint — two alerts merged in their notification group, one's resolution closing the other's.
 */
const SEP = Buffer.from([0xff]);

/** Alertmanager-style fingerprint: a hash of the sorted label pairs (16 hex digits). */
export function fingerprintOf(labels: Readonly<Record<string, string>>): string {
  const h = createHash('sha256');
  for (const name of Object.keys(labels).sort()) h.update(name).update(SEP).update(labels[name]).update(SEP);
  return h.digest('hex').slice(0, 16);
}

export function alertIdentity(
  rule: AlertRule,
  target: Pick<AlertTarget, 'id'>,
  seriesLabels: Readonly<Record<string, string>>,
): AlertIdentity {
  const labels = alertLabels(rule, target.id, seriesLabels);
  return {
    key: alertKey(rule.id, target.id, seriesLabels),
    ruleId: rule.id,
    targetId: target.id,
    labels,
    fingerprint: fingerprintOf(labels),
  };
}
