import type { Redis } from 'ioredis';
import {
  InstanceKind,
  TargetKind,
  TargetStatus,
  type LocationStatusView,
  type TargetView,
} from '@fleetwatch/contracts';
import type { LocationSnapshot, TargetSnapshot } from '@fleetwatch/domain';
import { DEADLINE_SEPARATOR, LiveKeys } from './keys';

/**
 * What Redis keeps of one target at one location: the aggregator's snapshot
 * (libs/domain) without its bookkeeping (deadline, heartbeat run), which lives in Postgres.
 */
export type LocationRecord = Omit<LocationSnapshot, 'deadline' | 'run'>;

/** A target's locations as Redis keeps them: each location's snapshot without the bookkeeping Postgres holds. */
export function locationRecordsOf(t: Pick<TargetSnapshot, 'locations'>): Record<string, LocationRecord> {
  const locations: Record<string, LocationRecord> = {};
  for (const [name, l] of Object.entries(t.locations))
    locations[name] = {
      status: l.status,
      observedAt: l.observedAt,
      lastSeen: l.lastSeen,
      latencyMs: l.latencyMs,
      detail: l.detail,
      lifecycle: l.lifecycle,
    };
  return locations;
}

/** What Redis keeps of one target: the domain snapshot with Redis-side locations. */
export type TargetRecord = Omit<TargetSnapshot, 'locations'> & { locations: Record<string, LocationRecord> };

export interface TargetFilter {
  /**
   * Target kinds (`check`, `host`, `instance`) and pushed instances' kinds (`container`, `pod`, …), one OR: a target
   * matches when it is of one of them (each read from its own index).
   */
  kind?: string[];
  status?: string[];
  tag?: string;
  location?: string;
}

export interface TargetPage {
  /** The page's targets that could be read, in `ids` order. */
  items: TargetRecord[];
  nextCursor: string | null;
  total: number;
  /** The page's ids, in order: `items`, the targets gone since their id was read, and `unreadable`. */
  ids: string[];
  /** The page's targets whose record cannot be read (corrupt tags or labels): left out of `items`. */
  unreadable: UnreadableTarget[];
}

/** A target whose record live state holds but cannot be read (readTargets). */
export type UnreadableTarget = CorruptRecordError & { targetId: string };

/** What readTargets answers: the records it could read, and those it could not. */
export interface TargetsRead {
  targets: Map<string, TargetRecord>;
  unreadable: UnreadableTarget[];
}

/** What changes for one target in one write. */
export interface TargetWrite {
  id: string;
  kind: TargetKind;
  name: string;
  status: TargetStatus;
  previousStatus: TargetStatus | null;
  since: number | null;
  lastSeen: number;
  lastLatencyMs: number | null;
  lifecycle: string | null;
  /** A pushed instance's own kind (container, pod, …); null/absent: none (checks, hosts, instances not yet updated). */
  instanceKind?: InstanceKind | null;
  tags: string[];
  previousTags?: string[];
  labels: Record<string, string>;
  seq: number;
  locations: Record<string, LocationRecord>;
  /**
   * Redis holds this target's index entries as `previousStatus`, `previousTags` and
   * `previousLocations` say (the writer knows it, e.g. from the state it projected last):
   * only the entries that differ are written. Unset: every entry is written.
   */
  indexed?: boolean;
  /** Locations Redis indexes the target under (with `indexed`). */
  previousLocations?: readonly string[];
}

export interface DueDeadline {
  targetId: string;
  location: string;
  deadline: number;
}

const INSTANCE_KINDS: ReadonlySet<string> = new Set(Object.values(InstanceKind));
/** The instance kinds as a Lua list (the scripts' own, for the idx:ikind entries a hash no longer names). */
const INSTANCE_KINDS_LUA = `local INSTANCE_KINDS = {${[...INSTANCE_KINDS].map((k) => `'${k}'`).join(', ')}}`;

/** Targets whose `since` one pipeline reads, where recentlyChanged has no index to read. */
const RECENT_SCAN_PAGE = 1000;

function num(v: string | undefined): number | null {
  if (v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/**
 * A record live state holds but that cannot be read (a field that is not the JSON it should be, or not of its shape):
 * Redis answered, so it is no outage — a reader tells it apart from a failed read (a timeout, a lost connection) by this
 * class. `key` names the record (`target:<id>`), `field` what of it is unreadable; the value itself is not kept.
 */
export class CorruptRecordError extends Error {
  constructor(
    readonly key: string,
    readonly field: string,
  ) {
    super(`live state: the ${field} of ${key} cannot be read (corrupt); it is left unread until it is written again`);
    this.name = 'CorruptRecordError';
  }
}

/** A target hash's JSON field, checked against its shape: a CorruptRecordError when it is not one. */
function jsonField<T>(id: string, field: string, json: string, valid: (v: unknown) => v is T): T {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new CorruptRecordError(`target:${id}`, field);
  }
  if (!valid(value)) throw new CorruptRecordError(`target:${id}`, field);
  return value;
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isStringRecord = (v: unknown): v is Record<string, string> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

/**
 * What a reader is told of a corrupt part of a record it was still answered with (a location entry that is not JSON of
 * the right shape: the target is read without it). The reader counts it and logs it, rate-limited: never silence.
 */
export type CorruptPartListener = (err: CorruptRecordError) => void;

const isLocationRecord = (v: unknown): v is LocationRecord =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as { status?: unknown }).status === 'string';

/**
 * A target's record, or null when there is none; a CorruptRecordError when its tags or labels cannot be read. A
 * location entry that cannot be read is left out (the next observation there rewrites it) and told to `corruptPart`.
 */
function parseTarget(
  id: string,
  h: Record<string, string>,
  locs: Record<string, string>,
  corruptPart?: CorruptPartListener,
): TargetRecord | null {
  if (!h.kind) return null;
  const locations: Record<string, LocationRecord> = {};
  for (const [loc, json] of Object.entries(locs)) {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      value = undefined;
    }
    if (isLocationRecord(value)) locations[loc] = value;
    else corruptPart?.(new CorruptRecordError(`target:${id}:locations`, `location ${JSON.stringify(loc)}`));
  }
  return {
    id,
    kind: h.kind as TargetKind,
    name: h.name ?? id,
    status: (h.status as TargetStatus) ?? TargetStatus.Unknown,
    since: num(h.since),
    lastSeen: num(h.lastSeen),
    lastLatencyMs: num(h.lastLatencyMs),
    lifecycle: h.lifecycle || null,
    instanceKind: (h.instanceKind || null) as InstanceKind | null,
    tags: h.tags ? jsonField(id, 'tags', h.tags, isStringArray) : [],
    labels: h.labels ? jsonField(id, 'labels', h.labels, isStringRecord) : {},
    seq: num(h.seq) ?? 0,
    locations,
  };
}

