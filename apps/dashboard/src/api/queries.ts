import {
  SPARKLINE_MAX_TARGETS,
  TargetStatus,
  type CheckView,
  type HistoryResponse,
  type HostDetailView,
  type HostListResponse,
  type HostMetricsResponse,
  type SparklinesResponse,
  type StatusSummaryResponse,
  type TargetSparkline,
  type RecentTargetsResponse,
  type TargetListResponse,
  type TargetView,
} from '@fleetwatch/contracts';
import { api, enc } from './client';
import { targetApiQuery, type TargetFilter } from '../pages/targets/target-filter';
import { EMPTY_HOST_FILTER, hostApiQuery, type HostFilter } from '../pages/hosts/host-filter';

// Query keys carry every input of their request (filters, windows), so that two
// filters never share a cache entry and a slow answer for an old filter can never
// overwrite the newer one. Every fetch passes TanStack Query's AbortSignal: a query
// nobody watches any more is cancelled, not left to finish.

export const keys = {
  all: ['fleetwatch'] as const,
  counts: () => [...keys.all, 'targets', 'counts'] as const,
  targets: (f: TargetFilter) =>
    [...keys.all, 'targets', 'list', { status: f.status, kind: f.kind, tag: f.tag, location: f.location }] as const,
  /** The targets whose status changed last (GET /api/v1/targets/recent). */
  recent: (limit?: number) =>
    limit === undefined
      ? ([...keys.all, 'targets', 'recent'] as const)
      : ([...keys.all, 'targets', 'recent', limit] as const),
  /** One block of list rows' sparklines (the ids in view, in order). */
  sparklines: (ids: readonly string[]) => [...keys.all, 'targets', 'sparklines', ids] as const,
  target: (id: string) => [...keys.all, 'targets', 'one', id] as const,
  history: (id: string, minutes: number) => [...keys.all, 'targets', 'history', id, minutes] as const,
  /** Every range of one target's history (under it: what invalidates this invalidates each). */
  historyOf: (id: string) => [...keys.all, 'targets', 'history', id] as const,
  checks: () => [...keys.all, 'checks'] as const,
  check: (id: string) => [...keys.all, 'checks', id] as const,
  hosts: () => [...keys.all, 'hosts'] as const,
  /** The first `limit` hosts (under hosts(): what invalidates the list invalidates it). */
  firstHosts: (limit: number) => [...keys.all, 'hosts', { first: limit }] as const,
  /** One page of the hosts a filter takes: `limit` after the id `after` (null: the first page). */
  hostsPage: (after: string | null, limit: number, f: HostFilter = EMPTY_HOST_FILTER) =>
    [...keys.all, 'hosts', { after, limit, status: f.status, location: f.location, q: f.q }] as const,
  /** Hosts by status (an object, not a string: `['hosts', id]` is one host's). */
  hostCounts: () => [...keys.all, 'hosts', { counts: true }] as const,
  host: (id: string) => [...keys.all, 'hosts', id] as const,
  hostMetrics: (id: string, minutes: number) => [...keys.all, 'hosts', id, 'metrics', minutes] as const,
};

const PAGE = 1000;
/** The first page is small: it is what a first render waits for, and a screen shows a few dozen rows. */
const FIRST_PAGE = 200;

/**
 * Every target matching the server-side filters, page by page (10,000 targets: 10 requests). `onPage`
 * hears the targets so far after each page but the last (a page can show the first rows at once); with
 * it, the first page is small (11 requests for 10,000).
 */
export async function fetchAllTargets(
  f: TargetFilter,
  signal?: AbortSignal,
  onPage?: (soFar: TargetView[], total: number) => void,
): Promise<TargetView[]> {
  const items: TargetView[] = [];
  let cursor: string | null = null;
  do {
    const q = targetApiQuery(f);
    q.set('limit', String(items.length === 0 && onPage ? FIRST_PAGE : PAGE));
    if (cursor) q.set('cursor', cursor);
    const page: TargetListResponse = await api<TargetListResponse>(`/api/v1/targets?${q}`, { signal });
    items.push(...page.items);
    cursor = page.nextCursor;
    if (cursor && onPage && !signal?.aborted) onPage(items.slice(), page.total);
  } while (cursor);
  return items;
}

/** Longest query string one sparklines request carries (long ids make more requests, never an oversized URL). */
const SPARKLINE_QUERY_CHARS = 6000;

/** Splits ids into requests: at most SPARKLINE_MAX_TARGETS each, and a bounded query string. */
export function sparklineRequests(ids: readonly string[], max = SPARKLINE_MAX_TARGETS): URLSearchParams[] {
  const out: URLSearchParams[] = [];
  let q = new URLSearchParams();
  let n = 0;
  let chars = 0;
  for (const id of ids) {
    // Measured as URLSearchParams writes it ('&id=' and the id encoded its way).
    const cost = new URLSearchParams({ id }).toString().length + 1;
    if (n > 0 && (n >= max || chars + cost > SPARKLINE_QUERY_CHARS)) {
      out.push(q);
      q = new URLSearchParams();
      n = 0;
      chars = 0;
    }
    q.append('id', id);
    n += 1;
    chars += cost;
  }
  if (n > 0) out.push(q);
  return out;
}

