import {
  CHANNEL_SECRET_FIELDS,
  missingChannelSecrets,
  redactChannel,
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
// redacted form (`{set, hint}`), computed here from the plaintext once and stored beside it.

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
  stored: { sealed: Record<string, string>; redacted: Record<string, unknown> } | null,
): SecretsWrite {
  const { config, secrets: changes } = splitChannelSecrets(input);
  const fields = Object.keys(CHANNEL_SECRET_FIELDS[config.type]);
  const kept = new Set(fields.filter((f) => stored?.sealed[f] !== undefined));
  const missing = missingChannelSecrets(config.type, kept, changes);
  if (missing.length)
    throw new InvalidError(`invalid channel: ${missing[0]}: required for a ${config.type} channel`, [
      ...missing.map((f) => ({ path: f, message: `required for a ${config.type} channel (write-only: send it)` })),
    ]);
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
        if (kept.has(f)) diff.push({ path: f, before: '(set)', after: '(removed)' });
        continue;
      }
      // The value stored already (a form sent back whole): kept as sealed, no change, no new version.
      if (kept.has(f) && sameSecret(sealer, stored?.sealed[f], v, sealContext(id, f))) {
        sealed[f] = (stored as { sealed: Record<string, string> }).sealed[f];
        continue;
      }
      sealed[f] = (sealer as SecretSealer).seal(v, sealContext(id, f));
      plain[f] = v;
      diff.push({ path: f, ...(kept.has(f) ? { before: '(set)' } : {}), after: '(set, new value)' });
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
    const v = out[f];
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { set?: unknown }).set === 'boolean')
      delete out[f];
  }
  return out;
}

/** A stored channel as every answer shows it: public fields and the redacted secrets. */
export function channelAnswer(r: AlertConfigRecord<ChannelConfig>): Channel {
  const fields = Object.keys(CHANNEL_SECRET_FIELDS[r.spec.type]);
  const redacted: Record<string, unknown> = {};
  for (const f of fields) redacted[f] = r.secretsRedacted?.[f] ?? { set: false };
  return {
    ...r.spec,
    ...redacted,
    id: r.id,
    version: r.version,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  } as Channel;
}
