import type { ChannelNotification, NotificationAlert } from './notification';

// Fixtures of the channel specs (unit and integration).

export const EXTERNAL_URL = 'https://fleet.example.com';

export function alertOf(over: Partial<NotificationAlert> = {}, labels: Record<string, string> = {}): NotificationAlert {
  return {
    status: 'firing',
    labels: { alertname: 'Target down', severity: 'critical', target: 'check:web', rule_id: 'r1', ...labels },
    annotations: { summary: 'Web is down', description: 'check:web has been DOWN for 1 minute' },
    startsAt: '2026-01-01T00:01:00.000Z',
    endsAt: null,
    fingerprint: 'abcdef0123456789',
    value: null,
    generatorURL: `${EXTERNAL_URL}/alerts/abcdef0123456789`,
    ...over,
  };
}

export function notificationOf(
  alerts: NotificationAlert[],
  over: Partial<ChannelNotification> = {},
): ChannelNotification {
  return {
    groupKey: 'ch-1:[["alertname","Target down"]]',
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    groupLabels: { alertname: 'Target down' },
    alerts,
    externalURL: EXTERNAL_URL,
    site: 'site-a',
    ...over,
  };
}
