import type { Redis } from 'ioredis';
import type { MemberPollRecord } from '@fleetwatch/contracts';

// Member reports cache (SPEC §2, §8): a leader's last poll of each member, under the site's
// prefix. Written by sync-orchestrator's fleet poller only; read by the gateway.
//
//   fleet:member:{name}   STRING  JSON MemberPollRecord: the last attempt, and the last good
//                                 report, flow and snapshot (kept when a poll fails)
//   fleet:poll-epoch      STRING  the newest epoch of the fleet-poll lease (fleet_poll_epochs) that wrote here:
//                                 a poller's writes under an older one are refused
//
// Key layout lives here only (like keys.ts for the other families).

export const FLEET_MEMBER_KEY = (name: string) => `fleet:member:${name}`;
/** The fleet-poll lease's fencing token as the member cache knows it (no member key can be it: theirs are fleet:member:…). */
export const FLEET_POLL_EPOCH_KEY = 'fleet:poll-epoch';

/** A record read back, or null when absent or not JSON (a corrupt value is never served). */
function parse(text: string | null): MemberPollRecord | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as MemberPollRecord;
    return v && typeof v === 'object' && v.attempt ? v : null;
  } catch {
    return null;
  }
}

export class FleetCache {
  constructor(private readonly redis: Redis) {}

  async get(name: string): Promise<MemberPollRecord | null> {
    return parse(await this.redis.get(FLEET_MEMBER_KEY(name)));
  }

  async getMany(names: readonly string[]): Promise<Map<string, MemberPollRecord>> {
    const out = new Map<string, MemberPollRecord>();
    for (let i = 0; i < names.length; i += 500) {
      const chunk = names.slice(i, i + 500);
      const values = chunk.length === 0 ? [] : await this.redis.mget(chunk.map(FLEET_MEMBER_KEY));
      chunk.forEach((n, j) => {
        const r = parse(values[j] ?? null);
        if (r) out.set(n, r);
      });
    }
    return out;
  }

  /** Writes many records in one round trip. */
  async setMany(records: ReadonlyMap<string, MemberPollRecord>): Promise<void> {
    if (records.size === 0) return;
    const pipe = this.redis.pipeline();
    for (const [name, r] of records) pipe.set(FLEET_MEMBER_KEY(name), JSON.stringify(r));
    const res = await pipe.exec();
    const err = res?.find(([e]) => e !== null)?.[0];
    if (err) throw err;
  }

  /** Drops members no longer configured. */
  async remove(names: readonly string[]): Promise<void> {
    if (names.length > 0) await this.redis.del(...names.map(FLEET_MEMBER_KEY));
  }
}
