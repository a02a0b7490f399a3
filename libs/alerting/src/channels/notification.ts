import { createHash } from 'node:crypto';
import { alertEndReasonText, type AlertEndReason, type ChannelConfig } from '@fleetwatch/contracts';
import type { AlertNotification } from '../engine';
import type { GroupFlush } from '../grouping';
import type { CompiledAlertRule } from '../rule';
import type { AlertTarget } from '../selector';
import { renderAnnotations, renderBudget, type RenderBudget, type TemplateContext } from '../templates';

// What one message to one channel says (SPEC §7): a group of alerts, firing or resolved, with their labels,
// rendered annotations and times. Plain JSON, so a delivery that waits for a retry is stored as it is and the
// request is built again from it (with the channel's current secrets) at each attempt: no secret is ever
// stored beside it.

export type NotificationStatus = 'firing' | 'resolved';

export interface NotificationAlert {
  status: NotificationStatus;
  labels: Record<string, string>;
  /** Rendered annotation texts (summary, description, runbook_url …). */
  annotations: Record<string, string>;
  /** ISO times; endsAt is null while firing. */
  startsAt: string;
  endsAt: string | null;
  fingerprint: string;
  /** A metric condition's value, null for status conditions. */
  value: number | null;
  /** Where a person sees this alert in the dashboard. */
  generatorURL: string;
  /**
   * A resolved alert: why it ended (`condition_cleared`: its figures recovered; `series_absent`: its data disappeared
   * …, contracts ALERT_END_REASONS), and that as a person reads it ("series absent (no data for 5 min)"). Absent while
   * firing, and in messages queued before reasons existed.
   */
  endReason?: AlertEndReason;
  endReasonText?: string;
  /**
   * The template of the annotation its line shows (summary, else description) prints `alert.endReason` or
   * `alert.endReasonText`, and its rendered text shows it: the line does not add "— resolved: …" again. The template
   * decides (a summary whose own words happen to match a reason, "set the target paused first", still gets the line),
   * the text too (one that only tests the reason, its own words for one of them, prints nothing of the others). Left
   * out of webhook bodies.
   */
  lineSaysEndReason?: boolean;
}

export interface ChannelNotification {
  /** Stable per channel and group of alerts: dedup keys (PagerDuty) and receivers' grouping derive from it. */
  groupKey: string;
  /** `firing` while any alert of the message fires. */
  status: NotificationStatus;
  groupLabels: Record<string, string>;
  /** Firing alerts first, then resolved ones. */
  alerts: NotificationAlert[];
  /** The dashboard's base URL. */
  externalURL: string;
  site: string;
  /** A test-send: receivers are told, and nothing is retried. */
  test?: boolean;
  /**
   * E-mail only: the channel's recipients still to be sent this message — those a relay refused for now (a 4xx at RCPT
   * TO: greylisting, a full mailbox) while it took the others, which must not get it again. Absent: all of them.
   */
  recipients?: string[];
}

