import { CHANNEL_SECRET_FIELDS, type ChannelConfig } from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import { emailMessage, type EmailMessage } from './email';
import { notificationForChannel, type ChannelNotification } from './notification';
import { pagerDutyEvent } from './pagerduty';
import { slackMessage } from './slack';
import { teamsMessage } from './teams';
import {
  WEBHOOK_DELIVERY_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  webhookBody,
  webhookSignature,
} from './webhook';

// One notification → the request a channel's receiver gets. Pure: the transport (the aggregator) sends what
// this returns. Secrets come in as the decrypted plaintexts the configuration owner stores; they go into
// the request only (URL, header, body, SMTP login), never into anything returned for logs.

export const USER_AGENT = 'Fleetwatch-Alerts/1';

export interface HttpChannelRequest {
  kind: 'http';
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface SmtpSettings {
  host: string;
  port: number;
  secure: boolean;
  /** STARTTLS before anything is sent (set when a login would otherwise risk going in clear). */
  requireTls: boolean;
  /** The server's certificate must verify (the channel's `tlsVerify`, true unless it says false). */
  tlsVerify: boolean;
  username?: string;
  password?: string;
}

export interface EmailChannelRequest {
  kind: 'email';
  smtp: SmtpSettings;
  message: EmailMessage;
}

export type ChannelRequest = HttpChannelRequest | EmailChannelRequest;

export interface FormatOptions {
  /** Signing time (ms). */
  now: number;
  /** Sent as X-Fleetwatch-Delivery (e-mail: in the Message-ID) so a receiver can drop a repeat of the same delivery. */
  deliveryId?: string;
}

/** Channel secrets as stored: plaintexts by field name (webhook `secret`, `bearerToken`; slack/teams `url` …). */
export type ChannelSecrets = Readonly<Record<string, string>>;

function required(config: ChannelConfig, secrets: ChannelSecrets, field: string): string {
  const value = secrets[field];
  if (!value) throw new InvalidError(`channel "${config.name}" (${config.type}) has no ${field} stored`);
  return value;
}

/** Headers the transport owns (framing, connection, target host): a channel's own value would break the request. */
const TRANSPORT_HEADERS =
  /^(host|content-length|transfer-encoding|connection|keep-alive|upgrade|expect|te|trailer|proxy-.*)$/i;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'user-agent': USER_AGENT };

/**
 * The request for this channel, or null when the channel is sent nothing (a resolved-only message to a
 * channel without `sendResolved`; an e-mail retry none of whose waiting recipients the channel still lists). Throws InvalidError when a secret the channel needs is not stored.
 */
export function buildChannelRequest(
  config: ChannelConfig,
  secrets: ChannelSecrets,
  notification: ChannelNotification,
  options: FormatOptions,
): ChannelRequest | null {
  const n = notificationForChannel(config, notification);
  if (!n) return null;
  switch (config.type) {
    case 'webhook': {
      const body = webhookBody(config.name, n);
      const headers: Record<string, string> = {};
      // The channel's own headers first: ours (content type, signature, timestamp) always win.
      for (const [k, v] of Object.entries(config.headers)) if (!TRANSPORT_HEADERS.test(k)) headers[k.toLowerCase()] = v;
      Object.assign(headers, JSON_HEADERS);
      const timestamp = String(Math.floor(options.now / 1000));
      headers[WEBHOOK_TIMESTAMP_HEADER] = timestamp;
      if (options.deliveryId) headers[WEBHOOK_DELIVERY_HEADER] = options.deliveryId;
      if (secrets['secret']) headers[WEBHOOK_SIGNATURE_HEADER] = webhookSignature(secrets['secret'], timestamp, body);
      if (secrets['bearerToken']) headers['authorization'] = `Bearer ${secrets['bearerToken']}`;
      return { kind: 'http', url: config.url, headers, body };
    }
    case 'slack':
      return {
        kind: 'http',
        url: required(config, secrets, 'url'),
        headers: { ...JSON_HEADERS },
        body: JSON.stringify(slackMessage(config, n)),
      };
    case 'teams':
      return {
        kind: 'http',
        url: required(config, secrets, 'url'),
        headers: { ...JSON_HEADERS },
        body: teamsMessage(n),
      };
    case 'pagerduty':
      return {
        kind: 'http',
        url: config.eventsUrl,
        headers: { ...JSON_HEADERS },
        body: JSON.stringify(pagerDutyEvent(required(config, secrets, 'routingKey'), n)),
      };
    case 'email': {
      // A retry for the recipients a relay refused for now: the others have the message already.
      const wanted = n.recipients ? new Set(n.recipients.map((r) => r.toLowerCase())) : null;
      const to = wanted ? config.to.filter((a) => wanted.has(a.toLowerCase())) : config.to;
      if (!to.length) return null;
      return {
        kind: 'email',
        smtp: {
          host: config.host,
          port: config.port,
          secure: config.secure,
          requireTls: !config.secure && Boolean(config.username) && !config.allowPlaintextLogin,
          tlsVerify: config.tlsVerify !== false,
          ...(config.username ? { username: config.username } : {}),
          ...(secrets['password'] ? { password: secrets['password'] } : {}),
        },
        message: emailMessage({ from: config.from, to }, n, options.deliveryId),
      };
    }
  }
}

/** The secret values of a channel, to scrub from any text that leaves the transport (errors, answers). */
export function channelSecretValues(
  config: Pick<ChannelConfig, 'type'> & { username?: string },
  secrets: ChannelSecrets,
): string[] {
  const fields = Object.keys(CHANNEL_SECRET_FIELDS[config.type]);
  const out: string[] = [];
  for (const f of fields) {
    const v = secrets[f];
    if (!v) continue;
    out.push(v);
    // An SMTP login travels base64'd (AUTH PLAIN: NUL user NUL password, as nodemailer writes it; AUTH LOGIN: the
    // password alone), and a server may echo the argument in its refusal.
    if (config.type === 'email' && f === 'password') {
      const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
      out.push(b64(v), b64(`\u0000${config.username ?? ''}\u0000${v}`));
    }
    // A URL secret leaks through its parts too (a Slack webhook's path is the credential).
    if (f === 'url')
      try {
        const u = new URL(v);
        if (u.pathname.length > 1) out.push(u.pathname);
        if (u.search.length > 1) out.push(u.search.slice(1));
      } catch {
        /* not a URL: the whole value is enough */
      }
  }
  return out;
}

/** Shorter secrets are not masked in place (that would mask every such letter): a text holding one is withheld. */
export const SCRUB_MIN_LENGTH = 4;

export const WITHHELD_TEXT = '(text withheld: it contained a channel secret)';

/**
 * `text` with every secret value replaced by ***, as written and in the forms a receiver may echo it (URL- and
 * JSON-escaped). A text that contains a secret too short to mask in place is withheld whole.
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  const forms = (s: string) => [...new Set([s, encodeURIComponent(s), JSON.stringify(s).slice(1, -1)])];
  const long = secrets.filter((s) => s.length >= SCRUB_MIN_LENGTH).sort((a, b) => b.length - a.length);
  for (const s of long) for (const f of forms(s)) out = out.split(f).join('***');
  for (const s of secrets)
    if (s.length > 0 && s.length < SCRUB_MIN_LENGTH && forms(s).some((f) => out.includes(f))) return WITHHELD_TEXT;
  return out;
}
