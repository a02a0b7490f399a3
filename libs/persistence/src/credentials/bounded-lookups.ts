import { UnavailableError } from '@fleetwatch/domain';
import type { ApiKeyLookup } from '../api-keys/api-key-verifier';
import type { PingTokenLookup } from '../heartbeat-monitors/ping-token-resolver';
import type { ActiveSession } from '../sessions/sessions.repository';

/** What a session check reads (SessionsRepository's). */
export interface SessionLookup {
  findActiveByTokenHash(tokenHash: string): Promise<ActiveSession | null>;
}

export interface KeyLookupLimits {
  /** A request waits this long for its lookup, then gets 503 + Retry-After (the lookup runs on, for later ones). */
  timeoutMs: number;
  /** Lookups under way at once, API keys and ping tokens together; beyond: 503 + Retry-After at once. */
  maxConcurrent: number;
  retryAfterSeconds: number;
}

/**
 * The database lookups of credentials (API keys, ping tokens, session tokens), bounded: at status-ingest and at the
 * gateway. Cache misses only where there is a cache (the verifier and resolver cache verdicts; sessions are read every
 * request), but when Postgres hangs each one waits for the query timeout (35 s by default): a request with an uncached
 * key would wait that long for its 503, and a storm of them — forged well-formed keys or tokens cost a query each —
 * would queue without bound for the pool's connections, ahead of every other query of the service. Here a request waits `timeoutMs` at most; a lookup runs on until its query
 * settles and a request for the same key or token meanwhile joins it (no second query); and at most `maxConcurrent`
 * run at once — a request that would start one more gets 503 + Retry-After at once. Cached keys never come here.
 */
export class BoundedLookups {
  /** Queries under way by what they look up: kept until the query settles, not until a request stops waiting. */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** Keys whose request gave up on its query while it ran. */
  private readonly gaveUp = new Set<string>();
  /**
   * Answers of such queries, kept for the retry the 503 asked for (Retry-After): with a database slower than the
   * timeout but answering, each retry would start another query that outlasts the timeout again — the key refused
   * for as long as the database stays slow. Taken by the first request after, kept at most the Retry-After.
   */
  private readonly late = new Map<string, { answer: Promise<unknown>; until: number }>();
  /** Queries under way, shared or forgotten (`forget`): what maxConcurrent bounds. */
  private running = 0;

  constructor(private readonly limits: KeyLookupLimits) {}

  /** Lookups under way now. */
  get size(): number {
    return this.running;
  }

  /**
   * Stops sharing the queries under way, and keeping the answers, of keys starting with `prefix` (`ping:` when checks
   * changed): a request after the change must read the rows after it — a query started before it, or an answer kept
   * from before it, would bring back a monitor just deleted and have it cached again. The queries still count towards
   * maxConcurrent until they settle.
   */
  forget(prefix: string): void {
    for (const map of [this.inFlight, this.late])
      for (const key of map.keys()) if (key.startsWith(prefix)) map.delete(key);
    for (const key of this.gaveUp) if (key.startsWith(prefix)) this.gaveUp.delete(key);
  }

  run<T>(key: string, lookup: () => Promise<T>): Promise<T> {
    const kept = this.late.get(key);
    if (kept) {
      this.late.delete(key);
      if (kept.until > Date.now()) return kept.answer as Promise<T>;
    }
    let pending = this.inFlight.get(key) as Promise<T> | undefined;
    if (!pending) {
      if (this.running >= this.limits.maxConcurrent)
        return Promise.reject(
          new UnavailableError(
            `credential store busy: ${this.running} key lookups under way (the database is slow or away)`,
            this.limits.retryAfterSeconds,
          ),
        );
      const started = (async () => lookup())();
      pending = started;
      this.running++;
      this.inFlight.set(key, started);
      const settled = (answered: boolean) => {
        this.running--;
        // Forgotten meanwhile (or a later query of the key since): nothing to share or keep.
        if (this.inFlight.get(key) !== started) return;
        this.inFlight.delete(key);
        // A failed query is not kept: the retry starts another.
        if (!this.gaveUp.delete(key) || !answered) return;
        const now = Date.now();
        for (const [k, entry] of this.late) if (entry.until <= now) this.late.delete(k);
        // Bounded as the queries are: at most maxConcurrent kept (the oldest go first).
        if (this.late.size >= this.limits.maxConcurrent) {
          const oldest = this.late.keys().next();
          if (!oldest.done) this.late.delete(oldest.value);
        }
        this.late.set(key, { answer: started, until: now + this.limits.retryAfterSeconds * 1000 });
      };
      started.then(
        () => settled(true),
        () => settled(false),
      );
    }
    return this.waitFor(pending, () => {
      if (this.inFlight.get(key) === pending) this.gaveUp.add(key);
    });
  }

  /**
   * ApiKeysRepository's reads, the per-key one bounded. Calls the repository's methods as they are then (tests spy on
   * them). The list of legacy-form prefixes is read as before, unbounded: its holder (RefreshingSet) replays a failed
   * load for 10 s, so a load cut by the timeout or the cap refused every legacy-form key for that long, again and again
   * while the database stayed slower than the timeout.
   */
  apiKeys(keys: ApiKeyLookup): ApiKeyLookup {
    return {
      findActiveByPrefix: (prefix) => this.run(`key:${prefix}`, () => keys.findActiveByPrefix(prefix)),
      listActiveLegacyPrefixes: () => keys.listActiveLegacyPrefixes(),
    };
  }

  /** SessionsRepository's read of an active session by its token's hash, bounded. */
  sessions(sessions: SessionLookup): SessionLookup {
    return { findActiveByTokenHash: (hash) => this.run(`session:${hash}`, () => sessions.findActiveByTokenHash(hash)) };
  }

  /** HeartbeatMonitorsRepository's token reads, the per-token one bounded (the legacy list as API keys'). */
  pingTokens(monitors: PingTokenLookup): PingTokenLookup {
    return {
      findByTokenHash: (hash) => this.run(`ping:${hash}`, () => monitors.findByTokenHash(hash)),
      listTokenHashes: () => monitors.listTokenHashes(),
    };
  }

  private waitFor<T>(pending: Promise<T>, onGiveUp: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        onGiveUp();
        reject(
          new UnavailableError(
            `credential store did not answer within ${this.limits.timeoutMs} ms (the database is slow or away)`,
            this.limits.retryAfterSeconds,
          ),
        );
      }, this.limits.timeoutMs);
      pending.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }
}
