import { alertLine, notificationTitle, type ChannelNotification, type NotificationAlert } from './notification';
import { bytes, clip, escapeMarkdown, oneLine } from './text';

// Microsoft Teams incoming webhook (Workflows and the older connectors both take it): a message with one
// Adaptive Card (1.4): a coloured title, per alert its line and a fact set of labels, a button to the
// dashboard. Teams refuses messages over about 28 KB, so alerts are left out (and counted) until it fits.
// Values are markdown-escaped: a label cannot turn into a link.

export const TEAMS_LIMITS = {
  maxBytes: 27 * 1024,
  maxAlerts: 20,
  maxText: 1000,
  maxFacts: 8,
} as const;

export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';

type Element = Record<string, unknown>;

function alertElements(a: NotificationAlert): Element[] {
  const line = escapeMarkdown(clip(oneLine(`${a.status === 'firing' ? '🔥' : '✅'} ${alertLine(a)}`), 300));
  const out: Element[] = [{ type: 'TextBlock', text: line, wrap: true, weight: 'Bolder', separator: true }];
  const description = a.annotations['summary'] ? a.annotations['description'] : undefined;
  if (description)
    out.push({ type: 'TextBlock', text: escapeMarkdown(clip(description, TEAMS_LIMITS.maxText)), wrap: true });
  const facts = Object.entries(a.labels)
    .filter(([k]) => k !== 'alertname' && k !== 'rule_id')
    .slice(0, TEAMS_LIMITS.maxFacts)
    .map(([k, v]) => ({ title: escapeMarkdown(clip(k, 100)), value: escapeMarkdown(clip(v, 300)) }));
  if (facts.length) out.push({ type: 'FactSet', facts });
  return out;
}

function card(n: ChannelNotification, alerts: readonly NotificationAlert[], more: number): Element {
  const body: Element[] = [
    {
      type: 'TextBlock',
      text: escapeMarkdown(clip(oneLine(notificationTitle(n)), 300)),
      weight: 'Bolder',
      size: 'Medium',
      wrap: true,
      color: n.test ? 'Accent' : n.status === 'firing' ? 'Attention' : 'Good',
    },
    ...alerts.flatMap(alertElements),
  ];
  if (more > 0) body.push({ type: 'TextBlock', text: `…and ${more} more`, isSubtle: true, wrap: true });
  return {
    type: 'message',
    attachments: [
      {
        contentType: ADAPTIVE_CARD_CONTENT_TYPE,
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          msteams: { width: 'Full' },
          body,
          actions: [{ type: 'Action.OpenUrl', title: 'Open in Fleetwatch', url: n.externalURL }],
        },
      },
    ],
  };
}

/** The message's JSON text, within Teams' size limit. */
export function teamsMessage(n: ChannelNotification): string {
  let count = Math.min(n.alerts.length, TEAMS_LIMITS.maxAlerts);
  for (;;) {
    const text = JSON.stringify(card(n, n.alerts.slice(0, count), n.alerts.length - count));
    if (bytes(text) <= TEAMS_LIMITS.maxBytes || count <= 1) return text;
    count = Math.max(1, Math.floor(count / 2));
  }
}
