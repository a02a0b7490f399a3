import { alertLine, notificationTitle, type ChannelNotification, type NotificationAlert } from './notification';
import { clipEscaped, defuseMentions, escapeSlack, labelList, oneLine } from './text';

// Slack-compatible incoming webhook: `text` (the title, also the notification preview) and one attachment
// per alert (colour, title linking to the alert, description, labels) — the form Slack, Mattermost and
// Rocket.Chat all read. Every operator-written or target-given value is escaped (`<!channel>` in a target
// name pings nobody, nor does `@channel`: defuseMentions) and bounded by Slack's limits.

export const SLACK_LIMITS = {
  maxAttachments: 20,
  maxTitle: 250,
  maxText: 3000,
  maxFieldValue: 500,
  maxFields: 8,
} as const;

/** Escaped for mrkdwn, channel-wide mentions defused, and at most `max` characters as sent. */
const slackText = (text: string, max: number): string => clipEscaped(defuseMentions(text), max, escapeSlack);

const COLOR = { firing: '#d63232', resolved: '#2eb67d', test: '#439fe0' } as const;

export interface SlackMessage {
  text: string;
  channel?: string;
  username?: string;
  attachments: Array<{
    color: string;
    fallback: string;
    title: string;
    title_link: string;
    text: string;
    fields: Array<{ title: string; value: string; short: boolean }>;
    footer?: string;
    ts?: number;
  }>;
}

function attachmentOf(n: ChannelNotification, a: NotificationAlert): SlackMessage['attachments'][number] {
  const title = slackText(oneLine(`${a.status === 'firing' ? '🔥' : '✅'} ${alertLine(a)}`), SLACK_LIMITS.maxTitle);
  const description = a.annotations['description'] && a.annotations['summary'] ? a.annotations['description'] : '';
  const fields = Object.entries(a.labels)
    .filter(([k]) => k !== 'alertname' && k !== 'rule_id')
    .slice(0, SLACK_LIMITS.maxFields)
    .map(([k, v]) => ({
      title: slackText(k, 100),
      value: slackText(v, SLACK_LIMITS.maxFieldValue),
      short: v.length < 40,
    }));
  return {
    color: n.test ? COLOR.test : COLOR[a.status],
    fallback: slackText(oneLine(alertLine(a)), SLACK_LIMITS.maxTitle),
    title,
    title_link: a.generatorURL,
    text: slackText(description, SLACK_LIMITS.maxText),
    fields,
    footer: `Fleetwatch ${slackText(n.site, 100)}`,
    ts: Math.floor(Date.parse(a.endsAt ?? a.startsAt) / 1000),
  };
}

export function slackMessage(config: { channel?: string; username?: string }, n: ChannelNotification): SlackMessage {
  const shown = n.alerts.slice(0, SLACK_LIMITS.maxAttachments);
  const more = n.alerts.length - shown.length;
  const title = `*${slackText(oneLine(notificationTitle(n)), SLACK_LIMITS.maxTitle)}*`;
  // The group's labels bounded as escaped text in what is left of the limit (clipping the whole escaped text cut
  // through an escape: "&am…").
  const head = `${title}\n…and ${more} more (`;
  const text =
    more > 0 ? `${head}${slackText(labelList(n.groupLabels), SLACK_LIMITS.maxText - head.length - 1)})` : title;
  const msg: SlackMessage = {
    text,
    attachments: shown.map((a) => attachmentOf(n, a)),
  };
  if (config.channel) msg.channel = config.channel;
  if (config.username) msg.username = config.username;
  return msg;
}
