import type { CheckSpec } from '@fleetwatch/contracts';
import type { CheckWrite } from '@fleetwatch/persistence';
import { ALERT_AREAS, alertEntryHash, type AlertArea } from '../alerting/alert-forms';
import { propertyHash } from '../properties/property-forms';
import { canonicalJson, sha256Hex } from './canonical-json';
import { auditFormOf } from './check-form';
import type { ConfigSnapshot } from './config-yaml';

// The configuration's content hash (SPEC §1, §8: sites compare it to find drift), defined
// so that a write never has to read every check back to compute it:
//
//   check hash  = sha256 hex of the canonical JSON of the check's config form WITH its
//                 name: `{"name":…, …fields that differ from their default}`, keys sorted
//                 (code-unit order), no whitespace — stored per check (checks.content_hash);
//   config hash = sha256 hex of the UTF-8 text made of every check hash followed by "\n",
//                 checks in the order of their names' UTF-8 bytes (Postgres COLLATE "C").
//
// Names are unique and inside each check hash, so the list of (name, check hash) pairs is
// all the config hash depends on: Postgres computes it from the stored check hashes in one
// ordered string_agg (ConfigVersionsRepository.record). No ids, versions or
// timestamps take part, and a spec and its export → import hash alike (same config form).
// The empty configuration hashes to sha256("").

/** A check's content hash (stored in checks.content_hash). */
export function checkHash(spec: CheckSpec): string {
  return sha256Hex(canonicalJson(auditFormOf(spec)));
}

/** The same hash from a snapshot's entry: its name and config form. */
export function checkHashOfForm(name: string, form: Record<string, unknown>): string {
  return sha256Hex(canonicalJson({ ...form, name }));
}

/** Byte order of UTF-8 (code-point order), as Postgres's `COLLATE "C"` sorts. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The config hash of (name, check hash) pairs, in any order, followed by the alert areas' entry
 * hashes (rules, channels, maintenance windows; each area by id in byte order), then the properties'
 * (by key in byte order): with no alert configuration and no properties, the checks' hash alone (as
 * before either existed).
 */
export function configHash(
  entries: Iterable<{ name: string; hash: string }>,
  alert: Partial<Record<AlertArea, Iterable<{ id: string; hash: string }>>> = {},
  properties: Iterable<{ key: string; hash: string }> = [],
): string {
  const sorted = [...entries].sort((a, b) => compareUtf8(a.name, b.name));
  let text = sorted.map((e) => `${e.hash}\n`).join('');
  for (const area of ALERT_AREAS)
    text += [...(alert[area] ?? [])]
      .sort((a, b) => compareUtf8(a.id, b.id))
      .map((e) => `${e.hash}\n`)
      .join('');
  text += [...properties]
    .sort((a, b) => compareUtf8(a.key, b.key))
    .map((e) => `${e.hash}\n`)
    .join('');
  return sha256Hex(text);
}

/** The config hash of a snapshot (what a version stores or rebuilds). */
export function configHashOfSnapshot(snapshot: ConfigSnapshot): string {
  const alert: Partial<Record<AlertArea, { id: string; hash: string }[]>> = {};
  for (const area of ALERT_AREAS)
    alert[area] = Object.entries(snapshot[area] ?? {}).map(([id, form]) => ({
      id,
      hash: alertEntryHash(area, id, form),
    }));
  return configHash(
    Object.entries(snapshot.checks).map(([name, form]) => ({ name, hash: checkHashOfForm(name, form) })),
    alert,
    Object.entries(snapshot.properties ?? {}).map(([key, form]) => ({ key, hash: propertyHash(key, form['value']) })),
  );
}

/** Hash of the empty configuration: what version 0 (no write yet) hashes to. */
export const EMPTY_CONFIG_HASH = configHash([]);

/** A row to write: the id, the spec and its content hash. */
export function checkWrite(id: string, spec: CheckSpec): CheckWrite {
  return { id, spec, hash: checkHash(spec) };
}
