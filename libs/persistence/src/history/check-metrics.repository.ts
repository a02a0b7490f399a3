import { Inject, Injectable } from '@nestjs/common';
import { rethrowSql, SQL_POOL, sqlQuery, type SqlHandle } from '../sql/sql-pool';
import { ms } from '../sql-values';

/** A check's latest stored figures at one location (check_results.metrics, issue 16). */
export interface LatestCheckMetrics {
  targetId: string;
  location: string;
  /** Epoch ms of the result. */
  at: number;
  /** The JSON array of the result's metrics, as stored. */
  json: string;
}

/** Reads the service collectors' figures back from history: what live state restores after Redis lost them. */
@Injectable()
export class CheckMetricsHistoryRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /**
   * The latest result with figures per check and location among results since `since` (epoch ms), in
   * (target, location) order, a page at a time after `after` (the last row of the previous page).
   */
  async latestSince(
    since: number,
    options: { after?: { targetId: string; location: string }; limit?: number } = {},
  ): Promise<LatestCheckMetrics[]> {
    const rows = await sqlQuery<{ target_id: string; location: string; at: number; metrics: string }>(
      this.pool,
      `SELECT DISTINCT ON (target_id, location)
              target_id, location, (extract(epoch FROM occurred_at) * 1000)::float8 AS at, metrics::text AS metrics
         FROM check_results
        WHERE occurred_at >= $1::timestamptz AND metrics IS NOT NULL AND (target_id, location) > ($2, $3)
        ORDER BY target_id, location, occurred_at DESC, id DESC
        LIMIT $4`,
      [
        new Date(since).toISOString(),
        options.after?.targetId ?? '',
        options.after?.location ?? '',
        options.limit ?? 500,
      ],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({ targetId: r.target_id, location: r.location, at: ms(r.at) as number, json: r.metrics }));
  }
}
