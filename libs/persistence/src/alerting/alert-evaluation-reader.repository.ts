import { Inject, Injectable } from '@nestjs/common';
import { rethrowSql, SQL_POOL, sqlQuery, type SqlHandle } from '../sql/sql-pool';

// Read-only view of the alert configuration for the aggregator's evaluator (issue 18). Rules and maintenance
// windows come from AlertConfigRepository.all; this adds what it lacks: every silence that has not ended
// (active and pending at once — a pending one starts muting on its own, without a config change).

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
}
