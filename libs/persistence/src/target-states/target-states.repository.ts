import { Inject, Injectable } from '@nestjs/common';
import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import type { LocationSnapshot, TargetSnapshot } from '@fleetwatch/domain';
import { DatabaseClient, DatabaseTransaction, prismaOf, queryClient } from '../database';
import { rethrow } from '../errors';
import { DATABASE_CLIENT } from '../tokens';
import { clean, iso, ms } from '../sql-values';

// The durable copy of live state (target_states + target_location_states): the
// aggregator reads it under a row lock to compute transitions, saves it in the
// same transaction as history and events, and rebuilds Redis from it.

interface TargetRow {
  target_id: string;
  kind: string;
  name: string;
  status: string;
  since: number | null;
  last_seen: number | null;
  last_latency_ms: number | null;
  lifecycle: string | null;
  tags: string[] | null;
  labels: Record<string, string> | null;
  seq: number;
}

interface LocationRow {
  target_id: string;
  location: string;
  status: string;
  observed_at: number;
  last_seen: number;
  latency_ms: number | null;
  detail: string | null;
  lifecycle: string | null;
  deadline_at: number | null;
  expire_to: string | null;
  expire_reason: string | null;
  run_started_at: number | null;
  run_id: string | null;
}

const TARGET_COLUMNS = `target_id, kind::text AS kind, name, status::text AS status,
  (extract(epoch FROM since) * 1000)::float8 AS since, (extract(epoch FROM last_seen) * 1000)::float8 AS last_seen,
  last_latency_ms, lifecycle, tags, labels, seq::float8 AS seq`;

const LOCATION_COLUMNS = `target_id, location, status::text AS status,
  (extract(epoch FROM observed_at) * 1000)::float8 AS observed_at, (extract(epoch FROM last_seen) * 1000)::float8 AS last_seen,
  latency_ms, detail, lifecycle, (extract(epoch FROM deadline_at) * 1000)::float8 AS deadline_at, expire_to::text AS expire_to,
  expire_reason, (extract(epoch FROM run_started_at) * 1000)::float8 AS run_started_at, run_id`;

function toLocation(r: LocationRow): LocationSnapshot {
  return {
    status: r.status as TargetStatus,
    observedAt: ms(r.observed_at) as number,
    lastSeen: ms(r.last_seen) as number,
    latencyMs: r.latency_ms,
    detail: r.detail,
    lifecycle: r.lifecycle,
    deadline: r.deadline_at === null ? null : { at: ms(r.deadline_at) as number, expireTo: (r.expire_to ?? TargetStatus.Stale) as TargetStatus, reason: r.expire_reason ?? 'deadline passed' },
    run: r.run_started_at === null ? null : { startedAt: ms(r.run_started_at) as number, runId: r.run_id },
  };
}

function assemble(targets: TargetRow[], locations: LocationRow[]): TargetSnapshot[] {
  const byTarget = new Map<string, Record<string, LocationSnapshot>>();
  for (const l of locations) {
    const locs = byTarget.get(l.target_id) ?? {};
    locs[l.location] = toLocation(l);
    byTarget.set(l.target_id, locs);
  }
  return targets.map((t) => ({
    id: t.target_id,
    kind: t.kind as TargetKind,
    name: t.name,
    status: t.status as TargetStatus,
    since: ms(t.since),
    lastSeen: ms(t.last_seen),
    lastLatencyMs: t.last_latency_ms,
    lifecycle: t.lifecycle,
    tags: t.tags ?? [],
    labels: t.labels ?? {},
    seq: Number(t.seq),
    locations: byTarget.get(t.target_id) ?? {},
  }));
}

@Injectable()
export class TargetStatesRepository {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  /**
   * The current state of `ids` (those that exist), rows locked FOR UPDATE until the
   * transaction ends, in id order so concurrent writers cannot deadlock.
   */
  async lockMany(tx: DatabaseTransaction, ids: readonly string[]): Promise<Map<string, TargetSnapshot>> {
    if (ids.length === 0) return new Map();
    const q = queryClient(this.db, tx);
    const unique = [...new Set(ids)];
    try {
      const targets = await q.$queryRawUnsafe<TargetRow[]>(
        `SELECT ${TARGET_COLUMNS} FROM target_states WHERE target_id = ANY($1::text[]) ORDER BY target_id FOR UPDATE`,
        unique,
      );
      if (targets.length === 0) return new Map();
      const locations = await q.$queryRawUnsafe<LocationRow[]>(
        `SELECT ${LOCATION_COLUMNS} FROM target_location_states WHERE target_id = ANY($1::text[])`,
        targets.map((t) => t.target_id),
      );
      return new Map(assemble(targets, locations).map((t) => [t.id, t]));
    } catch (err) {
      rethrow(err);
    }
  }

