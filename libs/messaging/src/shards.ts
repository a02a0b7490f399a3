import * as crypto from 'node:crypto';
import {
  OBSERVATION_SHARDS,
  observationShardBindings,
  observationShardQueue,
  shardedRoutingKey,
  type MessageDefinition,
} from '@fleetwatch/contracts';
import { InvalidMessageError } from './errors';
import type { QueueSpec } from './topology';

/**
 * The shard of a target id: the first 28 bits of its MD5 (UTF-8), modulo
 * OBSERVATION_SHARDS. Postgres computes the same with
 * `('x' || substr(md5(target_id), 1, 7))::bit(28)::int % shards` (see `shardSqlExpression`),
 * so the aggregator can select one shard's rows in SQL.
 */
export function shardOf(key: string, shards: number = OBSERVATION_SHARDS): number {
  return Number.parseInt(md5Hex(key).slice(0, 7), 16) % shards;
}

type OneShotHash = (algorithm: string, data: string, outputEncoding: 'hex') => string;
/** Node ≥ 20.12's one-shot `crypto.hash` (no Hash object per call: ~3× cheaper on the ingest hot path), else createHash. */
const oneShotHash = (crypto as unknown as { hash?: OneShotHash }).hash;
const md5Hex: (key: string) => string = oneShotHash
  ? (key) => oneShotHash('md5', key, 'hex')
  : (key) => crypto.createHash('md5').update(key, 'utf8').digest('hex');

/** SQL for the shard of a text column, equal to `shardOf` (for a column holding the target id). */
export function shardSqlExpression(column: string, shards: number = OBSERVATION_SHARDS): string {
  return `((('x' || substr(md5(${column}), 1, 7))::bit(28)::int) % ${shards})`;
}

/**
 * The shard a sharded message goes to, or undefined for a definition that is not
 * sharded. Throws when its keys span shards (a publisher must split it first).
 */
export function shardOfMessage<D extends MessageDefinition>(definition: D, payload: unknown): number | undefined {
  if (!definition.shardKeys) return undefined;
  const keys = definition.shardKeys(payload as never);
  if (keys.length === 0)
    throw new InvalidMessageError(`${definition.type} names no target to shard by`, 'shard: no target');
  const shard = shardOf(keys[0]);
  for (let i = 1; i < keys.length; i++) {
    if (shardOf(keys[i]) !== shard)
      throw new InvalidMessageError(
        `${definition.type} spans several shards: split it per shard (splitByShard) before publishing`,
        'shard: mixed',
      );
  }
  return shard;
}

/** The routing key a message is published with: its definition's, suffixed by its shard when sharded. */
export function routingKeyOf(definition: MessageDefinition, shard: number | undefined): string {
  return shard === undefined ? definition.routingKey : shardedRoutingKey(definition.routingKey, shard);
}

/** Groups items by the shard of their key, keeping their order within each shard. */
export function splitByShard<T>(items: readonly T[], keyOf: (item: T) => string): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const item of items) {
    const shard = shardOf(keyOf(item));
    const group = out.get(shard);
    if (group) group.push(item);
    else out.set(shard, [item]);
  }
  return out;
}

/**
 * The queue of one observation shard: a work queue like the others, bound to its
 * suffix. One consumer at a time is the aggregator's shard lock's doing (not
 * `x-single-active-consumer`, which would refuse basic.get to operators and tools).
 */
export function observationShardQueueSpec(shard: number): QueueSpec {
  return { name: observationShardQueue(shard), bindings: observationShardBindings(shard) };
}

/** Every shard queue. */
export function observationShardQueueSpecs(): QueueSpec[] {
  return Array.from({ length: OBSERVATION_SHARDS }, (_, i) => observationShardQueueSpec(i));
}
