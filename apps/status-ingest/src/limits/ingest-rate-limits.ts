import { Inject, Injectable } from '@nestjs/common';
import { LIVE_STATE_REDIS, RateBuckets } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { IngestConfig } from '../config';
import { INGEST_CONFIG } from '../tokens';
import { LeasedLimit } from './leased-limit';
import type { RateDecision } from './rate-limiter';
import { SharedLimit, SharedRateLimiter } from './shared-rate-limiter';
import { SharedStateMetrics } from './shared-state.metrics';

/**
 * One shared limit, charged one key at a time; under load from tokens leased ahead (LeasedLimit), so a
 * request does not wait for a Redis round trip before its publish.
 */
export class SharedKeyedLimiter {
  private readonly leased: LeasedLimit;

  constructor(
    readonly limit: SharedLimit,
    shared: SharedRateLimiter,
  ) {
    this.leased = new LeasedLimit(limit, shared);
  }

  get perSecond(): number {
    return this.limit.perSecond;
  }

  get burst(): number {
    return this.limit.burst;
  }

  take(key: string, cost: number, now: number = Date.now()): Promise<RateDecision> {
    return this.leased.take(key, cost, now);
  }

  /** Forgets refilled buckets of the local fallback, and idle leases. */
  sweep(now: number = Date.now()): void {
    this.limit.local.sweep(now);
    this.leased.sweep(now);
  }
}

/**
 * status-ingest's rate limits, shared by every replica through Redis
 * (`rate:ingest:*` buckets): updates per API key (a batch costs its size), pings
 * per client address and per monitor.
 */
@Injectable()
export class IngestRateLimits {
  readonly shared: SharedRateLimiter;
  readonly updatesPerKey: SharedLimit;
  readonly pingsPerAddress: SharedLimit;
  readonly pingsPerMonitor: SharedLimit;
  /** Updates per API key. */
  readonly updates: SharedKeyedLimiter;

  constructor(
    @Inject(LIVE_STATE_REDIS) redis: Redis,
    metrics: SharedStateMetrics,
    @Inject(FLEETWATCH_LOGGER) logger: Logger,
    @Inject(INGEST_CONFIG) config: IngestConfig,
  ) {
    this.shared = new SharedRateLimiter(new RateBuckets(redis), () => redis.status === 'ready', metrics, logger);
    this.updatesPerKey = new SharedLimit('ingest:key', config.rateLimit.perSecond, config.rateLimit.burst);
    const { perIpPerMinute, perTokenPerMinute } = config.pingRateLimit;
    this.pingsPerAddress = new SharedLimit('ingest:ping-addr', perIpPerMinute / 60, perIpPerMinute);
    this.pingsPerMonitor = new SharedLimit('ingest:ping-monitor', perTokenPerMinute / 60, perTokenPerMinute);
    this.updates = new SharedKeyedLimiter(this.updatesPerKey, this.shared);
  }
}
