import { ReplicaRegistry } from '@fleetwatch/live-state';
import { AdvisoryLockSet } from '@fleetwatch/persistence';
import type { Redis } from 'ioredis';
import type { AggregatorConfig } from '../config';

/** First key of the shard locks (`pg_try_advisory_lock(0x46570a00, shard)`): "FW" + 0x0a00. */
export const SHARD_LOCK_NAMESPACE = 0x46570a00;

/** The replica registry as ShardCoordinator uses it (ReplicaRegistry in Redis). */
export type ShardRegistry = Pick<ReplicaRegistry, 'beat' | 'leave'>;

/** The shard locks as ShardCoordinator uses them (AdvisoryLockSet in Postgres). */
export type ShardLocks = Pick<AdvisoryLockSet, 'held' | 'sessionPid' | 'tryLock' | 'unlock' | 'locked' | 'close'>;

/** What ShardCoordinator coordinates through (token SHARD_BACKENDS): the replica registry and the shard locks. */
export interface ShardBackends {
  readonly registry: ShardRegistry;
  /**
   * Opens the shard lock set; `onLost` is called once its connection (with every lock) is lost. Call it once:
   * each call opens a separate lock session. The caller owns the returned set and closes it (ShardCoordinator
   * opens it in its constructor and closes it in onModuleDestroy, which frees every lock still held).
   */
  openLocks(onLost: (reason: string) => void): ShardLocks;
}

/** The real ones: the aggregator's replica registry in Redis and the shard advisory locks in Postgres. */
export function shardBackends(redis: Redis, config: AggregatorConfig): ShardBackends {
  return {
    registry: new ReplicaRegistry(redis, 'aggregator', config.shards.replicaTtlMs),
    openLocks: (onLost) =>
      new AdvisoryLockSet({
        databaseUrl: config.lockDatabaseUrl,
        namespace: SHARD_LOCK_NAMESPACE,
        applicationName: 'fleetwatch aggregator shard locks',
        onLost,
      }),
  };
}
