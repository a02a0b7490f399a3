import type { MemberPollRecord } from '@fleetwatch/contracts';
import { FLEET_MEMBER_KEY, FLEET_POLL_EPOCH_KEY, FleetCache } from '@fleetwatch/live-state';
import { FleetPollFencedError } from '@fleetwatch/persistence';
import type { Redis } from 'ioredis';
import type { MemberRecordStore } from './fleet-poller';

// The poller's writer of the member reports cache (layout: libs/live-state fleet-cache.ts, the
// same JSON MemberPollRecord per member, read by the gateway through FleetCache). Every cycle
// rewrites every member (its attempt changes), but a member's hour of flow (~12 KB of JSON) and
// snapshot mostly do not: their JSON is kept, as bytes, by the object it was made from, and a
// record is put together from those pieces. JSON.stringify of 1,000 whole records and the UTF-16
// → UTF-8 copy of the resulting ~15 MB of strings were a fifth of a poll cycle's CPU.

const encoded = (value: unknown) => Buffer.from(JSON.stringify(value) ?? 'null', 'utf8');

/**
 * Serialises member records for the cache: a record's flow and snapshot JSON is kept, as bytes, by
 * the object it was made from (a new object replaces its entry; the old bytes go with the old object).
 */
export class RecordJson {
  private readonly pieces = new WeakMap<object, Buffer>();

  private piece(value: object | null): Buffer {
    if (value === null) return NULL;
    let b = this.pieces.get(value);
    if (!b) this.pieces.set(value, (b = encoded(value)));
    return b;
  }

  /** The record's JSON: what JSON.stringify(record) gives, parsed back. */
  serialise(r: MemberPollRecord): Buffer {
    const attempt = encoded(r.attempt);
    if (!r.good) return Buffer.concat([OPEN_ATTEMPT, attempt, GOOD_NULL]);
    const { at, report, flow, snapshot, flowAt, snapshotAt, url } = r.good;
    return Buffer.concat([
      OPEN_ATTEMPT,
      attempt,
      OPEN_GOOD,
      encoded({ at, report, flowAt, snapshotAt, url }).subarray(0, -1),
      FLOW,
      this.piece(flow),
      SNAPSHOT,
      this.piece(snapshot),
      CLOSE,
    ]);
  }
}

/**
 * KEYS[1]: fleet:poll-epoch, KEYS[2..]: member keys; ARGV[1]: the writer's lease epoch, ARGV[2..]: the records. Refused
 * (the newer epoch answered) when a newer holder's epoch is there; else the epoch is raised to the writer's and every
 * record written, all in one step.
 */
const SET_FENCED_LUA = `
local epoch = tonumber(ARGV[1])
local held = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if held > epoch then return held end
if held < epoch then redis.call('SET', KEYS[1], ARGV[1]) end
for i = 2, #KEYS do redis.call('SET', KEYS[i], ARGV[i]) end
return 0`;

/** KEYS[1]: fleet:poll-epoch, KEYS[2..]: member keys; ARGV[1]: the writer's lease epoch. As SET_FENCED_LUA, deleting them. */
const DEL_FENCED_LUA = `
local epoch = tonumber(ARGV[1])
local held = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if held > epoch then return held end
if held < epoch then redis.call('SET', KEYS[1], ARGV[1]) end
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
return 0`;

/** KEYS[1]: fleet:poll-epoch; ARGV[1]: a new holder's epoch. Raises the key to it (never lowers it); answers the epoch held before. */
const RAISE_FENCE_LUA = `
local held = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if held < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return held`;

const SET_FENCED = 'fleetSetMembersFenced';
const RAISE_FENCE = 'fleetRaisePollEpoch';
const DEL_FENCED = 'fleetDelMembersFenced';
type SetScript = (numKeys: number, ...args: Array<string | Buffer>) => Promise<number>;
type RaiseScript = (key: string, epoch: string) => Promise<number>;

export class FleetRecordStore implements MemberRecordStore {
  private readonly reader: FleetCache;
  private readonly json = new RecordJson();
  private readonly setFenced: SetScript;
  private readonly raise: RaiseScript;
  private readonly delFenced: SetScript;

