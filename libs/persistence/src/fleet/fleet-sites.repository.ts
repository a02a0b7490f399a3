import { Inject, Injectable } from '@nestjs/common';
import {
  rethrowSql,
  runInSqlTransaction,
  SQL_POOL,
  sqlExecute,
  sqlQuery,
  type SqlHandle,
  type SqlPool,
  type SqlTransaction,
} from '../sql/sql-pool';

// fleet_sites (issue 19): the members a leader polls and the state of their last poll.
// Writer: sync-orchestrator's fleet poller; the gateway reads. No credential is ever stored.
// fleet_poll_epochs: the fleet-poll lease's fencing token (see its migration). A holder's writes name the epoch it
// took the lease under (FleetPollFence) and are refused once another replica has advanced it.

export interface FleetSiteRecord {
  name: string;
  url: string;
  tags: string[];
  failoverOrder: number | null;
  propertyOverrides: Record<string, unknown>;
  source: string;
  lastAttemptAt: Date | null;
  lastSuccessAt: Date | null;
  lastError: string | null;
  consecutiveFailures: number;
}

export interface FleetSiteWrite {
  name: string;
  url: string;
  tags: string[];
  failoverOrder: number | null;
  propertyOverrides: Record<string, unknown>;
}

export interface FleetPollOutcome {
  name: string;
  at: Date;
  ok: boolean;
  error: string | null;
}

/** The lease epoch a poll cycle's writes are made under: refused (FleetPollFencedError) unless still the current one. */
export interface FleetPollFence {
  /** The lease's name (FLEET_POLL_LEASE_NAME). */
  lease: string;
  epoch: number;
}

/** A write under an epoch of the fleet-poll lease that is no longer current, or an advance by a session that lost the lock. */
export class FleetPollFencedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FleetPollFencedError';
  }
}

/**
 * advancePollEpoch's condition, for the new row and again on the locked one: the session with backend pid $3 holds the
 * lease's advisory lock (`pg_try_advisory_lock(hashtextextended($1, 0))`: a bigint key, shown by pg_locks as its high
 * half in classid, its low half in objid, objsubid 1).
 */
const LEASE_LOCK_HELD = `EXISTS (
  SELECT 1 FROM pg_locks
  WHERE locktype = 'advisory' AND granted AND pid = $3::int AND objsubid = 1
    AND classid = ((hashtextextended($1, 0) >> 32) & 4294967295)::oid
    AND objid = (hashtextextended($1, 0) & 4294967295)::oid)`;

/**
 * How long the server keeps a fenced transaction open while its client sends nothing (idle_in_transaction_session_timeout,
 * set for the transaction only): a replica whose machine went away in the middle of one (no close ever reached the
 * server) would otherwise hold its epoch row FOR SHARE — and the next holder's advance, or the presence lock a removal
 * holds — until the OS keep-alive gave up on it, two hours by default. The server then ends that session.
 */
const FENCED_TX_IDLE_LIMIT = '10000ms';
const LIMIT_IDLE_IN_TX = `SELECT set_config('idle_in_transaction_session_timeout', $1, true)`;

interface Row {
  name: string;
  url: string;
  tags: string[] | null;
  failover_order: number | null;
  property_overrides: Record<string, unknown> | string;
  source: string;
  last_attempt_at: Date | null;
  last_success_at: Date | null;
  last_error: string | null;
  consecutive_failures: number;
}

const toRecord = (r: Row): FleetSiteRecord => ({
  name: r.name,
  url: r.url,
  tags: r.tags ?? [],
  failoverOrder: r.failover_order,
  propertyOverrides:
    typeof r.property_overrides === 'string'
      ? (JSON.parse(r.property_overrides) as Record<string, unknown>)
      : r.property_overrides,
  source: r.source,
  lastAttemptAt: r.last_attempt_at === null ? null : new Date(r.last_attempt_at),
  lastSuccessAt: r.last_success_at === null ? null : new Date(r.last_success_at),
  lastError: r.last_error,
  consecutiveFailures: r.consecutive_failures,
});

const COLUMNS = `name, url, tags, failover_order, property_overrides, source, last_attempt_at, last_success_at,
  last_error, consecutive_failures`;

