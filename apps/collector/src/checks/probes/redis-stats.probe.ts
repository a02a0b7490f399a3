import { createHash } from 'node:crypto';
import type { CheckSpec } from '@fleetwatch/contracts';
import type { Redis } from 'ioredis';
import type { Probe, ProbeContext, ProbeOutcome } from '../probe';
import { connectTarget } from './connect-target';
import { redisClient } from './redis-client';
import { parseInfo } from './redis.probe';
import { elapsedMs, MetricBag } from './service-metrics';

// redis-stats (issue 16): one connection per run to the address the target policy allowed,
// PING, INFO, then the check's named keys read by their type:
//  - a hash is counted by value: `clients` = {c1: active, c2: paused, …} becomes
//    redis_key_hash_values{key="clients", value="active"} 12 … — read with HSCAN pages up to
//    `maxFields` (then `redis_key_truncated` 1), each page counted and dropped, the `maxValues`
//    most common values one by one and the rest summed in redis_key_hash_other. Memory is
//    bounded whatever the hash holds: counts of at most MAX_TRACKED_VALUES distinct values of at
//    most MAX_VALUE_LENGTH characters; longer values are summed in other and counted in
//    redis_key_hash_long_values (result `longValueKeys`), values first seen past that many
//    distinct ones too (result `valueCappedKeys`);
//  - a set, sorted set, list or stream by its length (redis_key_length);
//  - a string as a number (redis_key_value) when it reads as one, else its length.
// Nothing is written; every read is bounded (HSCAN pages, STRLEN before GET), and so is every reply as it arrives:
// ioredis holds a reply until its last byte, so a server (or a hash of huge values) answering INFO or an HSCAN page
// with a bulk string of gigabytes grew the collector by whatever it sent before the timeout. Each reply is cut at
// MAX_REPLY_BYTES (the connection dropped, the check DOWN saying which command's reply was too large).

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
/**
 * Bytes one reply may take (each command is awaited before the next is sent, so each reply is bounded on its own).
 * INFO is a few kB; an HSCAN page of HSCAN_PAGE fields is under 1 MiB unless the fields average over 8 kB together.
 */
export const MAX_REPLY_BYTES = 8 * 1024 * 1024;

/** Called before each command is sent: its reply is bounded from there (redisClient's nextReply). */
type BeforeReply = (command: string) => void;
/** No new bound per reply: what the connection has read so far goes on counting. */
const keepCounting: BeforeReply = () => undefined;

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

/**
 * Values longer than this are not counted by name (a label value holds 256 characters): they
 * are summed in `other` and counted as long.
 */
export const MAX_VALUE_LENGTH = 256;
/**
 * Distinct values a hash read keeps counts of (each at most MAX_VALUE_LENGTH characters): the
 * most common `maxValues` of them are reported.
 */
export const MAX_TRACKED_VALUES = 1000;
/** Field names up to this length are kept as they are to tell HSCAN's repeats apart; longer ones by a digest. */
const MAX_PLAIN_FIELD = 40;

/**
 * Counts of a hash's values, fed one value at a time (an HSCAN page is counted and dropped):
 * at most MAX_TRACKED_VALUES distinct values of at most MAX_VALUE_LENGTH characters are held,
 * whatever the hash holds. Values first seen once that many are held, and long values, are
 * summed in `other`; `capped` says the first happened (a common value seen late may be in `other`).
 */
export class ValueCounter {
  private readonly tracked = new Map<string, number>();
  /** Values counted in no tracked entry (untracked distinct or long). */
  private untracked = 0;
  /** Values longer than MAX_VALUE_LENGTH. */
  long = 0;
  /** Whether a value was left untracked because MAX_TRACKED_VALUES were held. */
  capped = false;

  constructor(private readonly maxTracked = MAX_TRACKED_VALUES) {}

