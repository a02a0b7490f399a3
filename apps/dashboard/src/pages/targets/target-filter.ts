import { foldedIncludes, searchFold, TargetKind, TargetStatus, type TargetView } from '@fleetwatch/contracts';

/** What the targets page shows; kept in the URL (shareable, back button) and remembered in localStorage. */
export interface TargetFilter {
  status: TargetStatus[];
  kind: TargetKind[];
  tag: string;
  /** Targets reporting from this location (exact name). */
  location: string;
  /** Free text over name, id, tags and labels (client side). */
  q: string;
}

export const EMPTY_FILTER: TargetFilter = { status: [], kind: [], tag: '', location: '', q: '' };

const STATUSES = new Set<string>(Object.values(TargetStatus));
const KINDS = new Set<string>(Object.values(TargetKind));

function listOf<T extends string>(raw: string | null, allowed: Set<string>): T[] {
  if (!raw) return [];
  const seen = new Set<string>();
  for (const v of raw.split(',').map((s) => s.trim())) if (allowed.has(v)) seen.add(v);
  return [...seen].sort() as T[];
}

/** From the URL; unknown values are dropped, never sent to the API. */
export function parseFilter(params: URLSearchParams): TargetFilter {
  return {
    status: listOf<TargetStatus>(params.get('status'), STATUSES),
    kind: listOf<TargetKind>(params.get('kind'), KINDS),
    tag: (params.get('tag') ?? '').trim().slice(0, 128),
    location: (params.get('location') ?? '').trim().slice(0, 128),
    q: (params.get('q') ?? '').slice(0, 200),
  };
}

/** For the URL: only what is set, in a stable order. */
export function filterToParams(f: TargetFilter): URLSearchParams {
  const p = new URLSearchParams();
  if (f.status.length) p.set('status', [...f.status].sort().join(','));
  if (f.kind.length) p.set('kind', [...f.kind].sort().join(','));
  if (f.tag) p.set('tag', f.tag);
  if (f.location) p.set('location', f.location);
  if (f.q) p.set('q', f.q);
  return p;
}

/** For `GET /api/v1/targets`: the server-side part (status and kind as comma-separated OR lists). */
export function targetApiQuery(f: TargetFilter): URLSearchParams {
  const p = new URLSearchParams();
  if (f.status.length) p.set('status', f.status.join(','));
  if (f.kind.length) p.set('kind', f.kind.join(','));
  if (f.tag) p.set('tag', f.tag);
  if (f.location) p.set('location', f.location);
  return p;
}

export function toggle<T>(list: readonly T[], value: T): T[] {
  return list.includes(value) ? list.filter((v) => v !== value) : [...list, value];
}

/** Search over what a person recognises a target by; case and accents do not count (searchFold). */
export function matchesSearch(t: Pick<TargetView, 'id' | 'name' | 'tags' | 'labels'>, q: string): boolean {
  const needle = searchFold(q.trim());
  if (!needle) return true;
  if (foldedIncludes(t.name, needle) || foldedIncludes(t.id, needle)) return true;
  if (t.tags.some((tag) => foldedIncludes(tag, needle))) return true;
  return Object.entries(t.labels).some(([k, v]) => foldedIncludes(`${k}=${v}`, needle));
}

/** The server-side part of the filter, applied in the page (to show a cached list at once while the API answers). */
export function matchesFilter(t: Pick<TargetView, 'status' | 'kind' | 'tags' | 'locations'>, f: TargetFilter): boolean {
  if (f.status.length && !f.status.includes(t.status)) return false;
  if (f.kind.length && !f.kind.includes(t.kind)) return false;
  if (f.location && !t.locations.some((l) => l.location === f.location)) return false;
  return !f.tag || t.tags.includes(f.tag);
}
