import {
  CHANNEL_SECRET_FIELDS,
  channelInputSchema,
  type Channel,
  type ChannelType,
  type RedactedSecret,
} from '@fleetwatch/contracts';
import { errorsFrom, joinList, splitList, zodIssues, type Errors } from '../form-model';
import { parseHeaderLines } from '../../../header-lines';

// The channel form: public fields per type, and secrets that are write-only. The API never
// returns a secret, only whether one is stored (`{set, hint}`); the form shows that, sends a
// secret only when something was typed (absent = keep the stored one), and `null` when the
// person asked to remove it. Validation is the shared contract's (channelInputSchema).

export interface ChannelDraft {
  type: ChannelType;
  name: string;
  enabled: boolean;
  sendResolved: boolean;
  url: string;
  /** webhook: `Name: value` per line. */
  headers: string;
  channel: string;
  username: string;
  host: string;
  port: string;
  secure: boolean;
  /** email: let the login go without TLS (a trusted relay that offers no STARTTLS). */
  allowPlaintextLogin: boolean;
  /** email: the server's certificate must verify (off: a relay of one's own with a self-signed one). */
  tlsVerify: boolean;
  from: string;
  to: string;
  eventsUrl: string;
  /** Typed secret values (empty: unchanged). */
  secrets: Record<string, string>;
  /** Secrets to remove. */
  clear: Record<string, boolean>;
}

export type ChannelField = Exclude<keyof ChannelDraft, 'secrets' | 'clear'> | `secret.${string}`;
export type ChannelErrors = Errors<ChannelField>;

export const NEW_CHANNEL: ChannelDraft = {
  type: 'webhook',
  name: '',
  enabled: true,
  sendResolved: true,
  url: 'https://',
  headers: '',
  channel: '',
  username: '',
  host: '',
  port: '587',
  secure: false,
  allowPlaintextLogin: false,
  tlsVerify: true,
  from: '',
  to: '',
  eventsUrl: 'https://events.pagerduty.com/v2/enqueue',
  secrets: {},
  clear: {},
};

export const SECRET_LABELS: Record<string, string> = {
  secret: 'Signing secret (HMAC-SHA256)',
  bearerToken: 'Bearer token',
  url: 'Webhook URL (a credential: write-only)',
  password: 'SMTP password',
  routingKey: 'Routing key',
};

/** The secret fields of a type and whether the channel needs them. */
export const secretFieldsOf = (type: ChannelType): [string, boolean][] =>
  Object.entries(CHANNEL_SECRET_FIELDS[type] as Record<string, boolean>);

/** A stored channel's secret: `{set, hint}`, or not set. */
export function storedSecret(c: Channel | undefined, field: string): RedactedSecret {
  const v = c ? (c as unknown as Record<string, unknown>)[field] : undefined;
  return v && typeof v === 'object' && 'set' in v ? (v as RedactedSecret) : { set: false };
}

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));

export function draftFromChannel(c: Channel): ChannelDraft {
  const r = c as unknown as Record<string, unknown>;
  const headers = (r['headers'] ?? {}) as Record<string, string>;
  return {
    ...NEW_CHANNEL,
    type: c.type,
    name: c.name,
    enabled: c.enabled,
    sendResolved: c.sendResolved,
    // Slack's and Teams' `url` is the secret (never returned): only webhook's is public.
    url: c.type === 'webhook' ? str(r['url']) : '',
    headers: Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n'),
    channel: str(r['channel']),
    username: str(r['username']),
    host: str(r['host']),
    port: str(r['port'] ?? 587),
    secure: r['secure'] === true,
    allowPlaintextLogin: r['allowPlaintextLogin'] === true,
    tlsVerify: r['tlsVerify'] !== false,
    from: str(r['from']),
    to: joinList(r['to'] as string[] | undefined),
    eventsUrl: str(r['eventsUrl'] ?? NEW_CHANNEL.eventsUrl),
  };
}

const num = (s: string) => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s.trim());

/** The request body for POST / PUT /api/v1/channels: secrets only when typed (or `null` to remove). */
export function draftToInput(d: ChannelDraft): Record<string, unknown> {
  const body: Record<string, unknown> = {
    type: d.type,
    name: d.name,
    enabled: d.enabled,
    sendResolved: d.sendResolved,
  };
  if (d.type === 'webhook') Object.assign(body, { url: d.url.trim(), headers: parseHeaderLines(d.headers) });
  if (d.type === 'slack') {
    if (d.channel.trim()) body['channel'] = d.channel.trim();
    if (d.username.trim()) body['username'] = d.username.trim();
  }
  if (d.type === 'email') {
    Object.assign(body, {
      host: d.host.trim(),
      port: num(d.port),
      secure: d.secure,
      allowPlaintextLogin: d.allowPlaintextLogin,
      from: d.from.trim(),
      to: splitList(d.to),
    });
    // Absent is "verify": a channel saved before the setting, sent back untouched, stays as it was (no new version).
    if (!d.tlsVerify) body['tlsVerify'] = false;
    if (d.username.trim()) body['username'] = d.username.trim();
  }
  if (d.type === 'pagerduty') body['eventsUrl'] = d.eventsUrl.trim();
  for (const [field] of secretFieldsOf(d.type)) {
    const typed = d.secrets[field] ?? '';
    if (typed !== '') body[field] = field === 'url' ? typed.trim() : typed;
    else if (d.clear[field]) body[field] = null;
  }
  return body;
}

const FIELDS = new Set(['name', 'url', 'headers', 'channel', 'username', 'host', 'port', 'from', 'to', 'eventsUrl']);

/** Maps issue paths onto the form; a secret's path lands on its own input (`secret.<field>`). */
export function errorsFromIssues(
  type: ChannelType,
  issues: readonly { path: string; message: string }[],
): ChannelErrors {
  const secrets = new Set(secretFieldsOf(type).map(([f]) => f));
  return errorsFrom<ChannelField>(issues, ([head, second]) => {
    if (head && secrets.has(head)) return { field: `secret.${head}` };
    if (head === 'to')
      return { field: 'to', prefix: second === undefined ? undefined : `address ${Number(second) + 1}` };
    if (head === 'headers') return { field: 'headers', prefix: second };
    if (head && FIELDS.has(head)) return { field: head as ChannelField };
    return { field: 'form' };
  });
}

/**
 * The contract's verdict. A required secret already stored may be left empty (it is kept); a new
 * channel, or one whose stored secret is removed, must be given one — the owner says the same.
 */
export function validateChannel(d: ChannelDraft, stored: Channel | undefined): ChannelErrors {
  const body = draftToInput(d);
  const r = channelInputSchema.safeParse(body);
  const errors = r.success ? {} : errorsFromIssues(d.type, zodIssues(r.error.issues));
  for (const [field, required] of secretFieldsOf(d.type)) {
    const keeps = stored?.type === d.type && storedSecret(stored, field).set && !d.clear[field];
    if (required && body[field] == null && !keeps) errors[`secret.${field}`] ??= 'required';
  }
  return errors;
}
