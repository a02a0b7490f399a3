import { Inject, Injectable } from '@nestjs/common';
import { TargetStatus, type CheckMetric } from '@fleetwatch/contracts';
import type { Rollup } from '@fleetwatch/domain';
import { DatabaseClient, prismaOf } from '../database';
import { rethrow } from '../errors';
import { rethrowSql, sqlQuery } from '../sql/sql-pool';
import { float8Of } from '../sql-values';
import { COUNTED_UPDATE_STATUSES, OK_UPDATE_STATUSES } from '../history/history.repository';
import { DATABASE_CLIENT } from '../tokens';

// Read-only queries over the history tables for the gateway (SPEC §2: the gateway reads
// Postgres directly for queries). The aggregator is the only writer of these tables.

/**
 * One raw observation, counted as the rollups count them: a check result, a pushed
 * status update (ok = UP or PARTIAL; one PAUSED, UNKNOWN or STALE is no sample, see COUNTED_UPDATE_STATUSES) or a
 * finishing heartbeat ping (ok = success; `start` is no sample).
 */
export interface HistoryObservation {
  at: Date;
  location: string;
  ok: boolean;
  latencyMs: number | null;
  status: TargetStatus | null;
  /** A service collector's figures (check results that carried them). */
  metrics?: CheckMetric[];
}

/** A 1-minute rollup as read for the history route: the domain's summary with its bucket. */
export interface HistoryRollup extends Rollup {
  bucket: Date;
  location: string;
}

export interface HistoryStatusEvent {
  at: Date;
  /** null: the consensus status. */
  location: string | null;
  from: TargetStatus | null;
  to: TargetStatus;
  reason: string | null;
  sequence: number;
}

export interface HistoryWindow {
  targetId: string;
  since: Date;
  until: Date;
  /** Only this location (events: this location and the consensus). */
  location?: string;
}

/**
 * HistoryReadRepository.minuteTotals' statement ($1 target ids, $2 since, $3 until; exported for its plan's test).
 * Each target's locations are walked in the rollups' primary key (target_id, location, bucket): the first, then the
 * next after each — one index probe a location (Postgres 15 has no skip scan, and an index without the bucket would
 * cost a second write on every rollup upsert) — so every rollup read is a range of that key. (They came from
 * target_location_states: a location gone from live state took its history out of the sparkline.) The range is read
 * per location found (LATERAL, OFFSET 0 keeping it a subquery): joined, the planner took the recursion's guess of
 * its rows (ten times the first step's) for many and read the window of every target through the bucket index.
 */
export const MINUTE_TOTALS = `WITH RECURSIVE locs(target_id, location) AS (
     SELECT t.id, (SELECT min(r.location) FROM rollups_1m r WHERE r.target_id = t.id)
       FROM unnest($1::text[]) AS t(id)
     UNION ALL
     SELECT l.target_id,
            (SELECT min(r.location) FROM rollups_1m r WHERE r.target_id = l.target_id AND r.location > l.location)
       FROM locs l WHERE l.location IS NOT NULL
   )
   SELECT r.target_id, r.bucket, sum(r.count)::int AS count, sum(r.ok_count)::int AS ok_count,
          ${float8Of(
            `sum(r.avg_latency_ms::numeric * coalesce(r.latency_count, r.count)) FILTER (WHERE r.avg_latency_ms IS NOT NULL)
              / NULLIF(sum(coalesce(r.latency_count, r.count)) FILTER (WHERE r.avg_latency_ms IS NOT NULL), 0)`,
          )} AS latency_ms
     FROM locs s
     CROSS JOIN LATERAL (SELECT * FROM rollups_1m r
                          WHERE r.target_id = s.target_id AND r.location = s.location
                            AND r.bucket >= $2::timestamptz AND r.bucket < $3::timestamptz OFFSET 0) r
    GROUP BY r.target_id, r.bucket`;

