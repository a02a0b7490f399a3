import type { RateBuckets } from '@fleetwatch/live-state';
import type { Logger } from 'pino';
import { KeyedRateLimiter, takeAllLocally, type RateDecision } from './rate-limiter';
import type { SharedStateMetrics } from './shared-state.metrics';

/** One limit of ingest (a family of buckets, one per key), shared by replicas through Redis. */
export class SharedLimit {
  /** This replica's own buckets: the fallback while Redis is away (and a pre-check where a caller wants one). */
  readonly local: KeyedRateLimiter;

  constructor(
    /** Bucket family in Redis, e.g. `ingest:key` (bucket `rate:ingest:key:{id}`). */
    readonly name: string,
    readonly perSecond: number,
    readonly burst: number,
  ) {
    this.local = new KeyedRateLimiter(perSecond, burst);
  }
}

export interface LimitCharge {
  limit: SharedLimit;
  key: string;
  cost: number;
  /** Already charged to `limit.local` by the caller (a pre-check): not charged again when falling back. */
  chargedLocally?: boolean;
}

export type SharedRateDecision = RateDecision & { refusedBy: number };

/** After a failed call, Redis is left alone (local buckets decide) for this long. */
const BACKOFF_MS = 1000;

/**
 * Token buckets shared by every ingest replica (libs/live-state RateBuckets: one
 * atomic script, one round trip, taking from every bucket of a call or from none).
 *
 * Fails open: while Redis is unreachable (not connected, an error, or no answer
 * within the connection's command timeout) the replica limits with its own
 * in-process buckets — the old per-replica behaviour, so a client may get up to the
 * budget from each replica — counts the fallback, logs a warning once per outage,
 * and leaves Redis alone for a second before trying again. A monitoring ingest
 * keeps taking pushes rather than refusing them for want of a counter.
 */
export class SharedRateLimiter {
  private backoffUntil = 0;
  private degraded = false;

  constructor(
    private readonly buckets: RateBuckets,
    private readonly redisReady: () => boolean,
    private readonly metrics: SharedStateMetrics,
    private readonly logger: Pick<Logger, 'warn' | 'info'>,
  ) {}

  async take(charges: readonly LimitCharge[], now: number = Date.now()): Promise<SharedRateDecision> {
    if (now >= this.backoffUntil) {
      if (!this.redisReady()) this.unavailable(now, 'not connected');
      else {
        try {
          const d = await this.buckets.take(
            charges.map((c) => ({
              name: `${c.limit.name}:${c.key}`,
              cost: c.cost,
              ratePerSecond: c.limit.perSecond,
              burst: c.limit.burst,
            })),
          );
          this.recovered();
          return d.allowed
            ? { allowed: true, retryAfterSeconds: 0, refusedBy: -1 }
            : { allowed: false, retryAfterSeconds: d.retryAfterSeconds, refusedBy: d.refusedBy };
        } catch (e) {
          this.unavailable(now, (e as Error).message);
        }
      }
    }
    this.metrics.countFallback('rate_limit');
    return takeAllLocally(
      charges.map((c) => ({ limiter: c.limit.local, key: c.key, cost: c.chargedLocally ? 0 : c.cost })),
      now,
    );
  }

  /**
   * Takes at least `min` and up to `max` tokens of one limit's bucket for `key` (RateBuckets.takeUpTo): how many
   * were granted, or when to retry. Falls back as `take` does: while Redis is away, `min` from the local bucket.
   */
  async takeUpTo(
    limit: SharedLimit,
    key: string,
    min: number,
    max: number,
    now: number = Date.now(),
  ): Promise<RateDecision & { granted: number }> {
    if (now >= this.backoffUntil) {
      if (!this.redisReady()) this.unavailable(now, 'not connected');
      else {
        try {
          const d = await this.buckets.takeUpTo(
            { name: `${limit.name}:${key}`, cost: min, ratePerSecond: limit.perSecond, burst: limit.burst },
            min,
            max,
          );
          this.recovered();
          return d.allowed
            ? { allowed: true, retryAfterSeconds: 0, granted: d.granted }
            : { allowed: false, retryAfterSeconds: d.retryAfterSeconds, granted: 0 };
        } catch (e) {
          this.unavailable(now, (e as Error).message);
        }
      }
    }
    this.metrics.countFallback('rate_limit');
    const local = limit.local.take(key, min, now);
    return { ...local, granted: local.allowed ? min : 0 };
  }

  private recovered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.metrics.redisUp.set(1);
    this.logger.info('ingest rate limits are shared through Redis again');
  }

  private unavailable(now: number, error: string): void {
    this.backoffUntil = now + BACKOFF_MS;
    if (this.degraded) return;
    this.degraded = true;
    this.metrics.redisUp.set(0);
    this.logger.warn(
      { error },
      'Redis unavailable for ingest rate limits; limiting with this replica`s own buckets until it is back',
    );
  }

  /** Forgets refilled local buckets. */
  sweep(limits: readonly SharedLimit[], now: number = Date.now()): void {
    for (const l of limits) l.local.sweep(now);
  }
}
