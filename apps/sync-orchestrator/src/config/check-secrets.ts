import {
  isKeptSecret,
  isSecretHeader,
  redactCheckRecord,
  SECRET_AUDIT,
  type CheckSpec,
  type ConfigDiffEntry,
} from '@fleetwatch/contracts';
import { InvalidError, type ErrorIssue } from '@fleetwatch/domain';
import type { ConfigSnapshot } from './config-yaml';
import { maskChannelHeaders } from '../alerting/channel-secrets';

// An http check's credential headers on a write (SPEC §10; contracts' check-secrets.ts), as channel-secrets.ts does
// a channel's secrets: a value replaces the stored one of that name (any spelling), `{set: …}` — the answer's form
// sent back — or no mention keeps it, `null` removes it. The spec stored keeps the values (the collector probes
// with them); its config form (export, versions, hashes, audit diffs) holds `{set: true}` instead, and an audit
// entry says that a value changed, never which.

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** What a write says of credential headers besides values, by name as written: kept (`{set}`) and removed (`null`). */
export interface SecretHeaderMarks {
  keep: readonly string[];
  remove: readonly string[];
}

export const NO_MARKS: SecretHeaderMarks = { keep: [], remove: [] };

/**
 * An http check input with its credential headers' `{set}` and `null` taken out (the contract validates what is
 * left: values), and those marks. Anything else is returned as it is.
 */
export function takeSecretMarks(input: unknown): { input: unknown; marks: SecretHeaderMarks } {
  if (!isPlainObject(input) || input['type'] !== 'http' || !isPlainObject(input['headers']))
    return { input, marks: NO_MARKS };
  const headers: Record<string, unknown> = {};
  const keep: string[] = [];
  const remove: string[] = [];
  for (const [name, value] of Object.entries(input['headers'])) {
    if (isSecretHeader(name) && value === null) remove.push(name);
    else if (isSecretHeader(name) && isKeptSecret(value)) keep.push(name);
    else Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
  }
  if (keep.length === 0 && remove.length === 0) return { input, marks: NO_MARKS };
  return { input: { ...input, headers }, marks: { keep, remove } };
}

/** Scheme, host and port of an http check's URL: where its headers are sent. */
export function checkOrigin(spec: CheckSpec): string | null {
  if (spec.type !== 'http') return null;
  try {
    return new URL(spec.url).origin;
  } catch {
    return spec.url;
  }
}

const secretEntries = (spec: CheckSpec | null): [string, string][] =>
  spec?.type === 'http' ? Object.entries(spec.headers).filter(([name]) => isSecretHeader(name)) : [];

export interface SecretHeadersWrite {
  /** The spec to store: the values given, and the stored values kept. */
  spec: CheckSpec;
  /** Credential headers given as values where one of that name was stored (a dry run never compares them). */
  given: ReadonlySet<string>;
}

/**
 * The spec a write stores: `spec` (validated, holding the values given) with the stored credential headers it
 * keeps. Refused (InvalidError, each issue `<prefix>headers.<name>`): a `{set}` with nothing of that name stored,
 * and a move to another origin with a stored value kept — a stored credential is never sent to a host it was not
 * given for, so such a write sends it again or `null`s it.
 */
export function withStoredSecrets(
  spec: CheckSpec,
  marks: SecretHeaderMarks,
  stored: CheckSpec | null,
  prefix = '',
): SecretHeadersWrite {
  if (spec.type !== 'http') return { spec, given: new Set() };
  const storedSecrets = secretEntries(stored);
  const storedNames = new Set(storedSecrets.map(([n]) => n.toLowerCase()));
  const givenNames = new Set(
    Object.keys(spec.headers)
      .filter((n) => isSecretHeader(n))
      .map((n) => n.toLowerCase()),
  );
  const removed = new Set(marks.remove.map((n) => n.toLowerCase()));
  const issues: ErrorIssue[] = [];
  for (const name of marks.keep)
    if (!storedNames.has(name.toLowerCase()))
      issues.push({
        path: `${prefix}headers.${name}`,
        message:
          'write-only: no value of this header is stored for this check here, so there is nothing to keep — send its value, or leave it out',
      });
  const headers: Record<string, string> = { ...spec.headers };
  const kept: string[] = [];
  for (const [name, value] of storedSecrets) {
    const lower = name.toLowerCase();
    if (givenNames.has(lower) || removed.has(lower)) continue;
    headers[name] = value;
    kept.push(name);
  }
  const to = checkOrigin(spec);
  const from = stored ? checkOrigin(stored) : null;
  if (stored && kept.length > 0 && to !== from)
    for (const name of kept)
      issues.push({
        path: `${prefix}headers.${name}`,
        message: `the check now sends to ${to}: send this header again (or null to remove it); the stored value stays with ${from}`,
      });
  if (issues.length)
    throw new InvalidError(
      `invalid check: ${issues[0].path}: ${issues[0].message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`,
      issues,
    );
  const given = new Set(Object.keys(spec.headers).filter((n) => isSecretHeader(n) && storedNames.has(n.toLowerCase())));
  return { spec: { ...spec, headers }, given };
}

