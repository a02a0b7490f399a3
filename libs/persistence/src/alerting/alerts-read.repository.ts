import { Inject, Injectable } from '@nestjs/common';
import { rethrowSql, SQL_POOL, sqlQuery, type SqlHandle } from '../sql/sql-pool';
import { ms } from '../sql-values';

// Read-only view of alert_states for the gateway's alert pages (issue 18; the aggregator's evaluator writes
// them). The columns copied out of each state for queries are enough: the engine's JSON is not parsed here.

export type AlertReadState = 'pending' | 'firing';

export interface AlertRow {
  fingerprint: string;
  ruleId: string;
  targetId: string;
  state: AlertReadState;
  labels: Record<string, string>;
  value: number | null;
  activeAt: number;
  firedAt: number | null;
  lastSentAt: number | null;
}

export interface AlertListFilter {
  states: readonly AlertReadState[];
  ruleId?: string;
  targetId?: string;
  /** Keyset: only alerts after this one in the order (active_at desc, fingerprint asc). */
  after?: { activeAt: number; fingerprint: string };
  limit: number;
}

interface Row {
  fingerprint: string;
  rule_id: string;
  target_id: string;
  state: string;
  labels: Record<string, unknown> | null;
  value: number | null;
  active_at: number;
  fired_at: number | null;
  last_sent_at: number | null;
}

const epoch = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`;

function labelsOf(raw: Record<string, unknown> | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

@Injectable()
export class AlertsReadRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /** Pending and/or firing alerts, newest first (when their condition began to hold), then by fingerprint. */
  async list(filter: AlertListFilter): Promise<AlertRow[]> {
    try {
      const rows = await sqlQuery<Row>(
        this.pool,
        `SELECT fingerprint, rule_id, target_id, state, labels, value, ${epoch('active_at')} AS active_at,
           ${epoch('fired_at')} AS fired_at, ${epoch('last_sent_at')} AS last_sent_at
         FROM alert_states
         WHERE state = ANY($1::text[])
           AND ($2::text IS NULL OR rule_id = $2) AND ($3::text IS NULL OR target_id = $3)
           AND ($4::timestamptz IS NULL OR active_at < $4::timestamptz
             OR (active_at = $4::timestamptz AND fingerprint > $5::text))
         ORDER BY active_at DESC, fingerprint ASC
         LIMIT $6`,
        [
          [...filter.states],
          filter.ruleId ?? null,
          filter.targetId ?? null,
          filter.after ? new Date(filter.after.activeAt).toISOString() : null,
          filter.after?.fingerprint ?? '',
          Math.min(Math.max(1, filter.limit), 1001),
        ],
      );
      return rows.map((r) => ({
        fingerprint: r.fingerprint,
        ruleId: r.rule_id,
        targetId: r.target_id,
        state: r.state as AlertReadState,
        labels: labelsOf(r.labels),
        value: r.value === null ? null : Number(r.value),
        activeAt: ms(r.active_at) as number,
        firedAt: ms(r.fired_at),
        lastSentAt: ms(r.last_sent_at),
      }));
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** How many alerts are pending and firing now. */
  async counts(): Promise<Record<AlertReadState, number>> {
    try {
      const rows = await sqlQuery<{ state: string; n: number }>(
        this.pool,
        `SELECT state, count(*)::int AS n FROM alert_states WHERE state IN ('pending', 'firing') GROUP BY state`,
      );
      const out: Record<AlertReadState, number> = { pending: 0, firing: 0 };
      for (const r of rows) if (r.state === 'pending' || r.state === 'firing') out[r.state] = Number(r.n);
      return out;
    } catch (err) {
      rethrowSql(err);
    }
  }
}