@Injectable()
export class FleetSitesRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  async list(): Promise<FleetSiteRecord[]> {
    const rows = await sqlQuery<Row>(this.pool, `SELECT ${COLUMNS} FROM fleet_sites ORDER BY name`).catch(rethrowSql);
    return rows.map(toRecord);
  }

  async find(name: string): Promise<FleetSiteRecord | null> {
    const [row] = await sqlQuery<Row>(this.pool, `SELECT ${COLUMNS} FROM fleet_sites WHERE name = $1`, [name]).catch(
      rethrowSql,
    );
    return row ? toRecord(row) : null;
  }

  /**
   * Takes the next epoch of the fleet-poll lease `lease` for `holder` (committed at once), only while the session
   * `lockedBy` (its backend pid) holds the lease's advisory lock: a holder whose lock session ended after the lock was
   * granted must not advance the epoch over the next holder's (FleetPollFencedError). It waits for writes that checked
   * the old epoch, but only `lockTimeoutMs` (an UnavailableError then; the caller tries again next tick). The epoch
   * taken is at least `atLeast`: above one another copy of the token holds (Redis fleet:poll-epoch), which may be
   * ahead of this table after a restore from a backup or a failover that lost the last commits.
   */
  async advancePollEpoch(
    lease: string,
    holder: string,
    lockedBy: { pid: number },
    { lockTimeoutMs = 5_000, atLeast = 1 }: { lockTimeoutMs?: number; atLeast?: number } = {},
  ): Promise<number> {
    if (!Number.isSafeInteger(lockedBy.pid)) throw new RangeError(`lock session ${String(lockedBy.pid)}`);
    if (!Number.isSafeInteger(atLeast)) throw new RangeError(`epoch floor ${String(atLeast)}`);
    return runInSqlTransaction(this.pool as SqlPool, async (tx) => {
      await sqlQuery(
        tx,
        `SELECT set_config('lock_timeout', $1, true), set_config('idle_in_transaction_session_timeout', $2, true)`,
        [`${Math.max(1, Math.floor(lockTimeoutMs))}ms`, FENCED_TX_IDLE_LIMIT],
      );
      const rows = await sqlQuery<{ epoch: string }>(
        tx,
        // Checked again on the locked row (ON CONFLICT … WHERE): after the wait for the old holder's writes.
        `INSERT INTO fleet_poll_epochs (name, epoch, holder)
         SELECT $1, GREATEST(1, $4::bigint), $2
         WHERE ${LEASE_LOCK_HELD}
         ON CONFLICT (name) DO UPDATE
           SET epoch = GREATEST(fleet_poll_epochs.epoch + 1, $4::bigint), holder = EXCLUDED.holder,
               taken_at = CURRENT_TIMESTAMP
           WHERE ${LEASE_LOCK_HELD}
         RETURNING epoch::text AS epoch`,
        [lease, holder.slice(0, 256), lockedBy.pid, String(atLeast)],
      );
      if (rows.length === 0)
        throw new FleetPollFencedError(
          `the ${lease} lease is not held by this replica's lock session: epoch not advanced`,
        );
      return Number(rows[0].epoch);
    }).catch((err: unknown) => (err instanceof FleetPollFencedError ? Promise.reject(err) : rethrowSql(err)));
  }

  /**
   * Inside a write: refuses it (FleetPollFencedError) unless `fence.epoch` is the lease's current epoch. The row stays
   * share-locked until the transaction ends, so a new holder's advance waits for this write to commit or roll back.
   */
  private async checkFence(tx: SqlTransaction, fence: FleetPollFence): Promise<void> {
    await sqlQuery(tx, LIMIT_IDLE_IN_TX, [FENCED_TX_IDLE_LIMIT]);
    const rows = await sqlQuery<{ epoch: string }>(
      tx,
      'SELECT epoch::text AS epoch FROM fleet_poll_epochs WHERE name = $1 FOR SHARE',
      [fence.lease],
    );
    const current = rows.length === 1 ? Number(rows[0].epoch) : undefined;
    if (current !== fence.epoch)
      throw new FleetPollFencedError(
        `the ${fence.lease} lease was taken by another replica (epoch ${String(current)}, this write's ${fence.epoch}): not written`,
      );
  }

  /**
   * Makes the configured members exactly `sites` (source `config`): upserts them, deletes
   * configured ones no longer listed; poll state of kept members stays. Returns the names removed.
   * With `fence`, only while that epoch of the fleet-poll lease is current (else FleetPollFencedError, nothing written).
   */
  async syncConfigured(sites: readonly FleetSiteWrite[], fence?: FleetPollFence): Promise<string[]> {
    return runInSqlTransaction(this.pool as SqlPool, async (tx): Promise<string[]> => {
      if (fence) await this.checkFence(tx, fence);
      const removed = await sqlQuery<{ name: string }>(
        tx,
        `DELETE FROM fleet_sites WHERE source = 'config' AND NOT (name = ANY($1::text[])) RETURNING name`,
        [sites.map((s) => s.name)],
      );
      if (sites.length > 0)
        await sqlExecute(
          tx,
          `INSERT INTO fleet_sites (name, url, tags, failover_order, property_overrides, source, updated_at)
           SELECT s.name, s.url, ARRAY(SELECT jsonb_array_elements_text(s.tags)), s.failover_order, s.overrides, 'config', now()
             FROM jsonb_to_recordset($1::jsonb) AS s(name text, url text, tags jsonb, failover_order int, overrides jsonb)
           ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, tags = EXCLUDED.tags,
             failover_order = EXCLUDED.failover_order, property_overrides = EXCLUDED.property_overrides,
             source = 'config', updated_at = now()`,
          [
            JSON.stringify(
              sites.map((s) => ({
                name: s.name,
                url: s.url,
                tags: s.tags,
                failover_order: s.failoverOrder,
                overrides: s.propertyOverrides,
              })),
            ),
          ],
        );
      return removed.map((r) => r.name);
    }).catch((err: unknown) => (err instanceof FleetPollFencedError ? Promise.reject(err) : rethrowSql(err)));
  }

  /**
   * Whether a replica with a leader configuration is running: one whose lock session holds `presenceLock` (a shared
   * advisory lock, hashtextextended(name, 0)). Read by trying the exclusive lock for this statement only.
   */
  async configuredClaimed(presenceLock: string): Promise<boolean> {
    const rows = await sqlQuery<{ free: boolean }>(
      this.pool,
      'SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS free',
      [presenceLock],
    ).catch((err: unknown) => rethrowSql(err));
    return rows[0]?.free !== true;
  }

  /**
   * Deletes every configured member (source `config`; registered ones stay) unless a replica with a leader
   * configuration is running (see configuredClaimed): null then, nothing deleted. The exclusive lock is held until the
   * delete commits, so such a replica starting meanwhile writes its members after it. Returns the names removed.
   */
  async removeConfiguredIfUnclaimed(presenceLock: string): Promise<string[] | null> {
    return runInSqlTransaction(this.pool as SqlPool, async (tx): Promise<string[] | null> => {
      await sqlQuery(tx, LIMIT_IDLE_IN_TX, [FENCED_TX_IDLE_LIMIT]);
      const [lock] = await sqlQuery<{ free: boolean }>(
        tx,
        'SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS free',
        [presenceLock],
      );
      if (lock?.free !== true) return null;
      const removed = await sqlQuery<{ name: string }>(
        tx,
        `DELETE FROM fleet_sites WHERE source = 'config' RETURNING name`,
      );
      return removed.map((r) => r.name);
    }).catch((err: unknown) => rethrowSql(err));
  }

  /**
   * Records a cycle's outcomes in one statement. With `fence`, only while that epoch of the fleet-poll lease is current
   * (else FleetPollFencedError, nothing written).
   */
  async recordPolls(outcomes: readonly FleetPollOutcome[], fence?: FleetPollFence): Promise<void> {
    if (outcomes.length === 0) return;
    if (!fence) return this.updatePolls(this.pool, outcomes).catch(rethrowSql);
    await runInSqlTransaction(this.pool as SqlPool, async (tx) => {
      await this.checkFence(tx, fence);
      await this.updatePolls(tx, outcomes);
    }).catch((err: unknown) => (err instanceof FleetPollFencedError ? Promise.reject(err) : rethrowSql(err)));
  }

  private async updatePolls(on: SqlHandle | SqlTransaction, outcomes: readonly FleetPollOutcome[]): Promise<void> {
    await sqlExecute(
      on,
      `UPDATE fleet_sites f SET
         last_attempt_at = o.at,
         last_success_at = CASE WHEN o.ok THEN o.at ELSE f.last_success_at END,
         last_error = CASE WHEN o.ok THEN NULL ELSE o.error END,
         consecutive_failures = CASE WHEN o.ok THEN 0 ELSE f.consecutive_failures + 1 END
       FROM jsonb_to_recordset($1::jsonb) AS o(name text, at timestamptz, ok boolean, error text)
       WHERE f.name = o.name`,
      [JSON.stringify(outcomes.map((o) => ({ name: o.name, at: o.at.toISOString(), ok: o.ok, error: o.error })))],
    );
  }
}
