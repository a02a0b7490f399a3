import type { MemberPollRecord } from '@fleetwatch/contracts';
import { FLEET_MEMBER_KEY, FleetCache } from '@fleetwatch/live-state';
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
    const { at, report, flow, snapshot } = r.good;
    return Buffer.concat([
      OPEN_ATTEMPT,
      attempt,
      OPEN_GOOD,
      encoded({ at, report }).subarray(0, -1),
      FLOW,
      this.piece(flow),
      SNAPSHOT,
      this.piece(snapshot),
      CLOSE,
    ]);
  }
}

export class FleetRecordStore implements MemberRecordStore {
  private readonly reader: FleetCache;
  private readonly json = new RecordJson();

  constructor(private readonly redis: Redis) {
    this.reader = new FleetCache(redis);
  }

  getMany(names: readonly string[]): Promise<Map<string, MemberPollRecord>> {
    return this.reader.getMany(names);
  }

  /** Writes many records in one round trip. */
  async setMany(records: ReadonlyMap<string, MemberPollRecord>): Promise<void> {
    if (records.size === 0) return;
    const pipe = this.redis.pipeline();
    for (const [name, r] of records) pipe.set(FLEET_MEMBER_KEY(name), this.json.serialise(r));
    const res = await pipe.exec();
    const err = res?.find(([e]) => e !== null)?.[0];
    if (err) throw err;
  }
}

const NULL = Buffer.from('null');
const OPEN_ATTEMPT = Buffer.from('{"attempt":');
const GOOD_NULL = Buffer.from(',"good":null}');
const OPEN_GOOD = Buffer.from(',"good":');
const FLOW = Buffer.from(',"flow":');
const SNAPSHOT = Buffer.from(',"snapshot":');
const CLOSE = Buffer.from('}}');