/** A pipeline's replies: the first command refused (OOM, READONLY, …) fails the whole write, to be retried. */
function throwFirstError(replies: Array<[Error | null, unknown]> | null): void {
  for (const [err] of replies ?? []) if (err) throw err;
}

/**
 * A pipelined read's replies: ioredis resolves a pipeline with an error per command (timed out, connection closed,
 * LOADING…) rather than rejecting it, so a read that skipped them answered as if the keys were empty. The first such
 * error is thrown; WRONGTYPE alone (a key an older aggregator wrote in another shape, replaced by its next write)
 * reads as missing.
 */
function throwFirstReadError(replies: Array<[Error | null, unknown]> | null): void {
  for (const [err] of replies ?? []) if (err && !isWrongType(err)) throw err;
}

const isWrongType = (err: Error): boolean => err.message.startsWith('WRONGTYPE');

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The public view of a target, as the gateway returns it (contracts `TargetView`). */
export function toTargetView(t: TargetRecord): TargetView {
  const locations: LocationStatusView[] = Object.entries(t.locations)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([location, l]) => ({
      location,
      status: l.status,
      // 0: nothing heard at this location yet (a heartbeat monitor waiting for its first ping).
      lastSeen: l.lastSeen ? iso(l.lastSeen) : null,
      latencyMs: l.latencyMs,
      detail: l.detail,
    }));
  return {
    id: t.id,
    kind: t.kind,
    name: t.name,
    status: t.status,
    consensus: t.status,
    locations,
    // 0: nothing heard yet (a heartbeat monitor that has never been pinged is projected with lastSeen 0).
    lastSeen: t.lastSeen ? iso(t.lastSeen) : null,
    since: iso(t.since),
    tags: t.tags,
    labels: t.labels,
    lifecycle: t.lifecycle,
    instanceKind: t.instanceKind ?? null,
  };
}

const WRITE_TARGETS = 'fleetwatchWriteTargets';

/** See LiveStateStore.writeTargets. ARGV: key prefix, JSON rows (strings; locations as a flat list). */
const WRITE_TARGETS_LUA = `
local p = ARGV[1]
local rows = cjson.decode(ARGV[2])
local written = 0
${INSTANCE_KINDS_LUA}
-- A since as a score: a finite number, else none (ZADD refuses nan mid-script; inf would break the read's ties).
local function score(v)
  local n = tonumber(v)
  if n and n == n and n > -math.huge and n < math.huge then return n end
  return nil
end
for _, w in ipairs(rows) do
  local id, kind, status, lastSeen, tags, seq, locs = w[1], w[2], w[4], tonumber(w[6]), w[9], tonumber(w[11]), w[12]
  -- A pushed instance's own kind ('' none).
  local ikind = w[13] or ''
  local key = p .. '${LiveKeys.target('')}' .. id
  local locKey = p .. '${LiveKeys.targetLocations('')}' .. id
  local cur = redis.call('HMGET', key, 'seq', 'lastSeen', 'status', 'tags', 'deleted', 'since', 'instanceKind')
  local curSeq = tonumber(cur[1])
  -- A deleted check's marker: a projection read before the delete must not bring it back. A removed instance's
  -- (the time of its removal) lets a newer life through.
  local removedAt = cur[5] and tonumber(string.match(cur[5], '^at:(%d+)$'))
  local stale = cur[5] ~= false and (kind == 'check' or not removedAt or lastSeen <= removedAt)
  if not stale and curSeq then
    if curSeq > seq then stale = true
    elseif curSeq == seq then
      local curSeen = tonumber(cur[2])
      if curSeen and curSeen > lastSeen then stale = true end
    end
  end
  if not stale then
    written = written + 1
    -- A removed instance's newer life: its marker (and the marker's expiry) go.
    if cur[5] ~= false then
      redis.call('HDEL', key, 'deleted')
      redis.call('PERSIST', key)
    end
    redis.call('HSET', key, 'kind', kind, 'name', w[3], 'status', status, 'since', w[5], 'lastSeen', w[6],
      'lastLatencyMs', w[7], 'lifecycle', w[8], 'tags', tags, 'labels', w[10], 'seq', w[11])
    -- In slices: unpack() of a whole list stops near 8,000 values ("too many results to unpack"), and a target
    -- may report from thousands of locations. (#locs is even; a slice of 512 keeps pairs whole.)
    for i = 1, #locs, 512 do
      redis.call('HSET', locKey, unpack(locs, i, math.min(i + 511, #locs)))
    end
    if #locs > 0 then
      for i = 1, #locs, 2 do redis.call('SADD', p .. '${LiveKeys.byLocation('')}' .. locs[i], id) end
    end
    -- A location the target no longer has (a heartbeat monitor's others, dropped for its one) goes, with its index entry.
    local hasLoc = {}
    for i = 1, #locs, 2 do hasLoc[locs[i]] = true end
    for _, l in ipairs(redis.call('HKEYS', locKey)) do
      if not hasLoc[l] then
        redis.call('HDEL', locKey, l)
        redis.call('SREM', p .. '${LiveKeys.byLocation('')}' .. l, id)
      end
    end
    redis.call('ZADD', p .. '${LiveKeys.all}', 0, id)
    local since = score(w[5])
    if since then redis.call('ZADD', p .. '${LiveKeys.bySince}', since, id)
    else redis.call('ZREM', p .. '${LiveKeys.bySince}', id) end
    redis.call('SADD', p .. '${LiveKeys.byKind('')}' .. kind, id)
    -- The latest update's kind: an instance re-created as a pod after being a container leaves the container index.
    -- Taken out of every other kind's index, not only the one its hash names, when they differ: a hash without a
    -- kind may be a new life after a removal by a replica of the version before kinds were kept (a rolling upgrade,
    -- a rollback), which left its idx:ikind entry behind (steady writes, the same kind again, send nothing more).
    if (cur[7] or '') ~= ikind then
      for _, k in ipairs(INSTANCE_KINDS) do
        if k ~= ikind then redis.call('SREM', p .. '${LiveKeys.byInstanceKind('')}' .. k, id) end
      end
    end
    if ikind == '' then
      if cur[7] then redis.call('HDEL', key, 'instanceKind') end
    else
      redis.call('HSET', key, 'instanceKind', ikind)
      redis.call('SADD', p .. '${LiveKeys.byInstanceKind('')}' .. ikind, id)
    end
    if cur[3] and cur[3] ~= status then redis.call('SREM', p .. '${LiveKeys.byStatus('')}' .. cur[3], id) end
    redis.call('SADD', p .. '${LiveKeys.byStatus('')}' .. status, id)
    local keep = {}
    for _, t in ipairs(cjson.decode(tags)) do
      keep[t] = true
      redis.call('SADD', p .. '${LiveKeys.byTag('')}' .. t, id)
    end
    if cur[4] then
      local ok, old = pcall(cjson.decode, cur[4])
      if ok and type(old) == 'table' then
        for _, t in ipairs(old) do
          if not keep[t] then redis.call('SREM', p .. '${LiveKeys.byTag('')}' .. t, id) end
        end
      end
    end
  elseif cur[5] == false and curSeq then
    -- Skipped, the target's hash newer: idx:since still follows that hash (written by a layout without the index,
    -- e.g. an older replica during an upgrade), so a rebuild leaves every target there whatever it skips.
    local since = score(cur[6])
    if since then redis.call('ZADD', p .. '${LiveKeys.bySince}', since, id)
    else redis.call('ZREM', p .. '${LiveKeys.bySince}', id) end
  end
end
return written
`;

