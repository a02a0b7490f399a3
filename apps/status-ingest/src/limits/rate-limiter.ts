import { takeTokens, type Bucket } from '@fleetwatch/domain';
import { LRUCache } from 'lru-cache';

export interface RateDecision {
  allowed: boolean;
  retryAfterSeconds: number;
}

/**
 * Token buckets per key (the rule is libs/domain `takeTokens`), in this
 * process's memory: each ingest replica limits on its own (SharedRateLimiter
 * keeps them as the fallback while Redis is away). At most `maxKeys` buckets are
 * kept, least recently used dropped first (keys may be client addresses, which
 * anyone can vary); full buckets are forgotten by `sweep()`.
 */
export class KeyedRateLimiter {
  private readonly buckets: LRUCache<string, Bucket>;

  constructor(
    readonly perSecond: number,
    readonly burst: number,
    maxKeys = 100_000,
  ) {
    // Bounded by maxSize (one per bucket), not max: with `max` lru-cache preallocates its arrays,
    // 2.7 MB per limiter for 100,000 keys before the first request (docs/benchmarks.md, memory at rest).
    this.buckets = new LRUCache<string, Bucket>({ maxSize: maxKeys, sizeCalculation: () => 1 });
  }

  take(key: string, cost: number, now: number = Date.now()): RateDecision {
    const decision = this.peek(key, cost, now);
    this.buckets.set(key, decision.bucket);
    return { allowed: decision.allowed, retryAfterSeconds: decision.retryAfterSeconds };
  }

  /** What taking would decide, and the bucket it would leave, without taking. */
  peek(key: string, cost: number, now: number = Date.now()): RateDecision & { bucket: Bucket } {
    return takeTokens(this.buckets.get(key), cost, now, this.perSecond, this.burst);
  }

  /** Whether `key` has a bucket: it took tokens lately and has not refilled (swept) since. */
  has(key: string): boolean {
    return this.buckets.has(key);
  }

  /** Stores a bucket `peek` returned. */
  commit(key: string, bucket: Bucket): void {
    this.buckets.set(key, bucket);
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

/**
 * Takes from every bucket or from none (the first refusal, by index, says when to
 * retry): the same all-or-nothing rule as the shared buckets in Redis.
 */
export function takeAllLocally(
  charges: ReadonlyArray<{ limiter: KeyedRateLimiter; key: string; cost: number }>,
  now: number = Date.now(),
): RateDecision & { refusedBy: number } {
  const peeks = charges.map((c) => c.limiter.peek(c.key, c.cost, now));
  const refusedBy = peeks.findIndex((p) => !p.allowed);
  if (refusedBy >= 0) return { allowed: false, retryAfterSeconds: peeks[refusedBy].retryAfterSeconds, refusedBy };
  charges.forEach((c, i) => c.limiter.commit(c.key, peeks[i].bucket));
  return { allowed: true, retryAfterSeconds: 0, refusedBy: -1 };
}
