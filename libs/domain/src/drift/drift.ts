import diff from 'microdiff';
import { SNAPSHOT_AREAS, type SnapshotArea, type SnapshotAreas, type SnapshotItem } from '@fleetwatch/contracts';

// Drift (SPEC §8): how a member's config snapshot differs from the leader's, area by area.
// Items are matched by their stable `key`; inside an item, arrays of objects that carry an
// identity (`id`, `key` or `name`, unique in the array) are matched by it, not by position,
// so a reordered list is no drift and one inserted element is one change, not a cascade.
// Other arrays (tags, locations) are compared as whole values. Property overrides (the
// leader's per-member settings) are excluded: a member is meant to differ there.

/** Which side an item exists on: `missing` = the leader has it, the member not; `extra` = the reverse. */
export type DriftState = 'missing' | 'extra' | 'changed';

/** One changed value, side by side. A side without the value has no member (absent ≠ null). */
export interface DriftChange {
  /** Dotted path inside the item; keyed array elements as `name[id=x]`; '' for the whole item. */
  path: string;
  leader?: unknown;
  member?: unknown;
}

export interface DriftItem {
  key: string;
  state: DriftState;
  changes: DriftChange[];
}

export interface AreaDrift {
  /** Items that differ (missing + extra + changed). */
  count: number;
  missing: number;
  extra: number;
  changed: number;
  items: DriftItem[];
}

export interface DriftReport {
  /** Items that differ over every area. */
  count: number;
  areas: Record<SnapshotArea, AreaDrift>;
}

export interface DriftOptions {
  /** Property keys overridden for this member: never counted as drift. */
  overriddenProperties?: Iterable<string>;
}

const IDENTITY_FIELDS = ['id', 'key', 'name'] as const;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** The field that identifies every element of `arr` uniquely, or null (then the array is one value). */
function identityOf(arr: readonly unknown[]): string | null {
  if (arr.length === 0 || !arr.every(isPlainObject)) return null;
  for (const field of IDENTITY_FIELDS) {
    const ids = arr.map((e) => (e as Record<string, unknown>)[field]);
    if (ids.every((id) => typeof id === 'string' || typeof id === 'number') && new Set(ids).size === ids.length)
      return field;
  }
  return null;
}