  /** Upserts the targets and every location they hold (multi-row, two statements). */
  async saveMany(tx: DatabaseTransaction, targets: readonly TargetSnapshot[]): Promise<void> {
    if (targets.length === 0) return;
    const q = queryClient(this.db, tx);
    const locs = targets.flatMap((t) => Object.entries(t.locations).map(([location, l]) => ({ id: t.id, location, l })));
    try {
      await q.$executeRawUnsafe(
        `INSERT INTO target_states (target_id, kind, name, status, since, last_seen, last_latency_ms, lifecycle, tags, labels, seq, updated_at)
         SELECT u.id, u.kind::target_kind, u.name, u.status::target_status, u.since, u.last_seen, u.latency, u.lifecycle,
                ARRAY(SELECT jsonb_array_elements_text(u.tags::jsonb)), u.labels::jsonb, u.seq, now()
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::float8[], $8::text[], $9::text[], $10::text[], $11::bigint[])
           AS u(id, kind, name, status, since, last_seen, latency, lifecycle, tags, labels, seq)
         ON CONFLICT (target_id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, status = EXCLUDED.status, since = EXCLUDED.since,
           last_seen = EXCLUDED.last_seen, last_latency_ms = EXCLUDED.last_latency_ms, lifecycle = EXCLUDED.lifecycle, tags = EXCLUDED.tags,
           labels = EXCLUDED.labels, seq = EXCLUDED.seq, updated_at = now()`,
        targets.map((t) => t.id),
        targets.map((t) => t.kind),
        targets.map((t) => clean(t.name)),
        targets.map((t) => t.status),
        targets.map((t) => iso(t.since)),
        targets.map((t) => iso(t.lastSeen)),
        targets.map((t) => t.lastLatencyMs),
        targets.map((t) => (t.lifecycle === null ? null : clean(t.lifecycle))),
        targets.map((t) => clean(JSON.stringify(t.tags))),
        targets.map((t) => clean(JSON.stringify(t.labels))),
        targets.map((t) => t.seq),
      );
      if (locs.length === 0) return;
      await q.$executeRawUnsafe(
        `INSERT INTO target_location_states (target_id, location, status, observed_at, last_seen, latency_ms, detail, lifecycle,
           deadline_at, expire_to, expire_reason, run_started_at, run_id)
         SELECT u.id, u.location, u.status::target_status, u.observed_at, u.last_seen, u.latency, u.detail, u.lifecycle,
                u.deadline_at, u.expire_to::target_status, u.expire_reason, u.run_started_at, u.run_id
         FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::float8[], $7::text[], $8::text[],
                     $9::timestamptz[], $10::text[], $11::text[], $12::timestamptz[], $13::text[])
           AS u(id, location, status, observed_at, last_seen, latency, detail, lifecycle, deadline_at, expire_to, expire_reason, run_started_at, run_id)
         ON CONFLICT (target_id, location) DO UPDATE SET status = EXCLUDED.status, observed_at = EXCLUDED.observed_at, last_seen = EXCLUDED.last_seen,
           latency_ms = EXCLUDED.latency_ms, detail = EXCLUDED.detail, lifecycle = EXCLUDED.lifecycle, deadline_at = EXCLUDED.deadline_at,
           expire_to = EXCLUDED.expire_to, expire_reason = EXCLUDED.expire_reason, run_started_at = EXCLUDED.run_started_at, run_id = EXCLUDED.run_id`,
        locs.map((x) => x.id),
        locs.map((x) => x.location),
        locs.map((x) => x.l.status),
        locs.map((x) => iso(x.l.observedAt)),
        locs.map((x) => iso(x.l.lastSeen)),
        locs.map((x) => x.l.latencyMs),
        locs.map((x) => (x.l.detail === null ? null : clean(x.l.detail))),
        locs.map((x) => (x.l.lifecycle === null ? null : clean(x.l.lifecycle))),
        locs.map((x) => iso(x.l.deadline?.at ?? null)),
        locs.map((x) => x.l.deadline?.expireTo ?? null),
        locs.map((x) => (x.l.deadline ? clean(x.l.deadline.reason) : null)),
        locs.map((x) => iso(x.l.run?.startedAt ?? null)),
        locs.map((x) => (x.l.run?.runId ? clean(x.l.run.runId) : null)),
      );
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * Targets in id order after `afterId`, `limit` per page (for rebuilding live
   * state); `updatedSince` limits it to targets changed since then.
   */
  async page(afterId: string | null, limit: number, updatedSince?: Date): Promise<TargetSnapshot[]> {
    const q = prismaOf(this.db);
    try {
      const targets = await q.$queryRawUnsafe<TargetRow[]>(
        `SELECT ${TARGET_COLUMNS} FROM target_states
         WHERE ($1::text IS NULL OR target_id > $1::text) AND ($2::timestamptz IS NULL OR updated_at >= $2::timestamptz)
         ORDER BY target_id LIMIT $3`,
        afterId,
        updatedSince ? updatedSince.toISOString() : null,
        limit,
      );
      if (targets.length === 0) return [];
      const locations = await q.$queryRawUnsafe<LocationRow[]>(
        `SELECT ${LOCATION_COLUMNS} FROM target_location_states WHERE target_id = ANY($1::text[])`,
        targets.map((t) => t.target_id),
      );
      return assemble(targets, locations);
    } catch (err) {
      rethrow(err);
    }
  }

  async count(): Promise<number> {
    try {
      const [row] = await prismaOf(this.db).$queryRawUnsafe<Array<{ n: number }>>('SELECT count(*)::float8 AS n FROM target_states');
      return Number(row?.n ?? 0);
    } catch (err) {
      rethrow(err);
    }
  }

  /** Unlocked read of some targets (sweeper checks, tests). */
  async findMany(ids: readonly string[]): Promise<TargetSnapshot[]> {
    if (ids.length === 0) return [];
    const q = prismaOf(this.db);
    try {
      const targets = await q.$queryRawUnsafe<TargetRow[]>(`SELECT ${TARGET_COLUMNS} FROM target_states WHERE target_id = ANY($1::text[])`, ids);
      if (targets.length === 0) return [];
      const locations = await q.$queryRawUnsafe<LocationRow[]>(`SELECT ${LOCATION_COLUMNS} FROM target_location_states WHERE target_id = ANY($1::text[])`, ids);
      return assemble(targets, locations);
    } catch (err) {
      rethrow(err);
    }
  }
}
