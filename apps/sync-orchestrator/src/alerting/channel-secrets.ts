import {
  CHANNEL_SECRET_FIELDS,
  isRedactedSecret,
  isSecretName,
  missingChannelSecrets,
  redactChannel,
  SECRET_AUDIT,
  splitChannelSecrets,
  type Channel,
  type ChannelConfig,
  type ChannelSpecWithSecrets,
  type ConfigDiffEntry,
} from '@fleetwatch/contracts';
import { timingSafeEqual } from 'node:crypto';
import { ForbiddenError, InvalidError } from '@fleetwatch/domain';
import { channelSecretContext, type AlertConfigRecord, type SecretSealer } from '@fleetwatch/persistence';

// A channel's secrets on a write (issue 18): the input's secret fields are changes — a value seals
// and replaces, `null` removes, absent keeps what is stored; fields the (possibly new) type does not
// have are dropped. Secrets are sealed per field, bound to `channel:<id>:<field>`, so a sealed value
// cannot be moved to another channel or field. What answers, the audit log and snapshots see is the
// redacted form (`{set, hint}`), computed here from the plaintext once and stored beside it. An http
// check's credential headers follow the same rules (config/check-secrets.ts: contracts' common/secrets.ts).

/** Scheme, host and port of a URL a secret is sent or signed for (the URL itself when it does not read as one). */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/**
 * Where a channel's secrets go: the origin its requests are sent to (webhook `url`, PagerDuty `eventsUrl`: scheme,
 * host and port), or the SMTP server (host, port, TLS from the start). null for Slack and Teams, whose URL is the
 * secret itself. A stored secret is only ever sent where it was given for (SPEC §10: never forwarded to another
 * host): a write that changes the destination must send each stored secret again, or `null` to remove it —
 * otherwise whoever may edit a channel could point it at a host of theirs and have a test-send hand them a bearer
 * token, an SMTP password or a routing key they were never shown (secrets are write-only, for admins too).
 */
export function channelDestination(config: ChannelConfig): string | null {
  switch (config.type) {
    case 'webhook':
      return originOf(config.url);
    case 'pagerduty':
      return originOf(config.eventsUrl);
    case 'email':
      // A login allowed in clear is another destination for the password: whoever may edit the channel must type it.
      // So is a server whose certificate is not checked (anyone on the way, or spoofing its name, may take it).
      return `smtp${config.secure ? 's' : ''}://${config.host.toLowerCase()}:${config.port}${
        !config.secure && config.allowPlaintextLogin ? ' (login without TLS allowed)' : ''
      }${config.tlsVerify === false ? ' (certificate not verified)' : ''}`;
    case 'slack':
    case 'teams':
      return null;
  }
}

export interface SecretsWrite {
  config: ChannelConfig;
  /** Sealed values by field (the whole set after the write). */
  sealed: Record<string, string>;
  redacted: Record<string, unknown>;
  /** Audit entries for secret fields (never values): `{path, after: '(set)' | '(removed)'}`. */
  diff: ConfigDiffEntry[];
}

/** Where a secret is sealed: `channel:<id>:<field>` (persistence's channelSecretContext, which delivery opens with). */
export const sealContext = channelSecretContext;

