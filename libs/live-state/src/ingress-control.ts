import type { Redis } from 'ioredis';
import { LiveKeys } from './keys';

/**
 * The ingress state of a site's ingest replicas (pause / resume), as the last
 * command that set it left it. `stamp` is that command's ordering stamp
 * (libs/contracts ingress-order.ts): only a command with a newer stamp replaces it.
 */
export interface IngressControlRecord {
  paused: boolean;
  reason: string;
  operationId?: string;
  /** Auto-resume time of a pause (ISO); null: until `ingress.resume`. */
  until: string | null;
  stamp: string;
  /** Envelope id of the command. */
  commandId: string;
  /** When a replica stored it (ISO). */
  appliedAt: string;
}

export interface IngressControlWrite {
  /** True when this record replaced the stored one; false: the stored one is newer (or the same command). */
  applied: boolean;
  /** The record now in force. */
  current: IngressControlRecord;
}

// Compare-and-set by stamp, then tell every replica (PUBLISH) — one atomic script.
// Stamps are compared byte by byte, as isNewerIngressStamp compares them in JS
// (Lua's `<` on strings follows the server's locale, which is not byte order).
const APPLY = `
local function newer(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local stored = redis.call('HGET', KEYS[1], 'stamp')
if stored and not newer(ARGV[1], stored) then
  return {0, redis.call('HGET', KEYS[1], 'record')}
end
redis.call('HSET', KEYS[1], 'stamp', ARGV[1], 'record', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return {1, ARGV[2]}
`;

/**
 * Ingress pause/resume shared by every ingest replica: one key (`ingress:control`,
 * never expiring, so a stamp is never forgotten and an old command can never come
 * back), written by compare-and-set on the command's stamp, announced on the
 * `ingress:control` channel.
 */
export class IngressControlStore {
  /** Pub/sub channels ignore ioredis' keyPrefix, so the channel carries the prefix itself. */
  readonly channel: string;

  constructor(
    private readonly redis: Redis,
    options: { keyPrefix?: string } = {},
  ) {
    this.channel = `${options.keyPrefix ?? ''}${LiveKeys.ingressControlChannel}`;
  }

  /** The state in force, or null when no command was ever stored. */
  async read(): Promise<IngressControlRecord | null> {
    const json = await this.redis.hget(LiveKeys.ingressControl, 'record');
    return json ? parseIngressControlRecord(json) : null;
  }

  /** Stores `record` unless the stored state has a newer (or the same) stamp; either way returns what is in force. */
  async apply(record: IngressControlRecord): Promise<IngressControlWrite> {
    const [applied, json] = (await this.redis.eval(
      APPLY,
      1,
      LiveKeys.ingressControl,
      record.stamp,
      JSON.stringify(record),
      this.channel,
    )) as [number, string];
    return { applied: applied === 1, current: parseIngressControlRecord(json) };
  }
}

/** Parses a stored or announced record; throws on anything else. */
export function parseIngressControlRecord(json: string): IngressControlRecord {
  const r = JSON.parse(json) as Partial<IngressControlRecord> | null;
  if (
    !r ||
    typeof r.paused !== 'boolean' ||
    typeof r.reason !== 'string' ||
    typeof r.stamp !== 'string' ||
    typeof r.commandId !== 'string' ||
    (r.until !== null && typeof r.until !== 'string')
  )
    throw new Error(`not an ingress control record: ${json.slice(0, 200)}`);
  return r as IngressControlRecord;
}