/** Sets `out[key]` as an own member, also for `__proto__` (an assignment would set the prototype). */
function put(out: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * JSON text with every object's members sorted and keyed arrays (identityOf) in identity order: equal
 * text exactly when the values are no drift (own members only).
 */
function canonicalText(value: unknown): string {
  if (Array.isArray(value)) {
    const field = identityOf(value);
    const ordered =
      field === null
        ? value
        : [...(value as Record<string, unknown>[])].sort((a, b) => {
            const x = String(a[field]);
            const y = String(b[field]);
            return x < y ? -1 : x > y ? 1 : 0;
          });
    return `[${ordered.map((v) => (v === undefined ? 'null' : canonicalText(v))).join(',')}]`;
  }
  if (isPlainObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalText(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A leaf marker for arrays compared as whole values: microdiff sees one opaque string. */
interface WholeArray {
  readonly __whole: string;
}

/**
 * The item as microdiff should walk it: keyed arrays become objects keyed `[field=id]`,
 * other arrays become one leaf (their JSON), so a difference in them is reported once at
 * the array's path with both arrays side by side.
 */
function comparable(value: unknown, wholes: Map<string, unknown>): unknown {
  if (Array.isArray(value)) {
    const field = identityOf(value);
    if (field === null) {
      const text = canonicalText(value);
      wholes.set(text, value);
      return { __whole: text } satisfies WholeArray;
    }
    const out: Record<string, unknown> = {};
    for (const e of value as Record<string, unknown>[])
      put(out, `[${field}=${String(e[field])}]`, comparable(e, wholes));
    return out;
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value)) if (value[k] !== undefined) put(out, k, comparable(value[k], wholes));
    return out;
  }
  return value;
}

/** Back from the comparable form to JSON for display. */
function original(value: unknown, wholes: Map<string, unknown>): unknown {
  if (isPlainObject(value)) {
    if (typeof value.__whole === 'string' && Object.keys(value).length === 1) return wholes.get(value.__whole);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) put(out, k, original(v, wholes));
    return out;
  }
  return value;
}

function pathText(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    const seg = String(s);
    out += seg.startsWith('[') ? seg : out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** The changed values of one item present on both sides; [] when they are equal. */
export function diffItem(leader: SnapshotItem, member: SnapshotItem): DriftChange[] {
  const wholes = new Map<string, unknown>();
  const a = comparable(leader, wholes) as Record<string, unknown>;
  const b = comparable(member, wholes) as Record<string, unknown>;
  const changes: DriftChange[] = [];
  for (const d of diff(a, b)) {
    // A path ending inside a whole-array marker names the array itself.
    const whole = d.path.at(-1) === '__whole';
    const back = (v: unknown) => (whole && typeof v === 'string' ? wholes.get(v) : original(v, wholes));
    const change: DriftChange = { path: pathText(whole ? d.path.slice(0, -1) : d.path) };
    if (d.type !== 'CREATE') change.leader = back(d.oldValue);
    if (d.type !== 'REMOVE') change.member = back(d.value);
    changes.push(change);
  }
  // The comparable form names keyed elements `[field=id]` and whole arrays `{__whole}`: an object of
  // any JSON value (a property's) may hold such names itself and compare equal to an array. Values
  // that differ as JSON are never "no drift": then the whole item, side by side.
  if (changes.length === 0 && canonicalText(leader) !== canonicalText(member))
    changes.push({ path: '', leader, member });
  return changes.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

function byKey(items: readonly SnapshotItem[]): Map<string, SnapshotItem> {
  const map = new Map<string, SnapshotItem>();
  for (const item of items) map.set(item.key, item);
  return map;
}

/** Drift of one area: items matched by key, each side's extras counted, changed items with their values. */
export function diffArea(
  leader: readonly SnapshotItem[],
  member: readonly SnapshotItem[],
  ignoreKeys: ReadonlySet<string> = new Set(),
): AreaDrift {
  const l = byKey(leader);
  const m = byKey(member);
  const keys = [...new Set([...l.keys(), ...m.keys()])].filter((k) => !ignoreKeys.has(k)).sort();
  const items: DriftItem[] = [];
  for (const key of keys) {
    const a = l.get(key);
    const b = m.get(key);
    if (a && !b) items.push({ key, state: 'missing', changes: [{ path: '', leader: a }] });
    else if (!a && b) items.push({ key, state: 'extra', changes: [{ path: '', member: b }] });
    else if (a && b) {
      const changes = diffItem(a, b);
      if (changes.length > 0) items.push({ key, state: 'changed', changes });
    }
  }
  const count = (s: DriftState) => items.filter((i) => i.state === s).length;
  return { count: items.length, missing: count('missing'), extra: count('extra'), changed: count('changed'), items };
}

/** A member's drift from the leader over every area. Areas absent on a side count as empty. */
export function diffSnapshots(
  leader: Partial<SnapshotAreas>,
  member: Partial<SnapshotAreas>,
  options: DriftOptions = {},
): DriftReport {
  const overridden = new Set(options.overriddenProperties ?? []);
  const areas = {} as Record<SnapshotArea, AreaDrift>;
  let count = 0;
  for (const area of SNAPSHOT_AREAS) {
    const ignore = area === 'properties' ? overridden : undefined;
    areas[area] = diffArea(leader[area] ?? [], member[area] ?? [], ignore);
    count += areas[area].count;
  }
  return { count, areas };
}

/** The counts of a report without its items (the drift list shows these per member and area). */
export function driftCounts(report: DriftReport): { count: number; areas: Record<SnapshotArea, number> } {
  const areas = {} as Record<SnapshotArea, number>;
  for (const area of SNAPSHOT_AREAS) areas[area] = report.areas[area].count;
  return { count: report.count, areas };
}