export function channelSecretsWrite(
  sealer: SecretSealer | null,
  id: string,
  input: ChannelSpecWithSecrets,
  stored: {
    sealed: Record<string, string>;
    redacted: Record<string, unknown>;
    /** The channel's public form as stored: a write that changes where it sends must send its secrets again. */
    config?: ChannelConfig;
  } | null,
  /**
   * A dry run (whose plan viewers and read keys see) never compares a given secret with the stored one: the plan
   * would tell them whether a guess is right. A value given is planned as a change; applying it is none when equal.
   */
  options: { dryRun?: boolean } = {},
): SecretsWrite {
  const { config, secrets: changes } = splitChannelSecrets(input);
  const fields = Object.keys(CHANNEL_SECRET_FIELDS[config.type]);
  const kept = new Set(fields.filter((f) => stored?.sealed[f] !== undefined));
  const missing = missingChannelSecrets(config.type, kept, changes);
  if (missing.length)
    throw new InvalidError(`invalid channel: ${missing[0]}: required for a ${config.type} channel`, [
      ...missing.map((f) => ({ path: f, message: `required for a ${config.type} channel (write-only: send it)` })),
    ]);
  const destination = channelDestination(config);
  if (stored?.config && destination !== null && channelDestination(stored.config) !== destination) {
    const following = fields.filter((f) => kept.has(f) && !(f in changes));
    if (following.length)
      throw new InvalidError(
        `invalid channel: it would now send to ${destination}: send ${following.join(' and ')} again, or null to ` +
          'remove, with the move (a stored secret is never sent to another destination)',
        following.map((f) => ({
          path: f,
          message: `the channel now sends to ${destination}: send this secret again (or null to remove it); the stored one stays with ${channelDestination(stored.config as ChannelConfig)}`,
        })),
      );
  }
  const toSeal = Object.entries(changes).filter((e): e is [string, string] => typeof e[1] === 'string');
  if (toSeal.length && !sealer)
    throw new ForbiddenError(
      'channel secrets cannot be stored: sync-orchestrator has no FLEETWATCH_ENCRYPTION_KEY (see docs/runbooks/configuration.md)',
    );
  const sealed: Record<string, string> = {};
  const plain: Record<string, string> = {};
  const diff: ConfigDiffEntry[] = [];
  for (const f of fields) {
    if (f in changes) {
      const v = changes[f];
      if (v === null) {
        if (kept.has(f)) diff.push({ path: f, before: SECRET_AUDIT.set, after: SECRET_AUDIT.removed });
        continue;
      }
      if (kept.has(f) && options.dryRun) {
        sealed[f] = (stored as { sealed: Record<string, string> }).sealed[f];
        diff.push({ path: f, before: SECRET_AUDIT.set, after: SECRET_AUDIT.givenInDryRun });
        continue;
      }
      // The value stored already (a form sent back whole): kept as sealed, no change, no new version.
      if (kept.has(f) && sameSecret(sealer, stored?.sealed[f], v, sealContext(id, f))) {
        sealed[f] = (stored as { sealed: Record<string, string> }).sealed[f];
        continue;
      }
      sealed[f] = (sealer as SecretSealer).seal(v, sealContext(id, f));
      plain[f] = v;
      diff.push({ path: f, ...(kept.has(f) ? { before: SECRET_AUDIT.set } : {}), after: SECRET_AUDIT.newValue });
    } else if (kept.has(f)) sealed[f] = (stored as { sealed: Record<string, string> }).sealed[f];
  }
  const fresh = redactChannel(config, plain) as unknown as Record<string, unknown>;
  const redacted: Record<string, unknown> = {};
  for (const f of fields)
    redacted[f] =
      f in plain ? fresh[f] : sealed[f] !== undefined ? (stored?.redacted[f] ?? { set: true }) : { set: false };
  return { config, sealed, redacted, diff };
}

/** Whether `sealedValue` opens to `plain` (false when it cannot be opened: then the new value is sealed). */
function sameSecret(sealer: SecretSealer | null, sealedValue: string | undefined, plain: string, context: string) {
  if (!sealer || sealedValue === undefined) return false;
  try {
    const current = Buffer.from(sealer.open(sealedValue, context));
    const given = Buffer.from(plain);
    return current.length === given.length && timingSafeEqual(current, given);
  } catch {
    return false;
  }
}

/**
 * A channel body whose secret fields hold what answers show (`{set, hint}`) — a form read, edited and sent
 * back — with those fields left out: absent keeps what is stored. Other values go to validation as they are.
 */
