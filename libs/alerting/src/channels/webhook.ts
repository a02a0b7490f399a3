import { createHmac, timingSafeEqual } from 'node:crypto';
import { commonAnnotations, commonLabels, type ChannelNotification, type NotificationAlert } from './notification';
import { bytes, clip } from './text';

// The generic webhook (SPEC §7): an Alertmanager-like JSON body (version "4", groupKey, status, groupLabels,
// commonLabels, commonAnnotations, externalURL, alerts[]) signed with HMAC-SHA256 over `timestamp + "." + body`
// — the timestamp in the signed text stops a captured request from being replayed later with a fresh header.
//   X-Fleetwatch-Timestamp: <unix seconds>
//   X-Fleetwatch-Signature: sha256=<hex>

export const WEBHOOK_SIGNATURE_HEADER = 'x-fleetwatch-signature';
export const WEBHOOK_TIMESTAMP_HEADER = 'x-fleetwatch-timestamp';
export const WEBHOOK_DELIVERY_HEADER = 'x-fleetwatch-delivery';
export const WEBHOOK_BODY_VERSION = '4';

export const WEBHOOK_LIMITS = {
  /** Largest body sent: alerts past it are left out and counted in `truncatedAlerts`. */
  maxBodyBytes: 256 * 1024,
  maxAlerts: 500,
  /** Longest annotation value in the body. */
  maxAnnotationLength: 4096,
} as const;

export interface WebhookBody {
  version: string;
  groupKey: string;
  truncatedAlerts: number;
  status: string;
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  site: string;
  test: boolean;
  alerts: Array<Omit<NotificationAlert, 'value'> & { value: number | null }>;
}

function clipAnnotations(a: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) out[k] = clip(v, WEBHOOK_LIMITS.maxAnnotationLength);
  return out;
}

/** The body's JSON text, with as many alerts as the bounds allow (always at least one). */
export function webhookBody(receiver: string, n: ChannelNotification): string {
  const alerts = n.alerts.map(({ lineSaysEndReason: _line, ...a }) => ({
    ...a,
    annotations: clipAnnotations(a.annotations),
  }));
  const base: WebhookBody = {
    version: WEBHOOK_BODY_VERSION,
    groupKey: n.groupKey,
    truncatedAlerts: 0,
    status: n.status,
    receiver,
    groupLabels: n.groupLabels,
    commonLabels: commonLabels(alerts),
    commonAnnotations: commonAnnotations(alerts),
    externalURL: n.externalURL,
    site: n.site,
    test: n.test === true,
    alerts: [],
  };
  // Room for the alerts: the rest of the body with a generous allowance for the truncation count.
  let room = WEBHOOK_LIMITS.maxBodyBytes - bytes(JSON.stringify(base)) - 16;
  const kept: WebhookBody['alerts'] = [];
  for (const a of alerts) {
    if (kept.length >= WEBHOOK_LIMITS.maxAlerts) break;
    const size = bytes(JSON.stringify(a)) + 1;
    if (kept.length && size > room) break;
    kept.push(a);
    room -= size;
  }
  return JSON.stringify({ ...base, truncatedAlerts: alerts.length - kept.length, alerts: kept });
}

/** `sha256=<hex>` of HMAC-SHA256(secret, `${timestamp}.${body}`). */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface WebhookVerification {
  secret: string;
  /** The raw body as received (bytes decoded as UTF-8, unparsed). */
  body: string;
  timestamp: string | undefined;
  signature: string | undefined;
  /** Receiver's clock (ms). */
  now: number;
  /** Oldest or newest timestamp accepted, in seconds from now (default 300). */
  toleranceSeconds?: number;
}

/** For receivers (and tests): whether a request carries a valid, fresh signature. Constant-time compare. */
export function verifyWebhookSignature(v: WebhookVerification): boolean {
  if (!v.timestamp || !v.signature || !/^\d{1,12}$/.test(v.timestamp)) return false;
  if (Math.abs(v.now / 1000 - Number(v.timestamp)) > (v.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(webhookSignature(v.secret, v.timestamp, v.body));
  const given = Buffer.from(v.signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