const SET_HOST_METRICS = 'fleetwatchSetHostMetrics';

/**
 * See LiveStateStore.setHostMetricsMany. KEYS[1]: the host's key. ARGV: sampledAt (epoch ms),
 * JSON, TTL in seconds (0: none). A key of another type (an older aggregator's string) is replaced. A retired host's
 * key (`at` without `json`: RETIRE_HOST_METRICS) also refuses a sample of its very time: a retirement is dated at the
 * host's newest sample when that is later than the request (a collector clock ahead), and that sample projected late
 * is no next life.
 */
const SET_HOST_METRICS_LUA = `
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'none' and t ~= 'hash' then redis.call('DEL', KEYS[1]) end
local cur = tonumber(redis.call('HGET', KEYS[1], 'at'))
local at = tonumber(ARGV[1])
if cur and cur > at then return 0 end
if cur and cur == at and redis.call('HEXISTS', KEYS[1], 'json') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[1], 'json', ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
return 1
`;

const RETIRE_HOST_METRICS = 'fleetwatchRetireHostMetrics';

/**
 * See LiveStateStore.retireHostMetrics. KEYS[1]: the host's key. ARGV: the retirement's time (epoch ms). A sample
 * newer than that (the host's next life) is kept. Otherwise the sample goes and the key keeps only `at` = that time
 * (and its expiry), so a late projection of an older sample cannot bring the figures back.
 */
const RETIRE_HOST_METRICS_LUA = `
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[1], 'at'))
if cur and cur > tonumber(ARGV[1]) then return 0 end
local had = redis.call('HDEL', KEYS[1], 'json')
redis.call('HSET', KEYS[1], 'at', ARGV[1])
return had
`;

const WRITE_HOST_CONFLICT = 'fleetwatchWriteHostConflict';

/**
 * See LiveStateStore.writeHostConflicts. KEYS[1]: the host's conflict key. ARGV: op (raise, refresh, clear), the
 * writer's owner id, the mark's JSON (raise, refresh), its time to live in ms. A value another owner wrote is
 * `foreign`; an unreadable one (or a key of another type) counts as nobody's.
 */
const WRITE_HOST_CONFLICT_LUA = `
local t = redis.call('TYPE', KEYS[1])['ok']
local foreign = false
if t == 'string' then
  local ok, v = pcall(cjson.decode, redis.call('GET', KEYS[1]))
  foreign = ok and type(v) == 'table' and v.owner ~= ARGV[2]
elseif t ~= 'none' then
  redis.call('DEL', KEYS[1])
  t = 'none'
end
local op = ARGV[1]
if op == 'clear' then
  if t == 'none' or foreign then return 0 end
  redis.call('DEL', KEYS[1])
  return 1
end
if op == 'refresh' and foreign then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
`;

const SET_CHECK_METRICS = 'fleetwatchSetCheckMetrics';
/**
 * See LiveStateStore.setCheckMetricsMany. KEYS[1]: the check's key. ARGV: location, result time
 * (epoch ms), JSON metrics, TTL in seconds. An older result than the one held changes nothing.
 */
