import { Inject, Injectable } from '@nestjs/common';
import { ApiKeyScope } from '@fleetwatch/contracts';
import { ForbiddenError, UnauthorizedError } from '@fleetwatch/domain';
import { apiKeyPrefixOf, ApiKeysRepository, verifyApiKey } from '@fleetwatch/persistence';
import type { IngestConfig } from '../config';
import { INGEST_CONFIG } from '../tokens';
import { IpAllowList } from './ip-allow-list';

/** A verified key, as the request carries it on. */
export interface AuthenticatedKey {
  id: string;
  scopes: ReadonlySet<string>;
  allowList: IpAllowList;
}

type Verdict = { key: AuthenticatedKey } | { refused: string };

interface CacheEntry {
  verdict: Verdict;
  expiresAt: number;
}

/** Bounds memory when someone sprays well-formed garbage keys. */
const MAX_CACHED_KEYS = 10_000;

/**
 * Bearer API keys at the ingest edge. Keys live hashed in `api_keys` (owner:
 * api-gateway); a well-formed key is looked up by prefix and its hash verified.
 * Verdicts, good and bad, are remembered for `authCacheMs` (≤ 4 s, default 2 s):
 * a hot key costs no query per request, a revoked key stops working within that
 * time plus one lookup, and concurrent requests with the same uncached key share
 * one lookup (no stampede). Malformed keys never reach the database.
 */
@Injectable()
export class ApiKeyAuthService {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<Verdict>>();
  private readonly ttlMs: number;

  constructor(
    private readonly keys: ApiKeysRepository,
    @Inject(INGEST_CONFIG) config: IngestConfig,
  ) {
    this.ttlMs = config.authCacheMs;
  }

  /**
   * Resolves the key in `authorization` (`Bearer <key>`) and checks it may
   * ingest from `ip`. Throws UnauthorizedError (missing, malformed, unknown,
   * revoked) or ForbiddenError (no `ingest` scope, address not allowed).
   */
  async authenticate(authorization: string | undefined, ip: string, now: number = Date.now()): Promise<AuthenticatedKey> {
    const token = bearerOf(authorization);
    const cached = this.cache.get(token);
    const verdict = cached && cached.expiresAt > now ? cached.verdict : await this.lookup(token, now);
    if ('refused' in verdict) throw new UnauthorizedError(verdict.refused);
    const key = verdict.key;
    if (!key.scopes.has(ApiKeyScope.Ingest)) throw new ForbiddenError('this API key lacks the "ingest" scope');
    if (!key.allowList.allows(ip)) throw new ForbiddenError(`this API key may not be used from ${ip}`);
    return key;
  }

  /** Forgets every verdict (tests, or an operator who must cut a key at once). */
  clear(): void {
    this.cache.clear();
  }

  private lookup(token: string, now: number): Promise<Verdict> {
    // Malformed keys are refused without a query and without taking cache space.
    const prefix = apiKeyPrefixOf(token);
    if (!prefix) return Promise.resolve({ refused: 'malformed API key: expected "Authorization: Bearer fwk_…"' });
    const running = this.inFlight.get(token);
    if (running) return running;
    const promise = this.verify(token, prefix)
      .then((verdict) => {
        this.remember(token, verdict, now);
        return verdict;
      })
      .finally(() => this.inFlight.delete(token));
    this.inFlight.set(token, promise);
    return promise;
  }

  private async verify(token: string, prefix: string): Promise<Verdict> {
    // Errors (database away) propagate as UnavailableError → 503, and are not cached.
    const candidates = await this.keys.findActiveByPrefix(prefix);
    for (const record of candidates) {
      if (await verifyApiKey(token, record.keyHash)) {
        return { key: { id: record.id, scopes: new Set(record.scopes), allowList: new IpAllowList(record.allowedCidrs) } };
      }
    }
    return { refused: 'unknown or revoked API key' };
  }

  private remember(token: string, verdict: Verdict, now: number): void {
    if (this.ttlMs <= 0) return;
    if (this.cache.size >= MAX_CACHED_KEYS) {
      for (const [k, e] of this.cache) if (e.expiresAt <= now) this.cache.delete(k);
      // Still full: drop the oldest entries (Map keeps insertion order).
      for (const k of this.cache.keys()) {
        if (this.cache.size < MAX_CACHED_KEYS) break;
        this.cache.delete(k);
      }
    }
    this.cache.delete(token);
    this.cache.set(token, { verdict, expiresAt: now + this.ttlMs });
  }
}

function bearerOf(authorization: string | undefined): string {
  if (!authorization) throw new UnauthorizedError('missing API key: send "Authorization: Bearer <key>"');
  const m = /^Bearer[ \t]+(\S{1,512})[ \t]*$/i.exec(authorization);
  if (!m) throw new UnauthorizedError('malformed Authorization header: expected "Bearer <key>"');
  return m[1];
}
