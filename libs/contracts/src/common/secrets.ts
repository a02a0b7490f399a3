import { z } from 'zod';

// Write-only values (SPEC §10: secrets are never returned by the API, never forwarded to another host) — one
// concept for channel secrets (alerts/channel.schema.ts) and an http check's credential headers
// (checks/check-secrets.ts): a client sends the value; what is stored is used where it was given for, and every
// answer, export, snapshot and audit entry shows only whether one is stored (`{set: true}`).

/** How an answer shows a write-only value: whether one is stored, and for a URL its origin. */
export const redactedSecretSchema = z.strictObject({ set: z.boolean(), hint: z.string().max(300).optional() });
export type RedactedSecret = z.infer<typeof redactedSecretSchema>;

/**
 * Names whose values are credentials, matched anywhere in the name, any case: HTTP headers (`Authorization`,
 * `Proxy-Authorization`, `Cookie`, `X-Api-Key`, `X-Auth-Token`, `X-Vault-Token`, `X-Client-Secret`, …) and the
 * fields of a fleet snapshot (a property `dbPassword`, a status page's `webhookUrl`). The one list: an http check's
 * headers so named are write-only, dropped on a redirect to another origin, and redacted from the snapshot a leader
 * polls (as every field so named).
 */
export const SECRET_NAME =
  /pass(word)?|secret|token|api[-_]?key|authorization|private[-_]?key|credential|webhook[-_]?url|cookie/i;

/** Whether a header or field of this name holds a credential (SECRET_NAME). */
export const isSecretName = (name: string): boolean => SECRET_NAME.test(name);

/** An answer's form of a stored secret sent back as it was read: `{set: …}` — "keep what is stored". */
export function isRedactedSecret(value: unknown): value is RedactedSecret {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as { set?: unknown }).set === 'boolean'
  );
}

/** The audit log's words for a secret that changed (never its value). */
export const SECRET_AUDIT = {
  set: '(set)',
  newValue: '(set, new value)',
  removed: '(removed)',
  /** A dry run never compares a given value with the stored one (its plan would tell whether a guess is right). */
  givenInDryRun: '(set: a value given, compared with the stored one when applied)',
} as const;
