import { Inject, Injectable } from '@nestjs/common';
import { runInSqlTransaction, SQL_POOL, sqlQuery, type SqlHandle, type SqlPool, type SqlTx } from '../sql/sql-pool';

// Fencing tokens for numbered shards held under advisory locks (aggregator_shard_epochs).
// A session advisory lock lives on its own connection: when that connection dies the lock
// is free at once, while the holder may still have a commit in flight on another
// connection. The epoch closes that gap: the next holder advances it before consuming —
// which waits for every transaction that checked the old epoch (FOR SHARE) — and a
// transaction that checks after the advance sees the new epoch and must not commit.

/**
 * current's statement (once per commit, its first): plain text with the shard numbers written in, so that it travels
 * with the transaction's BEGIN in one round trip (runInSqlTransaction). Shard numbers are integers of ours.
 */
function currentEpochsSql(shards: readonly number[]): string {
  for (const s of shards) if (!Number.isSafeInteger(s)) throw new RangeError(`shard number ${String(s)}`);
  return `SELECT shard, epoch::text AS epoch FROM aggregator_shard_epochs WHERE shard = ANY('{${shards.join(',')}}'::int[]) ORDER BY shard FOR SHARE`;
}

/**
 * advance's condition, for the new row and again on the locked one: no lock session named ($3 null), or that
 * session (backend pid $3) holds the advisory lock ($4 namespace, $1 shard: `pg_try_advisory_lock(int, int)`).
 */
const LOCK_HELD = `($3::int IS NULL OR EXISTS (
  SELECT 1 FROM pg_locks
  WHERE locktype = 'advisory' AND classid = $4::int::oid AND objid = $1::int::oid AND objsubid = 2
    AND granted AND pid = $3::int))`;

/** The caller's lock session does not hold the shard's lock (any more): its epoch was not advanced. */
export class ShardNotLockedError extends Error {
  constructor(readonly shard: number) {
    super(`shard ${shard}'s lock is not held by this replica's lock session: epoch not advanced`);
    this.name = 'ShardNotLockedError';
  }
}

@Injectable()
export class ShardEpochsRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /**
   * Takes the next epoch of `shard` for `holder` (committed at once). It waits for commits that checked the
   * old epoch, but only `lockTimeoutMs`: a previous holder stuck in a commit must not stall the caller's
   * other work; the caller tries again later (an UnavailableError).
   *
   * With `lockedBy`, only while that session (its backend pid) holds the shard's advisory lock
   * (`pg_try_advisory_lock(namespace, shard)`): a caller whose lock session ended after it was granted
   * must not advance the epoch over the next holder's (ShardNotLockedError). A next holder takes the lock
   * only once that session is gone, so its advance comes after this one.
   */
  async advance(
    shard: number,
    holder: string,
    lockTimeoutMs = 5_000,
    lockedBy?: { namespace: number; pid: number },
  ): Promise<number> {
    if (lockedBy && !(Number.isSafeInteger(lockedBy.pid) && Number.isSafeInteger(lockedBy.namespace)))
      throw new RangeError(`lock session ${String(lockedBy.pid)} in namespace ${String(lockedBy.namespace)}`);
    return runInSqlTransaction(this.pool as SqlPool, async (tx) => {
      await sqlQuery(tx, `SELECT set_config('lock_timeout', $1, true)`, [
        `${Math.max(1, Math.floor(lockTimeoutMs))}ms`,
      ]);
      const rows = await sqlQuery<{ epoch: string }>(
        tx,
        // Checked again on the locked row (ON CONFLICT … WHERE): after the wait for the old holder's commits.
        `INSERT INTO aggregator_shard_epochs (shard, epoch, holder)
         SELECT $1, 1, $2
         WHERE ${LOCK_HELD}
         ON CONFLICT (shard) DO UPDATE
           SET epoch = aggregator_shard_epochs.epoch + 1, holder = EXCLUDED.holder, taken_at = CURRENT_TIMESTAMP
           WHERE ${LOCK_HELD}
         RETURNING epoch::text AS epoch`,
        [shard, holder.slice(0, 256), lockedBy?.pid ?? null, lockedBy?.namespace ?? 0],
      );
      if (rows.length === 0) throw new ShardNotLockedError(shard);
      return Number(rows[0].epoch);
    });
  }

  /**
   * Inside a commit: the current epochs of `shards`. The rows stay share-locked until the transaction ends,
   * so no other holder can advance them before this commit is done.
   */
  async current(tx: SqlTx, shards: readonly number[]): Promise<Map<number, number>> {
    const rows = await sqlQuery<{ shard: number; epoch: string }>(tx, currentEpochsSql(shards));
    return new Map(rows.map((r) => [r.shard, Number(r.epoch)]));
  }
}