const SET_CHECK_METRICS_LUA = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'at:' .. ARGV[1]))
if cur and cur > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'at:' .. ARGV[1], ARGV[2], 'm:' .. ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
`;

/** A check result's figures to store as its location's latest. */
export interface CheckMetricsWrite {
  targetId: string;
  location: string;
  /** Epoch ms of the result (orders writes). */
  at: number;
  /** JSON array of the result's metrics. */
  json: string;
  /** How long the figures stay when no newer result comes (a few of the check's intervals). */
  ttlSeconds: number;
}

/**
 * One change of a host's conflict mark (a host id two collectors report at once), by the aggregator instance `owner`
 * of LiveStateStore.writeHostConflicts:
 * - raise: the mark is written, whatever is held (the writer hears the host's samples now: it holds its shard);
 * - refresh: written again (its time to live renewed, or back after a flush) unless another owner's mark is held;
 * - clear: removed when the mark held is the writer's (another owner's is not: the host's shard moved to it);
 * - drop: removed, whoever's (the host was retired).
 */
export type HostConflictWrite =
  | { hostId: string; op: 'raise' | 'refresh'; mark: { reporters: number; since: number } }
  | { hostId: string; op: 'clear' | 'drop' };

/** A host's latest sample to store. */
export interface HostSampleWrite {
  hostId: string;
  /** Epoch ms of the sample (orders writes). */
  sampledAt: number;
  json: string;
}

const REMOVE_TARGETS = 'fleetwatchRemoveTargets';

/**
 * See LiveStateStore.removeTargets. ARGV: key prefix, JSON [[id, [locations…]], …], marker TTL (s).
 * Index entries are taken from what Redis holds (kind, status, tags, located under), plus the
 * locations the caller knows (deadline entries of locations Redis may have lost).
 */
const REMOVE_TARGETS_LUA = `
local p = ARGV[1]
local rows = cjson.decode(ARGV[2])
local ttl = tonumber(ARGV[3])
local removed = 0
${INSTANCE_KINDS_LUA}
for _, row in ipairs(rows) do
  local id, known = row[1], row[2]
  local key = p .. '${LiveKeys.target('')}' .. id
  local locKey = p .. '${LiveKeys.targetLocations('')}' .. id
  local cur = redis.call('HMGET', key, 'kind', 'status', 'tags', 'lastSeen', 'deleted', 'instanceKind')
  local at = tonumber(row[3])
  -- A removed instance's removal landing after its next life's write (a late projection: another replica's, a
  -- reconcile page read before the revival) leaves that life alone, as writeTargets leaves a newer state.
  local newer = at and cur[1] and tonumber(cur[4]) and tonumber(cur[4]) > at
  if not newer then
  -- A late removal of an earlier life keeps the later removal's time in the marker.
  local held = cur[5] and tonumber(string.match(cur[5], '^at:(%d+)$'))
  if at and held and held > at then at = held end
  if cur[1] then
    removed = removed + 1
    redis.call('SREM', p .. '${LiveKeys.byKind('')}' .. cur[1], id)
  end
  if cur[2] then redis.call('SREM', p .. '${LiveKeys.byStatus('')}' .. cur[2], id) end
  -- Every kind's index, whatever the hash says: one a replica of the version before kinds were kept removed (its
  -- hash gone, its idx:ikind entry left) leaves it when this version projects the tombstone again (the reconcile of
  -- recent changes, tombstones included, when a shard is taken).
  for _, k in ipairs(INSTANCE_KINDS) do redis.call('SREM', p .. '${LiveKeys.byInstanceKind('')}' .. k, id) end
  if cur[3] then
    local ok, tags = pcall(cjson.decode, cur[3])
    if ok and type(tags) == 'table' then
      for _, t in ipairs(tags) do redis.call('SREM', p .. '${LiveKeys.byTag('')}' .. t, id) end
    end
  end
  local locs = redis.call('HKEYS', locKey)
  for _, l in ipairs(known) do table.insert(locs, l) end
  for _, l in ipairs(locs) do
    redis.call('SREM', p .. '${LiveKeys.byLocation('')}' .. l, id)
    redis.call('ZREM', p .. '${LiveKeys.deadlines}', id .. '\\0' .. l)
  end
  redis.call('ZREM', p .. '${LiveKeys.all}', id)
  redis.call('ZREM', p .. '${LiveKeys.bySince}', id)
  redis.call('DEL', locKey, key)
  -- The marker holds when the target was removed: a removed instance's newer write passes it (a check's never does).
  redis.call('HSET', key, 'deleted', at and ('at:' .. string.format('%.0f', at)) or '1')
  redis.call('EXPIRE', key, ttl)
  end
