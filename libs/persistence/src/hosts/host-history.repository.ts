import { Inject, Injectable } from '@nestjs/common';
import { runInTransaction, type DatabaseClient } from '../database';
import {
  rethrowSql,
  runInSqlTransaction,
  SQL_POOL,
  sqlExecute,
  sqlQuery,
  type SqlHandle,
  type SqlPool,
  type SqlTx,
} from '../sql/sql-pool';
import { float8Of, iso, ms } from '../sql-values';
import { ROLLUP_LOCK_TIMEOUT, type RecomputeOptions } from '../history/history.repository';

// Host metrics history beyond the raw insert (which lives with the other raw inserts in
// HistoryRepository and marks its minutes in host_rollup_dirty): 1-minute rollups per
// series and device recomputed from raw rows, the latest sample per host for the
// live-state rebuild, and the gateway's reads (series from raw or from rollups).

/**
 * The series a host sample is split into (host_rollups_1m.series), with where each value
 * sits in the stored sample (host_metrics.data, the whole host.metrics payload). Devices:
 * a disk's mount, a network interface's name, a GPU's index; '' for host-wide series.
 */
export const HOST_SERIES = [
  'cpu_pct',
  'load1',
  'mem_used_bytes',
  'mem_total_bytes',
  'swap_used_bytes',
  'swap_total_bytes',
  'disk_used_bytes',
  'disk_total_bytes',
  'disk_read_bps',
  'disk_write_bps',
  'net_rx_bps',
  'net_tx_bps',
  'gpu_util_pct',
  'gpu_mem_used_bytes',
  'gpu_mem_total_bytes',
  'gpu_temp_c',
  'gpu_power_w',
] as const;
export type HostSeriesName = (typeof HOST_SERIES)[number];

/**
 * The points of the sample rows `h` (columns host_id, sampled_at, data): one row per
 * series and device with a value, as exact numerics (read from the JSON text, so huge
 * values average without float8 overflow). A LATERAL subquery: `FROM x h, ${HOST_POINTS}`.
 */
const HOST_POINTS = `LATERAL (
    SELECT 'cpu_pct' AS series, '' AS device, (h.data->'cpu'->>'usagePct')::numeric AS v
    UNION ALL SELECT 'load1', '', (h.data->'cpu'->>'load1')::numeric
    UNION ALL SELECT 'mem_used_bytes', '', (h.data->'memory'->>'usedBytes')::numeric
    UNION ALL SELECT 'mem_total_bytes', '', (h.data->'memory'->>'totalBytes')::numeric
    UNION ALL SELECT 'swap_used_bytes', '', (h.data->'memory'->>'swapUsedBytes')::numeric
    UNION ALL SELECT 'swap_total_bytes', '', (h.data->'memory'->>'swapTotalBytes')::numeric
    UNION ALL SELECT f.series, d->>'mount', (d->>f.field)::numeric
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(h.data->'disks') = 'array' THEN h.data->'disks' END) d,
           (VALUES ('disk_used_bytes', 'usedBytes'), ('disk_total_bytes', 'totalBytes'),
                   ('disk_read_bps', 'readBytesPerSec'), ('disk_write_bps', 'writeBytesPerSec')) f(series, field)
    UNION ALL SELECT f.series, n->>'iface', (n->>f.field)::numeric
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(h.data->'network') = 'array' THEN h.data->'network' END) n,
           (VALUES ('net_rx_bps', 'rxBytesPerSec'), ('net_tx_bps', 'txBytesPerSec')) f(series, field)
    UNION ALL SELECT f.series, g->>'index', (g->>f.field)::numeric
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(h.data->'gpus') = 'array' THEN h.data->'gpus' END) g,
           (VALUES ('gpu_util_pct', 'utilizationPct'), ('gpu_mem_used_bytes', 'memoryUsedBytes'),
                   ('gpu_mem_total_bytes', 'memoryTotalBytes'), ('gpu_temp_c', 'temperatureC'), ('gpu_power_w', 'powerW')) f(series, field)
  ) p`;

/** A minute is rolled up once it ended this long ago (samples of its last seconds still in flight). */
export const HOST_ROLLUP_SETTLE_MS = 5_000;

/**
 * Takes (deletes) up to $1 marks of host minutes before $2, oldest first, skipping marks another transaction holds;
 * with `except` the minutes $3, $4 (host ids, epoch-ms buckets) are left out: minutes the rollup job has set aside
 * (RecomputeOptions.exclude).
 */
