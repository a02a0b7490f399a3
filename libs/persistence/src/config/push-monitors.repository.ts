import { Inject, Injectable } from '@nestjs/common';
import { rethrowSql, SQL_POOL, sqlExecute, sqlQuery, type SqlHandle, type SqlTx } from '../sql/sql-pool';

// heartbeat_monitors as the configuration owner writes them (issue 15): a `push` check's
// ping credential and schedule, same id as the check, written in the transaction that
// writes the check, so the two never disagree. Readers (status-ingest, the gateway) use
// HeartbeatMonitorsRepository; the aggregator's run state is in heartbeat_monitor_state.

/** The definition part of a monitor, copied from its push check. */
export interface PushMonitorWrite {
  id: string;
  name: string;
  periodSeconds: number;
  graceSeconds: number;
  maxRuntimeSeconds: number | null;
}

/** A monitor made before monitors were checks (no check row with its id yet). */
export interface OrphanMonitor extends PushMonitorWrite {
  createdAt: string;
}

const ROWS = `jsonb_to_recordset($1::jsonb) AS w(id uuid, name text, "periodSeconds" int, "graceSeconds" int,
  "maxRuntimeSeconds" int, "tokenHash" text)`;

@Injectable()
export class PushMonitorsRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /** New monitors with the hashes of their ping tokens (a taken hash or id is a ConflictError). */
  async insertMany(tx: SqlTx, rows: readonly (PushMonitorWrite & { tokenHash: string })[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await sqlExecute(
        tx,
        `INSERT INTO heartbeat_monitors (id, target_id, name, token_hash, period_seconds, grace_seconds, max_runtime_seconds)
         SELECT w.id, 'check:' || w.id::text, w.name, w."tokenHash", w."periodSeconds", w."graceSeconds", w."maxRuntimeSeconds"
         FROM ${ROWS}`,
        [JSON.stringify(rows)],
      );
    } catch (err) {
      rethrowSql(err, 'a heartbeat monitor with this id or token already exists');
    }
  }

  /** New definitions of existing monitors (their tokens stay). */
  async updateMany(tx: SqlTx, rows: readonly PushMonitorWrite[]): Promise<void> {
    if (rows.length === 0) return;
    await sqlExecute(
      tx,
      `UPDATE heartbeat_monitors m SET name = w.name, period_seconds = w."periodSeconds",
         grace_seconds = w."graceSeconds", max_runtime_seconds = w."maxRuntimeSeconds"
       FROM ${ROWS} WHERE m.id = w.id`,
      [JSON.stringify(rows)],
    ).catch((err: unknown) => rethrowSql(err));
  }

  /** Deletes monitors: their tokens stop working. */
  async deleteMany(tx: SqlTx, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await sqlExecute(tx, 'DELETE FROM heartbeat_monitors WHERE id = ANY($1::uuid[])', [[...ids]]).catch(
      (err: unknown) => rethrowSql(err),
    );
  }

  /** Monitors without a check of the same id, oldest first. */
  async orphans(tx?: SqlTx, limit = 1000): Promise<OrphanMonitor[]> {
    const rows = await sqlQuery<{
      id: string;
      name: string;
      period_seconds: number;
      grace_seconds: number;
      max_runtime_seconds: number | null;
      created_at: Date;
    }>(
      tx ?? this.pool,
      `SELECT m.id::text AS id, m.name, m.period_seconds, m.grace_seconds, m.max_runtime_seconds, m.created_at
       FROM heartbeat_monitors m WHERE NOT EXISTS (SELECT 1 FROM checks c WHERE c.id = m.id)
       ORDER BY m.created_at, m.id LIMIT $1`,
      [limit],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      periodSeconds: r.period_seconds,
      graceSeconds: r.grace_seconds,
      maxRuntimeSeconds: r.max_runtime_seconds,
      createdAt: new Date(r.created_at).toISOString(),
    }));
  }
}
