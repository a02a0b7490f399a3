import {
  hostMetricsPayloadSchema,
  matchesHostSearch,
  TargetIds,
  TargetKind,
  type HostSummaryView,
  type ListHostsQuery,
} from '@fleetwatch/contracts';
import type {
  CorruptPartListener,
  LiveStateStore,
  TargetFilter,
  TargetRecord,
  UnreadableTarget,
} from '@fleetwatch/live-state';

/** Latest samples a search reads at a time (one pipeline, ~0.5 MB): the longest the event loop is held by one read. */
export const HOST_SEARCH_CHUNK = 250;
/** How long what a host's latest sample says it runs serves searches before the sample is read again. */
export const HOST_SYSTEM_TTL_MS = 30_000;

const HOST_PREFIX = TargetIds.host('');
const hostIdOf = (targetId: string) => targetId.slice(HOST_PREFIX.length);
const systemSchema = hostMetricsPayloadSchema.shape.system;

type HostSystem = HostSummaryView['system'];

/** One page of the host list: the hosts' targets in id order and their latest samples (raw JSON) where kept. */
export interface HostTargetPage {
  /** The page's hosts whose record could be read, in `ids` order. */
  items: TargetRecord[];
  /** The page's target ids, in order (`items`, `unreadable`, and those gone since their id was read). */
  ids: string[];
  /** The page's hosts whose record in live state cannot be read (corrupt): left out of `items`. */
  unreadable: UnreadableTarget[];
  samples: Map<string, string>;
  nextCursor: string | null;
  /** Hosts the filter takes (every host without one). */
  total: number;
}

/** What a stored sample says the host runs (null: unreadable, or no valid `system`). */
export function systemOf(json: string): HostSystem {
  try {
    const parsed = systemSchema.safeParse((JSON.parse(json) as { system?: unknown } | null)?.system);
    return parsed.success ? (parsed.data ?? null) : null;
  } catch {
    return null;
  }
}

/**
 * What hosts run (`system` of their latest samples), as the search matches it: held per host for `ttlMs` after it was
 * read, one gateway-wide read at a time, `chunkSize` samples a pipeline. A search reads every candidate's sample
 * (5,000 hosts: ~10 MB and ~1 s of this process on a loaded 2-core box, the event loop held ~0.2 s a 1,000-sample
 * chunk); read per request, each viewer's search refreshed every 10 s was that much again, with nothing to bound it.
 * Held, any number of searches cost one read of each host's sample per `ttlMs`; a search arriving while one reads
 * waits for it and reads only what it left. A host without a sample is not held (read again, a missing key, until it
 * has one); a host no search asked about for `ttlMs` is forgotten. What a search finds may be up to `ttlMs` behind a
 * host's OS or hostname changing (the rows show each host's latest sample).
 */
export class HostSystems {
  private readonly held = new Map<string, { readAt: number; system: HostSystem }>();
  private reading: Promise<unknown> = Promise.resolve();
  private readonly ttlMs: number;
  private readonly chunkSize: number;
  private readonly now: () => number;

  constructor(
    private readonly live: LiveStateStore,
    options: { ttlMs?: number; chunkSize?: number; now?: () => number } = {},
  ) {
    this.ttlMs = options.ttlMs ?? HOST_SYSTEM_TTL_MS;
    this.chunkSize = options.chunkSize ?? HOST_SEARCH_CHUNK;
    this.now = options.now ?? Date.now;
  }

  /** hostId → what it runs (null: no sample, or none that says), for each host asked. */
  async of(hostIds: readonly string[]): Promise<Map<string, HostSystem>> {
    const run = this.reading.then(() => this.fill(hostIds));
    this.reading = run.catch(() => undefined);
    await run;
    return new Map(hostIds.map((id) => [id, this.held.get(id)?.system ?? null]));
  }

  private async fill(hostIds: readonly string[]): Promise<void> {
    const now = this.now();
    for (const [id, h] of this.held) if (now - h.readAt >= this.ttlMs) this.held.delete(id);
    const missing = hostIds.filter((id) => !this.held.has(id));
    for (let from = 0; from < missing.length; from += this.chunkSize) {
      const chunk = missing.slice(from, from + this.chunkSize);
      const samples = await this.live.getHostMetricsMany(chunk);
      const readAt = this.now();
      for (const id of chunk) {
        const json = samples.get(id);
        if (json !== undefined) this.held.set(id, { readAt, system: systemOf(json) });
      }
    }
  }
}

/**
 * The page of hosts `GET /api/v1/hosts` answers. Status and location are live state's indexes (an intersection, as
 * for targets): only the page's hosts and samples are read. A search (`q`) also looks at what each host's latest
 * sample says it runs, which no index holds: it takes the ids the indexes give (no target read; a host's name is its
 * id), matches ids first, then the others' systems (HostSystems: held for a while, read when not) — to count the
 * matches and pick the page after the cursor — and then the page's targets and samples.
 */
export async function findHosts(
  live: LiveStateStore,
  query: ListHostsQuery,
  systems: HostSystems = new HostSystems(live),
  corruptPart?: CorruptPartListener,
): Promise<HostTargetPage> {
  const filter: TargetFilter = { kind: [TargetKind.Host], status: query.status, location: query.location };
  const after = query.cursor === undefined ? undefined : TargetIds.host(query.cursor);
  const needle = query.q?.trim() ?? '';
  if (!needle) {
    const page = await live.listTargets(filter, query.limit, after, corruptPart);
    const samples = await live.getHostMetricsMany(page.ids.map(hostIdOf));
    return {
      items: page.items,
      ids: page.ids,
      unreadable: page.unreadable,
      samples,
      nextCursor: page.nextCursor === null ? null : hostIdOf(page.nextCursor),
      total: page.total,
    };
  }
  const ids = await live.listTargetIds(filter);
  const byId = new Set(ids.filter((t) => matchesHostSearch({ id: hostIdOf(t), name: '', system: null }, needle)));
  const system = await systems.of(ids.filter((t) => !byId.has(t)).map(hostIdOf));
  const page: string[] = [];
  let total = 0;
  let more = false;
  for (const t of ids) {
    if (!byId.has(t) && !matchesHostSearch({ id: '', name: '', system: system.get(hostIdOf(t)) ?? null }, needle))
      continue;
    total++;
    if (after !== undefined && t <= after) continue;
    if (page.length < query.limit) page.push(t);
    else more = true;
  }
  const [found, samples] = await Promise.all([
    live.readTargets(page, corruptPart),
    live.getHostMetricsMany(page.map(hostIdOf)),
  ]);
  return {
    // A host retired since its id was read is left out (as listTargets leaves it).
    items: page.map((t) => found.targets.get(t)).filter((t): t is TargetRecord => t !== undefined),
    ids: page,
    unreadable: found.unreadable,
    samples,
    nextCursor: more ? hostIdOf(page[page.length - 1] as string) : null,
    total,
  };
}
