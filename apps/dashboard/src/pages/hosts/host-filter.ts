import {
  HOST_SEARCH_MAX,
  matchesHostSearch,
  TargetStatus,
  type HostListResponse,
  type HostSummaryView,
} from '@fleetwatch/contracts';

/**
 * What the hosts page shows; kept in the URL (shareable, survives a reload, back button) with the page's own `after`,
 * and remembered in localStorage. All three go to `GET /api/v1/hosts` (one page is read, never the whole inventory).
 */
export interface HostFilter {
  status: TargetStatus[];
  /** Hosts reporting from this location (exact name). */
  location: string;
  /** Free text over id, name, hostname and OS (the gateway's search: matchesHostSearch). */
  q: string;
}

export const EMPTY_HOST_FILTER: HostFilter = { status: [], location: '', q: '' };

const STATUSES = new Set<string>(Object.values(TargetStatus));

/** From the URL; unknown statuses are dropped (never sent to the API), text is trimmed and cut to what the API takes. */
export function parseHostFilter(params: URLSearchParams): HostFilter {
  const seen = new Set<TargetStatus>();
  for (const v of (params.get('status') ?? '').split(',').map((s) => s.trim()))
    if (STATUSES.has(v)) seen.add(v as TargetStatus);
  return {
    status: [...seen].sort(),
    location: (params.get('location') ?? '').trim().slice(0, 128),
    q: (params.get('q') ?? '').trim().slice(0, HOST_SEARCH_MAX),
  };
}

/** For the URL: only what is set, in a stable order, then the page's `after` (a filter change drops it). */
export function hostFilterToParams(f: HostFilter, after: string | null = null): URLSearchParams {
  const p = new URLSearchParams();
  if (f.status.length) p.set('status', [...f.status].sort().join(','));
  if (f.location) p.set('location', f.location);
  if (f.q) p.set('q', f.q);
  if (after !== null) p.set('after', after);
  return p;
}

export const isFiltered = (f: HostFilter) => f.status.length > 0 || f.location !== '' || f.q !== '';

export const sameHostFilter = (a: HostFilter, b: HostFilter) =>
  hostFilterToParams(a).toString() === hostFilterToParams(b).toString();

/** For `GET /api/v1/hosts`: the filter, the page size and the cursor (the last id of the page before). */
export function hostApiQuery(f: HostFilter, after: string | null, limit: number): URLSearchParams {
  const p = new URLSearchParams();
  if (f.status.length) p.set('status', f.status.join(','));
  if (f.location) p.set('location', f.location);
  if (f.q) p.set('q', f.q);
  p.set('limit', String(limit));
  if (after !== null) p.set('cursor', after);
  return p;
}

/** Whether the filter takes this host: the gateway's rules (status OR, exact location, matchesHostSearch). */
export function matchesHostFilter(
  h: Pick<HostSummaryView, 'id' | 'name' | 'system' | 'status' | 'locations'>,
  f: HostFilter,
): boolean {
  if (f.status.length && !f.status.includes(h.status)) return false;
  if (f.location && !h.locations.includes(f.location)) return false;
  return matchesHostSearch(h, f.q);
}

/**
 * What the page shows while a new filter's first page loads: the first page it had, less the hosts the new filter
 * does not take — never another filter's rows, nor another page's (paging shows Loading…). Its total is that of no
 * list: the page says it is loading.
 */
export function hostsPlaceholder(
  previous: HostListResponse | undefined,
  previousAfter: string | null | undefined,
  after: string | null,
  f: HostFilter,
): HostListResponse | undefined {
  if (!previous || previousAfter !== null || after !== null) return undefined;
  // No Next meanwhile: the old filter's cursor is not this one's.
  return { ...previous, items: previous.items.filter((h) => matchesHostFilter(h, f)), nextCursor: null };
}

/** The statuses the page offers: UP and STALE (what a host is), any other some host has now, and any selected. */
export function hostStatusChoices(
  counts: Partial<Record<TargetStatus, number>> | undefined,
  selected: readonly TargetStatus[],
): TargetStatus[] {
  return Object.values(TargetStatus).filter(
    (s) => s === TargetStatus.Up || s === TargetStatus.Stale || (counts?.[s] ?? 0) > 0 || selected.includes(s),
  );
}

/** The header's count: every host without a filter, else "n of m hosts" (m: every host, '…' until counted). */
export function hostsCountLabel(matching: number, all: number | undefined, filtered: boolean): string {
  if (!filtered) return `${matching.toLocaleString()} hosts`;
  return `${matching.toLocaleString()} of ${all === undefined ? '…' : all.toLocaleString()} hosts`;
}
