import { Inject, Injectable } from '@nestjs/common';
import {
  rethrowSql,
  runInSqlTransaction,
  SQL_POOL,
  sqlExecute,
  sqlQuery,
  type SqlHandle,
  type SqlPool,
} from '../sql/sql-pool';

// fleet_sites (issue 19): the members a leader polls and the state of their last poll.
// Writer: sync-orchestrator's fleet poller; the gateway reads. No credential is ever stored.

export interface FleetSiteRecord {
  name: string;
  url: string;
  tags: string[];
  failoverOrder: number | null;
  propertyOverrides: Record<string, unknown>;
  source: string;
  lastAttemptAt: Date | null;
  lastSuccessAt: Date | null;
  lastError: string | null;
  consecutiveFailures: number;
}

export interface FleetSiteWrite {
  name: string;
  url: string;
  tags: string[];
  failoverOrder: number | null;
  propertyOverrides: Record<string, unknown>;
}

export interface FleetPollOutcome {
  name: string;
  at: Date;
  ok: boolean;
  error: string | null;
}

interface Row {
  name: string;
  url: string;
  tags: string[] | null;
  failover_order: number | null;
  property_overrides: Record<string, unknown> | string;
  source: string;
  last_attempt_at: Date | null;
  last_success_at: Date | null;
  last_error: string | null;
  consecutive_failures: number;
}

const toRecord = (r: Row): FleetSiteRecord => ({
  name: r.name,
  url: r.url,
  tags: r.tags ?? [],
  failoverOrder: r.failover_order,
  propertyOverrides:
    typeof r.property_overrides === 'string'
      ? (JSON.parse(r.property_overrides) as Record<string, unknown>)
      : r.property_overrides,
  source: r.source,
  lastAttemptAt: r.last_attempt_at === null ? null : new Date(r.last_attempt_at),
  lastSuccessAt: r.last_success_at === null ? null : new Date(r.last_success_at),
  lastError: r.last_error,
  consecutiveFailures: r.consecutive_failures,
});

const COLUMNS = `name, url, tags, failover_order, property_overrides, source, last_attempt_at, last_success_at,
  last_error, consecutive_failures`;

@Injectable()
export class FleetSitesRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  async list(): Promise<FleetSiteRecord[]> {
    const rows = await sqlQuery<Row>(this.pool, `SELECT ${COLUMNS} FROM fleet_sites ORDER BY name`).catch(rethrowSql);
    return rows.map(toRecord);
  }

  async find(name: string): Promise<FleetSiteRecord | null> {
    const [row] = await sqlQuery<Row>(this.pool, `SELECT ${COLUMNS} FROM fleet_sites WHERE name = $1`, [name]).catch(
      rethrowSql,
    );
    return row ? toRecord(row) : null;
  }

  /**
   * Makes the configured members exactly `sites` (source `config`): upserts them, deletes
   * configured ones no longer listed; poll state of kept members stays. Returns the names removed.
   */
  async syncConfigured(sites: readonly FleetSiteWrite[]): Promise<string[]> {
    return runInSqlTransaction(this.pool as SqlPool, async (tx): Promise<string[]> => {
      const removed = await sqlQuery<{ name: string }>(
        tx,
        `DELETE FROM fleet_sites WHERE source = 'config' AND NOT (name = ANY($1::text[])) RETURNING name`,
        [sites.map((s) => s.name)],
      );
      if (sites.length > 0)
        await sqlExecute(
          tx,
          `INSERT INTO fleet_sites (name, url, tags, failover_order, property_overrides, source, updated_at)
           SELECT s.name, s.url, ARRAY(SELECT jsonb_array_elements_text(s.tags)), s.failover_order, s.overrides, 'config', now()
             FROM jsonb_to_recordset($1::jsonb) AS s(name text, url text, tags jsonb, failover_order int, overrides jsonb)
           ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, tags = EXCLUDED.tags,
             failover_order = EXCLUDED.failover_order, property_overrides = EXCLUDED.property_overrides,
             source = 'config', updated_at = now()`,
          [
            JSON.stringify(
              sites.map((s) => ({
                name: s.name,
                url: s.url,
                tags: s.tags,
                failover_order: s.failoverOrder,
                overrides: s.propertyOverrides,
              })),
            ),
          ],
        );
      return removed.map((r) => r.name);
    }).catch((err: unknown) => rethrowSql(err));
  }

  /** Records a cycle's outcomes in one statement. */
  async recordPolls(outcomes: readonly FleetPollOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    await sqlExecute(
      this.pool,
      `UPDATE fleet_sites f SET
         last_attempt_at = o.at,
         last_success_at = CASE WHEN o.ok THEN o.at ELSE f.last_success_at END,
         last_error = CASE WHEN o.ok THEN NULL ELSE o.error END,
         consecutive_failures = CASE WHEN o.ok THEN 0 ELSE f.consecutive_failures + 1 END
       FROM jsonb_to_recordset($1::jsonb) AS o(name text, at timestamptz, ok boolean, error text)
       WHERE f.name = o.name`,
      [JSON.stringify(outcomes.map((o) => ({ name: o.name, at: o.at.toISOString(), ok: o.ok, error: o.error })))],
    ).catch(rethrowSql);
  }
}
