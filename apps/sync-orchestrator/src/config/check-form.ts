import {
  CHECK_TYPES,
  checkInputSchema,
  checkWriteIssues,
  redactCheckRecord,
  storeSafetyIssue,
  type CheckDefinition,
  type CheckSpec,
  type CheckType,
  withDefaultTimeout,
} from '@fleetwatch/contracts';
import { checkTargetProblem, type ErrorIssue, type TargetPolicy } from '@fleetwatch/domain';
import type { z } from 'zod';
import { canonicalJson } from './canonical-json';

// The forms a check takes inside the configuration owner:
//  - the spec: what `checkInputSchema` outputs (defaults applied) — stored, returned, run;
//  - the config form: the spec without its defaults, fields in one canonical order, an http
//    check's credential headers as `{set: true}` (write-only: check-secrets.ts) — what config
//    as code exports, what snapshots hash and what audit diffs show. Apart from those
//    headers' values, both are functions of each other (with the type's schema): specs that
//    differ only in such a value have one config form (their audit entries say so).

/** The option of the discriminated union for each type (its `shape` gives field order and defaults). */
const optionOf: Record<CheckType, z.ZodObject> = Object.fromEntries(
  (checkInputSchema.options as readonly z.ZodObject[]).map((o) => [(o.shape['type'] as z.ZodLiteral<string>).value, o]),
) as Record<CheckType, z.ZodObject>;
for (const t of CHECK_TYPES) if (!optionOf[t]) throw new Error(`check type ${t} has no schema option`);

/** Field order of a type's config form: `type` first, then the schema's own order (name is the key). */
const fieldOrder: Record<CheckType, string[]> = Object.fromEntries(
  CHECK_TYPES.map((t) => [t, ['type', ...Object.keys(optionOf[t].shape).filter((k) => k !== 'type' && k !== 'name')]]),
) as Record<CheckType, string[]>;

/** Whether a value equals a field's default, per type and field (a check has ~20 fields: keep it cheap). */
type IsDefault = (value: unknown) => boolean;
function isDefaultOf(dflt: unknown): IsDefault {
  if (dflt === null || typeof dflt !== 'object') return (v) => v === dflt;
  if (Array.isArray(dflt) && dflt.length === 0) return (v) => Array.isArray(v) && v.length === 0;
  if (!Array.isArray(dflt) && Object.keys(dflt).length === 0)
    return (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0;
  const text = canonicalJson(dflt);
  return (v) => canonicalJson(v) === text;
}
const defaultsOf: Record<CheckType, Map<string, IsDefault>> = Object.fromEntries(
  CHECK_TYPES.map((t) => {
    const defaults = new Map<string, IsDefault>();
    for (const [key, field] of Object.entries(optionOf[t].shape)) {
      const def = (field as z.ZodType).def as { type: string; defaultValue?: unknown };
      if (def.type === 'default') defaults.set(key, isDefaultOf(def.defaultValue));
    }
    return [t, defaults];
  }),
) as Record<CheckType, Map<string, IsDefault>>;

export type ParsedCheck = { ok: true; spec: CheckSpec } | { ok: false; issues: ErrorIssue[] };

const pathText = (prefix: readonly (string | number)[], path: readonly PropertyKey[]) =>
  [...prefix, ...path].map(String).join('.');

/**
 * Validates a check as a client wrote it: the contract's schema (conditions with their
 * line and column), then what is refused on write (checkWriteIssues), then what Postgres cannot hold. Issue paths are dotted (`conditions.1`)
 * under `prefix` (`checks.3`, `checks.web`).
 */
export function parseCheck(input: unknown, prefix: readonly (string | number)[] = []): ParsedCheck {
  const parsed = checkInputSchema.safeParse(withDefaultTimeout(input));
  if (!parsed.success)
    return {
      ok: false,
      issues: parsed.error.issues.map((i) => ({ path: pathText(prefix, i.path), message: i.message })),
    };
  const refused = checkWriteIssues(parsed.data);
  if (refused.length > 0)
    return { ok: false, issues: refused.map((i) => ({ path: pathText(prefix, i.path), message: i.message })) };
  const unsafe = storeSafetyIssue(parsed.data);
  if (unsafe) return { ok: false, issues: [{ path: pathText(prefix, unsafe.path), message: unsafe.message }] };
  return { ok: true, spec: parsed.data };
}

/** The save-time target policy problem of a check, pathed like a validation issue, or null. */
export function policyIssue(
  spec: CheckSpec,
  policy: TargetPolicy,
  prefix: readonly (string | number)[] = [],
): ErrorIssue | null {
  const p = checkTargetProblem(spec, policy);
  return p ? { path: pathText(prefix, [p.path]), message: p.message } : null;
}

/** Nested objects: keys sorted, except that `path` (jsonPath assertions) leads. */
function ordered(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(ordered);
  if (value !== null && typeof value === 'object') {
    const rec = value as Record<string, unknown>;
    const keys = Object.keys(rec).sort((a, b) => (a === 'path' ? -1 : b === 'path' ? 1 : a < b ? -1 : a > b ? 1 : 0));
    const out: Record<string, unknown> = {};
    for (const k of keys) if (rec[k] !== undefined) Object.defineProperty(out, k, ownValue(ordered(rec[k])));
    return out;
  }
  return value;
}

/** A property descriptor that also works for a key named `__proto__`. */
const ownValue = (value: unknown): PropertyDescriptor => ({
  value,
  enumerable: true,
  writable: true,
  configurable: true,
});

/** The spec without `name` and without values equal to their default, in canonical field order, credential headers redacted. */
export function configFormOf(spec: CheckSpec): Record<string, unknown> {
  const rec = redactCheckRecord(spec as unknown as Record<string, unknown>);
  const defaults = defaultsOf[spec.type];
  const out: Record<string, unknown> = {};
  for (const key of fieldOrder[spec.type]) {
    const value = rec[key];
    if (value === undefined) continue;
    if (defaults.get(key)?.(value)) continue;
    out[key] = ordered(value);
  }
  return out;
}

/** The config form with the name first: what audit diffs compare (a rename shows). */
export function auditFormOf(spec: CheckSpec): Record<string, unknown> {
  return { name: spec.name, ...configFormOf(spec) };
}

/** The spec part of a stored check (drops id, targetId, version and timestamps). */
export function specOf(check: CheckDefinition): CheckSpec {
  const { id: _id, targetId: _t, version: _v, createdAt: _c, updatedAt: _u, ...spec } = check;
  return spec as CheckSpec;
}
