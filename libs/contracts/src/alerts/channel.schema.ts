import { z } from 'zod';
import { ownKeysRecord, storableText } from '../common/store-safe';
import { hostSchema } from '../checks/check-fields';
import { redactedSecretSchema } from '../common/secrets';

// Notification channels (SPEC §7). A channel's secrets — webhook signing keys, the Slack/Teams webhook
// URL (the URL is the credential), SMTP passwords, PagerDuty routing keys — are write-only: a client
// sends them in the input, the configuration owner stores them encrypted apart from the rest
// (`splitChannelSecrets`), and every answer carries the redacted form (`set`, and for URLs only the
// origin). In an input a secret field that is absent keeps the stored value; `null` removes it.

export const CHANNEL_TYPES = ['webhook', 'slack', 'teams', 'email', 'pagerduty'] as const;
export const channelTypeSchema = z.enum(CHANNEL_TYPES);
export type ChannelType = z.infer<typeof channelTypeSchema>;

/**
 * An absolute http(s) URL without credentials in it. Stored as written: the URL parser drops or escapes a NUL
 * or a lone surrogate in a path, query or fragment, but the stores refuse the written text (storableText).
 */
export function httpUrlSchema(max = 2048) {
  return storableText(max).superRefine((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not a valid absolute URL' });
      return;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      ctx.addIssue({ code: 'custom', message: `scheme "${url.protocol}" not allowed (use http or https)` });
    else if (url.username || url.password)
      ctx.addIssue({ code: 'custom', message: 'credentials do not belong in the URL' });
    else if (!url.hostname) ctx.addIssue({ code: 'custom', message: 'the URL needs a host' });
  });
}

/** A write-only value: the secret itself, `null` to remove it, absent to keep what is stored. */
const secretText = (max = 4096) => storableText(max).min(1).nullable().optional();
const secretUrl = () => httpUrlSchema().nullable().optional();

/**
 * What an HTTP header value may hold, as the HTTP client checks it (tab, visible ASCII, Latin-1; no line
 * breaks, no leading or trailing blank): a value it would refuse at send time would block the channel.
 */
const headerValue = (max: number) =>
  storableText(max).regex(
    /^(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/,
    'only visible ASCII or Latin-1 characters, spaces and tabs inside, no line breaks',
  );

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, 'an HTTP header name');
const CREDENTIAL_HEADERS = /^(authorization|proxy-authorization|cookie|x-api-key)$/i;
// No control characters (NUL among them: the stores refuse it) in the local part either.
const emailAddress = storableText(320).regex(
  // eslint-disable-next-line no-control-regex
  /^[^\s@<>"(),;:\u0000-\u001f\u007f]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/,
  'an e-mail address like ops@example.com',
);

const common = {
  name: storableText(256).trim().min(1),
  enabled: z.boolean().default(true),
  /** Also notify when an alert resolves. */
  sendResolved: z.boolean().default(true),
};

/** Public fields of each type (what is stored in the clear and returned). */
const publicShapes = {
  webhook: {
    ...common,
    type: z.literal('webhook'),
    url: httpUrlSchema(),
    /**
     * Extra headers (never credentials: use `bearerToken`, stored encrypted). Every write refuses a header named like
     * a credential (SECRET_NAME, the one list: sync-orchestrator's channelHeaderSecrets); this schema, which also
     * reads stored channels (the aggregator's delivery), refuses only the four below, so that a channel stored before
     * with another such header still delivers. Answers, exports and version snapshots mask those values.
     */
    headers: ownKeysRecord(headerName, headerValue(1024))
      .refine((h) => Object.keys(h).length <= 16, 'at most 16 headers')
      .refine((h) => !Object.keys(h).some((k) => CREDENTIAL_HEADERS.test(k)), {
        message: 'credentials do not go in headers: use bearerToken (stored encrypted)',
      })
      .default({}),
  },
  slack: {
    ...common,
    type: z.literal('slack'),
    /** Overrides the webhook's default channel (`#ops`). */
    channel: storableText(128).optional(),
    username: storableText(128).optional(),
  },
  teams: { ...common, type: z.literal('teams') },
  email: {
    ...common,
    type: z.literal('email'),
    host: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[A-Za-z0-9._:-]+$/, 'a host name or IP address'),
    port: z.number().int().min(1).max(65_535).default(587),
    /** TLS from the start (465); otherwise STARTTLS when the server offers it (required before a login: below). */
    secure: z.boolean().default(false),
    username: storableText(256).optional(),
    /**
     * With a username and `secure: false`, STARTTLS is required before the login: a server that offers none (or a
     * STARTTLS stripped on the way) fails the delivery instead of getting the password in clear. `true` lets the login
     * go without TLS — only for a trusted relay on a network of your own.
     */
    allowPlaintextLogin: z.boolean().default(false),
    /**
     * Whether the server's certificate must verify (TLS from the start or STARTTLS; absent: true). `false` accepts a
     * self-signed or expired one — only for a relay of your own: the connection is encrypted but not authenticated.
     * A relay that offers STARTTLS with a self-signed certificate otherwise fails every delivery.
     */
    tlsVerify: z.boolean().optional(),
    from: emailAddress,
    to: z.array(emailAddress).min(1).max(50),
  },
  pagerduty: {
    ...common,
    type: z.literal('pagerduty'),
    /** Events API v2 endpoint (default PagerDuty's; a test points it at a local receiver). */
    eventsUrl: httpUrlSchema().default('https://events.pagerduty.com/v2/enqueue'),
  },
} as const;

