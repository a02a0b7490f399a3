import { Injectable } from '@nestjs/common';
import { OBSERVATION_SHARDS } from '@fleetwatch/contracts';
import { ShardEpochsRepository, type SqlTx } from '@fleetwatch/persistence';
import type { LaneKey } from '../observations/observations.service';

/** The shard number of a commit lane ('legacy' is the pseudo-shard after the real ones). */
export const shardOfLane = (lane: LaneKey): number => (lane === 'legacy' ? OBSERVATION_SHARDS : lane);
const laneOfShard = (shard: number): LaneKey => (shard >= OBSERVATION_SHARDS ? 'legacy' : shard);

/** A batch of a shard this replica no longer holds: not committed, its messages go back to the queue (and the new holder). */
export class ShardFencedError extends Error {
  constructor(readonly lane: LaneKey) {
    super(`shard ${lane} is held by another replica now: batch not committed`);
    this.name = 'ShardFencedError';
  }
}

/**
 * The epochs (fencing tokens) of the shards this replica holds. Taken right after the
 * shard's advisory lock and before its consumer starts; checked inside every commit.
 * The lock alone is not enough: when its connection dies the next holder may start while
 * a batch of ours is still waiting for the committer, and committing it then would put
 * that batch's observations after newer ones of the same targets (lost transitions).
 */
@Injectable()
export class ShardFence {
  private readonly epochs = new Map<number, number>();

  constructor(private readonly repository: ShardEpochsRepository) {}

  /** Advances the shard's epoch for this holder; resolves once no commit of an earlier holder can still land. */
  async take(shard: number, holder: string): Promise<void> {
    this.epochs.delete(shard);
    this.epochs.set(shard, await this.repository.advance(shard, holder));
  }

  /** The shard is no longer ours (lost or handed over): nothing more is committed for it. */
  forget(shard: number): void {
    this.epochs.delete(shard);
  }

  /** Inside a commit: the lanes of `lanes` whose shard another replica holds now (or this one never took). */
  async superseded(tx: SqlTx, lanes: readonly LaneKey[]): Promise<Set<LaneKey>> {
    const out = new Set<LaneKey>();
    const held = new Map<number, number>();
    for (const lane of lanes) {
      const shard = shardOfLane(lane);
      const epoch = this.epochs.get(shard);
      if (epoch === undefined) out.add(lane);
      else held.set(shard, epoch);
    }
    if (held.size > 0) for (const shard of await this.repository.superseded(tx, held)) out.add(laneOfShard(shard));
    return out;
  }
}
