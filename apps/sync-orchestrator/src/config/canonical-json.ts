import { createHash } from 'node:crypto';
import type { ConfigDiffEntry } from '@fleetwatch/contracts';

// The configuration's identity (SPEC §1 "config snapshot … canonical JSON with a content
// hash"): the same content always serialises to the same text whatever order its keys
// were written in, so two sites — or an export and its re-import — hash alike.

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** JSON text with every object's keys sorted (code-unit order) and no whitespace; `undefined` members dropped. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  // -0 and 0 are one JSON number: JSON.stringify already writes both as 0.
  return JSON.stringify(value) ?? 'null';
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** sha256 of the canonical JSON. */
export function contentHash(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

/** Equal as JSON; absent (`undefined`) equals only absent, never `null`. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b;
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * What changed between two JSON values, as leaf entries: `conditions.1`, `headers.Accept`.
 * Objects are compared key by key, arrays index by index; a member only on one side has
 * no `before` (added) or no `after` (removed). Equal values give no entry. One walk over
 * both values (no re-serialising per level: a 1,000-check import diffs every check).
 */
export function jsonDiff(before: unknown, after: unknown, path = ''): ConfigDiffEntry[] {
  const out: ConfigDiffEntry[] = [];
  walk(before, after, path, out);
  return out;
}

function walk(before: unknown, after: unknown, path: string, out: ConfigDiffEntry[]): void {
  if (before === after) return;
  const join = (k: string | number) => (path ? `${path}.${k}` : String(k));
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    // Own members only: a key named `__proto__` on one side must not read the prototype on the other.
    const own = (o: Record<string, unknown>, k: string) => (Object.hasOwn(o, k) ? o[k] : undefined);
    for (const k of keys) walk(own(before, k), own(after, k), join(k), out);
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    for (let i = 0; i < Math.max(before.length, after.length); i++) walk(before[i], after[i], join(i), out);
    return;
  }
  // Different kinds, or leaves: equal only as the same JSON (-0 is 0; absent is never null).
  if (before !== undefined && after !== undefined && canonicalJson(before) === canonicalJson(after)) return;
  const entry: ConfigDiffEntry = { path };
  if (before !== undefined) entry.before = before;
  if (after !== undefined) entry.after = after;
  out.push(entry);
}
