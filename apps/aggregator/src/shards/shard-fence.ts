import { Injectable } from '@nestjs/common';
import { OBSERVATION_SHARDS } from '@fleetwatch/contracts';
import { RedeliverError } from '@fleetwatch/messaging';
import { ShardEpochsRepository, type SqlTx } from '@fleetwatch/persistence';
import type { LaneKey } from '../observations/observations.service';

/** The shard number of a commit lane ('legacy' is the pseudo-shard after the real ones). */
export const shardOfLane = (lane: LaneKey): number => (lane === 'legacy' ? OBSERVATION_SHARDS : lane);

/**
 * A batch of a shard this replica no longer holds: not committed, its messages go back to the queue (and the new
 * holder). A RedeliverError: not counted as a failure, and near the delivery limit republished fresh, never dead-lettered.
 */
export class ShardFencedError extends RedeliverError {
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
  private readonly takenAway: Array<(shard: number) => void> = [];

  constructor(private readonly repository: ShardEpochsRepository) {}

  /**
   * `listener(shard)` is called when a commit finds that a shard's epoch moved past the one this replica
   * holds it under now: another replica took the shard while this one still believed it held it.
   */
  onTakenAway(listener: (shard: number) => void): void {
    this.takenAway.push(listener);
  }

  /**
   * Advances the shard's epoch for this holder; resolves once no commit of an earlier holder can still land.
   * With `lockedBy` (the lock session's namespace and backend pid), only while that session holds the shard's
   * lock (else ShardNotLockedError).
   */
  async take(shard: number, holder: string, lockedBy?: { namespace: number; pid: number }): Promise<void> {
    this.epochs.delete(shard);
    this.epochs.set(shard, await this.repository.advance(shard, holder, undefined, lockedBy));
  }

  /** The shard is no longer ours (lost or handed over): nothing more is committed for it. */
  forget(shard: number): void {
    this.epochs.delete(shard);
  }

  /** The epoch this replica holds the lane's shard under now (undefined: not held). Batches record it on arrival. */
  epochOf(lane: LaneKey): number | undefined {
    return this.epochs.get(shardOfLane(lane));
  }

  /**
   * Inside a commit: which of `claims` (a lane and the epoch its batch arrived under) may not be committed —
   * the shard was taken by another replica since, or was not held when the batch arrived. Checked against
   * the epoch the batch arrived under, not the one held now: a batch from before a loss must not pass once
   * the shard came back to this replica under a newer epoch. Keys: `claimKey(lane, epoch)`.
   */
  async superseded(
    tx: SqlTx,
    claims: ReadonlyArray<{ lane: LaneKey; epoch: number | undefined }>,
  ): Promise<Set<string>> {
    const out = new Set<string>();
    const shards = new Set<number>();
    for (const c of claims) {
      if (c.epoch === undefined) out.add(claimKey(c.lane, c.epoch));
      else shards.add(shardOfLane(c.lane));
    }
    if (shards.size === 0) return out;
    const current = await this.repository.current(tx, [...shards]);
    const takenAway = new Set<number>();
    for (const c of claims) {
      const shard = shardOfLane(c.lane);
      if (c.epoch === undefined || current.get(shard) === c.epoch) continue;
      out.add(claimKey(c.lane, c.epoch));
      // Not a batch from before a loss: the epoch held now is the refused one.
      if (this.epochs.get(shard) === c.epoch) takenAway.add(shard);
    }
    for (const shard of takenAway) {
      this.epochs.delete(shard);
      for (const listener of this.takenAway)
        try {
          listener(shard);
        } catch {
          // Inside the commit's transaction: a listener's failure must not fail the commit (its batches are refused anyway).
        }
    }
    return out;
  }
}

/** A batch's claim on its shard: its lane and the epoch it arrived under. */
export const claimKey = (lane: LaneKey, epoch: number | undefined): string => `${lane}@${epoch ?? '-'}`;
