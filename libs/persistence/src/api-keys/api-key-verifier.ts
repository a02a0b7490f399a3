import { UnauthorizedError } from '@fleetwatch/domain';
import { LRUCache } from 'lru-cache';
import { RefreshingSet } from '../credentials/refreshing-set';
import { apiKeyShapeOf, verifyApiKey } from './api-key-secret';
import type { ApiKeyRecord } from './api-keys.repository';

/** A verified key: its record without the hash (allow-list and any later per-key rule included). */
export type VerifiedApiKey = Omit<ApiKeyRecord, 'keyHash'>;

/** The part of ApiKeysRepository the verifier reads. */
export interface ApiKeyLookup {
  findActiveByPrefix(prefix: string): Promise<ApiKeyRecord[]>;
  listActiveLegacyPrefixes(): Promise<string[]>;
}

export interface ApiKeyVerifierOptions {
  /** How long a verdict (good or bad) is remembered; a revocation bites within this plus one lookup. */
  cacheTtlMs: number;
  /** Good verdicts kept (least recently used go first). */
  maxCachedKeys?: number;
  /** Refusals kept, apart from good verdicts so that they never push one out (least recently used go first). */
  maxCachedRefusals?: number;
  /** Legacy prefixes older than this are reloaded in the background. */
  legacyMaxAgeMs?: number;
  /** An unknown legacy prefix reloads them at most this often. */
  legacyMissRefreshMs?: number;
  now?: () => number;
}

const UNKNOWN = 'unknown or revoked API key';
const MALFORMED = 'malformed API key: expected "Authorization: Bearer fwk_…"';

type Verdict = { key: VerifiedApiKey } | { refused: string };

/**
 * The one API-key check, shared by status-ingest and the gateway. Costs no query for
 * a malformed key, a key whose checksum fails, or a pre-checksum (legacy) key whose
 * prefix is not among the active legacy prefixes (kept in memory, see RefreshingSet).
 * Other keys are looked up by prefix and their hash verified; verdicts, good and bad,
 * are cached for `cacheTtlMs`, and concurrent requests with the same uncached key
 * share one lookup. Good verdicts and refusals are kept in two caches, each with its
 * own bound: anyone can compute a key's CRC32 and send well-formed keys nobody issued,
 * and their refusals must not push the real keys' verdicts out (which would cost every
 * legitimate request a query again). Database errors propagate (UnavailableError) and
 * are not cached.
 */
export class ApiKeyVerifier {
  /** Good verdicts only: a refusal never takes one's place. */
  private readonly verdicts: LRUCache<string, { key: VerifiedApiKey }>;
  /** Refusals (their message), bounded apart. */
  private readonly refusals: LRUCache<string, string>;
  /** Lookups under way, by token: concurrent requests with the same uncached key share one. */
  private readonly inFlight = new Map<string, Promise<Verdict>>();
  /** Bumped by clear(): a lookup begun before it does not cache its verdict. */
  private generation = 0;
  /**
   * One set per lookup in flight, of the key ids forget() named while it ran: a lookup that found one of them may have
   * read its row before the revoke, so it caches nothing and looks again before anyone (its requests, or later ones
   * that joined it) gets the key. Per key, so revokes of other keys never make a lookup start over.
   */
  private readonly forgottenDuring = new Set<Set<string>>();
  private readonly legacyPrefixes: RefreshingSet;

  constructor(
    private readonly keys: ApiKeyLookup,
    options: ApiKeyVerifierOptions,
  ) {
    const now = options.now ?? (() => performance.now());
    const cache = {
      // lru-cache reads 0 as "forever"; concurrent lookups are shared whatever the TTL (see fetch).
      ttl: Math.max(1, options.cacheTtlMs),
      perf: { now },
      // Read the clock on every check (cheap), not a value cached for a timer tick.
      ttlResolution: 0,
    };
    this.verdicts = new LRUCache<string, { key: VerifiedApiKey }>({ ...cache, max: options.maxCachedKeys ?? 10_000 });
    this.refusals = new LRUCache<string, string>({ ...cache, max: options.maxCachedRefusals ?? 10_000 });
    this.legacyPrefixes = new RefreshingSet(() => keys.listActiveLegacyPrefixes(), {
      maxAgeMs: options.legacyMaxAgeMs ?? 60_000,
      missRefreshMs: options.legacyMissRefreshMs ?? 10_000,
      now,
    });
  }

