import {
  alertLine,
  commonLabels,
  groupDedupKey,
  notificationSeverity,
  notificationTitle,
  type ChannelNotification,
} from './notification';
import { bytes, clip, oneLine } from './text';

// PagerDuty Events API v2: one event per message, `trigger` while anything fires and `resolve` once all
// is resolved, both with the same `dedup_key` — a hash of the group key, so the group's incident is
// updated and closed rather than duplicated. Summary at most 1024 characters (PagerDuty's limit), the
// severity one of critical/error/warning/info, custom details bounded well inside the 512 KB event limit.

export const PAGERDUTY_LIMITS = {
  maxSummary: 1024,
  maxSource: 255,
  maxDetailsBytes: 64 * 1024,
  maxAlertsInDetails: 50,
} as const;

const SEVERITY: Record<string, 'critical' | 'error' | 'warning' | 'info'> = {
  critical: 'critical',
  warning: 'warning',
  info: 'info',
};

/** Our severities onto PagerDuty's (anything else: error). */
export function pagerDutySeverity(severity: string): 'critical' | 'error' | 'warning' | 'info' {
  return SEVERITY[severity] ?? 'error';
}

export interface PagerDutyEvent {
  routing_key: string;
  event_action: 'trigger' | 'resolve';
  dedup_key: string;
  payload?: {
    summary: string;
    source: string;
    severity: 'critical' | 'error' | 'warning' | 'info';
    timestamp: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details: Record<string, unknown>;
  };
  client?: string;
  client_url?: string;
  links?: Array<{ href: string; text: string }>;
}

function details(n: ChannelNotification): Record<string, unknown> {
  const firing = n.alerts.filter((a) => a.status === 'firing');
  const resolved = n.alerts.filter((a) => a.status === 'resolved');
  const describe = (a: ChannelNotification['alerts'][number]) => ({
    summary: clip(alertLine(a), 1024),
    labels: a.labels,
    startsAt: a.startsAt,
    ...(a.endsAt ? { endsAt: a.endsAt } : {}),
    ...(a.endReason ? { endReason: a.endReason, ...(a.endReasonText ? { endReasonText: a.endReasonText } : {}) } : {}),
    ...(a.value !== null ? { value: a.value } : {}),
  });
  let count = Math.min(n.alerts.length, PAGERDUTY_LIMITS.maxAlertsInDetails);
  for (;;) {
    const out = {
      num_firing: firing.length,
      num_resolved: resolved.length,
      firing: firing.slice(0, count).map(describe),
      resolved: resolved.slice(0, Math.max(0, count - firing.length)).map(describe),
      ...(n.test ? { test: true } : {}),
    };
    if (bytes(JSON.stringify(out)) <= PAGERDUTY_LIMITS.maxDetailsBytes || count === 0) return out;
    count = Math.floor(count / 2);
  }
}

export function pagerDutyEvent(routingKey: string, n: ChannelNotification): PagerDutyEvent {
  const dedup = groupDedupKey(n.groupKey);
  if (n.status === 'resolved') return { routing_key: routingKey, event_action: 'resolve', dedup_key: dedup };
  const first = n.alerts.find((a) => a.status === 'firing') ?? n.alerts[0];
  const common = commonLabels(n.alerts);
  const lines = n.alerts.filter((a) => a.status === 'firing').map((a) => oneLine(alertLine(a)));
  const summary = clip(oneLine(`${notificationTitle(n)}: ${lines.join('; ')}`), PAGERDUTY_LIMITS.maxSummary);
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: dedup,
    payload: {
      summary,
      source: clip(common['target'] ?? n.site, PAGERDUTY_LIMITS.maxSource),
      severity: pagerDutySeverity(notificationSeverity(n)),
      timestamp: first?.startsAt ?? new Date().toISOString(),
      ...(common['target'] ? { component: clip(common['target'], 255) } : {}),
      ...(common['alertname'] ? { group: clip(common['alertname'], 255) } : {}),
      class: n.test ? 'test' : 'fleetwatch-alert',
      custom_details: details(n),
    },
    client: 'Fleetwatch',
    client_url: n.externalURL,
    links: first ? [{ href: first.generatorURL, text: 'Alert in Fleetwatch' }] : [],
  };
}
