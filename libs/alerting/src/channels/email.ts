import { alertLine, notificationTitle, type ChannelNotification, type NotificationAlert } from './notification';
import { clip, escapeHtml, oneLine } from './text';

// E-mail (SMTP, sent with nodemailer by the aggregator): a one-line subject (no header injection through a
// line break), a plain-text part and an HTML part in which every value is HTML-escaped.

export const EMAIL_LIMITS = {
  maxSubject: 200,
  maxAlerts: 100,
  maxAnnotation: 4096,
} as const;

export interface EmailMessage {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
  /**
   * `<fleetwatch.{deliveryId}@{the sender's domain}>`: the same at every attempt of one delivery, so a mail a relay took
   * whose answer was lost (the send timed out, and is tried again) arrives twice with one Message-ID, and the mail
   * system or the reader drops the repeat. Absent: the mailer makes one up (a new one at each attempt).
   */
  messageId?: string;
}

/** The Message-ID of a delivery's mail (EmailMessage.messageId), in the domain of the sender's address. */
export function deliveryMessageId(deliveryId: string, from: string): string {
  const at = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from);
  const id = deliveryId.replace(/[^A-Za-z0-9.-]/g, '');
  return `<fleetwatch.${id}@${at ? at[1] : 'fleetwatch.invalid'}>`;
}

const shownOf = (n: ChannelNotification) => n.alerts.slice(0, EMAIL_LIMITS.maxAlerts);

function textOf(n: ChannelNotification): string {
  const lines = [notificationTitle(n), ''];
  for (const a of shownOf(n)) {
    lines.push(`[${a.status.toUpperCase()}] ${oneLine(alertLine(a))}`);
    for (const [k, v] of Object.entries(a.annotations))
      if (k !== 'summary') lines.push(`  ${k}: ${clip(v, EMAIL_LIMITS.maxAnnotation)}`);
    lines.push(
      `  labels: ${Object.entries(a.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
    );
    lines.push(`  since: ${a.startsAt}${a.endsAt ? `, resolved: ${a.endsAt}` : ''}`);
    lines.push(`  ${a.generatorURL}`, '');
  }
  const more = n.alerts.length - shownOf(n).length;
  if (more > 0) lines.push(`…and ${more} more`, '');
  lines.push(`Fleetwatch ${n.site}: ${n.externalURL}`);
  return lines.join('\n');
}

function htmlAlert(a: NotificationAlert): string {
  const colour = a.status === 'firing' ? '#d63232' : '#2eb67d';
  const annotations = Object.entries(a.annotations)
    .filter(([k]) => k !== 'summary')
    .map(([k, v]) => `<p><b>${escapeHtml(k)}</b>: ${escapeHtml(clip(v, EMAIL_LIMITS.maxAnnotation))}</p>`)
    .join('');
  const labels = Object.entries(a.labels)
    .map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`)
    .join('');
  return (
    `<div style="border-left:4px solid ${colour};padding:4px 12px;margin:12px 0">` +
    `<h3 style="margin:4px 0">[${a.status.toUpperCase()}] ${escapeHtml(oneLine(alertLine(a)))}</h3>` +
    annotations +
    `<table style="font-size:12px">${labels}</table>` +
    `<p style="font-size:12px">since ${escapeHtml(a.startsAt)}${a.endsAt ? `, resolved ${escapeHtml(a.endsAt)}` : ''} · ` +
    `<a href="${escapeHtml(a.generatorURL)}">open in Fleetwatch</a></p></div>`
  );
}

function htmlOf(n: ChannelNotification): string {
  const more = n.alerts.length - shownOf(n).length;
  return (
    `<!doctype html><html><body style="font-family:sans-serif">` +
    `<h2>${escapeHtml(notificationTitle(n))}</h2>` +
    shownOf(n).map(htmlAlert).join('') +
    (more > 0 ? `<p>…and ${more} more</p>` : '') +
    `<p style="font-size:12px;color:#666">Fleetwatch ${escapeHtml(n.site)} · <a href="${escapeHtml(n.externalURL)}">${escapeHtml(n.externalURL)}</a></p>` +
    `</body></html>`
  );
}

export function emailMessage(
  config: { from: string; to: readonly string[] },
  n: ChannelNotification,
  deliveryId?: string,
): EmailMessage {
  return {
    from: config.from,
    to: [...config.to],
    subject: clip(oneLine(notificationTitle(n)), EMAIL_LIMITS.maxSubject),
    text: textOf(n),
    html: htmlOf(n),
    ...(deliveryId ? { messageId: deliveryMessageId(deliveryId, config.from) } : {}),
  };
}
