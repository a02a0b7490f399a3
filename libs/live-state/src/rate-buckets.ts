import type { Redis } from 'ioredis';
import { LiveKeys } from './keys';

/** One token bucket to take from: its name (a key family member), size and refill rate. */
export interface BucketSpec {
  /** Bucket name, e.g. `login:addr:10.1.2.3` (stored under LiveKeys.rateBucket). */
  name: string;
  cost: number;
  ratePerSecond: number;
  burst: number;
}

export type BucketsDecision = { allowed: true } | { allowed: false; refusedBy: number; retryAfterSeconds: number };

// Token buckets shared by every replica: all buckets give their tokens, or none
// does (one atomic script). The same rule as libs/domain's takeTokens, computed
// where the state lives so two replicas never both spend the last token. Times
// are the server's (TIME), so replicas' clocks do not matter.
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local tokens = {}
for i = 1, n do
  local cost, rate, burst = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local b = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local have = tonumber(b[1]) or burst
  local at = tonumber(b[2]) or now
  have = math.min(burst, have + math.max(0, now - at) / 1000 * rate)
  tokens[i] = have
  if cost > have then
    local wait = cost > burst and math.ceil(burst / rate) or math.ceil((cost - have) / rate)
    return {0, i, math.max(1, wait)}
  end
end
for i = 1, n do
  local cost, rate, burst = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  redis.call('HSET', KEYS[i], 'tokens', tostring(tokens[i] - cost), 'at', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000)
end
return {1, 0, 0}
`;

// One bucket: takes at least `min` tokens and up to `max` (as many whole tokens as it holds), or none. For a
// caller that keeps what it took as a short lease of its own (status-ingest's per-key update limit under load).
const TAKE_UP_TO = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local min, max, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local have = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
have = math.min(burst, have + math.max(0, now - at) / 1000 * rate)
if min > have then
  local wait = min > burst and math.ceil(burst / rate) or math.ceil((min - have) / rate)
  return {0, math.max(1, wait)}
end
local granted = math.max(min, math.min(max, math.floor(have)))
redis.call('HSET', KEYS[1], 'tokens', tostring(have - granted), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {1, granted}
`;

type TakeCommand = (numKeys: number, ...keysAndArgs: string[]) => Promise<[number, number, number]>;
type TakeUpToCommand = (numKeys: number, ...keysAndArgs: string[]) => Promise<[number, number]>;
const COMMAND = 'fleetwatchRateTake';
const COMMAND_UP_TO = 'fleetwatchRateTakeUpTo';

export type UpToDecision = { allowed: true; granted: number } | { allowed: false; retryAfterSeconds: number };

/** Token buckets in Redis, for limits that must hold across replicas (login attempts, ingest keys and pings). */
export class RateBuckets {
  private readonly run: TakeCommand;
  private readonly runUpTo: TakeUpToCommand;

  constructor(redis: Redis) {
    // A defined command is sent by its SHA (EVALSHA; the body only after NOSCRIPT): this is on ingest's hot path.
    const commands = redis as unknown as Record<string, TakeCommand | undefined>;
    if (typeof commands[COMMAND] !== 'function') redis.defineCommand(COMMAND, { lua: TAKE });
    this.run = (commands[COMMAND] as TakeCommand).bind(redis);
    if (typeof commands[COMMAND_UP_TO] !== 'function') redis.defineCommand(COMMAND_UP_TO, { lua: TAKE_UP_TO });
    this.runUpTo = (commands[COMMAND_UP_TO] as unknown as TakeUpToCommand).bind(redis);
  }

  /**
   * Takes from one bucket at least `min` tokens and up to `max` (`cost` is ignored): as many whole tokens as
   * it holds, within those bounds; or none, with when to retry, when it holds fewer than `min`.
   */
  async takeUpTo(bucket: BucketSpec, min: number, max: number): Promise<UpToDecision> {
    const [ok, value] = await this.runUpTo(
      1,
      LiveKeys.rateBucket(bucket.name),
      String(min),
      String(Math.max(min, max)),
      String(bucket.ratePerSecond),
      String(bucket.burst),
    );
    return ok === 1 ? { allowed: true, granted: value } : { allowed: false, retryAfterSeconds: value };
  }

  /** Takes from every bucket, or from none when one refuses (its index in `buckets` is `refusedBy`). */
  async take(buckets: readonly BucketSpec[]): Promise<BucketsDecision> {
    const keys = buckets.map((b) => LiveKeys.rateBucket(b.name));
    const args = buckets.flatMap((b) => [String(b.cost), String(b.ratePerSecond), String(b.burst)]);
    const [ok, index, wait] = await this.run(keys.length, ...keys, ...args);
    return ok === 1 ? { allowed: true } : { allowed: false, refusedBy: index - 1, retryAfterSeconds: wait };
  }
}
