import { DRIFT_AREAS, type DriftArea, type SnapshotAreas, type SnapshotItem } from '@fleetwatch/contracts';

// Drift (SPEC §8): how a member's config snapshot differs from the leader's, area by area.
// Items are matched by their stable `key`; inside an item, arrays of objects that carry an
// identity (`id`, `key` or `name`, unique in the array) are matched by it, not by position,
// so a reordered list is no drift and one inserted element is one change, not a cascade.
// Other arrays (tags, locations) are compared as whole values. Property overrides (the
// leader's per-member settings) are excluded: a member is meant to differ there. Only the
// areas SPEC §8 names are compared (DRIFT_AREAS): status pages and users are each site's own.

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
  /** Items that differ over every area of DRIFT_AREAS compared (those of `notCompared` left out). */
  count: number;
  areas: Record<DriftArea, AreaDrift>;
  /**
   * Areas of DRIFT_AREAS not compared: the member's snapshot does not have them (an older member, from before the
   * area). Their drift reads 0, no items: not "every leader item missing".
   */
  notCompared: DriftArea[];
}

export interface DriftOptions {
  /** Property keys overridden for this member: never counted as drift. */
  overriddenProperties?: Iterable<string>;
  /** Areas the member's snapshot does not have (MemberSnapshotView.absentAreas): not compared. */
  memberAbsentAreas?: Iterable<string>;
}

const IDENTITY_FIELDS = ['id', 'key', 'name'] as const;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The field that identifies the elements of both arrays (the first of IDENTITY_FIELDS that does, on each
 * side), or null: then the arrays are compared as whole values.
 */
function commonIdentity(a: readonly unknown[], b: readonly unknown[]): string | null {
  if (a.length === 0 || b.length === 0 || !a.every(isPlainObject) || !b.every(isPlainObject)) return null;
  for (const field of IDENTITY_FIELDS) if (uniqueBy(a, field) && uniqueBy(b, field)) return field;
  return null;
}

/** Whether every element has a string or number `field` whose text (as a path shows it) no other element has. */
function uniqueBy(arr: readonly unknown[], field: string): boolean {
  const ids = arr.map((e) => (e as Record<string, unknown>)[field]);
  return (
    ids.every((id) => typeof id === 'string' || typeof id === 'number') && new Set(ids.map(String)).size === ids.length
  );
}

/** The field that identifies every element of `arr` uniquely, or null (then the array is one value). */
function identityOf(arr: readonly unknown[]): string | null {
  if (arr.length === 0 || !arr.every(isPlainObject)) return null;
  for (const field of IDENTITY_FIELDS) if (uniqueBy(arr, field)) return field;
  return null;
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

/** Own members that hold a value (`__proto__` from JSON.parse included; nothing inherited). */
function members(value: Record<string, unknown>): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const k of Object.keys(value)) if (value[k] !== undefined) out.set(k, value[k]);
  return out;
}

/** Each side's members by name: those on one side only, then those on both, walked further. */
function walkMembers(a: Map<string, unknown>, b: Map<string, unknown>, at: (k: string) => string, out: DriftChange[]) {
  for (const [k, v] of a) {
    if (b.has(k)) walk(v, b.get(k), at(k), out);
    else out.push({ path: at(k), leader: v });
  }
  for (const [k, v] of b) if (!a.has(k)) out.push({ path: at(k), member: v });
}

/**
 * The changed values between two JSON values at `path`: objects member by member, arrays whose
 * elements carry an identity element by element (`name[id=x]`), anything else — scalars, arrays
 * compared whole, values of different kinds — as one change with each side's value as it is.
 */
function walk(a: unknown, b: unknown, path: string, out: DriftChange[]): void {
  if (isPlainObject(a) && isPlainObject(b))
    return walkMembers(members(a), members(b), (k) => (path === '' ? k : `${path}.${k}`), out);
  if (Array.isArray(a) && Array.isArray(b)) {
    const field = commonIdentity(a, b);
    if (field !== null) {
      const byId = (arr: readonly unknown[]) =>
        new Map(arr.map((e) => [`[${field}=${String((e as Record<string, unknown>)[field])}]`, e as unknown]));
      return walkMembers(byId(a), byId(b), (k) => `${path}${k}`, out);
    }
  }
  const scalars = (a === null || typeof a !== 'object') && (b === null || typeof b !== 'object');
  if (scalars ? a !== b : canonicalText(a) !== canonicalText(b)) out.push({ path, leader: a, member: b });
}

