import {
  DRIFT_AREAS,
  SNAPSHOT_AREAS,
  type SnapshotArea,
  type SnapshotAreas,
  type SnapshotItem,
} from '@fleetwatch/contracts';

// Two snapshots side by side (Fleet config, snapshot tab). Items are matched by their stable
// `key` (as drift does); each item is flattened to its leaf values, one row a path, so the two
// sides line up row by row and only the rows whose value differs are marked changed.

/** One leaf of an item: its path and its value as JSON (undefined: the side does not have it). */
export interface DiffRow {
  path: string;
  left: string | undefined;
  right: string | undefined;
  changed: boolean;
}

/** `same`: equal; `changed`: both have it, some values differ; `left`/`right`: only that side has it. */
export type ItemState = 'same' | 'changed' | 'left' | 'right';

export interface ItemComparison {
  key: string;
  state: ItemState;
  rows: DiffRow[];
  /** A property overridden for the member compared with the leader: meant to differ, not drift. */
  overridden?: true;
}

export interface AreaComparison {
  area: SnapshotArea;
  /** Items that differ (changed or on one side only), overridden properties not counted; 0 when `notSent`. */
  differing: number;
  /**
   * A side whose site did not send the area (an older version, from before it: the snapshot's `absentAreas`): the
   * area is not compared — the other side's items are listed, not counted, as the leader's drift leaves it out.
   */
  notSent?: 'left' | 'right' | 'both';
  /** Whether differences here are drift (DRIFT_AREAS); status pages and users are each site's own. */
  drift: boolean;
  items: ItemComparison[];
}

const DRIFT = new Set<SnapshotArea>(DRIFT_AREAS);

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

const IDENTITY_FIELDS = ['id', 'key', 'name'] as const;

/** The field that names every element of a list of objects uniquely (as drift matches them), or null. */
function identityOf(list: readonly unknown[]): string | null {
  if (!list.every(isObject)) return null;
  for (const field of IDENTITY_FIELDS) {
    const ids = list.map((e) => (e as Record<string, unknown>)[field]);
    if (ids.every((id) => typeof id === 'string' || typeof id === 'number') && new Set(ids).size === ids.length)
      return field;
  }
  return null;
}

/**
 * The leaves of a value, in its own order: objects by field (`a.b`); arrays of objects by
 * their identity when every element has a unique `id`, `key` or `name` (`a[name=x].b`: an
 * inserted or reordered element is no cascade of changed rows, as drift counts it), else by
 * index (`a[0].b`); arrays of plain values are one leaf (a tag list reads as one value).
 */
export function flatten(value: unknown, path = '', out: [string, string][] = []): [string, string][] {
  if (isObject(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined);
    // An empty nested object is a value; an item with no fields but its key has no rows.
    if (keys.length === 0 && path !== '') out.push([path, '{}']);
    for (const k of keys) flatten(value[k], path ? `${path}.${k}` : k, out);
  } else if (Array.isArray(value) && value.length > 0 && value.some((e) => isObject(e) || Array.isArray(e))) {
    const field = identityOf(value);
    value.forEach((e, i) =>
      flatten(e, field ? `${path}[${field}=${String((e as Record<string, unknown>)[field])}]` : `${path}[${i}]`, out),
    );
  } else {
    out.push([path, JSON.stringify(value) ?? 'null']);
  }
  return out;
}

/** Rows of one item on both sides: every path of either side once, the left's order first. */
export function compareItem(left: SnapshotItem | undefined, right: SnapshotItem | undefined): ItemComparison {
  const key = left?.key ?? right?.key ?? '';
  const strip = (item: SnapshotItem | undefined) => {
    if (!item) return new Map<string, string>();
    const { key: _key, ...rest } = item;
    return new Map(flatten(rest));
  };
  const l = strip(left);
  const r = strip(right);
  const paths = [...new Set([...l.keys(), ...r.keys()])];
  const rows = paths.map((path) => {
    const a = l.get(path);
    const b = r.get(path);
    return { path, left: a, right: b, changed: a !== b };
  });
  const state: ItemState = !right ? 'left' : !left ? 'right' : rows.some((x) => x.changed) ? 'changed' : 'same';
  return { key, state, rows };
}

/**
 * Every area of two snapshots, items by key (sorted); an area missing from `areas` counts as empty. An area a side's
 * site did not send (`absent`: the snapshot's `absentAreas`) is not compared: `notSent`, nothing counted.
 * `overriddenProperties` (leader against a member: the member's property overrides) are
 * still shown side by side, flagged, and not counted — as the leader's drift counts them.
 */
export function compareSnapshots(
  left: Partial<SnapshotAreas>,
  right: Partial<SnapshotAreas>,
  overriddenProperties: ReadonlySet<string> = new Set(),
  absent: { left?: readonly SnapshotArea[]; right?: readonly SnapshotArea[] } = {},
): AreaComparison[] {
  return SNAPSHOT_AREAS.map((area) => {
    const leftAbsent = absent.left?.includes(area) ?? false;
    const rightAbsent = absent.right?.includes(area) ?? false;
    const l = new Map((left[area] ?? []).map((i) => [i.key, i]));
    const r = new Map((right[area] ?? []).map((i) => [i.key, i]));
    const keys = [...new Set([...l.keys(), ...r.keys()])].sort();
    const items = keys.map((k): ItemComparison => {
      const item = compareItem(l.get(k), r.get(k));
      return area === 'properties' && overriddenProperties.has(k) ? { ...item, overridden: true } : item;
    });
    const notSent = leftAbsent && rightAbsent ? 'both' : leftAbsent ? 'left' : rightAbsent ? 'right' : undefined;
    return {
      area,
      differing: notSent ? 0 : items.filter((i) => i.state !== 'same' && !i.overridden).length,
      drift: DRIFT.has(area),
      items,
      ...(notSent && { notSent }),
    };
  });
}

/**
 * For each component, the version most members run (ties: the lower one as text) — the
 * matrix marks the cells that differ from it. Members without the component do not vote.
 */
export function commonVersions(
  components: readonly string[],
  members: readonly { versions: Record<string, string | null> }[],
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const c of components) {
    const votes = new Map<string, number>();
    for (const m of members) {
      const v = m.versions[c];
      if (v !== undefined && v !== null) votes.set(v, (votes.get(v) ?? 0) + 1);
    }
    const ranked = [...votes.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    out[c] = ranked[0]?.[0] ?? null;
  }
  return out;
}

export const AREA_LABELS: Record<SnapshotArea, string> = {
  checks: 'Checks',
  alertRules: 'Alert rules',
  channels: 'Channels',
  properties: 'Properties',
  statusPages: 'Status pages',
  usersAndRoles: 'Users and roles',
  componentVersions: 'Component versions',
};