export function pickDirtyHostRollupsSql(except: boolean): string {
  // By ctid, as the targets' pick: a join of the picked keys back to the table was a hash join over a sequential scan
  // of every mark, at each chunk.
  return `DELETE FROM host_rollup_dirty r WHERE r.ctid = ANY(ARRAY(
           SELECT m.ctid FROM host_rollup_dirty m WHERE m.bucket < $2::timestamptz
           ${
             except
               ? `AND NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::float8[]) AS s(host_id, bucket)
                                   WHERE s.host_id = m.host_id AND m.bucket = to_timestamp(s.bucket / 1000.0))`
               : ''
           }
           ORDER BY m.bucket LIMIT $1 FOR UPDATE SKIP LOCKED
         ))
         RETURNING r.host_id, r.bucket::text AS bucket, (extract(epoch FROM r.bucket) * 1000)::float8 AS bucket_ms`;
}

/** One point of a host series: raw (avg = max = the sample) or a rollup bucket (epoch ms). */
export interface HostSeriesPoint {
  at: number;
  avg: number;
  max: number;
  /** Samples behind the point. */
  count: number;
}

export interface HostSeries {
  series: HostSeriesName;
  /** Mount, interface or GPU index; '' for host-wide series. */
  device: string;
  points: HostSeriesPoint[];
}

/** A host's latest stored sample (the host.metrics payload as stored), for the live-state rebuild. */
export interface LatestHostSample {
  hostId: string;
  sampledAt: number;
  /** The payload as stored (JSON text). */
  json: string;
}

export interface HostRollupRecord {
  hostId: string;
  bucket: number;
  series: string;
  device: string;
  count: number;
  avg: number;
  max: number;
}

type SeriesRow = { series: string; device: string; at: number | string; avg: number; max: number; count: number };

function toSeries(rows: readonly SeriesRow[]): HostSeries[] {
  const out = new Map<string, HostSeries>();
  for (const r of rows) {
    const key = `${r.series}\u0000${r.device}`;
    let s = out.get(key);
    if (!s) {
      s = { series: r.series as HostSeriesName, device: r.device, points: [] };
      out.set(key, s);
    }
    s.points.push({ at: ms(r.at) as number, avg: Number(r.avg), max: Number(r.max), count: Number(r.count) });
  }
  return [...out.values()];
}

/**
 * Host history: rollups (writer: the aggregator's history job), the latest sample per host
 * (the aggregator's live-state rebuild) and series reads (the gateway). `pool`: a SqlPool
 * (SQL_POOL) or a Prisma DatabaseClient, whichever the service holds.
 */
/** A host's 1-minute bucket (epoch ms, minute-aligned), as its rollup marks key it. */
export interface HostRollupKey {
  hostId: string;
  bucket: number;
}

