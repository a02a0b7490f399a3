import { Inject, Injectable } from '@nestjs/common';
import { rethrowSql, SQL_POOL, sqlQuery, type SqlHandle } from '../sql/sql-pool';

// Read-only view of the alert configuration for the aggregator's evaluator (issue 18). Rules and maintenance
// windows come from AlertConfigRepository.all; this adds what it lacks: every silence that has not ended
// (active and pending at once — a pending one starts muting on its own, without a config change), and the
// p95 of checks' latency over a recent window (metric conditions on `latency_p95_ms`).

export interface SilenceSpecRow<S = Record<string, unknown>> {
  id: string;
  spec: S;
}

@Injectable()
export class AlertEvaluationReaderRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /** Silences whose end is after `now` (ms), with their ids. */
  async unexpiredSilences<S = Record<string, unknown>>(now: number): Promise<SilenceSpecRow<S>[]> {
    const rows = await sqlQuery<{ id: string; spec: S }>(
      this.pool,
      'SELECT id::text AS id, spec FROM silences WHERE ends_at > $1::timestamptz ORDER BY id',
      [new Date(now).toISOString()],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({ id: r.id, spec: r.spec }));
  }

  /**
   * p95 (continuous) of the latency of each check's results since `since` (ms), every location together;
   * checks without a result with a latency in the window are left out.
   */
  async latencyP95(targetIds: readonly string[], since: number): Promise<Map<string, number>> {
    if (!targetIds.length) return new Map();
    const rows = await sqlQuery<{ target_id: string; p95: number }>(
      this.pool,
      `SELECT target_id, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::float8 AS p95
       FROM check_results
       WHERE target_id = ANY($1::text[]) AND occurred_at >= $2::timestamptz AND latency_ms IS NOT NULL
       GROUP BY target_id`,
      [[...targetIds], new Date(since).toISOString()],
    ).catch((err: unknown) => rethrowSql(err));
    return new Map(rows.map((r) => [r.target_id, Number(r.p95)]));
  }
}
