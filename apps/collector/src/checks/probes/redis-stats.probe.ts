import type { CheckSpec } from '@fleetwatch/contracts';
import type { Redis } from 'ioredis';
import type { Probe, ProbeContext, ProbeOutcome } from '../probe';
import { connectTarget, redisClient } from './connect-target';
import { parseInfo } from './redis.probe';
import { elapsedMs, MetricBag } from './service-metrics';

// redis-stats (issue 16): one connection per run to the address the target policy allowed,
// PING, INFO, then the check's named keys read by their type:
//  - a hash is counted by value: `clients` = {c1: active, c2: paused, …} becomes
//    redis_key_hash_values{key="clients", value="active"} 12 … — read with HSCAN pages up to
//    `maxFields` (then `redis_key_truncated` 1), the first `maxValues` distinct values one by
//    one and the rest summed in redis_key_hash_other;
//  - a set, sorted set, list or stream by its length (redis_key_length);
//  - a string as a number (redis_key_value) when it reads as one, else its length.
// Nothing is written; every read is bounded (HSCAN pages, STRLEN before GET).

type RedisStatsCheck = Extract<CheckSpec, { type: 'redis-stats' }>;
type KeyRead = RedisStatsCheck['keys'][number];

/** INFO field → metric name. */
const INFO_METRICS: ReadonlyArray<[string, string]> = [
  ['uptime_in_seconds', 'redis_uptime_seconds'],
  ['connected_clients', 'redis_connected_clients'],
  ['blocked_clients', 'redis_blocked_clients'],
  ['maxclients', 'redis_maxclients'],
  ['used_memory', 'redis_used_memory_bytes'],
  ['used_memory_rss', 'redis_used_memory_rss_bytes'],
  ['used_memory_peak', 'redis_used_memory_peak_bytes'],
  ['maxmemory', 'redis_maxmemory_bytes'],
  ['mem_fragmentation_ratio', 'redis_mem_fragmentation_ratio'],
  ['instantaneous_ops_per_sec', 'redis_ops_per_sec'],
  ['total_commands_processed', 'redis_commands_processed_total'],
  ['total_connections_received', 'redis_connections_received_total'],
  ['rejected_connections', 'redis_rejected_connections_total'],
  ['evicted_keys', 'redis_evicted_keys_total'],
  ['expired_keys', 'redis_expired_keys_total'],
  ['keyspace_hits', 'redis_keyspace_hits_total'],
  ['keyspace_misses', 'redis_keyspace_misses_total'],
  ['connected_slaves', 'redis_connected_replicas'],
  ['master_last_io_seconds_ago', 'redis_master_last_io_seconds_ago'],
];
/** Keyspace databases reported at most (a server may have thousands configured, few in use). */
const MAX_KEYSPACE_DBS = 64;
/** Fields per HSCAN page asked for. */
const HSCAN_PAGE = 1000;
/** Strings longer than this are not fetched: they are not a number. */
const MAX_NUMBER_TEXT = 64;

/** INFO as metrics: the fields above, `redis_up`, and per database `redis_keyspace_keys{db}` / `_expires`. */
export function infoMetrics(info: Map<string, string>, bag: MetricBag): void {
  for (const [field, name] of INFO_METRICS) {
    const raw = info.get(field);
    if (raw !== undefined && raw !== '') bag.add(name, Number(raw));
  }
  let dbs = 0;
  for (const [field, raw] of info) {
    const m = /^db(\d+)$/.exec(field);
    if (!m || dbs >= MAX_KEYSPACE_DBS) continue;
    dbs++;
    const parts = new Map(raw.split(',').map((kv) => kv.split('=') as [string, string]));
    bag.add('redis_keyspace_keys', Number(parts.get('keys')), { db: m[1] });
    bag.add('redis_keyspace_expires', Number(parts.get('expires')), { db: m[1] });
  }
}

/** Counts of a hash's values: the first `maxValues` distinct ones by name, the rest together. */
export function countValues(
  values: Iterable<string>,
  maxValues: number,
): { counts: Map<string, number>; other: number } {
  const counts = new Map<string, number>();
  let other = 0;
  for (const v of values) {
    const n = counts.get(v);
    if (n !== undefined) counts.set(v, n + 1);
    else if (counts.size < maxValues) counts.set(v, 1);
    else other++;
  }
  return { counts, other };
}

