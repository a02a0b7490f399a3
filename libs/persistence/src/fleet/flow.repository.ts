import { Inject, Injectable } from '@nestjs/common';
import { SQL_POOL, sqlQuery, type SqlHandle } from '../sql/sql-pool';

// The "stored" side of a site's flow (member report, GET /api/v1/metrics/flow): rows the
// aggregator wrote into the raw history tables, per minute, with their on-disk size
// (pg_column_size of the whole row, TOAST-compressed as stored; indexes not counted).
// Each table is bucketed by its own indexed time column: status_updates and check_results
// by occurred_at, host_metrics by sampled_at, heartbeat_pings by received_at — the
// observation's time, which is close to the write time for a site keeping up.

export interface StoredMinute {
  /** Bucket start, epoch ms. */
  at: number;
  rows: number;
  bytes: number;
}

const RAW_TABLES: ReadonlyArray<readonly [table: string, column: string]> = [
  ['status_updates', 'occurred_at'],
  ['check_results', 'occurred_at'],
  ['host_metrics', 'sampled_at'],
  ['heartbeat_pings', 'received_at'],
];

@Injectable()
export class FlowRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /** Rows stored per minute in [sinceMs, untilMs), summed over the raw history tables; minutes without rows omitted. */
  async storedPerMinute(sinceMs: number, untilMs: number): Promise<StoredMinute[]> {
    const parts = RAW_TABLES.map(
      ([table, column]) =>
        `SELECT date_trunc('minute', ${column}) AS bucket, count(*)::bigint AS n, sum(pg_column_size(t.*))::bigint AS b
           FROM ${table} t WHERE ${column} >= to_timestamp($1::float8 / 1000) AND ${column} < to_timestamp($2::float8 / 1000)
          GROUP BY 1`,
    );
    const rows = await sqlQuery<{ at: string; rows: string; bytes: string }>(
      this.pool,
      `SELECT (extract(epoch FROM bucket) * 1000)::bigint::text AS at, sum(n)::text AS rows, sum(b)::text AS bytes
         FROM (${parts.join(' UNION ALL ')}) s GROUP BY bucket ORDER BY bucket`,
      [sinceMs, untilMs],
    );
    return rows.map((r) => ({ at: Number(r.at), rows: Number(r.rows), bytes: Number(r.bytes) }));
  }

  /** Failed check results with occurred_at at or after `sinceMs`. */
  async failedResultsSince(sinceMs: number): Promise<number> {
    const [row] = await sqlQuery<{ n: number }>(
      this.pool,
      `SELECT count(*)::int AS n FROM check_results WHERE NOT ok AND occurred_at >= to_timestamp($1::float8 / 1000)`,
      [sinceMs],
    );
    return row?.n ?? 0;
  }
}
