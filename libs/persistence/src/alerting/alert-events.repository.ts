import { Inject, Injectable } from '@nestjs/common';
import { alertEndReasonOf, toStorable, uuidv7, type AlertEndReason } from '@fleetwatch/contracts';
import { rethrowSql, SQL_POOL, sqlExecute, sqlQuery, type SqlHandle, type SqlTx } from '../sql/sql-pool';
import { clean, iso, jsonOrNull, ms } from '../sql-values';

// alert_events (alert history, kept for the rollup window) and their transactional outbox (migration
// 20261206130000_alert_events): the evaluator inserts an alert's state changes with outbox rows in the transaction
// of the decision that made them; an outbox row is deleted once `alert.state-changed` is confirmed by the broker, so a
// crash between commit and publish leaves it for the relay instead of losing the publication. An event whose row
// retention deletes takes its outbox row with it (ON DELETE CASCADE). An end carries its reason (end_reason, migration
// 20261206200000_alert_event_end_reason): NULL on other changes and on rows recorded before it. An end as series_absent
// carries since when the series was missing too (absent_since, migration 20261207100000_alert_event_absent_since): how
// long it had no data, which the reason alone does not tell (the grace scales with the target's report interval).

export type AlertEventState = 'inactive' | 'pending' | 'firing' | 'resolved';

/** One state change of an alert, as the evaluator decided it. */
export interface AlertEventDraft {
  ruleId: string;
  targetId: string;
  fingerprint: string;
  from: AlertEventState;
  to: AlertEventState;
  labels: Record<string, string>;
  value: number | null;
  /** Epoch ms of the decision. */
  at: number;
  /** Why the alert ended (to resolved, or pending to inactive); absent or null otherwise. */
  endReason?: AlertEndReason | null;
  /** Ended as series_absent: since when the series was missing (epoch ms); absent or null otherwise. */
  absentSince?: number | null;
}

/** A stored alert event; `id` doubles as the id of its `alert.state-changed` message. */
export interface AlertEventRecord extends AlertEventDraft {
  id: string;
  /** Null when none (or one a newer version stored that this one does not know). */
  endReason: AlertEndReason | null;
  /** Null when none (every change but an end as series_absent, and rows recorded before it was kept). */
  absentSince: number | null;
}

interface EventRow {
  id: string;
  rule_id: string;
  target_id: string;
  fingerprint: string;
  from_state: string;
  to_state: string;
  labels: Record<string, string> | null;
  value: number | null;
  at: number;
  end_reason: string | null;
  absent_since: number | null;
}

const COLUMNS = `e.id::text AS id, e.rule_id, e.target_id, e.fingerprint, e.from_state, e.to_state, e.labels, e.value,
  (extract(epoch FROM e.occurred_at) * 1000)::float8 AS at, e.end_reason,
  (extract(epoch FROM e.absent_since) * 1000)::float8 AS absent_since`;

function toRecord(r: EventRow): AlertEventRecord {
  return {
    id: r.id,
    ruleId: r.rule_id,
    targetId: r.target_id,
    fingerprint: r.fingerprint,
    from: r.from_state as AlertEventState,
    to: r.to_state as AlertEventState,
    labels: r.labels ?? {},
    value: r.value === null ? null : Number(r.value),
    at: ms(r.at) as number,
    endReason: alertEndReasonOf(r.end_reason),
    absentSince: ms(r.absent_since),
  };
}

/** A finite figure float8 holds as itself; anything else (NaN, ±Infinity) as null. */
const finite = (v: number | null): number | null => (v !== null && Number.isFinite(v) ? v : null);

export interface AlertEventQuery {
  limit: number;
  /** The last row of the previous page (newest first). */
  before?: { at: number; id: string };
  ruleId?: string;
  targetId?: string;
  /** Only events at or after this instant (epoch ms). */
  since?: number;
}

