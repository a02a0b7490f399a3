import { csvOf } from '../common/csv-filter';
import { foldedIncludes, searchFold } from '../common/search-fold';
import { storableText } from '../common/store-safe';
import { TargetStatus } from '../common/status';
import type { HostSummaryView } from './hosts.schema';

/** Longest search text `GET /api/v1/hosts?q=` takes. */
export const HOST_SEARCH_MAX = 200;

/**
 * The filters of `GET /api/v1/hosts` (part of listHostsQuerySchema): `status` a comma-separated OR list in any case
 * (`up,stale`; anything else is a 400 naming the statuses allowed), `location` a location's exact name, `q` free text
 * (matchesHostSearch). Status and location are read from live state's indexes; `q` is matched by the gateway.
 */
export const hostListFilterShape = {
  status: csvOf(TargetStatus).optional().describe('consensus statuses, comma-separated (OR), any case: UP,STALE'),
  location: storableText(128).optional().describe('hosts reporting from this location (exact name)'),
  q: storableText(HOST_SEARCH_MAX)
    .optional()
    .describe(
      'text in the host id or name, or its hostname, OS (platform, distro, release), kernel or arch; case and accents do not count (zurich finds Zürich)',
    ),
};

/** What a host search looks in: the host as the list shows it. */
export type HostSearchable = Pick<HostSummaryView, 'id' | 'name' | 'system'>;

/**
 * The texts of a host `q` looks in: its id and name, and what its latest sample says it runs — hostname, platform,
 * distro, release, kernel, arch, and the System column's "distro release" (so `ubuntu 24.04` finds it). Pure; the
 * gateway and the dashboard share it.
 */
export function hostSearchTexts(h: HostSearchable): string[] {
  const texts = [h.id, h.name];
  const s = h.system;
  if (s) {
    for (const v of [s.hostname, s.platform, s.distro, s.release, s.kernel, s.arch]) if (v) texts.push(v);
    const shown = [s.distro ?? s.platform, s.release].filter(Boolean).join(' ');
    if (shown) texts.push(shown);
  }
  return texts;
}

/**
 * Whether `q` (trimmed; any case, accents or none: searchFold) is part of one of the host's search texts; an empty `q`
 * takes every host.
 */
export function matchesHostSearch(h: HostSearchable, q: string | undefined): boolean {
  const needle = searchFold((q ?? '').trim());
  if (!needle) return true;
  return hostSearchTexts(h).some((t) => foldedIncludes(t, needle));
}
