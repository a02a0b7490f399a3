import type { ConfigPlanItem, PropertyValue } from '@fleetwatch/contracts';
import type { ErrorIssue } from '@fleetwatch/domain';
import type { AuditDraft, PropertiesRepository, PropertyRecord, SqlTransaction } from '@fleetwatch/persistence';
import { isMap, isScalar, type Document, type Pair } from 'yaml';
import type { AreaChanges } from '../alerting/alert-forms';
import { jsonDiff } from '../config/canonical-json';
import {
  invalidProperty,
  keyIssues,
  MAX_PROPERTIES,
  parseValue,
  PROPERTIES_AREA,
  propertyHash,
} from './property-forms';

// Properties in config as code (issue 19), a section beside `checks:` keyed by property key, each
// value as it is (any JSON value but null):
//
//   properties:
//     site.displayName: Berlin lab
//     retention: {days: 30, rollups: true}
//
// Like the alert and status page sections: a document without the section leaves the properties as
// they are; a section that is there is their truth (with `prune`, keys it does not list go). Plan
// items are named `properties/<key>`. Export → import changes nothing; an export always writes the
// section (`properties: {}` when there are none).

export const PROPERTIES_SECTION = PROPERTIES_AREA;

/** The section: key → validated value. */
export type PropertySection = Map<string, PropertyValue>;

/** A copy with every object's keys in code-unit order: an export does not depend on how a store orders them. */
function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort())
    // defineProperty: a key inside a value may be `__proto__`.
    Object.defineProperty(out, k, {
      value: sortedKeys((value as Record<string, unknown>)[k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

/**
 * The section to render: key → value (object keys sorted), by key — empty (`properties: {}`) when there are none, so
 * that importing an export with `prune` deletes the properties set since.
 */
export function propertiesToRender(
  properties: Record<string, Record<string, unknown>> | undefined,
): Map<string, unknown> {
  const keys = Object.keys(properties ?? {}).sort();
  return new Map(keys.map((k) => [k, sortedKeys((properties ?? {})[k]['value'])]));
}

/** The document's `properties:` section (undefined when absent); issues pathed `properties.<key>[.<path>]`. */
export function parsePropertiesSection(
  doc: Document,
  at: (offset: number | undefined) => string,
  issues: ErrorIssue[],
): PropertySection | undefined {
  if (!doc.has(PROPERTIES_SECTION)) return undefined;
  const section = doc.get(PROPERTIES_SECTION, true);
  const out: PropertySection = new Map();
  if (section === undefined || section === null || (isScalar(section) && section.value === null)) return out;
  if (!isMap(section)) {
    const offset = (section as { range?: [number, number, number] } | null)?.range?.[0];
    issues.push({ path: PROPERTIES_SECTION, message: `${at(offset)}must be a mapping of property keys to values` });
    return out;
  }
  const items = section.items as Pair<unknown, unknown>[];
  if (items.length > MAX_PROPERTIES)
    issues.push({ path: PROPERTIES_SECTION, message: `at most ${MAX_PROPERTIES} properties (found ${items.length})` });
  for (const pair of items) {
    const keyNode = isScalar(pair.key) ? pair.key : null;
    const where = at(keyNode?.range?.[0]);
    const key = keyNode?.value;
    const path = `${PROPERTIES_SECTION}.${String(key)}`;
    const bad = keyIssues(key, path);
    if (bad.length) {
      for (const i of bad) issues.push({ path: i.path, message: `${where}${i.message}` });
      continue;
    }
    let value: unknown;
    try {
      value = pair.value ? (pair.value as { toJS(d: unknown): unknown }).toJS(doc) : null;
    } catch (e) {
      issues.push({ path, message: `${where}${(e as Error).message.split('\n')[0]}` });
      continue;
    }
    const r = parseValue(value, [PROPERTIES_SECTION, key as string]);
    if (!r.ok) {
      for (const i of r.issues) issues.push({ path: i.path, message: `${where}${i.message}` });
      continue;
    }
    out.set(key as string, r.value);
  }
  return out;
}

export interface PropertyPlan {
  items: ConfigPlanItem[];
  upserts: { key: string; value: PropertyValue; before: PropertyRecord | null; diff: AuditDraft['diff'] }[];
  deletes: PropertyRecord[];
}

const diffOf = (before: PropertyRecord | null, after: PropertyValue | null) =>
  jsonDiff(before ? { value: before.value } : {}, after === null ? {} : { value: after });

/** The section against what is stored (by key). No section: nothing planned. */
export function planProperties(
  stored: readonly PropertyRecord[],
  section: PropertySection | undefined,
  prune: boolean,
): PropertyPlan {
  const plan: PropertyPlan = { items: [], upserts: [], deletes: [] };
  if (!section) return plan;
  const byKey = new Map(stored.map((p) => [p.key, p]));
  const name = (key: string) => `${PROPERTIES_SECTION}/${key}`;
  for (const [key, value] of [...section].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const before = byKey.get(key) ?? null;
    const diff = diffOf(before, value);
    if (before && diff.length === 0) {
      plan.items.push({ action: 'unchanged', name: name(key), id: key });
      continue;
    }
    plan.upserts.push({ key, value, before, diff });
    plan.items.push({ action: before ? 'change' : 'create', name: name(key), id: key, diff });
  }
  for (const p of stored)
    if (!section.has(p.key))
      if (prune) {
        plan.deletes.push(p);
        plan.items.push({ action: 'delete', name: name(p.key), id: p.key, diff: diffOf(p, null) });
      } else plan.items.push({ action: 'unchanged', name: name(p.key), id: p.key });
  // Without prune the section adds to what is stored: the site's limit is on what the import leaves.
  const after = stored.length - plan.deletes.length + plan.upserts.filter((u) => !u.before).length;
  if (after > MAX_PROPERTIES)
    throw invalidProperty([
      {
        path: PROPERTIES_SECTION,
        message: `a site holds at most ${MAX_PROPERTIES} properties: this import would leave ${after} (${stored.length} stored${prune ? '' : '; without prune, keys the document does not list stay'})`,
      },
    ]);
  return plan;
}

export const propertyPlanSize = (p: PropertyPlan) => p.upserts.length + p.deletes.length;

/** Writes the plan in the import's transaction as version `next`: its audit entries and the version's changes. */
export async function applyProperties(
  repo: PropertiesRepository,
  tx: SqlTransaction,
  plan: PropertyPlan,
  next: number,
): Promise<{ audit: AuditDraft[]; changes: AreaChanges }> {
  const via = { via: 'import' };
  const audit: AuditDraft[] = [];
  const changes: AreaChanges = {};
  const put = (key: string, v: Record<string, unknown> | null) =>
    Object.defineProperty(changes, key, { value: v, enumerable: true, writable: true, configurable: true });
  await repo.deleteMany(
    tx,
    plan.deletes.map((p) => p.key),
  );
  for (const p of plan.deletes) {
    audit.push({ action: 'property.delete', subject: p.key, diff: diffOf(p, null), details: via });
    put(p.key, null);
  }
  await repo.upsertMany(
    tx,
    plan.upserts.map((u) => ({ key: u.key, value: u.value, hash: propertyHash(u.key, u.value) })),
    next,
  );
  for (const u of plan.upserts) {
    audit.push({
      action: u.before ? 'property.replace' : 'property.create',
      subject: u.key,
      diff: u.diff,
      details: via,
    });
    put(u.key, { value: u.value });
  }
  return { audit, changes };
}
