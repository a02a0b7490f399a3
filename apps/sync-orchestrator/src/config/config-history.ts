import type { CheckSpec } from '@fleetwatch/contracts';
import { ALERT_AREAS, type AlertChanges, type AreaChanges } from '../alerting/alert-forms';
import { configFormOf } from './check-form';
import type { ConfigSnapshot } from './config-yaml';

// What a config version stores (issue 15: a write must not cost O(all checks)): the checks
// it changed — name → config form after the write, or null where a name left the
// configuration (deleted, renamed away, or a type change's old check) — and, every
// `every` versions or when that list is as big as the configuration itself, the whole
// snapshot instead. A version's snapshot is rebuilt from the nearest full snapshot at or
// before it plus the changes after that (`rebuild`); rows written before this scheme hold
// full snapshots and stay valid as they are.

/** A check a write touched: its spec before (null: created) and after (null: deleted). */
export interface TouchedCheck {
  id: string;
  before: CheckSpec | null;
  after: CheckSpec | null;
}

/**
 * One version's changes, by area: checks by name; alert rules, channels and maintenance windows by
 * id; properties by key, each `{value}` (an area the write did not touch is absent).
 */
export interface ConfigChanges extends AlertChanges {
  checks: Record<string, Record<string, unknown> | null>;
  properties?: AreaChanges;
}

/** The areas a version stores besides checks, each keyed (id or key) and present only when it holds something. */
export const KEYED_AREAS = [...ALERT_AREAS, 'properties'] as const;

/** A version as history rows give it: its full snapshot, or its changes. */
export type HistoryRow =
  | { version: number; snapshot: ConfigSnapshot; changes?: null }
  | { version: number; snapshot?: null; changes: ConfigChanges };

/** A version stores a full snapshot at least this often (the longest chain a rebuild replays). */
export const SNAPSHOT_EVERY = 50;

const put = (target: Record<string, unknown>, key: string, value: unknown) =>
  // defineProperty: a check may be called `__proto__`.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });

/**
 * The changes of a write from the checks it touched: names that left first, then names as
 * they are now — so a name deleted and created again in one write (a type change on
 * import) ends as the new check.
 */
export function changesOf(touched: readonly TouchedCheck[]): ConfigChanges {
  const checks: ConfigChanges['checks'] = {};
  for (const t of touched)
    if (t.before && (!t.after || t.after.name !== t.before.name)) put(checks, t.before.name, null);
  for (const t of touched) if (t.after) put(checks, t.after.name, configFormOf(t.after));
  return { checks };
}

/** How many entries the changes write (deleted names cost next to nothing). */
export function upsertCount(changes: ConfigChanges): number {
  let n = 0;
  for (const area of ['checks', ...KEYED_AREAS] as const)
    for (const form of Object.values(changes[area] ?? {})) if (form !== null) n++;
  return n;
}

/**
 * Whether version `version` stores the whole snapshot: every `every`-th version (so a
 * rebuild replays fewer than `every` changes), and whenever the changes write at least as
 * many checks as the configuration then holds (a snapshot is no bigger).
 */
export function storesFullSnapshot(
  version: number,
  changes: ConfigChanges,
  checksAfter: number,
  every: number,
): boolean {
  return version % every === 0 || upsertCount(changes) >= checksAfter;
}

/** A snapshot with the changes applied (a new object; the input is left as it is). */
export function applyChanges(snapshot: ConfigSnapshot, changes: ConfigChanges): ConfigSnapshot {
  const out: ConfigSnapshot = { checks: {} };
  for (const area of ['checks', ...KEYED_AREAS] as const) {
    const before = snapshot[area] ?? {};
    const changed = changes[area] ?? {};
    const entries: Record<string, Record<string, unknown>> = {};
    for (const [key, form] of Object.entries(before)) if (!Object.hasOwn(changed, key)) put(entries, key, form);
    for (const [key, form] of Object.entries(changed)) if (form !== null) put(entries, key, form);
    // Keyed areas appear only when they hold something: a checks-only snapshot stays `{checks}`.
    if (area === 'checks' || Object.keys(entries).length > 0) out[area] = entries;
  }
  return out;
}

/**
 * The snapshot of the last row: `rows` are consecutive versions, oldest first, starting at
 * a full snapshot — or at version 1 with changes only (the configuration before version 1
 * is empty). Anything else is a gap in the history: an Error.
 */
export function rebuild(rows: readonly HistoryRow[]): ConfigSnapshot {
  if (rows.length === 0) throw new Error('config history: no rows to rebuild from');
  let snapshot: ConfigSnapshot | null = null;
  let expected = rows[0].version;
  for (const row of rows) {
    if (row.version !== expected)
      throw new Error(`config history: version ${expected} is missing (found ${row.version})`);
    expected++;
    if (row.snapshot) {
      snapshot = row.snapshot;
      continue;
    }
    if (!snapshot) {
      if (row.version !== 1)
        throw new Error(`config history: no full snapshot at or before version ${rows[rows.length - 1].version}`);
      snapshot = { checks: {} };
    }
    snapshot = applyChanges(snapshot, row.changes);
  }
  return snapshot as ConfigSnapshot;
}