@Injectable()
export class HistoryReadRepository {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  /** True when Postgres knows the target: its state (`target_states`) or its metadata (`targets`). */
  async targetExists(targetId: string): Promise<boolean> {
    const client = prismaOf(this.db);
    const [state, meta] = await Promise.all([
      client.targetState.findUnique({ where: { targetId }, select: { targetId: true } }),
      client.target.findUnique({ where: { id: targetId }, select: { id: true } }),
    ]).catch((err: unknown) => rethrow(err));
    return state !== null || meta !== null;
  }

  /**
   * Raw observations in the window (all three sources), oldest first, as the rollups count them (pushed updates
   * PAUSED, UNKNOWN or STALE left out: no sample). When more than `limit` match, the newest `limit` are returned.
   */
  async rawObservations(w: HistoryWindow, limit = 10_000): Promise<HistoryObservation[]> {
    const client = prismaOf(this.db);
    const at = { gte: w.since, lte: w.until };
    const [results, updates, pings] = await Promise.all([
      client.checkResult
        .findMany({
          where: { targetId: w.targetId, occurredAt: at, ...(w.location ? { location: w.location } : {}) },
          select: { occurredAt: true, location: true, ok: true, latencyMs: true, metrics: true },
          orderBy: { occurredAt: 'desc' },
          take: limit,
        })
        .catch((err: unknown) => rethrow(err)),
      client.statusUpdate
        .findMany({
          where: {
            targetId: w.targetId,
            occurredAt: at,
            status: { in: [...COUNTED_UPDATE_STATUSES] },
            ...(w.location ? { location: w.location } : {}),
          },
          select: { occurredAt: true, location: true, status: true },
          orderBy: { occurredAt: 'desc' },
          take: limit,
        })
        .catch((err: unknown) => rethrow(err)),
      client.heartbeatPing
        .findMany({
          where: {
            targetId: w.targetId,
            receivedAt: at,
            signal: { not: 'start' },
            ...(w.location ? { location: w.location } : {}),
          },
          select: { receivedAt: true, location: true, signal: true },
          orderBy: { receivedAt: 'desc' },
          take: limit,
        })
        .catch((err: unknown) => rethrow(err)),
    ]);
    const out: HistoryObservation[] = [
      ...results.map((r) => ({
        at: r.occurredAt,
        location: r.location,
        ok: r.ok,
        latencyMs: r.latencyMs,
        status: null,
        ...(Array.isArray(r.metrics) ? { metrics: r.metrics as unknown as CheckMetric[] } : {}),
      })),
      ...updates.map((u) => ({
        at: u.occurredAt,
        location: u.location ?? '',
        ok: OK_UPDATE_STATUSES.includes(u.status as TargetStatus),
        latencyMs: null,
        status: u.status as TargetStatus,
      })),
      ...pings.map((p) => ({
        at: p.receivedAt,
        location: p.location,
        ok: p.signal === 'success',
        latencyMs: null,
        status: null,
      })),
    ];
    out.sort((a, b) => a.at.getTime() - b.at.getTime());
    return out.length > limit ? out.slice(out.length - limit) : out;
  }

