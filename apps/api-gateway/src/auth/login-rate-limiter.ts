import { Bucket, takeTokens } from '@fleetwatch/domain';

/**
 * Login attempts per client address and username (SPEC §11): a token bucket of
 * `perMinute` attempts refilled over a minute (domain `takeTokens`). In memory, so
 * each gateway replica counts on its own; the bucket map is bounded.
 */
export class LoginRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perMinute: number,
    private readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one attempt; returns the seconds to wait when refused, else 0. */
  take(ip: string, username: string): number {
    const key = `${ip}\u0000${username.toLowerCase()}`;
    const now = this.now();
    const decision = takeTokens(this.buckets.get(key), 1, now, this.perMinute / 60, this.perMinute);
    this.buckets.delete(key); // re-insert: Map order is then least recently used first
    this.buckets.set(key, decision.bucket);
    if (this.buckets.size > this.maxEntries) this.evict(now);
    return decision.allowed ? 0 : decision.retryAfterSeconds;
  }

  get size(): number {
    return this.buckets.size;
  }

  private evict(now: number): void {
    // Buckets untouched for a minute are full again: forgetting them changes nothing.
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.updatedAt < 60_000 && this.buckets.size <= this.maxEntries) break;
      this.buckets.delete(key);
    }
  }
}