/** The changed values of one item present on both sides; [] when they are equal. */
export function diffItem(leader: SnapshotItem, member: SnapshotItem): DriftChange[] {
  const changes: DriftChange[] = [];
  walk(leader, member, '', changes);
  // A safety net: values that differ as JSON are never "no drift" (then the whole item, side by side).
  if (changes.length === 0 && canonicalText(leader) !== canonicalText(member))
    changes.push({ path: '', leader, member });
  return changes.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

const compareKeys = (a: SnapshotItem, b: SnapshotItem) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/**
 * One area's items with keys unique: names need not be (two alert rules may share one), and drift pairs items by key
 * (the last of a name won, and which was last followed the sites' own row ids: identical configurations hashed apart
 * and showed drift, and a member lacking one of two showed none). Items sharing a key are ordered by their content
 * and the second and later get `key (2)`, `key (3)`… (the next number no other item's key holds), the same on every
 * site holding the same items.
 */
export function uniqueKeys(items: readonly SnapshotItem[]): SnapshotItem[] {
  const sorted = [...items].sort(compareKeys);
  let shared = false;
  for (let i = 1; i < sorted.length && !shared; i++) shared = sorted[i].key === sorted[i - 1].key;
  if (!shared) return sorted;
  const taken = new Set(items.map((i) => i.key));
  const out: SnapshotItem[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i + 1;
    while (j < sorted.length && sorted[j].key === sorted[i].key) j++;
    // Content is read only for items that share their key (a snapshot holds up to some 25,000 checks).
    const run =
      j - i === 1
        ? [sorted[i]]
        : sorted
            .slice(i, j)
            .map((item) => ({ item, text: canonicalText(item) }))
            .sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0))
            .map(({ item }) => item);
    out.push(run[0]);
    let n = 2;
    for (const item of run.slice(1)) {
      while (taken.has(`${item.key} (${n})`)) n++;
      const key = `${item.key} (${n})`;
      taken.add(key);
      out.push({ ...item, key });
    }
    i = j;
  }
  return out.sort(compareKeys);
}

/**
 * Items by key (made unique: a snapshot of an older site may hold two of one name). Keys already unique (the common
 * case, and every snapshot of this version) are taken as they are: no sort per member and area on the drift path.
 */
function byKey(items: readonly SnapshotItem[]): Map<string, SnapshotItem> {
  const map = new Map<string, SnapshotItem>();
  for (const item of items) {
    if (map.has(item.key)) {
      map.clear();
      for (const unique of uniqueKeys(items)) map.set(unique.key, unique);
      return map;
    }
    map.set(item.key, item);
  }
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

/**
 * A member's drift from the leader over the areas of DRIFT_AREAS. Areas named in `memberAbsentAreas` are not compared
 * (`notCompared`); others absent on a side count as empty.
 */
export function diffSnapshots(
  leader: Partial<SnapshotAreas>,
  member: Partial<SnapshotAreas>,
  options: DriftOptions = {},
): DriftReport {
  const overridden = new Set(options.overriddenProperties ?? []);
  const absent = new Set(options.memberAbsentAreas ?? []);
  const areas = {} as Record<DriftArea, AreaDrift>;
  const notCompared: DriftArea[] = [];
  let count = 0;
  for (const area of DRIFT_AREAS) {
    if (absent.has(area)) {
      areas[area] = { count: 0, missing: 0, extra: 0, changed: 0, items: [] };
      notCompared.push(area);
      continue;
    }
    const ignore = area === 'properties' ? overridden : undefined;
    areas[area] = diffArea(leader[area] ?? [], member[area] ?? [], ignore);
    count += areas[area].count;
  }
  return { count, areas, notCompared };
}

/** The counts of a report without its items (the drift list shows these per member and area). */
export function driftCounts(report: DriftReport): {
  count: number;
  areas: Record<DriftArea, number>;
  notCompared: DriftArea[];
} {
  const areas = {} as Record<DriftArea, number>;
  for (const area of DRIFT_AREAS) areas[area] = report.areas[area].count;
  return { count: report.count, areas, notCompared: report.notCompared };
}
