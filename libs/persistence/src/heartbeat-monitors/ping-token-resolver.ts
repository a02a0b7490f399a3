import { LRUCache } from 'lru-cache';
import { RefreshingSet } from '../credentials/refreshing-set';
import type { HeartbeatMonitorRecord } from './heartbeat-monitors.repository';
import { hashPingToken, pingTokenShapeOf } from './ping-token';

/** The part of HeartbeatMonitorsRepository the resolver reads. */
export interface PingTokenLookup {
  findByTokenHash(tokenHash: string): Promise<HeartbeatMonitorRecord | null>;
  listTokenHashes(): Promise<string[]>;
}

export interface PingTokenResolverOptions {
  /** How long a monitor (or its absence) is remembered; a deleted monitor's URL stops within this. */
  cacheTtlMs: number;
  maxCachedTokens?: number;
  /** The set of token hashes older than this is reloaded in the background. */
  legacyMaxAgeMs?: number;
  /** An unknown legacy token reloads the set at most this often. */
  legacyMissRefreshMs?: number;
  now?: () => number;
}

/**
 * Finds the heartbeat monitor of a ping token. Costs no query for a malformed
 * token, a token whose checksum fails, or a pre-checksum (legacy) token whose hash
 * is not among the monitors' token hashes (held in memory: a legacy token cannot be
 * told from a random one by its shape). Lookups are cached for `cacheTtlMs`, unknown
 * tokens too, and concurrent ones share one query.
 */
export class PingTokenResolver {
  private monitors: LRUCache<string, { monitor: HeartbeatMonitorRecord | null }>;
  private readonly newCache: () => LRUCache<string, { monitor: HeartbeatMonitorRecord | null }>;
  private readonly legacyHashes: RefreshingSet;

  constructor(
    private readonly lookup: PingTokenLookup,
    options: PingTokenResolverOptions,
  ) {
    const now = options.now ?? (() => performance.now());
    this.newCache = () =>
      new LRUCache({
        max: options.maxCachedTokens ?? 10_000,
        // lru-cache reads 0 as "forever": 1 ms still shares concurrent lookups.
        ttl: Math.max(1, options.cacheTtlMs),
        perf: { now },
        // Read the clock on every check (cheap), not a value cached for a timer tick.
        ttlResolution: 0,
        fetchMethod: async (tokenHash: string) => ({ monitor: await this.lookup.findByTokenHash(tokenHash) }),
      });
    this.monitors = this.newCache();
    this.legacyHashes = new RefreshingSet(() => lookup.listTokenHashes(), {
      maxAgeMs: options.legacyMaxAgeMs ?? 60_000,
      missRefreshMs: options.legacyMissRefreshMs ?? 10_000,
      now,
    });
  }

  /** The monitor, or null for a token no monitor has. Database errors propagate. */
  async resolve(token: string): Promise<HeartbeatMonitorRecord | null> {
    const shape = pingTokenShapeOf(token);
    if (shape === 'malformed' || shape === 'bad-checksum') return null;
    const tokenHash = hashPingToken(token);
    if (shape === 'legacy' && !(await this.legacyHashes.has(tokenHash))) return null;
    const entry = await this.monitors.fetch(tokenHash);
    return entry?.monitor ?? null;
  }

  /**
   * Forgets every cached monitor. A new cache, not `clear()`: lru-cache's clear aborts the lookups in flight, and their
   * pings failed with `Error('deleted')` (a 500) whenever checks changed; they finish into the old cache now, unseen.
   */
  clear(): void {
    this.monitors = this.newCache();
    this.legacyHashes.clear();
  }
}