  /**
   * The 1-minute rollups whose bucket lies in the window, oldest first (then by location), merged per location into
   * `stepMinutes`-long points aligned to whole steps since the epoch (`bucket`: the step's start; 1: each minute as
   * stored). A merged point sums count and ok count, takes the least min and greatest max, and the mean of every
   * sample that carried a latency (each minute's mean weighed by its latency_count, in exact numerics); its p95 is
   * the greatest of its minutes' p95s — an upper bound of the step's own p95 (at most 5% of each minute's latencies
   * lie above its p95, so at most 5% of the step's lie above the greatest), which the minutes alone cannot give exactly.
   * Times travel as epoch ms and ISO text (no timestamptz through the ORM's conversions).
   */
  async rollups(w: HistoryWindow, stepMinutes = 1): Promise<HistoryRollup[]> {
    const step = Math.max(1, Math.floor(stepMinutes)) * 60;
    const rows = await sqlQuery<{
      location: string;
      at: number;
      count: number;
      ok_count: number;
      min: number | null;
      avg: number | null;
      max: number | null;
      p95: number | null;
    }>(
      this.db,
      `SELECT location, (floor(extract(epoch FROM bucket) / $5::int) * $5::int * 1000)::float8 AS at,
              sum(count)::int AS count, sum(ok_count)::int AS ok_count,
              min(min_latency_ms) AS min, max(max_latency_ms) AS max, max(p95_latency_ms) AS p95,
              CASE WHEN count(*) = 1 THEN max(avg_latency_ms) ELSE
                ${float8Of(
                  `sum(avg_latency_ms::text::numeric * coalesce(latency_count, count)) FILTER (WHERE avg_latency_ms IS NOT NULL)
                    / NULLIF(sum(coalesce(latency_count, count)) FILTER (WHERE avg_latency_ms IS NOT NULL), 0)`,
                )}
              END AS avg
         FROM rollups_1m
        WHERE target_id = $1 AND bucket >= $2::timestamptz AND bucket <= $3::timestamptz
          AND ($4::text IS NULL OR location = $4::text)
        GROUP BY location, 2
        ORDER BY 2, location`,
      [w.targetId, w.since.toISOString(), w.until.toISOString(), w.location ?? null, step],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({
      bucket: new Date(Math.round(Number(r.at))),
      location: r.location,
      count: Number(r.count),
      okCount: Number(r.ok_count),
      minLatencyMs: r.min === null ? null : Number(r.min),
      avgLatencyMs: r.avg === null ? null : Number(r.avg),
      maxLatencyMs: r.max === null ? null : Number(r.max),
      p95LatencyMs: r.p95 === null ? null : Number(r.p95),
    }));
  }

  /**
   * Many targets' 1-minute rollups in [since, until), summed over their locations: one row per
   * target and minute that had samples. The latency is the mean over every sample that carried one
   * (each location's mean weighed by its latency_count; failures without a latency, pushed updates and
   * pings count for availability only). One statement: each target's locations are found in its rollups themselves
   * (a location no longer in live state — removed, or a heartbeat monitor's second replica dropped — keeps its
   * history in the sparkline), and each (target, location) reads a range of the rollups' primary key.
   */
  async minuteTotals(
    targetIds: readonly string[],
    since: Date,
    until: Date,
  ): Promise<{ targetId: string; bucket: Date; count: number; okCount: number; latencyMs: number | null }[]> {
    if (targetIds.length === 0) return [];
    const rows = await sqlQuery<{
      target_id: string;
      bucket: Date;
      count: number;
      ok_count: number;
      latency_ms: number | null;
    }>(
      this.db,
      // (The weighted mean in numeric: float8 products and sums of means stored before latencies were bounded, near
      // float8's maximum, overflowed and failed the whole read.)
      MINUTE_TOTALS,
      [[...new Set(targetIds)], since.toISOString(), until.toISOString()],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({
      targetId: r.target_id,
      bucket: r.bucket instanceof Date ? r.bucket : new Date(r.bucket),
      count: Number(r.count),
      okCount: Number(r.ok_count),
      latencyMs: r.latency_ms === null ? null : Number(r.latency_ms),
    }));
  }

  /** Status events in the window in the order they happened (per-target sequence). */
  async statusEvents(w: HistoryWindow, limit = 10_000): Promise<HistoryStatusEvent[]> {
    const rows = await prismaOf(this.db)
      .statusEvent.findMany({
        where: {
          targetId: w.targetId,
          occurredAt: { gte: w.since, lte: w.until },
          ...(w.location ? { OR: [{ location: w.location }, { location: null }] } : {}),
        },
        orderBy: { sequence: 'desc' },
        take: limit,
      })
      .catch((err: unknown) => rethrow(err));
    return rows.reverse().map((e) => ({
      at: e.occurredAt,
      location: e.location,
      from: (e.fromStatus as TargetStatus | null) ?? null,
      to: e.toStatus as TargetStatus,
      reason: e.reason,
      sequence: Number(e.sequence),
    }));
  }
}
