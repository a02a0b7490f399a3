import type { TargetView } from '@fleetwatch/contracts';

/** The first pages of a list being loaded for the first time (fetchAllTargets' `onPage`). */
export interface PartialList {
  key: string;
  items: TargetView[];
  total: number;
}

/** What the targets page shows, and how it labels it. */
export type ListSource =
  | { kind: 'list'; items: TargetView[] }
  | { kind: 'pages'; items: TargetView[]; loaded: number; total: number }
  | { kind: 'none' };

/**
 * Picks the rows the targets page shows (pure, unit-tested): the query's data when it has any (its
 * answer, or the cached whole list filtered while a new filter loads); else the first pages of this
 * very list while its first load is still running; else nothing. Pages of another filter, of an
 * attempt that failed (no fetch running: the error shows instead) or of a cancelled one are never shown.
 */
export function listSource(
  data: TargetView[] | undefined,
  fetching: boolean,
  partial: PartialList | null,
  key: string,
): ListSource {
  if (data !== undefined) return { kind: 'list', items: data };
  if (fetching && partial && partial.key === key)
    return { kind: 'pages', items: partial.items, loaded: partial.items.length, total: partial.total };
  return { kind: 'none' };
}
