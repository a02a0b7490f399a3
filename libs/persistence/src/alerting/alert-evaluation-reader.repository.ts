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
   * p95 (continuous) of the latency of each check's results since `since` (ms), every location together: one time for
   * every check, or each check's own (`since[i]` for `targetIds[i]`: a window that scales with its interval); each id
   * once. Checks without a result with a latency in their window are left out.
   *
   * One arm of the condition per distinct `since` (the checks sharing a window: every check run every 147 s or more
   * often has the same 5 min), each a constant the planner sees: it reads each check's window off the index on
   * (target_id, occurred_at). Joined to `unnest(ids, sinces)` instead, it could not tell how much of the table a
   * window holds and read all of check_results (days of every check's results) every 15 s.
   */
  async latencyP95(targetIds: readonly string[], since: number | readonly number[]): Promise<Map<string, number>> {
    if (!targetIds.length) return new Map();
    const sinces = typeof since === 'number' ? targetIds.map(() => since) : since;
    if (sinces.length !== targetIds.length) throw new Error('latencyP95: one since per target');
    const bySince = new Map<number, string[]>();
    targetIds.forEach((id, i) => {
      const ids = bySince.get(sinces[i]);
      if (ids) ids.push(id);
      else bySince.set(sinces[i], [id]);
    });
    const params: unknown[] = [];
    const arms: string[] = [];
    for (const [ms, ids] of bySince) {
      params.push(ids, new Date(ms).toISOString());
      arms.push(`(target_id = ANY($${params.length - 1}::text[]) AND occurred_at >= $${params.length}::timestamptz)`);
    }
    const rows = await sqlQuery<{ target_id: string; p95: number }>(
      this.pool,
      `SELECT target_id, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)::float8 AS p95
       FROM check_results
       WHERE latency_ms IS NOT NULL AND (${arms.join(' OR ')})
       GROUP BY target_id`,
      params,
    ).catch((err: unknown) => rethrowSql(err));
    return new Map(rows.map((r) => [r.target_id, Number(r.p95)]));
  }
}