  constructor(private readonly redis: Redis) {
    this.reader = new FleetCache(redis);
    const commands = redis as unknown as Record<string, unknown>;
    if (typeof commands[SET_FENCED] !== 'function') redis.defineCommand(SET_FENCED, { lua: SET_FENCED_LUA });
    if (typeof commands[RAISE_FENCE] !== 'function')
      redis.defineCommand(RAISE_FENCE, { lua: RAISE_FENCE_LUA, numberOfKeys: 1 });
    this.setFenced = (commands[SET_FENCED] as SetScript).bind(redis);
    if (typeof commands[DEL_FENCED] !== 'function') redis.defineCommand(DEL_FENCED, { lua: DEL_FENCED_LUA });
    this.raise = (commands[RAISE_FENCE] as RaiseScript).bind(redis);
    this.delFenced = (commands[DEL_FENCED] as SetScript).bind(redis);
  }

  getMany(names: readonly string[]): Promise<Map<string, MemberPollRecord>> {
    return this.reader.getMany(names);
  }

  /**
   * Writes many records in one round trip. With `epoch` (the fleet-poll lease's, see raiseFence), in one script that
   * refuses them all (FleetPollFencedError) when a newer holder has written or taken the lease since.
   */
  async setMany(records: ReadonlyMap<string, MemberPollRecord>, epoch?: number): Promise<void> {
    if (records.size === 0) return;
    if (epoch !== undefined) {
      const keys: string[] = [FLEET_POLL_EPOCH_KEY];
      const values: Buffer[] = [];
      for (const [name, r] of records) {
        keys.push(FLEET_MEMBER_KEY(name));
        values.push(this.json.serialise(r));
      }
      const newer = await this.setFenced(keys.length, ...keys, String(epoch), ...values);
      if (newer !== 0)
        throw new FleetPollFencedError(
          `the fleet-poll lease was taken by another replica (epoch ${newer}, this cycle's ${epoch}): member reports not written`,
        );
      return;
    }
    const pipe = this.redis.pipeline();
    for (const [name, r] of records) pipe.set(FLEET_MEMBER_KEY(name), this.json.serialise(r));
    const res = await pipe.exec();
    const err = res?.find(([e]) => e !== null)?.[0];
    if (err) throw err;
  }

  /**
   * Deletes the records of members no longer configured. With `epoch`, as setMany: refused (FleetPollFencedError,
   * nothing deleted) when a newer holder of the fleet-poll lease has written or taken it since.
   */
  async removeMany(names: readonly string[], epoch?: number): Promise<void> {
    if (names.length === 0) return;
    if (epoch === undefined) {
      await this.redis.del(...names.map(FLEET_MEMBER_KEY));
      return;
    }
    const keys = [FLEET_POLL_EPOCH_KEY, ...names.map(FLEET_MEMBER_KEY)];
    const newer = await this.delFenced(keys.length, ...keys, String(epoch));
    if (newer !== 0)
      throw new FleetPollFencedError(
        `the fleet-poll lease was taken by another replica (epoch ${newer}, this one's ${epoch}): member reports not removed`,
      );
  }

  /**
   * The epoch of the fleet-poll lease the cache holds (0: none, e.g. after a Redis restart that lost it): a new holder
   * takes an epoch above it, or the writes of every cycle of its would be refused here.
   */
  async fenceEpoch(): Promise<number> {
    const held = Number(await this.redis.get(FLEET_POLL_EPOCH_KEY));
    return Number.isSafeInteger(held) && held > 0 ? held : 0;
  }

  /**
   * A new holder of the fleet-poll lease, once its epoch is advanced in Postgres: from now on, writes under an older
   * epoch are refused here (one already done stays, and is what the new holder reads back).
   */
  async raiseFence(epoch: number): Promise<void> {
    await this.raise(FLEET_POLL_EPOCH_KEY, String(epoch));
  }
}

const NULL = Buffer.from('null');
const OPEN_ATTEMPT = Buffer.from('{"attempt":');
const GOOD_NULL = Buffer.from(',"good":null}');
const OPEN_GOOD = Buffer.from(',"good":');
const FLOW = Buffer.from(',"flow":');
const SNAPSHOT = Buffer.from(',"snapshot":');
const CLOSE = Buffer.from('}}');