/** Secret fields of each type and whether a channel cannot work without them. */
export const CHANNEL_SECRET_FIELDS = {
  webhook: { secret: false, bearerToken: false },
  slack: { url: true },
  teams: { url: true },
  email: { password: false },
  pagerduty: { routingKey: true },
} as const satisfies Record<ChannelType, Record<string, boolean>>;
/** Secrets that are URLs: their redacted form shows the origin only. */
const URL_SECRETS = new Set(['url']);

export const channelInputSchema = z.discriminatedUnion('type', [
  z.strictObject({
    ...publicShapes.webhook,
    /** HMAC-SHA256 key for the signature header. */
    secret: secretText(512),
    bearerToken: headerValue(4096).min(1).nullable().optional(),
  }),
  z.strictObject({ ...publicShapes.slack, url: secretUrl() }),
  z.strictObject({ ...publicShapes.teams, url: secretUrl() }),
  // A colon only in an IPv6 address (`smtp.example.com:587` was saved, and every delivery failed looking it up); a
  // channel stored so before is still read (channelConfigSchema), and refused when next written.
  z.strictObject({ ...publicShapes.email, host: hostSchema, password: secretText(512) }),
  z.strictObject({ ...publicShapes.pagerduty, routingKey: secretText(128) }),
]);
export type ChannelInput = z.input<typeof channelInputSchema>;
export type ChannelSpecWithSecrets = z.output<typeof channelInputSchema>;

/** A channel's public configuration (what is stored in the clear). */
export const channelConfigSchema = z.discriminatedUnion('type', [
  z.strictObject(publicShapes.webhook),
  z.strictObject(publicShapes.slack),
  z.strictObject(publicShapes.teams),
  z.strictObject(publicShapes.email),
  z.strictObject(publicShapes.pagerduty),
]);
export type ChannelConfig = z.output<typeof channelConfigSchema>;

/** A channel as every answer returns it: public fields, secrets redacted. */
export const channelRedactedSchema = z.discriminatedUnion('type', [
  z.strictObject({ ...publicShapes.webhook, secret: redactedSecretSchema, bearerToken: redactedSecretSchema }),
  z.strictObject({ ...publicShapes.slack, url: redactedSecretSchema }),
  z.strictObject({ ...publicShapes.teams, url: redactedSecretSchema }),
  z.strictObject({ ...publicShapes.email, password: redactedSecretSchema }),
  z.strictObject({ ...publicShapes.pagerduty, routingKey: redactedSecretSchema }),
]);
export type ChannelRedacted = z.output<typeof channelRedactedSchema>;
export type Channel = ChannelRedacted & {
  id: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  /**
   * Read-only (not accepted on writes): when the channel's rate-limit pause ends (ISO) — its receiver answered 429, or
   * 503 with Retry-After, and none of its messages is sent before then — or null when it is not paused. A change, a
   * disabling or a delete of the channel ends the pause.
   */
  pausedUntil: string | null;
};

/** Secret changes of an input: a value to store, `null` to remove; fields not listed stay as stored. */
export type ChannelSecretChanges = Record<string, string | null>;

/** Splits a validated input into what is stored in the clear and the secret changes (to encrypt). */
export function splitChannelSecrets(input: ChannelSpecWithSecrets): {
  config: ChannelConfig;
  secrets: ChannelSecretChanges;
} {
  const fields = CHANNEL_SECRET_FIELDS[input.type] as Record<string, boolean>;
  const config: Record<string, unknown> = {};
  const secrets: ChannelSecretChanges = {};
  for (const [k, v] of Object.entries(input)) {
    if (k in fields) {
      if (v !== undefined) secrets[k] = v as string | null;
    } else config[k] = v;
  }
  return { config: config as ChannelConfig, secrets };
}

/** Secret fields a channel of this type needs but would not have after these changes. */
export function missingChannelSecrets(
  type: ChannelType,
  stored: ReadonlySet<string>,
  changes: ChannelSecretChanges,
): string[] {
  const fields = CHANNEL_SECRET_FIELDS[type] as Record<string, boolean>;
  return Object.entries(fields)
    .filter(([k, required]) => required && (k in changes ? changes[k] === null : !stored.has(k)))
    .map(([k]) => k);
}

/** The answer's form of a stored channel: `secrets` are the stored plaintexts, used only to say `set` and a URL's origin. */
export function redactChannel(config: ChannelConfig, secrets: Readonly<Record<string, string>>): ChannelRedacted {
  const fields = CHANNEL_SECRET_FIELDS[config.type] as Record<string, boolean>;
  const out: Record<string, unknown> = { ...config };
  for (const k of Object.keys(fields)) {
    const value = secrets[k];
    out[k] = value === undefined ? { set: false } : { set: true, ...(URL_SECRETS.has(k) ? originHint(value) : {}) };
  }
  return out as ChannelRedacted;
}

function originHint(url: string): { hint?: string } {
  try {
    return { hint: `${new URL(url).origin}/…` };
  } catch {
    return {};
  }
}
