import type { Redis } from 'ioredis';
import { LiveKeys } from './keys';

/**
 * Who is alive among a service's replicas (the aggregator's shard assignment): each
 * replica writes its heartbeat time into one sorted set; members not heard from
 * within `ttlMs` are dropped by whoever reads next. One round trip a beat.
 */
export class ReplicaRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly service: string,
    private readonly ttlMs: number,
  ) {}

  /** Records this replica's heartbeat and returns the live members (ids, sorted), this one included. */
  async beat(id: string, now: number = Date.now()): Promise<string[]> {
    const key = LiveKeys.replicas(this.service);
    const res = await this.redis
      .multi()
      .zadd(key, String(now), id)
      .zremrangebyscore(key, '-inf', String(now - this.ttlMs))
      .zrange(key, '0', '-1')
      .pexpire(key, String(this.ttlMs * 10))
      .exec();
    const err = res?.find(([e]) => e !== null)?.[0];
    if (err) throw err;
    const members = (res?.[2]?.[1] as string[] | undefined) ?? [];
    return [...members].sort();
  }

  /** Leaves at once (graceful shutdown), so the others take over without waiting for the TTL. */
  async leave(id: string): Promise<void> {
    await this.redis.zrem(LiveKeys.replicas(this.service), id);
  }
}
