import { createHash } from 'node:crypto';

/**
 * Which replica should hold which shard (issue 14): rendezvous hashing over the live
 * replicas — each shard goes to the replica with the highest hash of (replica, shard),
 * so a replica joining or leaving moves only the shards it wins or held. Pure.
 */
export function ownerOf(shard: number, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const m of members) {
    const score = Number.parseInt(createHash('md5').update(`${m}\u0000${shard}`).digest('hex').slice(0, 12), 16);
    if (score > bestScore || (score === bestScore && best !== undefined && m < best)) {
      best = m;
      bestScore = score;
    }
  }
  return best;
}

export interface ShardView {
  /** This replica's id. */
  me: string;
  /** Live replicas (this one included); undefined when the registry could not be read. */
  members: readonly string[] | undefined;
  /** Shards 0..count-1. */
  count: number;
  /** Shards this replica holds, with when it took each (epoch ms). */
  held: ReadonlyMap<number, number>;
  /** Shards whose lock nobody held, with since when (epoch ms) they have been seen free. */
  freeSince: ReadonlyMap<number, number>;
  now: number;
  /** A free shard owned by nobody alive is taken by anyone after this long (its owner had time to take it). */
  orphanGraceMs: number;
  /** A shard is held at least this long before it is handed to its owner (no ping-pong while membership settles). */
  minHoldMs: number;
}

export interface ShardPlan {
  acquire: number[];
  release: number[];
}

/**
 * The next step for this replica: take the shards it owns and those left free longer
 * than the grace (their owner is dead or cannot take them: nothing may stay unconsumed),
 * and hand over the shards it holds that another live replica owns, once held `minHoldMs`.
 * Without a membership view (Redis away) it keeps what it holds and still takes orphans.
 * Mutual exclusion does not rest on this plan: the shard locks and the queues' single
 * active consumer guarantee one holder; the plan only spreads the work.
 */
export function planShards(view: ShardView): ShardPlan {
  const acquire: number[] = [];
  const release: number[] = [];
  const members = view.members
    ? view.members.includes(view.me)
      ? view.members
      : [...view.members, view.me]
    : undefined;
  for (let shard = 0; shard < view.count; shard++) {
    const owner = members ? ownerOf(shard, members) : undefined;
    const heldAt = view.held.get(shard);
    if (heldAt !== undefined) {
      if (owner !== undefined && owner !== view.me && view.now - heldAt >= view.minHoldMs) release.push(shard);
      continue;
    }
    const free = view.freeSince.get(shard);
    if (owner === view.me) acquire.push(shard);
    else if (free !== undefined && view.now - free >= view.orphanGraceMs) acquire.push(shard);
  }
  return { acquire, release };
}