  /** The key behind `token`; throws UnauthorizedError when it is malformed, unknown or revoked. */
  async verify(token: string): Promise<VerifiedApiKey> {
    const shape = apiKeyShapeOf(token);
    if (shape.kind === 'malformed') throw new UnauthorizedError(MALFORMED);
    if (shape.kind === 'bad-checksum')
      throw new UnauthorizedError('invalid API key (checksum mismatch): send the whole key as issued');
    if (shape.kind === 'legacy' && !(await this.legacyPrefixes.has(shape.prefix))) throw new UnauthorizedError(UNKNOWN);
    const verdict = this.cached(token) ?? (await this.fetch(token));
    if ('refused' in verdict) throw new UnauthorizedError(verdict.refused);
    return verdict.key;
  }

  /** Forgets cached verdicts for one key (revoked in this process: no need to wait for the TTL). */
  forget(keyId: string): void {
    for (const during of this.forgottenDuring) during.add(keyId);
    for (const [token, verdict] of this.verdicts.entries()) {
      if ('key' in verdict && verdict.key.id === keyId) this.verdicts.delete(token);
    }
  }

  /** Forgets every verdict and the legacy prefixes (tests, or an operator who must cut a key at once). */
  clear(): void {
    this.generation++;
    this.verdicts.clear();
    this.refusals.clear();
    this.inFlight.clear();
    this.legacyPrefixes.clear();
  }

  private cached(token: string): Verdict | undefined {
    const good = this.verdicts.get(token);
    if (good) return good;
    const refused = this.refusals.get(token);
    return refused === undefined ? undefined : { refused };
  }

  private remember(token: string, verdict: Verdict): void {
    if ('key' in verdict) {
      this.refusals.delete(token);
      this.verdicts.set(token, verdict);
    } else {
      this.verdicts.delete(token);
      this.refusals.set(token, verdict.refused);
    }
  }

  /** Looks `token` up, sharing a lookup under way; caches the verdict, never an error. */
  private fetch(token: string): Promise<Verdict> {
    const pending = this.inFlight.get(token);
    if (pending) return pending;
    const lookup = this.lookupAcrossForgets(token).finally(() => {
      if (this.inFlight.get(token) === lookup) this.inFlight.delete(token);
    });
    this.inFlight.set(token, lookup);
    return lookup;
  }

  /**
   * A lookup, cached unless clear() ran meanwhile; a key found that forget() named meanwhile is looked up again (a
   * key is revoked once, so this loops at most once more per revoke of that key).
   */
  private async lookupAcrossForgets(token: string): Promise<Verdict> {
    for (;;) {
      const generation = this.generation;
      const forgotten = new Set<string>();
      this.forgottenDuring.add(forgotten);
      let verdict: Verdict;
      try {
        verdict = await this.lookup(token);
      } finally {
        this.forgottenDuring.delete(forgotten);
      }
      // The key was revoked here meanwhile: this lookup may have read its row before the revoke.
      if ('key' in verdict && forgotten.has(verdict.key.id)) continue;
      if (generation === this.generation) this.remember(token, verdict);
      return verdict;
    }
  }

  private async lookup(token: string): Promise<Verdict> {
    const shape = apiKeyShapeOf(token);
    if (shape.kind !== 'checksummed' && shape.kind !== 'legacy') return { refused: MALFORMED };
    for (const record of await this.keys.findActiveByPrefix(shape.prefix)) {
      if (await verifyApiKey(token, record.keyHash)) {
        const { keyHash: _hash, ...key } = record;
        return { key };
      }
    }
    return { refused: UNKNOWN };
  }
}
