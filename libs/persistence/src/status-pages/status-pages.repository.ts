import { Inject, Injectable } from '@nestjs/common';
import type { TargetStatus } from '@fleetwatch/contracts';
import { rethrowSql, SQL_POOL, sqlExecute, sqlQuery, type SqlHandle, type SqlTx } from '../sql/sql-pool';

// status_pages (writer: sync-orchestrator, inside the config writer's transaction, like alert rules)
// and the reads a public status page needs (api-gateway): the targets its components select from
// target_states, and their consensus status events (no location) over the uptime window.

export interface StatusPageRecord<S = Record<string, unknown>> {
  id: string;
  slug: string;
  spec: S;
  version: number;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  id: string;
  slug: string;
  spec: Record<string, unknown>;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'id::text AS id, slug, spec, version, created_at, updated_at';

function toRecord<S>(r: Row): StatusPageRecord<S> {
  return {
    id: r.id,
    slug: r.slug,
    spec: r.spec as S,
    version: r.version,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

/**
 * A target a component selected: its id, consensus status and tags (which maintenance windows cover it) — nothing of
 * it leaves for the public.
 */
export interface StatusPageTarget {
  targetId: string;
  status: TargetStatus;
  tags: string[];
  /** Deleted (a tombstone: selectTargets `historySince`): its history only, after what the live targets need. */
  deleted: boolean;
}

/** What the maintenance windows open now cover: targets by id, by any of these tags, or all of them (this site). */
export interface StatusPageCoverage {
  targetIds: readonly string[];
  tags: readonly string[];
  all: boolean;
}

/** A consensus status change of one target (ms since epoch). */
export interface StatusPageChange {
  targetId: string;
  at: number;
  to: TargetStatus;
}

@Injectable()
export class StatusPagesRepository {
  /** `pool`: the service's SqlPool (SQL_POOL), or the gateway's Prisma DatabaseClient. */
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  async find<S = Record<string, unknown>>(id: string, tx?: SqlTx): Promise<StatusPageRecord<S> | null> {
    const rows = await sqlQuery<Row>(tx ?? this.pool, `SELECT ${COLUMNS} FROM status_pages WHERE id = $1::uuid`, [
      id,
    ]).catch((err: unknown) => rethrowSql(err));
    return rows[0] ? toRecord<S>(rows[0]) : null;
  }

  async findBySlug<S = Record<string, unknown>>(slug: string, tx?: SqlTx): Promise<StatusPageRecord<S> | null> {
    const rows = await sqlQuery<Row>(tx ?? this.pool, `SELECT ${COLUMNS} FROM status_pages WHERE slug = $1`, [
      slug,
    ]).catch((err: unknown) => rethrowSql(err));
    return rows[0] ? toRecord<S>(rows[0]) : null;
  }

  /** A page by id (byte order of the UUID text), after `afterId`. */
  /** `tx`: inside a configuration write (the writer's transaction), never a second pool connection. */
  async list<S = Record<string, unknown>>(
    q: { afterId?: string; limit: number },
    tx?: SqlTx,
  ): Promise<StatusPageRecord<S>[]> {
    const rows = await sqlQuery<Row>(
      tx ?? this.pool,
      `SELECT ${COLUMNS} FROM status_pages WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2`,
      [q.afterId ?? null, q.limit],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => toRecord<S>(r));
  }

  async insert<S>(tx: SqlTx, p: { id: string; slug: string; spec: S }, version: number): Promise<StatusPageRecord<S>> {
    const rows = await sqlQuery<Row>(
      tx,
      `INSERT INTO status_pages (id, slug, spec, version) VALUES ($1::uuid, $2, $3::jsonb, $4) RETURNING ${COLUMNS}`,
      [p.id, p.slug, JSON.stringify(p.spec), version],
    ).catch((err: unknown) => rethrowSql(err, `status page slug "${p.slug}" is taken`));
    return toRecord<S>(rows[0]);
  }

  async update<S>(tx: SqlTx, p: { id: string; slug: string; spec: S }, version: number): Promise<StatusPageRecord<S>> {
    const rows = await sqlQuery<Row>(
      tx,
      `UPDATE status_pages SET slug = $2, spec = $3::jsonb, version = $4, updated_at = now()
       WHERE id = $1::uuid RETURNING ${COLUMNS}`,
      [p.id, p.slug, JSON.stringify(p.spec), version],
    ).catch((err: unknown) => rethrowSql(err, `status page slug "${p.slug}" is taken`));
    return toRecord<S>(rows[0]);
  }

  async delete(tx: SqlTx, id: string): Promise<number> {
    return sqlExecute(tx, 'DELETE FROM status_pages WHERE id = $1::uuid', [id]).catch((err: unknown) =>
      rethrowSql(err),
    );
  }

  /**
   * The targets carrying every tag of `tags` (none: no tag selection) or listed in `ids`, deleted
   * checks left out; at most `limit`: those listed by id first, then by id (a sample that does not move with the
   * targets' status: bars drawn from it stay put). With `statuses`, the distinct statuses of every target the
   * selection holds, however many: a component's state is theirs (a DOWN target past the first 200 by id was left
   * out, and a page said "operational" during an outage). `statuses` are those of the targets `openNow` does not
   * cover, `covered` those of the targets it does (under maintenance now) — the same one query, however many targets.
   * `historySince` (ms): the sample also holds the targets the selection held that were deleted since then (their rows
   * stay as tombstones, tags and all, and their status events are kept; the deletion's own event, to UNKNOWN, ends
   * their history), after every live one — their past outages stay on the page's bars and incidents rather than
   * vanishing with the target. They are in no `statuses`: a deleted target has no state now.
   */
  async selectTargets(
    sel: { tags: readonly string[]; ids: readonly string[] },
    limit: number,
    openNow: StatusPageCoverage = { targetIds: [], tags: [], all: false },
    historySince?: number,
  ): Promise<{ sample: StatusPageTarget[]; statuses: TargetStatus[]; covered: TargetStatus[] }> {
    const selected = `((cardinality($1::text[]) > 0 AND tags @> $1::text[]) OR target_id = ANY($2::text[]))`;
    const where = `deleted_at IS NULL AND ${selected}`;
    const args = [[...sel.tags], [...sel.ids]];
    const since = historySince === undefined ? null : new Date(historySince);
    const [rows, statuses] = await Promise.all([
      sqlQuery<{ target_id: string; status: TargetStatus; tags: string[]; deleted: boolean }>(
        this.pool,
        `SELECT target_id, status::text AS status, tags, deleted_at IS NOT NULL AS deleted FROM target_states
         WHERE (deleted_at IS NULL OR deleted_at >= $4::timestamptz) AND ${selected}
         ORDER BY deleted_at IS NULL DESC, target_id = ANY($2::text[]) DESC, target_id COLLATE "C" LIMIT $3`,
        [...args, limit, since],
      ),
      sqlQuery<{ status: TargetStatus; covered: boolean }>(
        this.pool,
        `SELECT DISTINCT status::text AS status,
                ($3::boolean OR target_id = ANY($4::text[]) OR tags && $5::text[]) AS covered
         FROM target_states WHERE ${where}`,
        [...args, openNow.all, [...openNow.targetIds], [...openNow.tags]],
      ),
    ]).catch((err: unknown) => rethrowSql(err));
    return {
      sample: rows.map((r) => ({ targetId: r.target_id, status: r.status, tags: r.tags ?? [], deleted: r.deleted })),
      statuses: statuses.filter((r) => !r.covered).map((r) => r.status),
      covered: statuses.filter((r) => r.covered).map((r) => r.status),
    };
  }

  /**
   * Consensus status changes of `targetIds` since `from` (ms), in the order they happened per target (its event
   * sequence), plus each target's status at the window's start (its last change before the first in the window). At
   * most `perTarget` changes a target, its newest: a flapping target bounds its own work, and what came before its
   * oldest change kept is not known (no status at the window's start: its earlier days read "no data" rather than one
   * status painted over them).
   * (The bound was one for the whole page: one flapping target pushed every other target's changes out of it, and
   * their outages disappeared from the page's bars and incidents.)
   * Sequence, not time, orders them: consensus events stored before their times were kept in order (target-state.ts
   * `consensusAt`) are dated by their causes — a slow probe's result at its start — so a later change could be dated
   * before an earlier one, and read in time order the page kept a status the target had left (an open "degraded"
   * incident for a target UP). The times as stored: the domain dates each at the latest so far (uptime-bars.ts
   * `inEffect`). The window's changes are still found by time (the (target_id, occurred_at) index bounds the read to
   * the window); the status before them by sequence, below the first of them (the unique (target_id, sequence) index,
   * read backwards from there).
   */
  async changesSince(
    targetIds: readonly string[],
    from: number,
    perTarget: number,
  ): Promise<{ initial: Map<string, TargetStatus>; changes: StatusPageChange[] }> {
    if (targetIds.length === 0) return { initial: new Map(), changes: [] };
    const ids = [...new Set(targetIds)];
    const start = new Date(from);
    const rows = await sqlQuery<{
      target_id: string;
      at: number;
      sequence: string;
      to_status: TargetStatus;
    }>(
      this.pool,
      `SELECT t.id AS target_id, (extract(epoch FROM e.occurred_at) * 1000)::float8 AS at,
              e.sequence::text AS sequence, e.to_status::text AS to_status
       FROM unnest($1::text[]) AS t(id)
       CROSS JOIN LATERAL (SELECT occurred_at, sequence, to_status FROM status_events
         WHERE target_id = t.id AND location IS NULL AND occurred_at >= $2
         ORDER BY occurred_at DESC, sequence DESC LIMIT $3) e
       ORDER BY t.id, e.sequence`,
      [ids, start, perTarget + 1],
    ).catch((err: unknown) => rethrowSql(err));
    // One more than perTarget read: a target with more is cut (its oldest by time, the one past the bound, dropped);
    // one with exactly perTarget is whole (taken for cut, its status at the start was lost: "no data" before it).
    const counts = new Map<string, number>();
    for (const r of rows) counts.set(r.target_id, (counts.get(r.target_id) ?? 0) + 1);
    const past = new Map<string, (typeof rows)[number]>();
    for (const r of rows) {
      if ((counts.get(r.target_id) ?? 0) <= perTarget) continue;
      const p = past.get(r.target_id);
      const older =
        !p || Number(r.at) < Number(p.at) || (Number(r.at) === Number(p.at) && BigInt(r.sequence) < BigInt(p.sequence));
      if (older) past.set(r.target_id, r);
    }
    const kept = past.size === 0 ? rows : rows.filter((r) => past.get(r.target_id) !== r);
    const first = new Map<string, string>();
    // Rows are in sequence order per target: the first is its oldest change kept.
    for (const r of kept) if (!first.has(r.target_id)) first.set(r.target_id, r.sequence);
    // Cut: nothing is known before its oldest change kept, no status at the start.
    const uncut = ids.filter((id) => !past.has(id));
    const before =
      uncut.length === 0
        ? []
        : await sqlQuery<{ target_id: string; to_status: TargetStatus }>(
            this.pool,
            `SELECT t.id AS target_id, e.to_status::text AS to_status
             FROM unnest($1::text[], $3::bigint[]) AS t(id, below)
             CROSS JOIN LATERAL (SELECT to_status FROM status_events
               WHERE target_id = t.id AND location IS NULL AND occurred_at < $2
                 AND sequence < coalesce(t.below, 9223372036854775807)
               ORDER BY sequence DESC LIMIT 1) e`,
            [uncut, start, uncut.map((id) => first.get(id) ?? null)],
          ).catch((err: unknown) => rethrowSql(err));
    // Changes dated before the window's start that came after its first change kept (a slow probe's result dated at its
    // start, folded after a change inside the window): by time they are outside the window, by sequence inside it.
    // Neither read above holds them, and the page kept the status they had left (a target UP read DOWN from then on).
    // Such a dating is seconds to minutes off (a probe's timeout, the clock skew allowed): a day before the start bounds
    // the read whichever index serves it.
    const withFirst = [...first.keys()];
    const seam =
      withFirst.length === 0
        ? []
        : await sqlQuery<{ target_id: string; at: number; sequence: string; to_status: TargetStatus }>(
            this.pool,
            `SELECT t.id AS target_id, (extract(epoch FROM e.occurred_at) * 1000)::float8 AS at,
                    e.sequence::text AS sequence, e.to_status::text AS to_status
             FROM unnest($1::text[], $3::bigint[]) AS t(id, above)
             CROSS JOIN LATERAL (SELECT occurred_at, sequence, to_status FROM status_events
               WHERE target_id = t.id AND sequence > t.above AND location IS NULL
                 AND occurred_at < $2 AND occurred_at >= $2::timestamptz - interval '1 day'
               ORDER BY sequence DESC LIMIT $4) e`,
            [withFirst, start, withFirst.map((id) => first.get(id)), perTarget],
          ).catch((err: unknown) => rethrowSql(err));
    // The newest perTarget of a target's changes by sequence (the last decides its status): more than that cuts it (no
    // status at the start), and the first kept takes effect when its predecessors did (uptime-bars.ts `inEffect`), not
    // before the window's start.
    const initial = new Map(before.map((r) => [r.target_id, r.to_status]));
    const all = seam.length === 0 ? kept : trimmed(inSequence([...kept, ...seam]), perTarget, initial);
    return {
      initial,
      changes: all.map((r) => ({ targetId: r.target_id, at: Number(r.at), to: r.to_status })),
    };
  }
}

/** Rows of several targets, each target's in sequence order (targets in the order first seen). */
function inSequence<R extends { target_id: string; sequence: string }>(rows: readonly R[]): R[] {
  const byTarget = new Map<string, R[]>();
  for (const r of rows) {
    const list = byTarget.get(r.target_id);
    if (list) list.push(r);
    else byTarget.set(r.target_id, [r]);
  }
  const bySequence = (a: R, b: R) => {
    const d = BigInt(a.sequence) - BigInt(b.sequence);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  };
  return [...byTarget.values()].flatMap((list) => list.sort(bySequence));
}

/** Each target's newest `perTarget` rows (rows in sequence order per target); a target cut loses its `initial`. */
function trimmed<R extends { target_id: string; at: number }>(
  rows: readonly R[],
  perTarget: number,
  initial: Map<string, unknown>,
): R[] {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.target_id, (counts.get(r.target_id) ?? 0) + 1);
  const seen = new Map<string, { n: number; latest: number }>();
  const out: R[] = [];
  for (const r of rows) {
    const s = seen.get(r.target_id) ?? { n: 0, latest: -Infinity };
    seen.set(r.target_id, s);
    s.n += 1;
    s.latest = Math.max(s.latest, Number(r.at));
    const drop = (counts.get(r.target_id) ?? 0) - perTarget;
    if (drop <= 0) out.push(r);
    else if (s.n > drop) out.push(s.n === drop + 1 ? { ...r, at: s.latest } : r);
    if (drop > 0) initial.delete(r.target_id);
  }
  return out;
}