/**
 * Audit entries of the credential headers a change touched, never a value: added `(set, new value)`, replaced
 * `(set)` → `(set, new value)`, removed `(set)` → `(removed)`. `given`: names a dry run was given a value for —
 * planned as a change whatever the value (whether it equals the stored one would tell a guess from the truth).
 */
export function secretHeaderDiff(
  before: CheckSpec | null,
  after: CheckSpec | null,
  given: ReadonlySet<string> = new Set(),
): ConfigDiffEntry[] {
  const b = new Map(secretEntries(before));
  const a = new Map(secretEntries(after));
  const names = [...new Set([...b.keys(), ...a.keys()])].sort();
  const out: ConfigDiffEntry[] = [];
  for (const name of names) {
    const path = `headers.${name}`;
    const was = b.get(name);
    const now = a.get(name);
    if (was !== undefined && now !== undefined) {
      if (given.has(name)) out.push({ path, before: SECRET_AUDIT.set, after: SECRET_AUDIT.givenInDryRun });
      else if (was !== now) out.push({ path, before: SECRET_AUDIT.set, after: SECRET_AUDIT.newValue });
    } else if (now !== undefined) out.push({ path, after: SECRET_AUDIT.newValue });
    else if (after) out.push({ path, before: SECRET_AUDIT.set, after: SECRET_AUDIT.removed });
    else out.push({ path, before: SECRET_AUDIT.set });
  }
  return out;
}

const isSecretPath = (path: string) => path.startsWith('headers.') && isSecretHeader(path.slice('headers.'.length));
const AUDIT_WORDS = new Set<unknown>(Object.values(SECRET_AUDIT));

/** A whole `headers` value of a diff entry without its credential headers (undefined when nothing else is left). */
function publicHeaders(value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  const out = Object.fromEntries(Object.entries(value).filter(([n]) => !isSecretHeader(n)));
  return Object.keys(out).length ? out : undefined;
}

/**
 * A diff of config forms (credential headers as `{set: true}`, so a new value shows nothing) with the credential
 * headers' own entries (secretHeaderDiff) in their place: after the other `headers` entries.
 */
export function withSecretEntries(
  diff: readonly ConfigDiffEntry[],
  secret: readonly ConfigDiffEntry[],
): ConfigDiffEntry[] {
  const out: ConfigDiffEntry[] = [];
  let at = -1;
  for (const e of diff) {
    if (isSecretPath(e.path)) continue;
    if (e.path === 'headers') {
      const before = publicHeaders(e.before);
      const after = publicHeaders(e.after);
      if (before !== undefined || after !== undefined)
        out.push({
          path: e.path,
          ...(before !== undefined ? { before } : {}),
          ...(after !== undefined ? { after } : {}),
        });
      at = out.length;
      continue;
    }
    if (e.path.startsWith('headers.')) {
      out.push(e);
      at = out.length;
      continue;
    }
    // Top-level fields come sorted: the first after `headers` is where its entries would have been.
    if (at < 0 && e.path.split('.')[0] > 'headers') at = out.length;
    out.push(e);
  }
  out.splice(at < 0 ? out.length : at, 0, ...secret);
  return out;
}

/**
 * An audit entry's diff as a reader may see it: a credential header's value that an entry written before they were
 * write-only holds becomes `(set)` (entries written since hold only the words of secretHeaderDiff).
 */
export function redactAuditDiff(diff: readonly ConfigDiffEntry[]): ConfigDiffEntry[] {
  const word = (v: unknown) => (v === undefined || AUDIT_WORDS.has(v) ? v : SECRET_AUDIT.set);
  const members = (v: unknown) =>
    isPlainObject(v) ? Object.fromEntries(Object.entries(v).map(([n, x]) => [n, isSecretHeader(n) ? word(x) : x])) : v;
  return diff.map((e) => {
    if (isSecretPath(e.path)) {
      const out: ConfigDiffEntry = { path: e.path };
      if ('before' in e) out.before = word(e.before);
      if ('after' in e) out.after = word(e.after);
      return out;
    }
    if (e.path === 'headers') {
      const out: ConfigDiffEntry = { path: e.path };
      if ('before' in e) out.before = members(e.before);
      if ('after' in e) out.after = members(e.after);
      return out;
    }
    return e;
  });
}

/**
 * A config version's snapshot as a reader may see it: each check's credential headers `{set: true}` (old rows held
 * values), and each webhook channel's credential-named headers (stored before they were refused) masked.
 */
export function redactSnapshot(snapshot: ConfigSnapshot): ConfigSnapshot {
  const define = (target: Record<string, unknown>, key: string, value: unknown) =>
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  const checks: ConfigSnapshot['checks'] = {};
  for (const [name, form] of Object.entries(snapshot.checks)) define(checks, name, redactCheckRecord(form));
  if (!snapshot.channels) return { ...snapshot, checks };
  const channels: NonNullable<ConfigSnapshot['channels']> = {};
  for (const [id, form] of Object.entries(snapshot.channels)) define(channels, id, maskChannelHeaders(form));
  return { ...snapshot, checks, channels };
}