  add(value: string): void {
    if (value.length > MAX_VALUE_LENGTH) {
      this.long++;
      this.untracked++;
      return;
    }
    const n = this.tracked.get(value);
    if (n !== undefined) this.tracked.set(value, n + 1);
    else if (this.tracked.size < this.maxTracked) this.tracked.set(value, 1);
    else {
      this.capped = true;
      this.untracked++;
    }
  }

  /** The `maxValues` most common values (ties: first seen first) and the sum of all the rest. */
  top(maxValues: number): { counts: Map<string, number>; other: number } {
    const sorted = [...this.tracked].sort((a, b) => b[1] - a[1]);
    const counts = new Map(sorted.slice(0, maxValues));
    const other = sorted.slice(maxValues).reduce((sum, [, n]) => sum + n, this.untracked);
    return { counts, other };
  }
}

/** Counts of values: the `maxValues` most common by name, the rest (and long values) together. */
export function countValues(
  values: Iterable<string>,
  maxValues: number,
  maxTracked = MAX_TRACKED_VALUES,
): { counts: Map<string, number>; other: number; long: number; capped: boolean } {
  const counter = new ValueCounter(maxTracked);
  for (const v of values) counter.add(v);
  return { ...counter.top(maxValues), long: counter.long, capped: counter.capped };
}

/** What a key read found worth saying in the result. */
export interface KeyReadNotes {
  /** A hash read stopped at its field cap. */
  truncated: boolean;
  /** A hash held values longer than MAX_VALUE_LENGTH (summed in redis_key_hash_other). */
  longValues: boolean;
  /** A hash held more than MAX_TRACKED_VALUES distinct values (later ones summed in redis_key_hash_other). */
  valuesCapped: boolean;
}
const NO_NOTES: KeyReadNotes = { truncated: false, longValues: false, valuesCapped: false };

/** A field's identity for telling HSCAN's repeats apart, a bounded size whatever the field. */
function fieldId(field: string): string {
  return field.length <= MAX_PLAIN_FIELD ? `=${field}` : `#${createHash('sha1').update(field).digest('base64')}`;
}

async function readHash(redis: Redis, read: KeyRead, bag: MetricBag, reply: BeforeReply): Promise<KeyReadNotes> {
  const labels = { key: read.key };
  reply('HLEN');
  bag.add('redis_key_length', await redis.hlen(read.key), labels);
  // Each HSCAN page is counted and dropped: held are the counts (bounded, ValueCounter) and
  // one bounded identity per field read, since HSCAN may return a field twice (rehashing).
  const seen = new Set<string>();
  const counter = new ValueCounter();
  let cursor = '0';
  do {
    reply('HSCAN');
    const [next, flat] = await redis.hscan(read.key, cursor, 'COUNT', HSCAN_PAGE);
    for (let i = 0; i + 1 < flat.length && seen.size < read.maxFields; i += 2) {
      const id = fieldId(flat[i]);
      if (seen.has(id)) continue;
      seen.add(id);
      counter.add(flat[i + 1]);
    }
    cursor = next;
  } while (cursor !== '0' && seen.size < read.maxFields);
  const truncated = cursor !== '0';
  const { counts, other } = counter.top(read.maxValues);
  for (const [value, n] of counts) bag.add('redis_key_hash_values', n, { key: read.key, value });
  if (other > 0) bag.add('redis_key_hash_other', other, labels);
  if (counter.long > 0) bag.add('redis_key_hash_long_values', counter.long, labels);
  bag.add('redis_key_fields_read', seen.size, labels);
  bag.add('redis_key_truncated', truncated ? 1 : 0, labels);
  return { truncated, longValues: counter.long > 0, valuesCapped: counter.capped };
}

async function readString(redis: Redis, key: string, bag: MetricBag, reply: BeforeReply): Promise<void> {
  reply('STRLEN');
  const length = await redis.strlen(key);
  if (length <= MAX_NUMBER_TEXT) {
    reply('GET');
    const text = await redis.get(key);
    const n = text === null || text.trim() === '' ? NaN : Number(text);
    if (Number.isFinite(n)) {
      bag.add('redis_key_value', n, { key });
      return;
    }
  }
  bag.add('redis_key_length', length, { key });
}

