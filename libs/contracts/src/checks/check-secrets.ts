import { isRedactedSecret, isSecretName, type RedactedSecret } from '../common/secrets';
import type { CheckDefinition, CheckSpec } from './check.schema';

// An http check's credential headers (SPEC §10) are write-only, like a channel's secrets: the configuration owner
// stores them (the collector probes with them: its assignment carries them, inside the site), and every other
// form of the check — API answers, config export, config versions, audit entries, the fleet snapshot — shows
// `{set: true}` in place of the value. A write names each such header with
//   - a value: stored (replacing the stored one of that name, in any spelling);
//   - `{set: …}` (the answer's form sent back) or nothing: the stored value is kept;
//   - `null`: removed.
// A write that moves the check to another origin (scheme, host, port) must send each stored one again or `null` it:
// a stored credential is never sent to a host it was not given for.

/** Whether an HTTP header of this name carries a credential (one list: contracts' SECRET_NAME, any case). */
export const isSecretHeader = isSecretName;

/** Headers as answers show them: each credential header's value replaced by `{set: true}`. */
export type RedactedHeaders = Record<string, string | RedactedSecret>;

/** A type's answer form: an http check's headers redacted, other types as they are. */
type ViewOf<T> = T extends { type: 'http'; headers: Record<string, string> }
  ? Omit<T, 'headers'> & { headers: RedactedHeaders }
  : T;

/** A check's spec as every read shows it (credential headers redacted). */
export type CheckSpecView = ViewOf<CheckSpec>;

/** A stored check as every answer shows it (GET /checks, write answers): credential headers redacted. */
export type CheckView = CheckSpecView & {
  id: string;
  targetId: string;
  version: number;
  createdAt: string;
  updatedAt: string;
};

/** The headers with every credential header's value (or a redacted form of it) shown as `{set: true}`. */
export function redactHeaders(headers: Readonly<Record<string, unknown>>): RedactedHeaders {
  const out: RedactedHeaders = {};
  for (const [name, value] of Object.entries(headers))
    // defineProperty: a header may not be called `__proto__` (the name pattern refuses `_`), but stay safe.
    Object.defineProperty(out, name, {
      value: isSecretHeader(name) && value !== null && value !== undefined ? { set: true } : value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

/** Whether any credential header is present (stored, or as the redacted form). */
export function hasSecretHeaders(headers: Readonly<Record<string, unknown>> | undefined): boolean {
  return headers !== undefined && Object.keys(headers).some(isSecretHeader);
}

/** A record of a check's fields (spec, stored check or config form) with its credential headers redacted. */
export function redactCheckRecord<T extends Record<string, unknown>>(check: T): T {
  const headers = check['headers'];
  if (check['type'] !== 'http' || typeof headers !== 'object' || headers === null || Array.isArray(headers))
    return check;
  if (!hasSecretHeaders(headers as Record<string, unknown>)) return check;
  return { ...check, headers: redactHeaders(headers as Record<string, unknown>) };
}

/** A stored check as answers show it. */
export function checkView(check: CheckDefinition): CheckView {
  return redactCheckRecord(check as unknown as Record<string, unknown>) as unknown as CheckView;
}

/** Whether a header value in a write is the redacted form sent back ("keep the stored value"). */
export const isKeptSecret = isRedactedSecret;
