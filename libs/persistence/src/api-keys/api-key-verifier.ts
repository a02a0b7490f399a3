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
  /** Verdicts kept (least recently used go first). */
  maxCachedKeys?: number;
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
 * share one lookup. Database errors propagate (UnavailableError) and are not cached.
 */
export class ApiKeyVerifier {
  private readonly verdicts: LRUCache<string, Verdict>;
  private readonly legacyPrefixes: RefreshingSet;
  /** Keys forgotten (revoked here) within a verdict's lifetime, by id: until when a verdict naming one is not used. */
  private readonly forgotten = new Map<string, number>();
  private readonly now: () => number;
  private readonly ttlMs: number;

  constructor(
    private readonly keys: ApiKeyLookup,
    options: ApiKeyVerifierOptions,
  ) {
    const now = options.now ?? (() => performance.now());
    this.now = now;
    this.ttlMs = Math.max(1, options.cacheTtlMs);
    this.verdicts = new LRUCache<string, Verdict>({
      max: options.maxCachedKeys ?? 10_000,
      // lru-cache reads 0 as "forever": 1 ms still shares concurrent lookups.
      ttl: Math.max(1, options.cacheTtlMs),
      perf: { now },
      // Read the clock on every check (cheap), not a value cached for a timer tick.
      ttlResolution: 0,
      fetchMethod: (token) => this.lookup(token),
    });
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
    let verdict = (await this.verdicts.fetch(token)) as Verdict;
    if ('key' in verdict && this.wasForgotten(verdict.key.id)) {
      // A lookup in flight when the key was revoked here read the row before the revoke and cached it as good
      // after forget() ran (which sees no lookup in flight): looked up again, now.
      verdict = await this.lookup(token);
      this.verdicts.set(token, verdict);
    }
    if ('refused' in verdict) throw new UnauthorizedError(verdict.refused);
    return verdict.key;
  }

  /** Forgets cached verdicts for one key (revoked in this process: no need to wait for the TTL). */
  forget(keyId: string): void {
    for (const [token, verdict] of this.verdicts.entries()) {
      if ('key' in verdict && verdict.key.id === keyId) this.verdicts.delete(token);
    }
    const now = this.now();
    for (const [id, until] of this.forgotten) if (until <= now) this.forgotten.delete(id);
    this.forgotten.set(keyId, now + this.ttlMs);
  }

  private wasForgotten(keyId: string): boolean {
    if (this.forgotten.size === 0) return false;
    const until = this.forgotten.get(keyId);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.forgotten.delete(keyId);
    return false;
  }

  /** Forgets every verdict and the legacy prefixes (tests, or an operator who must cut a key at once). */
  clear(): void {
    this.verdicts.clear();
    this.legacyPrefixes.clear();
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
