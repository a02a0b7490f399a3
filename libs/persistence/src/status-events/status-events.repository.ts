import { Inject, Injectable } from '@nestjs/common';
import { truncateText, type TargetKind, type TargetStatus } from '@fleetwatch/contracts';
import type { StatusEventDraft } from '@fleetwatch/domain';
import { preparedSql, rethrowSql, SQL_POOL, sqlExecute, sqlQuery, type SqlHandle, type SqlTx } from '../sql/sql-pool';
import { clean, iso, ms } from '../sql-values';

// status_events (kept, no retention) and their transactional outbox: an event is
// inserted with an outbox row in the transaction that caused it; the outbox row is
// deleted once `status.changed` is confirmed by the broker, so a crash between
// commit and publish leaves it for the relay instead of losing the publication.

/** A stored status event; `id` doubles as the bus message id of its `status.changed`. */
export interface StatusEventRecord extends StatusEventDraft {
  id: string;
}

interface EventRow {
  id: string;
  target_id: string;
  kind: string | null;
  location: string | null;
  from_status: string | null;
  to_status: string;
  reason: string | null;
  at: number;
  sequence: number;
}

function toRecord(r: EventRow): StatusEventRecord {
  return {
    id: r.id,
    targetId: r.target_id,
    kind: (r.kind ?? 'instance') as TargetKind,
    location: r.location,
    from: (r.from_status ?? 'UNKNOWN') as TargetStatus,
    to: r.to_status as TargetStatus,
    reason: r.reason ?? '',
    at: ms(r.at) as number,
    sequence: Number(r.sequence),
  };
}

const EVENT_COLUMNS = `e.id::text AS id, e.target_id, t.kind::text AS kind, e.location, e.from_status::text AS from_status, e.to_status::text AS to_status,
  e.reason, (extract(epoch FROM e.occurred_at) * 1000)::float8 AS at, e.sequence::float8 AS sequence`;

/** The outbox rows of published events (after every commit with events). */
const DELETE_OUTBOX = preparedSql('DELETE FROM status_event_outbox WHERE event_id = ANY($1::uuid[])');

/** insertMany's statement (the commit path's: prepared once per connection). */
const INSERT_EVENTS = preparedSql(
  `WITH ins AS (
           INSERT INTO status_events (target_id, location, from_status, to_status, reason, occurred_at, sequence)
           SELECT u.target_id, u.location, u.from_status::target_status, u.to_status::target_status, u.reason, u.at, u.sequence
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bigint[])
             AS u(target_id, location, from_status, to_status, reason, at, sequence)
           RETURNING id, target_id, sequence
         ), outbox AS (
           INSERT INTO status_event_outbox (event_id) SELECT id FROM ins
         )
         SELECT id::text AS id, target_id, sequence::float8 AS seq FROM ins`,
);

@Injectable()
export class StatusEventsRepository {
  /** `pool`: the service's SqlPool (SQL_POOL), or a Prisma DatabaseClient where that is what the caller holds. */
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /** Stores events (one statement) with their outbox rows; returns them with their ids, in input order. */
  async insertMany(tx: SqlTx, events: readonly StatusEventDraft[]): Promise<StatusEventRecord[]> {
    if (events.length === 0) return [];
    // The reason as stored is the reason returned, and so published by the relay straight from the commit: a
    // consensus reason (`location x: ` + a location's reason of up to 1,024 characters) longer than the
    // status.changed schema's 1,024 was stored cut but published whole — refused by the schema, and dropped from the
    // outbox: the consensus change never reached alerts, subscriptions or the dashboard.
    const reasons = events.map((e) => truncateText(clean(e.reason), 1024));
    try {
      const rows = await sqlQuery<{ id: string; target_id: string; seq: number }>(tx, INSERT_EVENTS, [
        events.map((e) => clean(e.targetId)),
        events.map((e) => e.location),
        events.map((e) => e.from),
        events.map((e) => e.to),
        reasons,
        events.map((e) => iso(e.at)),
        events.map((e) => e.sequence),
      ]);
      const idOf = new Map(rows.map((r) => [`${r.target_id}\u0000${Number(r.seq)}`, r.id]));
      return events.map((e, i) => ({
        ...e,
        reason: reasons[i],
        id: idOf.get(`${e.targetId}\u0000${e.sequence}`) as string,
      }));
    } catch (err) {
      rethrowSql(err, 'status event sequence already used');
    }
  }

  /** Events still waiting for their `status.changed` confirm, oldest first, per target in sequence order. */
  async pendingPublication(limit = 500): Promise<StatusEventRecord[]> {
    try {
      const rows = await sqlQuery<EventRow>(
        this.pool,
        `SELECT ${EVENT_COLUMNS}
         FROM status_event_outbox o JOIN status_events e ON e.id = o.event_id LEFT JOIN target_states t ON t.target_id = e.target_id
         ORDER BY o.created_at, e.target_id, e.sequence LIMIT $1`,
        [limit],
      );
      return rows.map(toRecord);
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** The broker confirmed these: drop them from the outbox. */
  async markPublished(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await sqlExecute(this.pool, DELETE_OUTBOX, [[...ids]]).catch((err: unknown) => rethrowSql(err));
  }

  /**
   * The site's events, newest first, paged by (occurred_at, id): `before` is the last
   * row of the previous page. Optional filter by target. Served by the occurred_at index.
   */
  async listRecent(options: {
    limit: number;
    before?: { at: number; id: string };
    targetId?: string;
  }): Promise<StatusEventRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.targetId !== undefined) {
      params.push(options.targetId);
      where.push(`e.target_id = $${params.length}`);
    }
    if (options.before) {
      params.push(new Date(options.before.at), options.before.id);
      where.push(`(e.occurred_at, e.id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(options.limit);
    try {
      const rows = await sqlQuery<EventRow>(
        this.pool,
        `SELECT ${EVENT_COLUMNS} FROM status_events e LEFT JOIN target_states t ON t.target_id = e.target_id
         ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY e.occurred_at DESC, e.id DESC LIMIT $${params.length}`,
        params,
      );
      return rows.map(toRecord);
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** A target's events in sequence order (after `afterSequence`). */
  async listForTarget(targetId: string, afterSequence = 0, limit = 500): Promise<StatusEventRecord[]> {
    try {
      const rows = await sqlQuery<EventRow>(
        this.pool,
        `SELECT ${EVENT_COLUMNS} FROM status_events e LEFT JOIN target_states t ON t.target_id = e.target_id
         WHERE e.target_id = $1 AND e.sequence > $2 ORDER BY e.sequence LIMIT $3`,
        [targetId, afterSequence, limit],
      );
      return rows.map(toRecord);
    } catch (err) {
      rethrowSql(err);
    }
  }
}
