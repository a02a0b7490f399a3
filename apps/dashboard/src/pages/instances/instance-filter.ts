import { foldedIncludes, InstanceKind, searchFold, TargetStatus, type InstanceView } from '@fleetwatch/contracts';

/** What the pushed-instances page shows; kept in the URL (shareable, back button) and remembered in localStorage. */
export interface InstanceFilter {
  status: TargetStatus[];
  /** What the instances are (any of them); empty: every kind, and instances whose kind is not known yet. */
  kind: InstanceKind[];
  tag: string;
  location: string;
  /** Free text over instance id, lifecycle, tags, labels and per-location messages (client side). */
  q: string;
}

export const EMPTY_INSTANCE_FILTER: InstanceFilter = { status: [], kind: [], tag: '', location: '', q: '' };

const STATUSES = new Set<string>(Object.values(TargetStatus));
/** The instance kinds, in their order of declaration (how the page lists them). */
export const INSTANCE_KINDS = Object.values(InstanceKind);
const KINDS = new Set<string>(INSTANCE_KINDS);

/** From the URL; unknown statuses and kinds are dropped, never sent to the API. */
export function parseInstanceFilter(params: URLSearchParams): InstanceFilter {
  const seen = new Set<TargetStatus>();
  for (const v of (params.get('status') ?? '').split(',').map((s) => s.trim()))
    if (STATUSES.has(v)) seen.add(v as TargetStatus);
  const kinds = new Set<string>();
  for (const v of (params.get('kind') ?? '').split(',').map((s) => s.trim().toLowerCase()))
    if (KINDS.has(v)) kinds.add(v);
  return {
    status: [...seen].sort(),
    kind: INSTANCE_KINDS.filter((k) => kinds.has(k)),
    tag: (params.get('tag') ?? '').trim().slice(0, 128),
    location: (params.get('location') ?? '').trim().slice(0, 128),
    q: (params.get('q') ?? '').slice(0, 200),
  };
}

/** For the URL: only what is set, in a stable order. */
export function instanceFilterToParams(f: InstanceFilter): URLSearchParams {
  const p = new URLSearchParams();
  if (f.status.length) p.set('status', [...f.status].sort().join(','));
  if (f.kind.length) p.set('kind', f.kind.join(','));
  if (f.tag) p.set('tag', f.tag);
  if (f.location) p.set('location', f.location);
  if (f.q) p.set('q', f.q);
  return p;
}

/** For `GET /api/v1/instances`: the server-side part (status as a comma-separated OR list). */
export function instanceApiQuery(f: InstanceFilter): URLSearchParams {
  const p = new URLSearchParams();
  if (f.status.length) p.set('status', f.status.join(','));
  if (f.kind.length) p.set('kind', f.kind.join(','));
  if (f.tag) p.set('tag', f.tag);
  if (f.location) p.set('location', f.location);
  return p;
}

/** Whether the server-side filter (status, kind, tag, location) takes this instance: the API's own rules. */
export function matchesInstanceFilter(
  i: Pick<InstanceView, 'status' | 'instanceKind' | 'tags' | 'locations'>,
  f: Pick<InstanceFilter, 'status' | 'kind' | 'tag' | 'location'>,
): boolean {
  if (f.status.length && !f.status.includes(i.status)) return false;
  if (f.kind.length && !(i.instanceKind && f.kind.includes(i.instanceKind))) return false;
  if (f.location && !i.locations.some((l) => l.location === f.location)) return false;
  return !f.tag || i.tags.includes(f.tag);
}

/**
 * What the page shows while a new filter's list loads: the rows of the list it had that the new filter takes
 * (never another filter's rows). Its total is that of no list: the page says it is loading.
 */
export function instancePlaceholder<L extends { items: InstanceView[]; total: number }>(
  previous: L | undefined,
  f: InstanceFilter,
): L | undefined {
  if (!previous) return undefined;
  const items = previous.items.filter((i) => matchesInstanceFilter(i, f));
  return items.length === previous.items.length ? previous : { ...previous, items };
}

/** Search over what a person recognises an instance by; case and accents do not count (searchFold). */
export function matchesInstance(
  i: Pick<InstanceView, 'instanceId' | 'name' | 'lifecycle' | 'tags' | 'labels' | 'locations'>,
  q: string,
): boolean {
  const needle = searchFold(q.trim());
  if (!needle) return true;
  const hay = [
    i.instanceId,
    i.name,
    i.lifecycle ?? '',
    ...i.tags,
    ...Object.entries(i.labels).map(([k, v]) => `${k}=${v}`),
    ...i.locations.map((l) => `${l.location} ${l.detail ?? ''}`),
  ];
  return hay.some((s) => foldedIncludes(s, needle));
}