@Injectable()
export class HostHistoryRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  private inTransaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    return 'connect' in this.pool
      ? runInSqlTransaction(this.pool as SqlPool, fn)
      : runInTransaction(this.pool as DatabaseClient, fn);
  }

  /**
   * Recomputes up to `limit` dirty host minutes from raw rows and upserts their series
   * (avg and max per series and device). Idempotent: a minute is always recomputed whole,
   * so a redelivered sample (not inserted twice) or a late one changes nothing or
   * corrects the minute. Same two-statement pattern as the target rollups
   * (HistoryRepository.recomputeDirtyRollups): marks taken and deleted first, raw rows read
   * by a later snapshot, so a writer committing meanwhile is counted or marks again.
   * The series key hashes host, series and device joined by U+0001, with each U+0001 inside the
   * host id or device written U+0001 U+0002 (series names have none): an injective join, so two
   * hosts never share a key (a plain join let host "a" + mount "p\u0001disk_used_bytes\u0001q" and host
   * "a\u0001disk_used_bytes\u0001p" + mount "q" collide and fail every run), and keys of ids without
   * U+0001 are what they were.
   * Only minutes that ended at least HOST_ROLLUP_SETTLE_MS ago are taken: a minute still
   * filling would be recomputed at every run (each batch marks it again), once it ends it is
   * computed about once (windows up to an hour read raw samples, so nothing waits on it).
   * `rawCutoff` (epoch ms, the raw retention cutoff): a minute starting before it may have lost
   * raw rows to retention, so a late sample there (a spooled one) never overwrites its rollup
   * (recomputed from the one raw row left it would shrink to count 1): a series of it is only
   * written where the minute has none or where its raw rows now count more (a minute whose
   * samples came in parts, a run between them: kept at the first part's count before), and
   * its mark is cleared. Its raw rows stay until the next retention run prunes them.
   * Returns the minutes recomputed.
   */
  async recomputeDirtyRollups(
    limit = 500,
    now = Date.now(),
    rawCutoff: number | null = null,
    options: RecomputeOptions<HostRollupKey> = {},
  ): Promise<number> {
    return this.inTransaction(async (tx) => {
      await sqlQuery(tx, ROLLUP_LOCK_TIMEOUT).catch((err: unknown) => rethrowSql(err));
      const exclude = options.exclude ?? [];
      // Minutes set aside by the job ($3, $4: host ids, epoch-ms buckets) are left out.
      const picked = await sqlQuery<{ host_id: string; bucket: string; bucket_ms: number }>(
        tx,
        pickDirtyHostRollupsSql(exclude.length > 0),
        exclude.length === 0
          ? [limit, iso(now - 60_000 - HOST_ROLLUP_SETTLE_MS)]
          : [
              limit,
              iso(now - 60_000 - HOST_ROLLUP_SETTLE_MS),
              exclude.map((k) => k.hostId),
              exclude.map((k) => k.bucket),
            ],
      ).catch((err: unknown) => rethrowSql(err));
      if (picked.length === 0) return 0;
      options.picked?.(picked.map((r) => ({ hostId: r.host_id, bucket: Math.round(Number(r.bucket_ms)) })));
      await sqlExecute(
        tx,
        `WITH d AS (
           SELECT d.host_id, d.bucket::timestamptz AS bucket FROM unnest($1::text[], $2::text[]) AS d(host_id, bucket)
         ), points AS (
           SELECT d.host_id, d.bucket, p.series, coalesce(p.device, '') AS device, p.v
           FROM d JOIN host_metrics h ON h.host_id = d.host_id
             AND h.sampled_at >= d.bucket AND h.sampled_at < d.bucket + interval '1 minute',
           ${HOST_POINTS}
           WHERE p.v IS NOT NULL
         )
         INSERT INTO host_rollups_1m (series_key, bucket, host_id, series, device, count, avg, max)
         SELECT md5(replace(host_id, E'\\x01', E'\\x01\\x02') || E'\\x01' || series || E'\\x01'
                    || replace(device, E'\\x01', E'\\x01\\x02'))::uuid, bucket, host_id, series, device,
                count(*)::int, ${float8Of('avg(v)')}, max(v)::float8
         FROM points GROUP BY host_id, bucket, series, device
         ORDER BY 1, 2
         ON CONFLICT (series_key, bucket) DO UPDATE SET count = EXCLUDED.count, avg = EXCLUDED.avg, max = EXCLUDED.max
           WHERE $3::timestamptz IS NULL OR host_rollups_1m.bucket >= $3::timestamptz
             OR EXCLUDED.count > host_rollups_1m.count`,
        [picked.map((r) => r.host_id), picked.map((r) => r.bucket), rawCutoff === null ? null : iso(rawCutoff)],
      ).catch((err: unknown) => rethrowSql(err));
      return picked.length;
    });
  }

  /** Minutes waiting for their rollup (tests, metrics). */
  async dirtyCount(): Promise<number> {
    const [row] = await sqlQuery<{ n: number }>(this.pool, 'SELECT count(*)::int AS n FROM host_rollup_dirty').catch(
      (err: unknown) => rethrowSql(err),
    );
    return row?.n ?? 0;
  }

  /** Rollup rows of a host in [from, to), by series, device and bucket. */
  async rollups(hostId: string, from: number, to: number): Promise<HostRollupRecord[]> {
    const rows = await sqlQuery<{
      host_id: string;
      bucket: number;
      series: string;
      device: string;
      count: number;
      avg: number;
      max: number;
    }>(
      this.pool,
      `SELECT host_id, (extract(epoch FROM bucket) * 1000)::float8 AS bucket, series, device, count, avg, max
         FROM host_rollups_1m WHERE host_id = $1 AND bucket >= $2::timestamptz AND bucket < $3::timestamptz
         ORDER BY series, device, bucket`,
      [hostId, iso(from), iso(to)],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({
      hostId: r.host_id,
      bucket: ms(r.bucket) as number,
      series: r.series,
      device: r.device,
      count: r.count,
      avg: Number(r.avg),
      max: Number(r.max),
    }));
  }

  /**
   * The latest stored sample of each host (host ids after `after`, in id order, `limit` per
   * page; `since`: only hosts sampled since then). One index probe per host. A host retired after its latest sample
   * (its target a tombstone since) is left out: it is in no live state.
   */
  async latestSamples(
    options: { after?: string | null; limit?: number; since?: number } = {},
  ): Promise<LatestHostSample[]> {
    const rows = await sqlQuery<{ host_id: string; sampled_at: number; data: string }>(
      this.pool,
      `WITH RECURSIVE hosts AS (
         (SELECT host_id FROM host_metrics WHERE host_id > $1 ORDER BY host_id LIMIT 1)
         UNION ALL
         SELECT (SELECT m.host_id FROM host_metrics m WHERE m.host_id > hosts.host_id ORDER BY m.host_id LIMIT 1)
         FROM hosts WHERE hosts.host_id IS NOT NULL
       )
       SELECT l.host_id, (extract(epoch FROM l.sampled_at) * 1000)::float8 AS sampled_at, l.data::text AS data
       FROM hosts, LATERAL (
         SELECT m.host_id, m.sampled_at, m.data FROM host_metrics m
         WHERE m.host_id = hosts.host_id ORDER BY m.sampled_at DESC, m.id DESC LIMIT 1
       ) l
       WHERE hosts.host_id IS NOT NULL AND ($3::timestamptz IS NULL OR l.sampled_at >= $3::timestamptz)
         -- A host retired since its latest sample is out of live state: its sample is not restored either.
         AND NOT EXISTS (SELECT 1 FROM target_states s WHERE s.target_id = 'host:' || l.host_id
                         AND s.deleted_at IS NOT NULL AND s.deleted_at >= l.sampled_at)
       ORDER BY l.host_id
       LIMIT $2`,
      [options.after ?? '', options.limit ?? 500, options.since === undefined ? null : iso(options.since)],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({ hostId: r.host_id, sampledAt: ms(r.sampled_at) as number, json: r.data }));
  }

  /** The latest stored sample of one host, or null. */
  async latestSample(hostId: string): Promise<LatestHostSample | null> {
    const [row] = await sqlQuery<{ host_id: string; sampled_at: number; data: string }>(
      this.pool,
      `SELECT host_id, (extract(epoch FROM sampled_at) * 1000)::float8 AS sampled_at, data::text AS data
         FROM host_metrics WHERE host_id = $1 ORDER BY sampled_at DESC, id DESC LIMIT 1`,
      [hostId],
    ).catch((err: unknown) => rethrowSql(err));
    return row ? { hostId: row.host_id, sampledAt: ms(row.sampled_at) as number, json: row.data } : null;
  }

  /**
   * Series from raw samples in [since, until]: every sample a point (avg = max = the value),
   * the newest `maxSamples` samples when more match. Oldest first within each series.
   */
  async rawSeries(hostId: string, since: number, until: number, maxSamples = 3600): Promise<HostSeries[]> {
    const rows = await sqlQuery<SeriesRow>(
      this.pool,
      `WITH h AS (
         SELECT host_id, sampled_at, data FROM host_metrics
         WHERE host_id = $1 AND sampled_at >= $2::timestamptz AND sampled_at <= $3::timestamptz
         ORDER BY sampled_at DESC LIMIT $4
       )
       SELECT p.series, coalesce(p.device, '') AS device, (extract(epoch FROM h.sampled_at) * 1000)::float8 AS at,
              p.v::float8 AS avg, p.v::float8 AS max, 1 AS count
       FROM h, ${HOST_POINTS}
       WHERE p.v IS NOT NULL
       ORDER BY p.series, device, h.sampled_at`,
      [hostId, iso(since), iso(until), maxSamples],
    ).catch((err: unknown) => rethrowSql(err));
    return toSeries(rows);
  }

  /**
   * Series from the 1-minute rollups of minutes starting in [since, until), merged into
   * `stepMinutes`-long points: avg weighted by samples (exact numerics, no float8
   * overflow), max of maxes.
   */
  async rollupSeries(hostId: string, since: number, until: number, stepMinutes: number): Promise<HostSeries[]> {
    const step = Math.max(1, Math.floor(stepMinutes)) * 60;
    const rows = await sqlQuery<SeriesRow>(
      this.pool,
      `SELECT series, device, (floor(extract(epoch FROM bucket) / $4) * $4 * 1000)::float8 AS at,
              ${float8Of('sum(avg::text::numeric * count) / sum(count)')} AS avg, max(max) AS max, sum(count)::int AS count
         FROM host_rollups_1m
         WHERE host_id = $1 AND bucket >= $2::timestamptz AND bucket < $3::timestamptz
         GROUP BY series, device, 3
         ORDER BY series, device, 3`,
      [hostId, iso(since), iso(until), step],
    ).catch((err: unknown) => rethrowSql(err));
    return toSeries(rows);
  }

  /** Whether Postgres holds any sample or rollup of the host. */
  async hostExists(hostId: string): Promise<boolean> {
    const [row] = await sqlQuery<{ found: boolean }>(
      this.pool,
      `SELECT EXISTS (SELECT 1 FROM host_metrics WHERE host_id = $1)
           OR EXISTS (SELECT 1 FROM host_rollups_1m WHERE host_id = $1) AS found`,
      [hostId],
    ).catch((err: unknown) => rethrowSql(err));
    return row?.found === true;
  }
}
