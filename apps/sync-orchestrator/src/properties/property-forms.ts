import {
  PROPERTY_LIMITS,
  propertyBodySchema,
  propertyKeySchema,
  propertyValueSchema,
  type PropertyValue,
} from '@fleetwatch/contracts';
import { InvalidError, type ErrorIssue } from '@fleetwatch/domain';
import { canonicalJson, sha256Hex } from '../config/canonical-json';

// Site properties as the configuration owner keeps them (issue 19): key → JSON value, validated by
// the contract (propertyKeySchema, propertyValueSchema: storable, bounded). In a version's snapshot
// and changes an entry is `{value}` under its key (area `properties`), so the history, the config
// hash and config as code treat it like any other keyed area.

export const PROPERTIES_AREA = 'properties';

/** A property as a version's snapshot holds it. */
export interface PropertyForm {
  value: PropertyValue;
}

/** A property's content hash: sha256 of the canonical JSON of its key and value (and its area). */
export function propertyHash(key: string, value: unknown): string {
  return sha256Hex(canonicalJson({ __area: PROPERTIES_AREA, __key: key, value }));
}

const pathOf = (prefix: readonly (string | number)[], path: readonly PropertyKey[]) =>
  [...prefix, ...path].map(String).join('.');

export function invalidProperty(issues: ErrorIssue[]): InvalidError {
  const first = issues[0];
  return new InvalidError(
    `invalid property: ${first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : 'rejected'}${
      issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''
    }`,
    issues.slice(0, 200),
  );
}

/** The key's problems, pathed `prefix` (e.g. `key`, or `properties.<key>` in a document). */
export function keyIssues(key: unknown, path: string): ErrorIssue[] {
  const r = propertyKeySchema.safeParse(key);
  return r.success ? [] : r.error.issues.map((i) => ({ path, message: i.message }));
}

/** A value's problems, pathed under `prefix` (`value`, `value.a.0`; `properties.<key>.a.0` in a document). */
export function parseValue(
  input: unknown,
  prefix: readonly (string | number)[],
): { ok: true; value: PropertyValue } | { ok: false; issues: ErrorIssue[] } {
  const r = propertyValueSchema.safeParse(input);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, issues: r.error.issues.map((i) => ({ path: pathOf(prefix, i.path), message: i.message })) };
}

/** `PUT /api/v1/properties/{key}`: the key and the `{value}` body, every problem named (InvalidError). */
export function parsePropertyWrite(key: unknown, body: unknown): { key: string; value: PropertyValue } {
  const issues = keyIssues(key, 'key');
  let value: PropertyValue | undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    issues.push({ path: '(body)', message: 'expected a JSON object: {"value": …}' });
  else {
    const r = propertyBodySchema.safeParse(body);
    if (r.success) value = r.data.value;
    else issues.push(...r.error.issues.map((i) => ({ path: pathOf([], i.path) || '(body)', message: i.message })));
  }
  if (issues.length > 0 || value === undefined) throw invalidProperty(issues);
  return { key: key as string, value };
}

export const MAX_PROPERTIES = PROPERTY_LIMITS.count;