end
return removed
`;

/** How long a deleted target's marker blocks late projections (they land within seconds; a day is ample). */
export const DELETED_MARKER_TTL_SECONDS = 86_400;

/**
 * Live state in Redis. The aggregator is its only writer (one target is
 * handled by one consumer at a time, so read-modify-write per target is safe);
 * the gateway reads it.
 */
export class LiveStateStore {
  /** Pub/sub channels ignore ioredis' keyPrefix, so the channel carries the prefix itself. */
  readonly statusChannel: string;

  private readonly keyPrefix: string;
  private readonly writeScript: (numKeys: number, ...args: string[]) => Promise<number>;
  private readonly removeScript: (numKeys: number, ...args: string[]) => Promise<number>;

  constructor(
    private readonly redis: Redis,
    options: { keyPrefix?: string } = {},
  ) {
    // The script builds its keys itself: from the prefix the client really applies to every other command.
    this.keyPrefix = redis.options.keyPrefix ?? '';
    this.statusChannel = `${options.keyPrefix ?? ''}${LiveKeys.statusChannel}`;
    // Sent by its SHA (the body only after NOSCRIPT). Its keys are built inside from the prefix (ioredis
    // prefixes KEYS only): live state is one keyspace on one Redis, never a cluster.
    type WriteScript = (numKeys: number, ...args: string[]) => Promise<number>;
    const commands = redis as unknown as Record<string, WriteScript | undefined>;
    if (typeof commands[WRITE_TARGETS] !== 'function') redis.defineCommand(WRITE_TARGETS, { lua: WRITE_TARGETS_LUA });
    const run = commands[WRITE_TARGETS] as WriteScript;
    this.writeScript = run.bind(redis);
    if (typeof commands[REMOVE_TARGETS] !== 'function')
      redis.defineCommand(REMOVE_TARGETS, { lua: REMOVE_TARGETS_LUA });
    this.removeScript = (commands[REMOVE_TARGETS] as WriteScript).bind(redis);
    if (typeof commands[SET_HOST_METRICS] !== 'function')
      redis.defineCommand(SET_HOST_METRICS, { lua: SET_HOST_METRICS_LUA, numberOfKeys: 1 });
    if (typeof commands[SET_CHECK_METRICS] !== 'function')
      redis.defineCommand(SET_CHECK_METRICS, { lua: SET_CHECK_METRICS_LUA, numberOfKeys: 1 });
    if (typeof commands[RETIRE_HOST_METRICS] !== 'function')
      redis.defineCommand(RETIRE_HOST_METRICS, { lua: RETIRE_HOST_METRICS_LUA, numberOfKeys: 1 });
    if (typeof commands[WRITE_HOST_CONFLICT] !== 'function')
      redis.defineCommand(WRITE_HOST_CONFLICT, { lua: WRITE_HOST_CONFLICT_LUA, numberOfKeys: 1 });
  }

  /** False while the connection is down: a command now would wait for a reconnect. */
  get connected(): boolean {
    return this.redis.status === 'ready';
  }

  /** Readiness: Redis answers PING. A failure without a connection says so (`readinessReason`, observability's /readyz). */
  async ping(): Promise<void> {
    try {
      await this.redis.ping();
    } catch (err) {
      if (!this.connected && err !== null && typeof err === 'object')
        Object.assign(err, { readinessReason: 'unreachable' });
      throw err;
    }
  }

  /**
   * One target's record (null: none). A CorruptRecordError when its tags or labels cannot be read; a location entry
   * that cannot be read is left out and told to `corruptPart`.
   */
  async getTarget(id: string, corruptPart?: CorruptPartListener): Promise<TargetRecord | null> {
    const [h, locs] = await Promise.all([
      this.redis.hgetall(LiveKeys.target(id)),
      this.redis.hgetall(LiveKeys.targetLocations(id)),
    ]);
    return parseTarget(id, h, locs, corruptPart);
  }

  /**
   * Pipelined multi-get; missing targets are left out. The first record that cannot be read (corrupt tags or labels)
   * fails the read with its CorruptRecordError: a reader that answers with the others reads with readTargets.
   */
  async getTargets(ids: readonly string[], corruptPart?: CorruptPartListener): Promise<Map<string, TargetRecord>> {
    const { targets, unreadable } = await this.readTargets(ids, corruptPart);
    if (unreadable[0]) throw unreadable[0];
    return targets;
  }

  /**
   * Pipelined multi-get that answers with every record it can read: missing targets are left out, and so are those
   * whose record cannot be read (corrupt tags or labels), each named in `unreadable` (a CorruptRecordError, with the
   * target's id) — one corrupt record fails no read of the others. A failed read (Redis away) still rejects.
   */
  async readTargets(ids: readonly string[], corruptPart?: CorruptPartListener): Promise<TargetsRead> {
    const targets = new Map<string, TargetRecord>();
    const unreadable: UnreadableTarget[] = [];
    if (ids.length === 0) return { targets, unreadable };
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(LiveKeys.target(id)).hgetall(LiveKeys.targetLocations(id));
    const res = (await pipe.exec()) ?? [];
    throwFirstReadError(res);
    ids.forEach((id, i) => {
      const h = res[i * 2]?.[1] as Record<string, string> | undefined;
      const l = res[i * 2 + 1]?.[1] as Record<string, string> | undefined;
      let t: TargetRecord | null;
      try {
        t = h ? parseTarget(id, h, l ?? {}, corruptPart) : null;
      } catch (err) {
        if (!(err instanceof CorruptRecordError)) throw err;
        unreadable.push(Object.assign(err, { targetId: id }));
        return;
      }
      if (t) targets.set(id, t);
    });
    return { targets, unreadable };
  }

  /**
   * Writes targets' summaries, locations and index entries, in one script run (EVALSHA),
   * guarded: a write whose `seq` is below what Redis holds for the target — or equal
   * with an older `lastSeen` — is skipped, so a late projection (another replica's, or a
   * rebuild page read before a commit) never moves live state back. Index entries are
   * moved from what Redis actually holds (its status and tags), and every entry a target
   * should have is (re)added, so a lost SADD/SREM heals at the next write. A write carries
   * all of a target's locations: one Redis holds that the write lacks is removed. A command
   * refused (OOM, READONLY) rejects. Resolves with how many writes were applied.
   */
  async writeTargets(writes: readonly TargetWrite[]): Promise<number> {
    if (writes.length === 0) return 0;
    const rows = writes.map((w) => {
      const locs: string[] = [];
      for (const loc in w.locations) locs.push(loc, JSON.stringify(w.locations[loc]));
      return [
        w.id,
        w.kind,
        w.name,
        w.status,
        w.since === null ? '' : String(w.since),
        String(w.lastSeen),
        w.lastLatencyMs === null ? '' : String(w.lastLatencyMs),
        w.lifecycle ?? '',
        JSON.stringify(w.tags),
        JSON.stringify(w.labels),
        String(w.seq),
        locs,
        w.instanceKind ?? '',
      ];
    });
    return this.writeScript(0, this.keyPrefix, JSON.stringify(rows));
  }

  /**
   * Removes targets (deleted checks, removed instances) from live state, in one script run: their summary,
   * locations and every index and deadline entry, leaving a marker (no `kind`, so no reader
   * sees a target) that makes writeTargets skip them for DELETED_MARKER_TTL_SECONDS — a
   * projection or rebuild page read before the delete cannot bring one back. A check never comes back; a target
   * given `removedAt` (a removed instance) does with a write whose `lastSeen` is later. `locations`:
   * locations the caller knows of, whose deadline entries go too. Idempotent. Resolves with
   * how many were present.
   */
  async removeTargets(
    targets: ReadonlyArray<{ id: string; locations?: readonly string[]; removedAt?: number }>,
  ): Promise<number> {
    if (targets.length === 0) return 0;
    const rows = targets.map((t) => [t.id, [...(t.locations ?? [])], t.removedAt ?? null]);
    return this.removeScript(0, this.keyPrefix, JSON.stringify(rows), String(DELETED_MARKER_TTL_SECONDS));
  }

  /**
   * Lists targets matching the filter in id order, `limit` per page, with an
   * opaque cursor (the last id returned). A target whose record cannot be read (corrupt) fails no page: it is left out of
   * `items` and named in `unreadable`; a location entry that cannot be read is told to `corruptPart`.
   */
  async listTargets(
    filter: TargetFilter,
    limit: number,
    cursor?: string,
    corruptPart?: CorruptPartListener,
  ): Promise<TargetPage> {
    const sorted = await this.idsFromIndexes(filter);
    if (sorted === null) {
      const total = await this.redis.zcard(LiveKeys.all);
      const start = cursor ? `(${cursor}` : '-';
      const ids = await this.redis.zrangebylex(LiveKeys.all, start, '+', 'LIMIT', 0, limit + 1);
      const page = ids.slice(0, limit);
      const { targets, unreadable } = await this.readTargets(page, corruptPart);
      return {
        items: page.map((id) => targets.get(id)).filter((t): t is TargetRecord => !!t),
        nextCursor: ids.length > limit ? page[page.length - 1] : null,
        total,
        ids: page,
        unreadable,
      };
    }
    const from = cursor ? sorted.findIndex((id) => id > cursor) : 0;
    const page = from < 0 ? [] : sorted.slice(from, from + limit);
    const { targets, unreadable } = await this.readTargets(page, corruptPart);
    const more = from >= 0 && from + limit < sorted.length;
    return {
      items: page.map((id) => targets.get(id)).filter((t): t is TargetRecord => !!t),
      nextCursor: more ? page[page.length - 1] : null,
      total: sorted.length,
      ids: page,
      unreadable,
    };
  }

  /**
   * Every target id the filter takes, in id order, and nothing read of the targets: for a caller that matches on more
   * than the indexes hold and reads only the targets it keeps (the host search). No filter: every id.
   */
  async listTargetIds(filter: TargetFilter): Promise<string[]> {
    return (await this.idsFromIndexes(filter)) ?? (await this.redis.zrangebylex(LiveKeys.all, '-', '+'));
  }

  /** The ids the filter's index sets take, sorted (null: no filter, so no set to read). */
  private async idsFromIndexes(filter: TargetFilter): Promise<string[] | null> {
    const sets: string[][] = [];
    // One OR across both vocabularies: a target's kind (idx:kind) or a pushed instance's own (idx:ikind).
    if (filter.kind?.length)
      sets.push(filter.kind.map((k) => (INSTANCE_KINDS.has(k) ? LiveKeys.byInstanceKind(k) : LiveKeys.byKind(k))));
    if (filter.status?.length) sets.push(filter.status.map(LiveKeys.byStatus));
    if (filter.tag) sets.push([LiveKeys.byTag(filter.tag)]);
    if (filter.location) sets.push([LiveKeys.byLocation(filter.location)]);
    if (sets.length === 0) return null;
    // Union within a dimension (status=UP,DOWN), intersection across dimensions.
    const groups = await Promise.all(
      sets.map((keys) => (keys.length === 1 ? this.redis.smembers(keys[0]) : this.redis.sunion(...keys))),
    );
    let matched = new Set(groups[0]);
    for (const g of groups.slice(1)) {
      const next = new Set(g);
      matched = new Set([...matched].filter((id) => next.has(id)));
    }
    return [...matched].sort();
  }

  /**
   * The `limit` targets whose status changed last: largest `since` first, equal times in id order. A target that
   * never had a status (`since` null) is not among them. One ZREVRANGE, one ZRANGEBYSCORE for the ties at the
   * cut (at most `limit` of them), one pipelined read of the targets. A target whose record cannot be read (corrupt) is
   * left out and told to `corrupt`, as is a location entry left out of a target.
   */
  async recentlyChanged(limit: number, corrupt?: CorruptPartListener): Promise<TargetRecord[]> {
    if (limit <= 0) return [];
    const replies = await this.redis
      .pipeline()
      .exists(LiveKeys.built)
      .zrevrange(LiveKeys.bySince, 0, limit - 1, 'WITHSCORES')
      .exec();
    throwFirstError(replies);
    // No mark of this layout: no aggregator that keeps idx:since has built live state yet (a rolling upgrade with
    // the gateway first, or an aggregator still rebuilding): the index may miss targets, the hashes do not.
    if (Number(replies?.[0]?.[1]) !== 1) return this.recentlyChangedFromHashes(limit, corrupt);
    const flat = (replies?.[1]?.[1] ?? []) as string[];
    const top: Array<{ id: string; at: number; score: string }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2)
      top.push({ id: flat[i] as string, at: Number(flat[i + 1]), score: flat[i + 1] as string });
    // Redis orders equal scores by member, descending here: ties are put in id order, and those at the cut are
    // read again in id order (which of them make the list must not depend on the direction of the read).
    top.sort((a, b) => b.at - a.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let ids = top.map((t) => t.id);
    const last = top[top.length - 1];
    if (top.length === limit && last !== undefined) {
      // The cut's score as Redis wrote it (no float formatting in between).
      const ties = await this.redis.zrangebyscore(LiveKeys.bySince, last.score, last.score, 'LIMIT', 0, limit);
      // A set: a target whose since moved back onto the cut between the two reads is listed once.
      ids = [...new Set([...top.filter((t) => t.at > last.at).map((t) => t.id), ...ties])].slice(0, limit);
    }
    return this.readListed(ids, corrupt);
  }

  /** The targets of `ids` that can be read, in that order; each that cannot (corrupt) told to `corrupt`, and left out. */
  private async readListed(ids: readonly string[], corrupt?: CorruptPartListener): Promise<TargetRecord[]> {
    const { targets, unreadable } = await this.readTargets(ids, corrupt);
    for (const err of unreadable) corrupt?.(err);
    return ids.map((id) => targets.get(id)).filter((t): t is TargetRecord => t !== undefined);
  }

  /**
   * recentlyChanged without idx:since: every target's `since` read from its hash (pipelined, in pages of
   * RECENT_SCAN_PAGE), ordered as the index orders them. O(targets): only while the index is not built.
   */
  private async recentlyChangedFromHashes(limit: number, corrupt?: CorruptPartListener): Promise<TargetRecord[]> {
    const all = await this.redis.zrange(LiveKeys.all, '0', '-1');
    const found: Array<{ id: string; at: number }> = [];
    for (let i = 0; i < all.length; i += RECENT_SCAN_PAGE) {
      const page = all.slice(i, i + RECENT_SCAN_PAGE);
      const pipe = this.redis.pipeline();
      for (const id of page) pipe.hget(LiveKeys.target(id), 'since');
      const res = await pipe.exec();
      throwFirstError(res);
      page.forEach((id, j) => {
        const at = num((res?.[j]?.[1] ?? undefined) as string | undefined);
        if (at !== null) found.push({ id, at });
      });
    }
    found.sort((a, b) => b.at - a.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return this.readListed(
      found.slice(0, limit).map((t) => t.id),
      corrupt,
    );
  }

  async countByStatus(): Promise<Record<TargetStatus, number>> {
    const statuses = Object.values(TargetStatus);
    const pipe = this.redis.pipeline();
    for (const s of statuses) pipe.scard(LiveKeys.byStatus(s));
    const res = (await pipe.exec()) ?? [];
    // An error read as 0 would be a count that is wrong with no sign of it (as in counts()).
    throwFirstError(res);
    return Object.fromEntries(statuses.map((s, i) => [s, Number(res[i]?.[1] ?? 0)])) as Record<TargetStatus, number>;
  }

  /** Targets per kind, over the whole set (one SCARD each). */
  async countByKind(): Promise<Record<TargetKind, number>> {
    const kinds = Object.values(TargetKind);
    const pipe = this.redis.pipeline();
    for (const k of kinds) pipe.scard(LiveKeys.byKind(k));
    const res = (await pipe.exec()) ?? [];
    // An error read as 0 would be a count that is wrong with no sign of it (as in counts()).
    throwFirstError(res);
    return Object.fromEntries(kinds.map((k, i) => [k, Number(res[i]?.[1] ?? 0)])) as Record<TargetKind, number>;
  }

  /**
   * Every count of the status summary read at one instant (one MULTI: the aggregator's writes
   * land between two of these reads, never inside one), so the statuses and the kinds each add
   * up to the total. A reply that is an error is thrown, never read as 0.
   */
  async counts(): Promise<{
    total: number;
    byStatus: Record<TargetStatus, number>;
    byKind: Record<TargetKind, number>;
  }> {
    const statuses = Object.values(TargetStatus);
    const kinds = Object.values(TargetKind);
    const tx = this.redis.multi();
    tx.zcard(LiveKeys.all);
    for (const s of statuses) tx.scard(LiveKeys.byStatus(s));
    for (const k of kinds) tx.scard(LiveKeys.byKind(k));
    const res = await tx.exec();
    if (!res) throw new Error('live state: the counts transaction was aborted');
    const n = (i: number): number => {
      const [err, value] = res[i] ?? [new Error('live state: a count is missing from the reply'), null];
      if (err) throw err;
      return Number(value);
    };
    return {
      total: n(0),
      byStatus: Object.fromEntries(statuses.map((s, i) => [s, n(1 + i)])) as Record<TargetStatus, number>,
      byKind: Object.fromEntries(kinds.map((k, i) => [k, n(1 + statuses.length + i)])) as Record<TargetKind, number>,
    };
  }

  /** Every target in live state. */
  async countAll(): Promise<number> {
    return this.redis.zcard(LiveKeys.all);
  }

  /** True when live state holds no target (fresh or flushed Redis): the aggregator rebuilds from Postgres. */
  async isEmpty(): Promise<boolean> {
    return (await this.redis.zcard(LiveKeys.all)) === 0;
  }

  /** Live state was rebuilt whole from Postgres since Redis last lost its data (a flush removes the mark). */
  async isBuilt(): Promise<boolean> {
    return (await this.redis.exists(LiveKeys.built)) === 1;
  }

  /**
   * Removes the location hashes of layouts 1 and 2 (`t:{targetId}:loc`, now `tl:{targetId}`) when an aggregator of
   * such a layout left its mark (`live:built`, `live:built:2`), then those marks: run before a whole rebuild writes
   * layout 3, so no old hash lingers as another target's summary. Such a key is also the summary of a target whose id
   * ends in ":loc"; that goes too, and the rebuild writes it again from Postgres right after. Without an old mark
   * (a flush, a Redis only this layout wrote) nothing is scanned. Returns how many hashes went.
   */
  async removeLegacyLocationHashes(): Promise<number> {
    if ((await this.redis.exists(...LiveKeys.legacyBuilt)) === 0) return 0;
    // SCAN's pattern and answers carry the prefix itself (ioredis adds it to key arguments only); glob characters
    // in the prefix are escaped, so another prefix's keys never match.
    const match = `${this.keyPrefix.replace(/[*?[\]\\]/g, '\\$&')}${LiveKeys.legacyLocationsPattern}`;
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', match, 'COUNT', 1000, 'TYPE', 'hash');
      cursor = next;
      if (keys.length > 0) removed += await this.redis.unlink(...keys.map((k) => k.slice(this.keyPrefix.length)));
    } while (cursor !== '0');
    await this.redis.del(...LiveKeys.legacyBuilt);
    return removed;
  }

  async markBuilt(): Promise<void> {
    await this.redis.set(LiveKeys.built, String(Date.now()));
  }

  /**
   * The deadline set is a cache of Postgres (target_location_states.deadline_at):
   * the sweeper takes due deadlines from Postgres, so a lost entry here delays
   * nothing; these keep the copy complete (SPEC §4).
   */
  async setDeadlines(entries: readonly DueDeadline[]): Promise<void> {
    if (entries.length === 0) return;
    const args: (string | number)[] = [];
    for (const e of entries) args.push(e.deadline, `${e.targetId}${DEADLINE_SEPARATOR}${e.location}`);
    await this.redis.zadd(LiveKeys.deadlines, ...args);
  }

  async clearDeadline(targetId: string, location: string): Promise<void> {
    await this.redis.zrem(LiveKeys.deadlines, `${targetId}${DEADLINE_SEPARATOR}${location}`);
  }

  /** How many deadlines the set holds. */
  async countDeadlines(): Promise<number> {
    return this.redis.zcard(LiveKeys.deadlines);
  }

  /** The deadline held for one location, or null. */
  async deadlineOf(targetId: string, location: string): Promise<number | null> {
    const score = await this.redis.zscore(LiveKeys.deadlines, `${targetId}${DEADLINE_SEPARATOR}${location}`);
    return score === null ? null : Number(score);
  }

  /** Deadlines at or before `now`, oldest first. */
  async dueDeadlines(now: number, limit: number): Promise<DueDeadline[]> {
    const raw = await this.redis.zrangebyscore(LiveKeys.deadlines, '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit);
    const out: DueDeadline[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const [targetId, location] = raw[i].split(DEADLINE_SEPARATOR);
      out.push({ targetId, location, deadline: Number(raw[i + 1]) });
    }
    return out;
  }

  /** Removes a deadline only if it still has the score we saw (a fresh observation may have moved it). */
  async clearDeadlineIfUnchanged(d: DueDeadline): Promise<boolean> {
    const member = `${d.targetId}${DEADLINE_SEPARATOR}${d.location}`;
    const removed = await this.redis.eval(
      "if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('ZREM', KEYS[1], ARGV[1]) else return 0 end",
      1,
      LiveKeys.deadlines,
      member,
      String(d.deadline),
    );
    return Number(removed) === 1;
  }

  /**
   * Stores hosts' latest samples (one script run each, pipelined), guarded: a sample older
   * than the one Redis holds is skipped, so a late projection or a rebuild page read before
   * a commit never moves a host's latest sample back. `ttlSeconds` 0: no expiry. A command
   * refused (OOM, READONLY) rejects. Resolves with how many were written.
   */
  async setHostMetricsMany(samples: readonly HostSampleWrite[], ttlSeconds = 0): Promise<number> {
    if (samples.length === 0) return 0;
    const pipe = this.redis.pipeline();
    for (const s of samples)
      (pipe as unknown as Record<string, (...args: unknown[]) => unknown>)[SET_HOST_METRICS](
        LiveKeys.hostMetrics(s.hostId),
        String(s.sampledAt),
        s.json,
        String(Math.max(0, Math.floor(ttlSeconds))),
      );
    const replies = await pipe.exec();
    throwFirstError(replies);
    return (replies ?? []).reduce((n, [, v]) => n + Number(v), 0);
  }

  async setHostMetrics(hostId: string, json: string, sampledAt: number, ttlSeconds = 0): Promise<boolean> {
    return (await this.setHostMetricsMany([{ hostId, sampledAt, json }], ttlSeconds)) === 1;
  }

  /** A host's latest sample (the host.metrics payload as JSON), or null. */
  /**
   * Drops the latest samples of hosts retired at `retiredAt` (a host taken out of service): its figures are read by
   * nobody after that (the metric alert rules read them while the evaluator still knows the host: they would fire on
   * a sample days old). A sample newer than the retirement (the host's next life) is kept; an older one projected
   * late is skipped afterwards (setHostMetricsMany keeps the time). Resolves with how many samples went.
   */
  async retireHostMetrics(hosts: ReadonlyArray<{ hostId: string; retiredAt: number }>): Promise<number> {
    if (hosts.length === 0) return 0;
    const pipe = this.redis.pipeline();
    for (const h of hosts)
      (pipe as unknown as Record<string, (...args: unknown[]) => unknown>)[RETIRE_HOST_METRICS](
        LiveKeys.hostMetrics(h.hostId),
        String(h.retiredAt),
      );
    const replies = await pipe.exec();
    throwFirstError(replies);
    return (replies ?? []).reduce((n, [, v]) => n + Number(v), 0);
  }

  /** Stores results' figures as their locations' latest (an older result than the held one is skipped). */
  async setCheckMetricsMany(writes: readonly CheckMetricsWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const w of writes)
      (pipe as unknown as Record<string, (...args: unknown[]) => unknown>)[SET_CHECK_METRICS](
        LiveKeys.checkMetrics(w.targetId),
        w.location,
        String(w.at),
        w.json,
        String(Math.max(1, Math.floor(w.ttlSeconds))),
      );
    throwFirstError(await pipe.exec());
  }

  /** A check's latest figures per location: location → {at, metrics}. */
  async getCheckMetrics(targetId: string): Promise<Map<string, { at: number; metrics: unknown[] }>> {
    const h = await this.redis.hgetall(LiveKeys.checkMetrics(targetId));
    const out = new Map<string, { at: number; metrics: unknown[] }>();
    for (const [field, json] of Object.entries(h)) {
      if (!field.startsWith('m:')) continue;
      const location = field.slice(2);
      try {
        out.set(location, { at: Number(h[`at:${location}`]), metrics: JSON.parse(json) as unknown[] });
      } catch {
        // Unreadable: left out; the next result rewrites it.
      }
    }
    return out;
  }

  async getHostMetrics(hostId: string): Promise<string | null> {
    return (await this.getHostMetricsMany([hostId])).get(hostId) ?? null;
  }

  /** Latest samples of several hosts (pipelined); hosts without one are left out. */
  async getHostMetricsMany(hostIds: readonly string[]): Promise<Map<string, string>> {
    // WRONGTYPE: a key written by an older aggregator (a plain string), left out; the next sample replaces it.
    return this.readStringsOf(hostIds, (pipe, id) => pipe.hget(LiveKeys.hostMetrics(id), 'json'));
  }

  /**
   * One pipelined read per host (`read` queues it); answers the hosts whose reply is a string. A read error other than
   * WRONGTYPE rejects (throwFirstReadError); a WRONGTYPE reply is left out like a missing key.
   */
  private async readStringsOf(
    hostIds: readonly string[],
    read: (pipe: ReturnType<Redis['pipeline']>, id: string) => void,
  ): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (hostIds.length === 0) return out;
    const pipe = this.redis.pipeline();
    for (const id of hostIds) read(pipe, id);
    const replies = (await pipe.exec()) ?? [];
    throwFirstReadError(replies);
    hostIds.forEach((id, i) => {
      const [err, v] = replies[i] ?? [null, null];
      if (!err && typeof v === 'string') out.set(id, v);
    });
    return out;
  }

  /**
   * Applies changes of hosts' conflict marks (HostConflictWrite; one script run each, pipelined, in order), as the
   * aggregator instance `owner`. A mark written expires `ttlMs` after (its owner renews it while it holds the mark).
   * A command refused (OOM, READONLY) rejects. Resolves with how many keys were written or removed.
   */
  async writeHostConflicts(writes: readonly HostConflictWrite[], owner: string, ttlMs: number): Promise<number> {
    if (writes.length === 0) return 0;
    const pipe = this.redis.pipeline();
    const ttl = String(Math.max(1, Math.floor(ttlMs)));
    for (const w of writes) {
      const key = LiveKeys.hostConflict(w.hostId);
      if (w.op === 'drop') {
        pipe.del(key);
        continue;
      }
      const json =
        'mark' in w
          ? JSON.stringify({ reporters: w.mark.reporters, since: new Date(w.mark.since).toISOString(), owner })
          : '';
      (pipe as unknown as Record<string, (...args: unknown[]) => unknown>)[WRITE_HOST_CONFLICT](
        key,
        w.op,
        owner,
        json,
        ttl,
      );
    }
    const replies = await pipe.exec();
    throwFirstError(replies);
    return (replies ?? []).reduce((n, [, v]) => n + Number(v), 0);
  }

  /** Hosts' conflict marks (raw JSON: {reporters, since, owner}), pipelined; hosts without one are left out. */
  async getHostConflictsMany(hostIds: readonly string[]): Promise<Map<string, string>> {
    return this.readStringsOf(hostIds, (pipe, id) => pipe.get(LiveKeys.hostConflict(id)));
  }

  /** Fan-out of a status change to every gateway replica (SPEC §4). */
  async publishStatusChange(json: string): Promise<void> {
    await this.redis.publish(this.statusChannel, json);
  }

  /** Fan-out of many status changes, in order, in one pipeline. */
  async publishStatusChanges(jsons: readonly string[]): Promise<void> {
    if (jsons.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const json of jsons) pipe.publish(this.statusChannel, json);
    throwFirstError(await pipe.exec());
  }
}