async function readHash(redis: Redis, read: KeyRead, bag: MetricBag): Promise<boolean> {
  const labels = { key: read.key };
  bag.add('redis_key_length', await redis.hlen(read.key), labels);
  // HSCAN may return a field twice (rehashing): values are kept per field.
  const seen = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(read.key, cursor, 'COUNT', HSCAN_PAGE);
    for (let i = 0; i + 1 < flat.length && seen.size < read.maxFields; i += 2) seen.set(flat[i], flat[i + 1]);
    cursor = next;
  } while (cursor !== '0' && seen.size < read.maxFields);
  const truncated = cursor !== '0';
  const { counts, other } = countValues(seen.values(), read.maxValues);
  for (const [value, n] of counts) bag.add('redis_key_hash_values', n, { key: read.key, value });
  if (other > 0) bag.add('redis_key_hash_other', other, labels);
  bag.add('redis_key_fields_read', seen.size, labels);
  bag.add('redis_key_truncated', truncated ? 1 : 0, labels);
  return truncated;
}

async function readString(redis: Redis, key: string, bag: MetricBag): Promise<void> {
  const length = await redis.strlen(key);
  if (length <= MAX_NUMBER_TEXT) {
    const text = await redis.get(key);
    const n = text === null || text.trim() === '' ? NaN : Number(text);
    if (Number.isFinite(n)) {
      bag.add('redis_key_value', n, { key });
      return;
    }
  }
  bag.add('redis_key_length', length, { key });
}

/** One named key, read by its type. Returns whether a hash read stopped at its field cap. */
export async function readKey(redis: Redis, read: KeyRead, bag: MetricBag): Promise<boolean> {
  const type = read.type === 'auto' ? await redis.type(read.key) : read.type;
  const labels = { key: read.key };
  if (type === 'none') {
    bag.add('redis_key_exists', 0, labels);
    return false;
  }
  bag.add('redis_key_exists', 1, labels);
  switch (type) {
    case 'hash':
      return readHash(redis, read, bag);
    case 'set':
      bag.add('redis_key_length', await redis.scard(read.key), labels);
      return false;
    case 'zset':
      bag.add('redis_key_length', await redis.zcard(read.key), labels);
      return false;
    case 'list':
      bag.add('redis_key_length', await redis.llen(read.key), labels);
      return false;
    case 'stream':
      bag.add('redis_key_length', await redis.xlen(read.key), labels);
      return false;
    case 'string':
      await readString(redis, read.key, bag);
      return false;
    default:
      return false;
  }
}

function failed(failureReason: string, latencyMs: number | null = null): ProbeOutcome {
  return { ok: false, latencyMs, failureReason, facts: {}, metrics: [] };
}

export const redisStatsProbe: Probe<'redis-stats'> = async (check, ctx: ProbeContext): Promise<ProbeOutcome> => {
  const target = await connectTarget(check, ctx, undefined);
  if ('failure' in target) return failed(target.failure);
  const { signal, reasonOf } = target;

  const { redis, why, unwire } = redisClient(check, target, ctx.timeoutMs);

  const started = performance.now();
  try {
    await redis.connect();
    const pong: string = await redis.ping();
    const latencyMs = elapsedMs(started);
    if (pong !== 'PONG') return failed(`PING answered "${pong.slice(0, 64)}", not PONG`, latencyMs);
    const bag = new MetricBag();
    bag.add('redis_up', 1);
    const info = parseInfo(await redis.info());
    infoMetrics(info, bag);
    const truncatedKeys: string[] = [];
    const keyErrors: string[] = [];
    for (const read of check.keys) {
      try {
        if (await readKey(redis, read, bag)) truncatedKeys.push(read.key);
      } catch (err) {
        if (signal.aborted) throw err;
        // WRONGTYPE (the key is not what the check says), NOPERM (ACL): the others are still read.
        keyErrors.push(`${read.key}: ${reasonOf(err)}`.slice(0, 300));
      }
    }
    const result: Record<string, unknown> = {
      role: info.get('role'),
      redisVersion: info.get('redis_version'),
      keysRead: check.keys.length - keyErrors.length,
      truncatedKeys: truncatedKeys.length,
      metricsDropped: bag.dropped,
    };
    if (keyErrors.length) result['keyErrors'] = keyErrors.slice(0, 8);
    const outcome: ProbeOutcome = {
      ok: keyErrors.length === 0,
      latencyMs,
      facts: { result, metrics: bag.samples() },
      metrics: bag.toArray(),
    };
    if (keyErrors.length) outcome.failureReason = `could not read ${keyErrors.length} key(s): ${keyErrors[0]}`;
    return outcome;
  } catch (err) {
    return failed(reasonOf(why(err)));
  } finally {
    unwire();
    redis.disconnect();
  }
};
