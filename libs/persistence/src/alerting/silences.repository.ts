import { Inject, Injectable } from '@nestjs/common';
import { rethrowSql, SQL_POOL, sqlExecute, sqlQuery, type SqlHandle, type SqlTx } from '../sql/sql-pool';

// silences (writer: sync-orchestrator, in the config writer's transaction). The spec as validated;
// starts_at / ends_at copied out for the active / pending / expired lists (compared with the
// database's clock, one clock for every reader).

export type SilenceListState = 'active' | 'pending' | 'expired';

export interface SilenceRecord<S = Record<string, unknown>> {
  id: string;
  spec: S;
  state: SilenceListState;
  version: number;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  id: string;
  spec: Record<string, unknown>;
  state: SilenceListState;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `id::text AS id, spec, version, created_at, updated_at,
  CASE WHEN ends_at <= now() THEN 'expired' WHEN starts_at > now() THEN 'pending' ELSE 'active' END AS state`;

const toRecord = <S>(r: Row): SilenceRecord<S> => ({
  id: r.id,
  spec: r.spec as S,
  state: r.state,
  version: r.version,
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
});

@Injectable()
export class SilencesRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  async find<S>(id: string, tx?: SqlTx): Promise<SilenceRecord<S> | null> {
    const rows = await sqlQuery<Row>(tx ?? this.pool, `SELECT ${COLUMNS} FROM silences WHERE id = $1::uuid`, [
      id,
    ]).catch((err: unknown) => rethrowSql(err));
    return rows[0] ? toRecord<S>(rows[0]) : null;
  }

  /** Newest first (created_at, id), optionally by state, after a page position. */
  async list<S>(q: {
    state?: SilenceListState;
    before?: { at: string; id: string };
    limit: number;
  }): Promise<SilenceRecord<S>[]> {
    const rows = await sqlQuery<Row>(
      this.pool,
      `SELECT * FROM (SELECT ${COLUMNS} FROM silences) s
       WHERE ($1::text IS NULL OR s.state = $1)
         AND ($2::timestamptz IS NULL OR (s.created_at, s.id::uuid) < ($2::timestamptz, $3::uuid))
       ORDER BY s.created_at DESC, s.id DESC LIMIT $4`,
      [q.state ?? null, q.before?.at ?? null, q.before?.id ?? null, q.limit],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => toRecord<S>(r));
  }

  async insert<S>(
    tx: SqlTx,
    s: { id: string; spec: S & { startsAt: string; endsAt: string; createdBy: string } },
    version: number,
  ): Promise<SilenceRecord<S>> {
    const rows = await sqlQuery<Row>(
      tx,
      `INSERT INTO silences (id, spec, starts_at, ends_at, created_by, version)
       VALUES ($1::uuid, $2::jsonb, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
      [s.id, JSON.stringify(s.spec), s.spec.startsAt, s.spec.endsAt, s.spec.createdBy, version],
    ).catch((err: unknown) => rethrowSql(err, `silence ${s.id} already exists`));
    return toRecord<S>(rows[0]);
  }

  /** Ends a silence at the database's now (its spec's endsAt with it; a pending one starts now too). */
  async expire<S>(tx: SqlTx, id: string, version: number): Promise<SilenceRecord<S> | null> {
    const rows = await sqlQuery<Row>(
      tx,
      // Truncated to the column's milliseconds: rounding up would leave it ending just after now.
      `WITH t AS (SELECT date_trunc('milliseconds', now()) AS at,
          to_jsonb(to_char(date_trunc('milliseconds', now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) AS text)
       UPDATE silences SET
         starts_at = LEAST(starts_at, t.at), ends_at = t.at, version = $2, updated_at = now(),
         spec = jsonb_set(jsonb_set(spec, '{endsAt}', t.text), '{startsAt}',
           CASE WHEN starts_at > t.at THEN t.text ELSE spec->'startsAt' END)
       FROM t WHERE id = $1::uuid RETURNING ${COLUMNS}`,
      [id, version],
    ).catch((err: unknown) => rethrowSql(err));
    return rows[0] ? toRecord<S>(rows[0]) : null;
  }

  async delete(tx: SqlTx, id: string): Promise<number> {
    return sqlExecute(tx, 'DELETE FROM silences WHERE id = $1::uuid', [id]).catch((err: unknown) => rethrowSql(err));
  }
}