@Injectable()
export class AlertEventsRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /** Stores events with their outbox rows (one statement); returns them with their ids, in input order. */
  async insertMany(tx: SqlTx, events: readonly AlertEventDraft[]): Promise<AlertEventRecord[]> {
    if (events.length === 0) return [];
    // Stored as they read back: text cleaned of what Postgres refuses (NUL, lone surrogates), a figure float8 holds.
    const records: AlertEventRecord[] = events.map((e) => ({
      // Monotonic in this process (the writer, one lease holder): two decisions in one millisecond keep their order.
      id: uuidv7(),
      ruleId: clean(e.ruleId),
      targetId: clean(e.targetId),
      fingerprint: clean(e.fingerprint),
      from: e.from,
      to: e.to,
      labels: toStorable(e.labels),
      value: finite(e.value),
      at: e.at,
      endReason: alertEndReasonOf(e.endReason),
      absentSince: e.absentSince ?? null,
    }));
    try {
      await sqlExecute(
        tx,
        `WITH ins AS (
           INSERT INTO alert_events (id, rule_id, target_id, fingerprint, from_state, to_state, labels, value, occurred_at,
             end_reason, absent_since)
           SELECT u.id, u.r, u.t, u.f, u.fs, u.ts, u.l::jsonb, u.v, u.a, u.er, u.abs
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::float8[],
             $9::timestamptz[], $10::text[], $11::timestamptz[]) AS u(id, r, t, f, fs, ts, l, v, a, er, abs)
           RETURNING id
         )
         INSERT INTO alert_event_outbox (event_id) SELECT id FROM ins`,
        [
          records.map((e) => e.id),
          records.map((e) => e.ruleId),
          records.map((e) => e.targetId),
          records.map((e) => e.fingerprint),
          records.map((e) => e.from),
          records.map((e) => e.to),
          records.map((e) => jsonOrNull(e.labels) ?? '{}'),
          records.map((e) => e.value),
          records.map((e) => iso(e.at)),
          records.map((e) => e.endReason),
          records.map((e) => iso(e.absentSince)),
        ],
      );
      return records;
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** Events still waiting for their `alert.state-changed` confirm, oldest first. */
  async pendingPublication(limit = 500): Promise<AlertEventRecord[]> {
    try {
      const rows = await sqlQuery<EventRow>(
        this.pool,
        `SELECT ${COLUMNS} FROM alert_event_outbox o JOIN alert_events e ON e.id = o.event_id
         ORDER BY o.created_at, e.occurred_at, e.id LIMIT $1`,
        [limit],
      );
      return rows.map(toRecord);
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** The broker confirmed these (or they can never be published): drop them from the outbox. */
  async markPublished(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await sqlExecute(this.pool, 'DELETE FROM alert_event_outbox WHERE event_id = ANY($1::uuid[])', [[...ids]]).catch(
      (err: unknown) => rethrowSql(err),
    );
  }

  /** How many events wait for publication (for /metrics and health). */
  async pendingCount(): Promise<number> {
    try {
      const rows = await sqlQuery<{ n: number }>(this.pool, 'SELECT count(*)::float8 AS n FROM alert_event_outbox');
      return Number(rows[0]?.n ?? 0);
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** The site's alert history, newest first, paged by (occurred_at, id); optionally one rule's or one target's. */
  async list(q: AlertEventQuery): Promise<AlertEventRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (q.ruleId !== undefined) where.push(`e.rule_id = ${p(q.ruleId)}`);
    if (q.targetId !== undefined) where.push(`e.target_id = ${p(q.targetId)}`);
    if (q.since !== undefined) where.push(`e.occurred_at >= ${p(iso(q.since))}::timestamptz`);
    if (q.before) where.push(`(e.occurred_at, e.id) < (${p(iso(q.before.at))}::timestamptz, ${p(q.before.id)}::uuid)`);
    try {
      const rows = await sqlQuery<EventRow>(
        this.pool,
        `SELECT ${COLUMNS} FROM alert_events e ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY e.occurred_at DESC, e.id DESC LIMIT ${p(q.limit)}`,
        params,
      );
      return rows.map(toRecord);
    } catch (err) {
      rethrowSql(err);
    }
  }
}