/** The last hour of each id, minute by minute (`GET /api/v1/targets/sparklines`). */
export async function fetchSparklines(ids: readonly string[], signal?: AbortSignal): Promise<TargetSparkline[]> {
  const answers = await Promise.all(
    sparklineRequests(ids).map((q) => api<SparklinesResponse>(`/api/v1/targets/sparklines?${q}`, { signal })),
  );
  return answers.flatMap((a) => a.targets);
}

export type StatusCounts = Record<TargetStatus, number> & { all: number };

/** The `limit` targets whose status changed last, newest first (one small request, whatever the fleet's size). */
export async function fetchRecentChanges(limit: number, signal?: AbortSignal): Promise<TargetView[]> {
  return (await api<RecentTargetsResponse>(`/api/v1/targets/recent?limit=${limit}`, { signal })).items;
}

/**
 * Counts by status over the whole set, whatever filter a page shows: the gateway's status
 * summary (one SCARD per status in live state), one request whatever the fleet's size.
 */
export async function fetchStatusCounts(signal?: AbortSignal): Promise<StatusCounts> {
  const summary = await api<StatusSummaryResponse>('/api/v1/status/summary', { signal });
  const counts = { all: summary.total } as StatusCounts;
  for (const s of Object.values(TargetStatus)) counts[s] = summary.byStatus[s] ?? 0;
  return counts;
}

export const fetchTarget = (id: string, signal?: AbortSignal) =>
  api<TargetView>(`/api/v1/targets/${enc(id)}`, { signal });

export const fetchHistory = (id: string, minutes: number, signal?: AbortSignal) =>
  api<HistoryResponse>(`/api/v1/targets/${enc(id)}/history?minutes=${minutes}`, { signal });

export async function fetchAllChecks(signal?: AbortSignal): Promise<CheckView[]> {
  const items: CheckView[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: CheckView[]; nextCursor: string | null } = await api(
      `/api/v1/checks?limit=1000${cursor ? `&cursor=${enc(cursor)}` : ''}`,
      { signal },
    );
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

export const fetchCheck = (id: string, signal?: AbortSignal) => api<CheckView>(`/api/v1/checks/${enc(id)}`, { signal });

/**
 * One page of the hosts a filter takes, by id: `limit` (at most 1,000, the gateway's page) after the id `after` — a
 * page's `nextCursor`; null: from the first host. The gateway filters (status, location, search): `total` counts the
 * hosts the filter takes.
 */
export function fetchHostsPage(
  after: string | null,
  limit: number,
  signal?: AbortSignal,
  f: HostFilter = EMPTY_HOST_FILTER,
): Promise<HostListResponse> {
  return api<HostListResponse>(`/api/v1/hosts?${hostApiQuery(f, after, limit)}`, { signal });
}

/** Hosts by status, and all of them (their sum): one `limit=1` request a status, as the instances page counts. */
export async function fetchHostCounts(signal?: AbortSignal): Promise<StatusCounts> {
  const statuses = Object.values(TargetStatus);
  const each = await Promise.all(
    statuses.map(async (s) => (await fetchHostsPage(null, 1, signal, { status: [s], location: '', q: '' })).total),
  );
  const counts = { all: each.reduce((a, b) => a + b, 0) } as StatusCounts;
  statuses.forEach((s, i) => (counts[s] = each[i] ?? 0));
  return counts;
}

/**
 * Every host, page by page (1,000 a request: 10 for 10,000). No page reads this: the hosts page reads the page it
 * shows (fetchHostsPage), the overview its first hosts; it is for a caller that needs the whole inventory at once.
 */
export async function fetchHosts(signal?: AbortSignal): Promise<HostListResponse> {
  const items: HostListResponse['items'] = [];
  let cursor: string | null = null;
  let total = 0;
  do {
    const page: HostListResponse = await fetchHostsPage(cursor, 1000, signal);
    items.push(...page.items);
    total = page.total;
    cursor = page.nextCursor;
  } while (cursor);
  return { items, nextCursor: null, total };
}

/** The first `limit` hosts by id (the overview's card shows a few; the whole inventory is the hosts page's). */
export const fetchFirstHosts = (limit: number, signal?: AbortSignal) => fetchHostsPage(null, limit, signal);

export const fetchHost = (id: string, signal?: AbortSignal) =>
  api<HostDetailView>(`/api/v1/hosts/${enc(id)}`, { signal });

export const fetchHostMetrics = (id: string, minutes: number, signal?: AbortSignal) =>
  api<HostMetricsResponse>(`/api/v1/hosts/${enc(id)}/metrics?minutes=${minutes}`, { signal });
