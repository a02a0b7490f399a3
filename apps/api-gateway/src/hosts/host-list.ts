import {
  hostMetricsPayloadSchema,
  matchesHostSearch,
  TargetIds,
  TargetKind,
  type HostSummaryView,
  type ListHostsQuery,
} from '@fleetwatch/contracts';
import type { LiveStateStore, TargetFilter, TargetRecord } from '@fleetwatch/live-state';

/** Latest samples a search reads at a time (one pipeline). */
export const HOST_SEARCH_CHUNK = 1000;

const HOST_PREFIX = TargetIds.host('');
const hostIdOf = (targetId: string) => targetId.slice(HOST_PREFIX.length);
const systemSchema = hostMetricsPayloadSchema.shape.system;

/** One page of the host list: the hosts' targets in id order and their latest samples (raw JSON) where kept. */
export interface HostTargetPage {
  items: TargetRecord[];
  samples: Map<string, string>;
  nextCursor: string | null;
  /** Hosts the filter takes (every host without one). */
  total: number;
}

/** What a stored sample says the host runs (null: unreadable, or no valid `system`). */
function systemOf(json: string): HostSummaryView['system'] {
  try {
    const parsed = systemSchema.safeParse((JSON.parse(json) as { system?: unknown } | null)?.system);
    return parsed.success ? (parsed.data ?? null) : null;
  } catch {
    return null;
  }
}

/**
 * Whether a host's latest sample (its stored JSON) says it runs what `q` looks for (matchesHostSearch on its `system`).
 * Parsing 5,000 samples is most of a search's time, so the JSON is looked at first where that is sound: a text of
 * printable ASCII without the characters JSON may escape (`"`, `\`, `/`) reads the same in the JSON as in the fields,
 * and lower-casing maps no other character onto one of it; looked for word by word, as "distro release" is one search
 * text but two fields (each word of a text found in it lies in one field). A sample whose JSON lacks a word is no match.
 */
export function sampleMatches(json: string, q: string): boolean {
  const needle = q.trim().toLowerCase();
  if (/^[\x20-\x7e]+$/.test(needle) && !/["\\/]/.test(needle)) {
    const lower = json.toLowerCase();
    if (!needle.split(' ').every((w) => lower.includes(w))) return false;
  }
  return matchesHostSearch({ id: '', name: '', system: systemOf(json) }, needle);
}

/**
 * The page of hosts `GET /api/v1/hosts` answers. Status and location are live state's indexes (an intersection, as
 * for targets): only the page's hosts and samples are read. A search (`q`) also looks at what each host's latest
 * sample says it runs, which no index holds: it takes the ids the indexes give (no target read; a host's name is its
 * id), matches ids first, then reads the others' samples `chunkSize` at a time (sampleMatches) — one pass a request,
 * nothing kept in between, to count the matches and pick the page after the cursor — and then the page's targets.
 */
export async function findHosts(
  live: LiveStateStore,
  query: ListHostsQuery,
  chunkSize = HOST_SEARCH_CHUNK,
): Promise<HostTargetPage> {
  const filter: TargetFilter = { kind: [TargetKind.Host], status: query.status, location: query.location };
  const after = query.cursor === undefined ? undefined : TargetIds.host(query.cursor);
  const needle = query.q?.trim().toLowerCase() ?? '';
  if (!needle) {
    const page = await live.listTargets(filter, query.limit, after);
    const samples = await live.getHostMetricsMany(page.items.map((t) => hostIdOf(t.id)));
    return {
      items: page.items,
      samples,
      nextCursor: page.nextCursor === null ? null : hostIdOf(page.nextCursor),
      total: page.total,
    };
  }
  const ids = await live.listTargetIds(filter);
  const page: string[] = [];
  let total = 0;
  let more = false;
  for (let from = 0; from < ids.length; from += chunkSize) {
    const chunk = ids.slice(from, from + chunkSize);
    const byId = new Set(chunk.filter((t) => matchesHostSearch({ id: hostIdOf(t), name: '', system: null }, needle)));
    const samples = await live.getHostMetricsMany(chunk.filter((t) => !byId.has(t)).map(hostIdOf));
    for (const t of chunk) {
      if (!byId.has(t)) {
        const json = samples.get(hostIdOf(t));
        if (json === undefined || !sampleMatches(json, needle)) continue;
      }
      total++;
      if (after !== undefined && t <= after) continue;
      if (page.length < query.limit) page.push(t);
      else more = true;
    }
  }
  const [found, samples] = await Promise.all([live.getTargets(page), live.getHostMetricsMany(page.map(hostIdOf))]);
  return {
    // A host retired since its id was read is left out (as listTargets leaves it).
    items: page.map((t) => found.get(t)).filter((t): t is TargetRecord => t !== undefined),
    samples,
    nextCursor: more ? hostIdOf(page[page.length - 1] as string) : null,
    total,
  };
}