/** What a notification needs to know of targets and rules beyond the engine's notification. */
export interface NotificationLookup {
  rule(ruleId: string): CompiledAlertRule | undefined;
  target(targetId: string): Pick<AlertTarget, 'id' | 'name' | 'kind' | 'site'> | undefined;
  externalURL: string;
  site: string;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const trimSlash = (url: string) => url.replace(/\/+$/, '');

/** One alert as a message shows it, with its annotations rendered (a broken template renders as its error). */
export function notificationAlertOf(
  n: AlertNotification,
  lookup: NotificationLookup,
  budget?: RenderBudget,
): NotificationAlert {
  const compiled = lookup.rule(n.ruleId);
  const target = lookup.target(n.targetId);
  const status: NotificationStatus = n.kind === 'resolved' ? 'resolved' : 'firing';
  const endReason = status === 'resolved' ? n.endReason : undefined;
  const endReasonText = endReason
    ? alertEndReasonText(endReason, n.absentSince !== undefined ? (n.resolvedAt ?? n.at) - n.absentSince : undefined)
    : undefined;
  const ctx: TemplateContext = {
    alert: {
      name: compiled?.rule.name ?? n.labels['alertname'] ?? n.ruleId,
      state: status,
      severity: compiled?.rule.severity ?? n.labels['severity'] ?? 'warning',
      value: n.value,
      activeAt: iso(n.activeAt),
      firedAt: iso(n.firedAt),
      resolvedAt: iso(n.resolvedAt),
      endReason: endReason ?? null,
      endReasonText: endReasonText ?? null,
    },
    labels: n.labels,
    target: {
      id: n.targetId,
      name: target?.name ?? n.targetId,
      kind: target?.kind ?? 'unknown',
      site: target?.site ?? lookup.site,
    },
    rule: { id: n.ruleId, name: compiled?.rule.name ?? n.ruleId },
  };
  const annotations = compiled ? renderAnnotations(compiled.rule.annotations, ctx, budget) : {};
  const shown = annotations['summary'] ? 'summary' : annotations['description'] ? 'description' : null;
  // The template prints the reason, and printed it here: one that only tests it ({% if alert.endReason == "…" %}, its
  // own words for one reason) says nothing of another, and the line must still say why it ended.
  const lineSaysEndReason =
    endReason !== undefined &&
    shown !== null &&
    printsEndReason(compiled?.rule.annotations[shown] ?? '') &&
    showsEndReason(annotations[shown] ?? '', endReason);
  return {
    status,
    labels: { ...n.labels },
    annotations,
    startsAt: iso(n.firedAt ?? n.activeAt) as string,
    endsAt: status === 'resolved' ? iso(n.resolvedAt ?? n.at) : null,
    fingerprint: n.fingerprint,
    value: n.value,
    generatorURL: `${trimSlash(lookup.externalURL)}/alerts/${encodeURIComponent(n.fingerprint)}`,
    ...(endReason ? { endReason, endReasonText } : {}),
    ...(lineSaysEndReason ? { lineSaysEndReason } : {}),
  };
}

/** Whether a template prints the alert's end reason (`alert.endReason`, `alert.endReasonText`, `alert["endReason"]`). */
function printsEndReason(template: string): boolean {
  return /\balert\s*(?:\.\s*|\[\s*["'])endReason/.test(template);
}

/** Whether a rendered text shows the reason: its code, or its words as a person reads them (any case). */
function showsEndReason(text: string, reason: AlertEndReason): boolean {
  const lower = text.toLowerCase();
  return lower.includes(reason) || lower.includes(alertEndReasonText(reason).toLowerCase());
}

/** The message of one grouping flush (libs/alerting grouping) for its channel. */
export function notificationOfFlush(
  flush: GroupFlush,
  lookup: NotificationLookup,
  passBudget?: RenderBudget,
): ChannelNotification {
  // One budget for the message's templates: a slow one (stored before templates were tried at save) cannot hold the
  // evaluator — and its transaction — for seconds per alert.
  const own = renderBudget();
  // The sooner of the message's own budget and what is left of its caller's pass (the evaluator's decision).
  const budget = passBudget && passBudget.deadline < own.deadline ? passBudget : own;
  const alerts = [...flush.firing, ...flush.resolved].map((n) => notificationAlertOf(n, lookup, budget));
  return {
    // The grouping's key separates channel and labels with NUL, which Postgres text cannot hold.
    groupKey: flush.groupKey.replaceAll('\u0000', ':'),
    status: flush.firing.length ? 'firing' : 'resolved',
    groupLabels: { ...flush.groupLabels },
    alerts,
    externalURL: lookup.externalURL,
    site: lookup.site,
  };
}

/**
 * What this channel is sent of a notification: without `sendResolved`, resolved alerts are left out, and a
 * message with nothing firing is not sent at all (null).
 */
export function notificationForChannel(
  channel: Pick<ChannelConfig, 'sendResolved'>,
  n: ChannelNotification,
): ChannelNotification | null {
  if (channel.sendResolved) return n;
  const firing = n.alerts.filter((a) => a.status === 'firing');
  return firing.length ? { ...n, status: 'firing', alerts: firing } : null;
}

/** A synthetic notification for a channel's test-send. */
export function testNotification(site: string, externalURL: string, now: number): ChannelNotification {
  const labels = { alertname: 'FleetwatchTestNotification', severity: 'info', site };
  return {
    groupKey: `test:${now}`,
    status: 'firing',
    groupLabels: { alertname: labels.alertname },
    alerts: [
      {
        status: 'firing',
        labels,
        annotations: {
          summary: 'Test notification from Fleetwatch',
          description: 'This channel is configured correctly: it received a test notification.',
        },
        startsAt: new Date(now).toISOString(),
        endsAt: null,
        fingerprint: 'test',
        value: null,
        generatorURL: `${trimSlash(externalURL)}/alerts`,
      },
    ],
    externalURL,
    site,
    test: true,
  };
}

/** Labels every alert of the message shares (Alertmanager's commonLabels). */
export function commonLabels(alerts: readonly NotificationAlert[]): Record<string, string> {
  return common(alerts.map((a) => a.labels));
}

export function commonAnnotations(alerts: readonly NotificationAlert[]): Record<string, string> {
  return common(alerts.map((a) => a.annotations));
}

function common(maps: readonly Record<string, string>[]): Record<string, string> {
  if (!maps.length) return {};
  const out: Record<string, string> = { ...maps[0] };
  for (const m of maps.slice(1)) for (const k of Object.keys(out)) if (m[k] !== out[k]) delete out[k];
  return out;
}

/** A stable, opaque key for a group (PagerDuty's dedup_key): the same group always gives the same key. */
export function groupDedupKey(groupKey: string): string {
  return `fleetwatch-${createHash('sha256').update(groupKey).digest('hex').slice(0, 40)}`;
}

const SEVERITY_RANK: Record<string, number> = { critical: 3, warning: 2, info: 1 };

/** The gravest severity among the firing alerts (or among all, when none fires). */
export function notificationSeverity(n: ChannelNotification): string {
  const pool = n.alerts.some((a) => a.status === 'firing') ? n.alerts.filter((a) => a.status === 'firing') : n.alerts;
  let best = 'warning';
  let rank = 0;
  for (const a of pool) {
    const s = a.labels['severity'] ?? 'warning';
    const r = SEVERITY_RANK[s] ?? 2;
    if (r > rank) [best, rank] = [s, r];
  }
  return best;
}

/** "[FIRING:2] Target down (site-a)": the one line that titles a message. */
export function notificationTitle(n: ChannelNotification): string {
  const firing = n.alerts.filter((a) => a.status === 'firing').length;
  const state = n.status === 'firing' ? `FIRING:${firing}` : 'RESOLVED';
  const groupValues = Object.entries(n.groupLabels)
    .filter(([k, v]) => k !== 'alertname' && v !== '')
    .map(([, v]) => v);
  const name = n.groupLabels['alertname'] || commonLabels(n.alerts)['alertname'] || 'alerts';
  return `${n.test ? '[TEST] ' : ''}[${state}] ${name}${groupValues.length ? ` (${groupValues.join(' ')})` : ''}`;
}

/**
 * Why a resolved alert ended, when its figures did not recover ("resolved: series absent (no data for 5 min)"): a
 * receiver must tell a disk back under its threshold from one that disappeared. Null for an ordinary recovery, a firing
 * alert, or a message queued before reasons existed.
 */
export function endReasonLine(a: Pick<NotificationAlert, 'status' | 'endReason' | 'endReasonText'>): string | null {
  if (a.status !== 'resolved' || !a.endReason || a.endReason === 'condition_cleared') return null;
  return `resolved: ${a.endReasonText || alertEndReasonText(a.endReason)}`;
}

/**
 * An alert's one-line description: its summary annotation, else its name and target; a resolved alert that ended
 * without its figures recovering says why ("… — resolved: series absent (no data for 5 min)") — unless its summary
 * template prints it already (lineSaysEndReason): the reason is said once.
 */
export function alertLine(a: NotificationAlert): string {
  const summary = a.annotations['summary'] || a.annotations['description'];
  const target = a.labels['target'];
  const line = summary || `${a.labels['alertname'] ?? 'alert'}${target ? ` on ${target}` : ''}`;
  const ended = endReasonLine(a);
  return ended && !(summary && a.lineSaysEndReason) ? `${line} — ${ended}` : line;
}