/** One named key, read by its type. Returns what a hash read has to say (its field cap, long or too many values). */
export async function readKey(
  redis: Redis,
  read: KeyRead,
  bag: MetricBag,
  reply: BeforeReply = keepCounting,
): Promise<KeyReadNotes> {
  if (read.type === 'auto') reply('TYPE');
  const type = read.type === 'auto' ? await redis.type(read.key) : read.type;
  const labels = { key: read.key };
  if (type === 'none') {
    bag.add('redis_key_exists', 0, labels);
    return NO_NOTES;
  }
  bag.add('redis_key_exists', 1, labels);
  switch (type) {
    case 'hash':
      return readHash(redis, read, bag, reply);
    case 'set':
      reply('SCARD');
      bag.add('redis_key_length', await redis.scard(read.key), labels);
      return NO_NOTES;
    case 'zset':
      reply('ZCARD');
      bag.add('redis_key_length', await redis.zcard(read.key), labels);
      return NO_NOTES;
    case 'list':
      reply('LLEN');
      bag.add('redis_key_length', await redis.llen(read.key), labels);
      return NO_NOTES;
    case 'stream':
      reply('XLEN');
      bag.add('redis_key_length', await redis.xlen(read.key), labels);
      return NO_NOTES;
    case 'string':
      await readString(redis, read.key, bag, reply);
      return NO_NOTES;
    default:
      return NO_NOTES;
  }
}

function failed(failureReason: string, latencyMs: number | null = null): ProbeOutcome {
  return { ok: false, latencyMs, failureReason, facts: {}, metrics: [] };
}

export const redisStatsProbe: Probe<'redis-stats'> = async (check, ctx: ProbeContext): Promise<ProbeOutcome> => {
  const target = await connectTarget(check, ctx, undefined);
  if ('failure' in target) return failed(target.failure);
  const { signal, reasonOf } = target;

  const { redis, open, why, unwire, nextReply, exceeded } = redisClient(
    check,
    target,
    ctx.timeoutMs,
    true,
    MAX_REPLY_BYTES,
  );

  const started = performance.now();
  try {
    await open();
    nextReply('PING');
    const pong: string = await redis.ping();
    const latencyMs = elapsedMs(started);
    if (pong !== 'PONG') return failed(`PING answered "${pong.slice(0, 64)}", not PONG`, latencyMs);
    const bag = new MetricBag();
    bag.add('redis_up', 1);
    nextReply('INFO');
    const info = parseInfo(await redis.info());
    infoMetrics(info, bag);
    const truncatedKeys: string[] = [];
    let longValueKeys = 0;
    let valueCappedKeys = 0;
    const keyErrors: string[] = [];
    for (const read of check.keys) {
      try {
        const notes = await readKey(redis, read, bag, nextReply);
        if (notes.truncated) truncatedKeys.push(read.key);
        if (notes.longValues) longValueKeys++;
        if (notes.valuesCapped) valueCappedKeys++;
      } catch (err) {
        // Cut off (the timeout, a reply over MAX_REPLY_BYTES): the connection is gone, no other key can be read.
        if (signal.aborted || exceeded()) throw err;
        // WRONGTYPE (the key is not what the check says), NOPERM (ACL): the others are still read.
        keyErrors.push(`${read.key}: ${reasonOf(err)}`.slice(0, 300));
      }
    }
    const result: Record<string, unknown> = {
      role: info.get('role'),
      redisVersion: info.get('redis_version'),
      keysRead: check.keys.length - keyErrors.length,
      truncatedKeys: truncatedKeys.length,
      // Hashes with values over MAX_VALUE_LENGTH characters, or over MAX_TRACKED_VALUES distinct
      // values: those were summed in redis_key_hash_other, not counted by name.
      longValueKeys,
      valueCappedKeys,
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
    return failed(reasonOf(exceeded() ?? why(err)));
  } finally {
    unwire();
    redis.disconnect();
  }
};
