import { rateLimitKeyOf } from '@fleetwatch/contracts';
import { takeTokens, UnavailableError, type Bucket } from '@fleetwatch/domain';
import type { RateBuckets } from '@fleetwatch/live-state';
import { LRUCache } from 'lru-cache';

/** Which limit refused an attempt. */
export type LoginLimitedBy = 'address' | 'username';

export type LoginLimitDecision =
  { allowed: true } | { allowed: false; retryAfterSeconds: number; limitedBy: LoginLimitedBy };

/**
 * Login attempts, limited per client address AND per username: both must allow an
 * attempt, so rotating usernames from one address and spreading one username over
 * many addresses are each bounded (each attempt costs an argon2 verification).
 * Async, so a shared (Redis) implementation can replace the in-memory one.
 */
export interface LoginRateLimiter {
  /** Takes one attempt from both budgets, or from neither when either refuses. */
  take(ip: string, username: string): Promise<LoginLimitDecision>;
  /**
   * Gives back an attempt that proved the password: the limits are against guessing, and a client that knows the
   * password (a script signing in often) must not be refused for it. Best effort: a refund that fails is dropped.
   */
  refund(ip: string, username: string): Promise<void>;
}

/** Nest token for the LoginRateLimiter in use. */
export const LOGIN_RATE_LIMITER = Symbol('LOGIN_RATE_LIMITER');

export interface LoginLimits {
  /** Attempts per username per minute (a bucket of this size, refilled over a minute). */
  perUsernamePerMinute: number;
  /** Attempts per client address per minute, whatever the username. */
  perAddressPerMinute: number;
  /** Buckets kept per kind; least recently used go first. */
  maxEntries?: number;
  now?: () => number;
}

/**
 * Token buckets (domain `takeTokens`) in this process's memory: each gateway
 * replica counts on its own (for a single process, e.g. tests; the gateway uses RedisLoginRateLimiter). Bounded: a bucket untouched for a minute is full
 * again, so dropping the least recently used changes little.
 */
export class InMemoryLoginRateLimiter implements LoginRateLimiter {
  private readonly byAddress: LRUCache<string, Bucket>;
  private readonly byUsername: LRUCache<string, Bucket>;
  private readonly now: () => number;

  constructor(private readonly limits: LoginLimits) {
    const max = limits.maxEntries ?? 100_000;
    this.byAddress = new LRUCache({ max });
    this.byUsername = new LRUCache({ max });
    this.now = limits.now ?? Date.now;
  }

  async take(clientAddress: string, username: string): Promise<LoginLimitDecision> {
    const ip = rateLimitKeyOf(clientAddress);
    const now = this.now();
    const user = username.toLowerCase();
    const address = takeTokens(
      this.byAddress.get(ip),
      1,
      now,
      this.limits.perAddressPerMinute / 60,
      this.limits.perAddressPerMinute,
    );
    const named = takeTokens(
      this.byUsername.get(user),
      1,
      now,
      this.limits.perUsernamePerMinute / 60,
      this.limits.perUsernamePerMinute,
    );
    if (!address.allowed || !named.allowed) {
      const wait = Math.max(
        address.allowed ? 0 : address.retryAfterSeconds,
        named.allowed ? 0 : named.retryAfterSeconds,
      );
      return { allowed: false, retryAfterSeconds: wait, limitedBy: address.allowed ? 'username' : 'address' };
    }
    this.byAddress.set(ip, address.bucket);
    this.byUsername.set(user, named.bucket);
    return { allowed: true };
  }

  async refund(clientAddress: string, username: string): Promise<void> {
    const giveBack = (cache: LRUCache<string, Bucket>, key: string, burst: number) => {
      const bucket = cache.get(key);
      if (bucket) cache.set(key, { ...bucket, tokens: Math.min(burst, bucket.tokens + 1) });
    };
    giveBack(this.byAddress, rateLimitKeyOf(clientAddress), this.limits.perAddressPerMinute);
    giveBack(this.byUsername, username.toLowerCase(), this.limits.perUsernamePerMinute);
  }

  get size(): number {
    return this.byAddress.size + this.byUsername.size;
  }
}

/**
 * The same limits in Redis (libs/live-state's RateBuckets), so they hold across
 * every gateway replica: both buckets give an attempt atomically, or neither does.
 * Redis away is an outage (503), never a free pass.
 */
export class RedisLoginRateLimiter implements LoginRateLimiter {
  constructor(
    private readonly buckets: RateBuckets,
    private readonly limits: LoginLimits,
  ) {}

  async take(clientAddress: string, username: string): Promise<LoginLimitDecision> {
    let decision;
    try {
      decision = await this.buckets.take(this.bucketsOf(clientAddress, username, 1));
    } catch (e) {
      throw new UnavailableError(`login rate limits unavailable (Redis): ${(e as Error).message}`, 5);
    }
    if (decision.allowed) return { allowed: true };
    return {
      allowed: false,
      retryAfterSeconds: decision.retryAfterSeconds,
      limitedBy: decision.refusedBy === 0 ? 'address' : 'username',
    };
  }

  async refund(clientAddress: string, username: string): Promise<void> {
    // A negative cost is always granted; the bucket is capped at its burst again when next read.
    await this.buckets.take(this.bucketsOf(clientAddress, username, -1)).catch(() => undefined);
  }

  private bucketsOf(clientAddress: string, username: string, cost: number) {
    const perAddress = this.limits.perAddressPerMinute;
    const perUsername = this.limits.perUsernamePerMinute;
    return [
      { name: `login:addr:${rateLimitKeyOf(clientAddress)}`, cost, ratePerSecond: perAddress / 60, burst: perAddress },
      { name: `login:user:${username.toLowerCase()}`, cost, ratePerSecond: perUsername / 60, burst: perUsername },
    ];
  }
}