export function withoutRedactedSecrets(input: unknown): unknown {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  const body = input as Record<string, unknown>;
  const type = body['type'];
  if (typeof type !== 'string' || !(type in CHANNEL_SECRET_FIELDS)) return input;
  const out: Record<string, unknown> = { ...body };
  for (const f of Object.keys(CHANNEL_SECRET_FIELDS[type as keyof typeof CHANNEL_SECRET_FIELDS])) {
    if (isRedactedSecret(out[f])) delete out[f];
  }
  return out;
}

/**
 * A webhook channel's headers named like a credential (contracts' SECRET_NAME, the one list: `X-Auth-Token`,
 * `X-Gitlab-Token`, `Api-Key`, …) are write-only: a receiver may need its token in such a header, so one is taken and
 * sent, but every answer, export and version snapshot shows its value as MASKED_HEADER (the audit log's word), and a
 * write that sends MASKED_HEADER back keeps the stored value.
 */
export const MASKED_HEADER: string = SECRET_AUDIT.set;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A channel's form (stored spec or input) with the values of its credential-named headers masked. */
export function maskChannelHeaders<T>(form: T): T {
  if (!isPlainObject(form) || form['type'] !== 'webhook' || !isPlainObject(form['headers'])) return form;
  const headers = form['headers'];
  if (!Object.keys(headers).some(isSecretName)) return form;
  const masked: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers))
    Object.defineProperty(masked, name, {
      value: isSecretName(name) ? MASKED_HEADER : value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return { ...form, headers: masked } as T;
}

/**
 * A channel input's credential-named headers resolved against the stored channel (`stored`: its spec, null on
 * create): MASKED_HEADER keeps the stored value of that name (while the channel sends where it did: never to another
 * destination); any other value is taken as the new one. Issues pathed `<prefix>headers.<name>`; the input as it is
 * when it has none.
 */
export function channelHeaderSecrets(input: unknown, stored: ChannelConfig | null, prefix = ''): unknown {
  if (!isPlainObject(input) || input['type'] !== 'webhook' || !isPlainObject(input['headers'])) return input;
  const given = input['headers'];
  if (!Object.keys(given).some(isSecretName)) return input;
  const storedHeaders = stored?.type === 'webhook' ? stored.headers : {};
  const storedByName = new Map(Object.entries(storedHeaders).map(([n, v]) => [n.toLowerCase(), v]));
  const moved =
    stored !== null &&
    typeof input['url'] === 'string' &&
    channelDestination(stored) !== originOf(input['url'] as string);
  const headers: Record<string, unknown> = {};
  const issues: { path: string; message: string }[] = [];
  for (const [name, value] of Object.entries(given)) {
    let out = value;
    if (isSecretName(name) && value === MASKED_HEADER) {
      const kept = storedByName.get(name.toLowerCase());
      const path = `${prefix}headers.${name}`;
      if (kept === undefined)
        issues.push({
          path,
          message: `${MASKED_HEADER} stands for a stored value, and this channel has none for ${name}: send its value`,
        });
      else if (moved)
        issues.push({
          path,
          message: `the channel now sends to ${originOf(input['url'] as string)}: send ${name}'s value again (a stored credential is never sent to another destination)`,
        });
      else out = kept;
    }
    Object.defineProperty(headers, name, { value: out, enumerable: true, writable: true, configurable: true });
  }
  if (issues.length)
    throw new InvalidError(
      `invalid channel: ${issues[0].path}: ${issues[0].message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`,
      issues,
    );
  return { ...input, headers };
}

/** A stored channel as every answer shows it: public fields (credential-named headers masked) and the redacted secrets. */
export function channelAnswer(r: AlertConfigRecord<ChannelConfig>): Channel {
  const fields = Object.keys(CHANNEL_SECRET_FIELDS[r.spec.type]);
  const redacted: Record<string, unknown> = {};
  for (const f of fields) redacted[f] = r.secretsRedacted?.[f] ?? { set: false };
  return {
    ...maskChannelHeaders(r.spec),
    ...redacted,
    id: r.id,
    version: r.version,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    pausedUntil: r.pausedUntil ?? null,
  } as Channel;
}
