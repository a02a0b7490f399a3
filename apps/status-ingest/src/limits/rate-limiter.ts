import { takeTokens, type Bucket } from '@fleetwatch/domain';
import { LRUCache } from 'lru-cache';

export interface RateDecision {
  allowed: boolean;
  retryAfterSeconds: number;
}

/**
 * Token buckets per key (the rule is libs/domain `takeTokens`), in this
 * process's memory: each ingest replica limits on its own. At most `maxKeys`
 * buckets are kept, least recently used dropped first (keys may be client
 * addresses, which anyone can vary); full buckets are forgotten by `sweep()`.
 */
export class KeyedRateLimiter {
  private readonly buckets: LRUCache<string, Bucket>;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    maxKeys = 100_000,
  ) {
    this.buckets = new LRUCache<string, Bucket>({ max: maxKeys });
  }

  take(key: string, cost: number, now: number = Date.now()): RateDecision {
    const decision = takeTokens(this.buckets.get(key), cost, now, this.perSecond, this.burst);
    this.buckets.set(key, decision.bucket);
    return { allowed: decision.allowed, retryAfterSeconds: decision.retryAfterSeconds };
  }

  /** Drops buckets that have refilled completely. */
  sweep(now: number = Date.now()): void {
    for (const [key, bucket] of this.buckets.entries()) {
      if (bucket.tokens + ((now - bucket.updatedAt) / 1000) * this.perSecond >= this.burst) this.buckets.delete(key);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}
