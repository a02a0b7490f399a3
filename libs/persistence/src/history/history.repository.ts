import { Inject, Injectable } from '@nestjs/common';
import { TargetStatus } from '@fleetwatch/contracts';
import type { Rollup } from '@fleetwatch/domain';
import {
  preparedSql,
  rethrowSql,
  runInSqlTransaction,
  SQL_POOL,
  sqlExecute,
  sqlQuery,
  type SqlHandle,
  type SqlPool,
  type SqlTx,
} from '../sql/sql-pool';
import { clean, cleanOrNull, float8Of, iso, jsonOrNull } from '../sql-values';
import { runInTransaction, type DatabaseClient } from '../database';

// Raw history of the aggregator (status_updates, check_results, host_metrics,
// heartbeat_pings, heartbeat_runs) and its 1-minute rollups. Every insert is one
// multi-row statement (unnest of column arrays) with ON CONFLICT (message_id) DO
// NOTHING RETURNING message_id: the rows returned are the messages seen for the
// first time, which makes the history insert the consumer's idempotency claim. The
// same statement marks the rows' 1-minute buckets dirty for the rollup job. On the
// hottest statements times travel as epoch ms (float8, to_timestamp in SQL): no Date
// and ISO string per value.

export interface StatusUpdateRow {
  messageId: string;
  updateId: string;
  targetId: string;
  instanceId: string;
  kind: string;
  lifecycleStatus: string;
  status: TargetStatus;
  source: string | null;
  location: string;
  occurredAt: number;
  receivedAt: number;
  labels: Record<string, string> | null;
  message: string | null;
  metadata: Record<string, unknown> | null;
}

export interface CheckResultRow {
  messageId: string;
  checkId: string;
  targetId: string;
  location: string;
  ok: boolean;
  latencyMs: number | null;
  failureReason: string | null;
  metadata: Record<string, unknown> | null;
  /** Service collectors' figures (checkMetricSchema), as the result carried them; null: none. */
  metrics?: ReadonlyArray<{ name: string; labels?: Record<string, string>; value: number }> | null;
  occurredAt: number;
}

export interface HostMetricRow {
  messageId: string;
  hostId: string;
  location: string;
  sampledAt: number;
  cpuPct: number;
  load1: number;
  memUsedBytes: number;
  memTotalBytes: number;
  data: Record<string, unknown>;
}

/** A host taken out of service on request (`host.retire`); `messageId` is its idempotency key. */
export interface HostRetirementRow {
  messageId: string;
  hostId: string;
  retiredAt: number;
  actorId: string;
  actorName: string;
}

export interface HeartbeatPingRow {
  messageId: string;
  monitorId: string;
  targetId: string;
  location: string;
  signal: 'success' | 'start' | 'fail';
  /** The exit code of `/ping/{token}/{code}` (0–255), or null (the other ping URLs, an ingest of the version before). */
  exitCode?: number | null;
  runId: string | null;
  receivedAt: number;
  body: string | null;
}

export interface HeartbeatRunRow {
  /** Must be a UUID (heartbeat_monitors.id). */
  monitorId: string;
  targetId: string;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
  outcome: 'ok' | 'fail' | 'timeout';
}

export interface MonitorTouch {
  /** Must be a UUID (heartbeat_monitors.id). */
  monitorId: string;
  lastPingAt: number | null;
  lastStartAt: number | null;
}

/** A 1-minute bucket (epoch ms, minute-aligned) of one target at one location. */
export interface RollupKey {
  targetId: string;
  location: string;
  bucket: number;
}

/** A stored 1-minute rollup: the domain's summary (libs/domain `Rollup`) under its key. */
export interface RollupRecord extends RollupKey, Rollup {}

/**
 * A pushed status update as a sample of availability (rollups' count and ok count, raw history points): as a public
 * status page counts status (libs/domain/src/status-pages/uptime-bars.ts). UP and PARTIAL are good (PARTIAL counts as
 * up), DOWN bad; PAUSED (maintenance), UNKNOWN and STALE (no data) are no sample at all. Counted as failures, a
 * paused container or a pod being terminated read 0 % available.
 */
export const OK_UPDATE_STATUSES: readonly TargetStatus[] = [TargetStatus.Up, TargetStatus.Partial];
export const COUNTED_UPDATE_STATUSES: readonly TargetStatus[] = [...OK_UPDATE_STATUSES, TargetStatus.Down];
const sqlList = (statuses: readonly TargetStatus[]) => statuses.map((s) => `'${s}'`).join(', ');

/**
 * First statement of a rollup transaction: a lock held on the rollup tables (a migration, an overlapping job at a lease
 * hand-over) fails the chunk with 55P03 after 5 s instead of waiting into the statement timeout, whose 57014 the
 * rollup job reads as "chunk too large" and halves its chunks for (HistoryMaintenanceService.inChunks).
 */
export const ROLLUP_LOCK_TIMEOUT = `SELECT set_config('lock_timeout', '5000ms', true)`;

/**
 * The rollup job's pick: takes (deletes) up to $1 marks, oldest minute first, of those due (see
 * HistoryRepository.recomputeDirtyRollups; $2 its openMinuteDelayMs), by the bucket index. By ctid (the picked marks
 * are locked, so their row versions stay put until the commit): joined on the key instead, the delete hashed a scan
 * of every mark for each chunk (103 ms against 2 ms with 200,000 marks).
 */
export const PICK_DIRTY_ROLLUPS = pickDirtyRollupsSql(false);
/**
 * PICK_DIRTY_ROLLUPS, or with `except` the marks of the minutes $3–$5 (target ids, locations, epoch-ms buckets) left
 * out: minutes the rollup job has set aside (RecomputeOptions.exclude).
 */
export function pickDirtyRollupsSql(except: boolean): string {
  return `DELETE FROM rollup_dirty r WHERE r.ctid = ANY(ARRAY(
           SELECT m.ctid FROM rollup_dirty m
            WHERE ($2::float8 <= 0 OR m.bucket < date_trunc('minute', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
               OR m.marked_at <= now() - $2::float8 * interval '1 millisecond'
               OR NOT EXISTS (SELECT 1 FROM rollups_1m x
                               WHERE x.target_id = m.target_id AND x.location = m.location AND x.bucket = m.bucket))
            ${
              except
                ? `AND NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::text[], $5::float8[]) AS s(target_id, location, bucket)
                                    WHERE s.target_id = m.target_id AND s.location = m.location
                                      AND m.bucket = to_timestamp(s.bucket / 1000.0))`
                : ''
            }
            ORDER BY m.bucket LIMIT $1 FOR UPDATE OF m SKIP LOCKED))
         RETURNING r.target_id, r.location, r.bucket::text AS bucket, (extract(epoch FROM r.bucket) * 1000)::float8 AS bucket_ms`;
}

/** What a rollup job passes to a recompute of marked minutes besides its size (of targets' or of hosts' minutes). */
export interface RecomputeOptions<K> {
  /** Minutes not to take (their marks left as they are): set aside by the job. */
  exclude?: readonly K[];
  /** Told the minutes taken, before they are recomputed (a chunk that then fails is rolled back: its marks kept). */
  picked?: (keys: K[]) => void;
}

/** Tables retention trims, with the time column each is trimmed by (indexed). */
export const RETENTION_COLUMNS = {
  status_updates: 'occurred_at',
  check_results: 'occurred_at',
  host_metrics: 'sampled_at',
  heartbeat_pings: 'received_at',
  rollups_1m: 'bucket',
  /** Kept for the rollup window, like rollups_1m. */
  host_rollups_1m: 'bucket',
  /** One row per heartbeat run (a summary of its pings, like a rollup): kept for the rollup window. */
  heartbeat_runs: 'finished_at',
  /** Who retired which host when: kept as long as the host's rollups. */
  host_retirements: 'retired_at',
  /** Alert history (a state change per row, its outbox row deleted with it): kept for the rollup window. */
  alert_events: 'occurred_at',
} as const;
const minuteOf = (column: string) => `date_trunc('minute', t.${column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`;
/**
 * Not in a marked minute: one probe of the mark table's primary key per row. `OFFSET 0` keeps the planner from turning
 * the EXISTS into a hashed subplan or a hash anti-join, which read and hash the whole mark table on every batch — a
 * big site always holds tens of thousands of marks of the minute in progress (50,000 marks: 0.11× the rows deleted a
 * second, bench:retention --open-marks).
 */
const notMarked = (table: 'rollup_dirty' | 'host_rollup_dirty', key: string, column: string) =>
  // No mark of a minute before the cutoff at all (the common case: marks past the raw window come only with late
  // rows): nothing to probe — one look at the bucket index, in the statement's own snapshot, once per statement.
  `(NOT EXISTS (SELECT 1 FROM ${table} WHERE bucket < $1::timestamptz)
    OR NOT EXISTS (SELECT 1 FROM ${table} d WHERE ${key} AND d.bucket = ${minuteOf(column)} OFFSET 0))`;
const targetKey = 'd.target_id = t.target_id AND d.location = t.location';
/**
 * Per raw table, the condition retention adds (on its rows as `t`): not in a minute still marked for its rollup, as
 * the table's insert marks it (markDirty; host_metrics in host_rollup_dirty). See deleteOlderThan.
 */
export const RETENTION_KEEP_MARKED: Partial<Record<RetentionTable, string>> = {
  status_updates: `AND ${notMarked('rollup_dirty', targetKey, 'occurred_at')}`,
  check_results: `AND ${notMarked('rollup_dirty', targetKey, 'occurred_at')}`,
  // 'start' pings are in no rollup (and mark nothing).
  heartbeat_pings: `AND (t.signal = 'start' OR ${notMarked('rollup_dirty', targetKey, 'received_at')})`,
  host_metrics: `AND ${notMarked('host_rollup_dirty', 'd.host_id = t.host_id', 'sampled_at')}`,
};
/** One retention batch of `table`: rows before $1, $2 at most (deleteOlderThan). */
export const retentionDeleteSql = (table: RetentionTable) =>
  `DELETE FROM ${table} WHERE ctid = ANY(ARRAY(
     SELECT ctid FROM ${table} t WHERE ${RETENTION_COLUMNS[table]} < $1::timestamptz ${RETENTION_KEEP_MARKED[table] ?? ''}
     LIMIT $2))`;
/** Retention tables kept for the rollup window (the others for the raw window). */
export const ROLLUP_TABLES: ReadonlySet<RetentionTable> = new Set([
  'rollups_1m',
  'host_rollups_1m',
  'heartbeat_runs',
  'host_retirements',
  'alert_events',
]);
export type RetentionTable = keyof typeof RETENTION_COLUMNS;

type Ids = Array<{ message_id: string }>;
const idsOf = (rows: Ids) => new Set(rows.map((r) => r.message_id));

/**
 * Marks the buckets of the rows just inserted (CTE `ins`) dirty. DO UPDATE (not
 * NOTHING) takes the mark's row lock, so the rollup job's delete of the same mark
 * waits for this transaction and its recompute then sees these rows (or the mark
 * survives for its next run). `WHERE FALSE`: an existing mark is locked, not
 * rewritten (Postgres locks every conflicting row of DO UPDATE, whatever its WHERE
 * says) — a mark already there is the common case (every update of a target within
 * its minute), and rewriting it cost a new row version and index entries each time.
 */
const markDirty = (timeColumn: string, where = 'TRUE') => `dirty AS (
  INSERT INTO rollup_dirty (target_id, location, bucket)
  SELECT DISTINCT target_id, location, date_trunc('minute', ${timeColumn} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM ins WHERE ${where}
  ORDER BY 1, 2, 3
  ON CONFLICT (target_id, location, bucket) DO UPDATE SET marked_at = now() WHERE FALSE
)`;

/** insertStatusUpdates' statement (the commit path's: prepared once per connection). */
const INSERT_STATUS_UPDATES = preparedSql(
  `WITH ins AS (
         INSERT INTO status_updates (message_id, update_id, target_id, instance_id, kind, lifecycle_status, status, source, location,
           occurred_at, received_at, labels, message, metadata)
         SELECT u.message_id, u.update_id, u.target_id, u.instance_id, u.kind, u.lifecycle, u.status::target_status, u.source, u.location,
                to_timestamp(u.occurred_at / 1000.0), to_timestamp(u.received_at / 1000.0), u.labels::jsonb, u.message, u.metadata::jsonb
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                     $10::float8[], $11::float8[], $12::text[], $13::text[], $14::text[])
           AS u(message_id, update_id, target_id, instance_id, kind, lifecycle, status, source, location, occurred_at, received_at, labels, message, metadata)
         ON CONFLICT (message_id) DO NOTHING
         RETURNING message_id, target_id, location, occurred_at
         ), ${markDirty('occurred_at')}
         SELECT message_id::text FROM ins`,
);

@Injectable()
export class HistoryRepository {
  /** `pool`: the service's SqlPool (SQL_POOL), or a Prisma DatabaseClient where that is what the caller holds. */
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /** Inserts raw pushed updates; returns the message ids inserted now (the others were stored before). */
  async insertStatusUpdates(tx: SqlTx, rows: readonly StatusUpdateRow[]): Promise<Set<string>> {
    if (rows.length === 0) return new Set();
    return sqlQuery<Ids[number]>(tx, INSERT_STATUS_UPDATES, [
      rows.map((r) => r.messageId),
      rows.map((r) => clean(r.updateId)),
      rows.map((r) => r.targetId),
      rows.map((r) => r.instanceId),
      rows.map((r) => r.kind),
      rows.map((r) => r.lifecycleStatus),
      rows.map((r) => r.status),
      rows.map((r) => cleanOrNull(r.source)),
      rows.map((r) => r.location),
      rows.map((r) => r.occurredAt),
      rows.map((r) => r.receivedAt),
      rows.map((r) => jsonOrNull(r.labels)),
      rows.map((r) => cleanOrNull(r.message)),
      rows.map((r) => jsonOrNull(r.metadata)),
    ]).then(idsOf, (err: unknown) => rethrowSql(err));
  }

  async insertCheckResults(tx: SqlTx, rows: readonly CheckResultRow[]): Promise<Set<string>> {
    if (rows.length === 0) return new Set();
    return sqlQuery<Ids[number]>(
      tx,
      `WITH ins AS (
         INSERT INTO check_results (message_id, check_id, target_id, location, ok, latency_ms, failure_reason, metadata, occurred_at, metrics)
         SELECT u.message_id, u.check_id, u.target_id, u.location, u.ok, u.latency, u.reason, u.metadata::jsonb, u.occurred_at, u.metrics::jsonb
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::float8[], $7::text[], $8::text[], $9::timestamptz[], $10::text[])
           AS u(message_id, check_id, target_id, location, ok, latency, reason, metadata, occurred_at, metrics)
         ON CONFLICT (message_id) DO NOTHING
         RETURNING message_id, target_id, location, occurred_at
         ), ${markDirty('occurred_at')}
         SELECT message_id::text FROM ins`,
      [
        rows.map((r) => r.messageId),
        rows.map((r) => clean(r.checkId)),
        rows.map((r) => clean(r.targetId)),
        rows.map((r) => r.location),
        rows.map((r) => r.ok),
        rows.map((r) => r.latencyMs),
        rows.map((r) => cleanOrNull(r.failureReason)),
        rows.map((r) => jsonOrNull(r.metadata)),
        rows.map((r) => iso(r.occurredAt)),
        rows.map((r) => jsonOrNull(r.metrics)),
      ],
    ).then(idsOf, (err: unknown) => rethrowSql(err));
  }

  async insertHostMetrics(tx: SqlTx, rows: readonly HostMetricRow[]): Promise<Set<string>> {
    if (rows.length === 0) return new Set();
    return sqlQuery<Ids[number]>(
      tx,
      // The minutes of the rows inserted now are marked for their rollup (HostHistoryRepository), locked as markDirty's.
      `WITH ins AS (
         INSERT INTO host_metrics (message_id, host_id, location, sampled_at, cpu_pct, load1, mem_used_bytes, mem_total_bytes, data)
         SELECT u.message_id, u.host_id, u.location, u.sampled_at, u.cpu, u.load1, u.mem_used, u.mem_total, u.data::jsonb
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::text[])
           AS u(message_id, host_id, location, sampled_at, cpu, load1, mem_used, mem_total, data)
         ON CONFLICT (message_id) DO NOTHING
         RETURNING message_id, host_id, sampled_at
         ), dirty AS (
           INSERT INTO host_rollup_dirty (host_id, bucket)
           SELECT DISTINCT host_id, date_trunc('minute', sampled_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM ins
           ORDER BY 1, 2
           ON CONFLICT (host_id, bucket) DO UPDATE SET marked_at = now() WHERE FALSE
         )
         SELECT message_id::text FROM ins`,
      [
        rows.map((r) => r.messageId),
        rows.map((r) => clean(r.hostId)),
        rows.map((r) => r.location),
        rows.map((r) => iso(r.sampledAt)),
        rows.map((r) => r.cpuPct),
        rows.map((r) => r.load1),
        rows.map((r) => r.memUsedBytes),
        rows.map((r) => r.memTotalBytes),
        rows.map((r) => jsonOrNull(r.data)),
      ],
    ).then(idsOf, (err: unknown) => rethrowSql(err));
  }

  /**
   * Records hosts retired on request; returns the message ids inserted now (the others were stored before: a
   * redelivered retirement, which must not retire the host again once it came back).
   */
  async insertHostRetirements(tx: SqlTx, rows: readonly HostRetirementRow[]): Promise<Set<string>> {
    if (rows.length === 0) return new Set();
    return sqlQuery<Ids[number]>(
      tx,
      `INSERT INTO host_retirements (message_id, host_id, retired_at, actor_id, actor_name)
       SELECT u.message_id, u.host_id, to_timestamp(u.retired_at / 1000.0), u.actor_id, u.actor_name
       FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::text[], $5::text[])
         AS u(message_id, host_id, retired_at, actor_id, actor_name)
       ON CONFLICT (message_id) DO NOTHING
       RETURNING message_id::text`,
      [
        rows.map((r) => r.messageId),
        rows.map((r) => clean(r.hostId)),
        rows.map((r) => r.retiredAt),
        rows.map((r) => clean(r.actorId)),
        rows.map((r) => clean(r.actorName)),
      ],
    ).then(idsOf, (err: unknown) => rethrowSql(err));
  }

  async insertHeartbeatPings(tx: SqlTx, rows: readonly HeartbeatPingRow[]): Promise<Set<string>> {
    if (rows.length === 0) return new Set();
    return sqlQuery<Ids[number]>(
      tx,
      `WITH ins AS (
         INSERT INTO heartbeat_pings (message_id, monitor_id, target_id, location, signal, run_id, received_at, body, exit_code)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::smallint[])
         ON CONFLICT (message_id) DO NOTHING
         RETURNING message_id, target_id, location, signal, received_at
         ), ${markDirty('received_at', "signal <> 'start'")}
         SELECT message_id::text FROM ins`,
      [
        rows.map((r) => r.messageId),
        rows.map((r) => clean(r.monitorId)),
        rows.map((r) => clean(r.targetId)),
        rows.map((r) => r.location),
        rows.map((r) => r.signal),
        rows.map((r) => cleanOrNull(r.runId)),
        rows.map((r) => iso(r.receivedAt)),
        rows.map((r) => cleanOrNull(r.body)),
        rows.map((r) => r.exitCode ?? null),
      ],
    ).then(idsOf, (err: unknown) => rethrowSql(err));
  }

  async insertHeartbeatRuns(tx: SqlTx, runs: readonly HeartbeatRunRow[]): Promise<void> {
    if (runs.length === 0) return;
    await sqlExecute(
      tx,
      `INSERT INTO heartbeat_runs (monitor_id, target_id, started_at, finished_at, duration_ms, outcome)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::text[])`,
      [
        runs.map((r) => r.monitorId),
        runs.map((r) => clean(r.targetId)),
        runs.map((r) => iso(r.startedAt)),
        runs.map((r) => iso(r.finishedAt)),
        runs.map((r) => (r.durationMs === null ? null : Math.min(Math.round(r.durationMs), 2_147_483_647))),
        runs.map((r) => r.outcome),
      ],
    ).catch((err: unknown) => rethrowSql(err));
  }

  /**
   * Folds ping times into heartbeat_monitor_state (last_ping_at / last_start_at only move
   * forward; ids of no monitor are ignored). The state has its own table: the monitor's
   * definition is sync-orchestrator's (issue 15), one writer per table.
   */
  async touchHeartbeatMonitors(tx: SqlTx, touches: readonly MonitorTouch[]): Promise<void> {
    if (touches.length === 0) return;
    await sqlExecute(
      tx,
      `INSERT INTO heartbeat_monitor_state AS s (monitor_id, last_ping_at, last_start_at)
         SELECT u.id, max(u.ping), max(u.start)
         FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS u(id, ping, start)
         JOIN heartbeat_monitors m ON m.id = u.id
         GROUP BY u.id ORDER BY u.id
       ON CONFLICT (monitor_id) DO UPDATE SET
         last_ping_at = GREATEST(s.last_ping_at, EXCLUDED.last_ping_at),
         last_start_at = GREATEST(s.last_start_at, EXCLUDED.last_start_at)`,
      [touches.map((t) => t.monitorId), touches.map((t) => iso(t.lastPingAt)), touches.map((t) => iso(t.lastStartAt))],
    ).catch((err: unknown) => rethrowSql(err));
  }

  /** Heartbeat monitors by target (to record a timed-out run): target id → monitor id. */
  async monitorsOfTargets(tx: SqlTx, targetIds: readonly string[]): Promise<Map<string, string>> {
    if (targetIds.length === 0) return new Map();
    const rows = await sqlQuery<{ id: string; target_id: string }>(
      tx,
      'SELECT id::text AS id, target_id FROM heartbeat_monitors WHERE target_id = ANY($1::text[]) ORDER BY created_at',
      [[...targetIds]],
    ).catch((err: unknown) => rethrowSql(err));
    return new Map(rows.map((r) => [r.target_id, r.id]));
  }

  /**
   * Marks buckets dirty explicitly (backfills; the insert methods already mark their
   * rows' buckets). Same locking as the inserts' marks.
   */
  async markRollupsDirty(tx: SqlTx, keys: readonly RollupKey[]): Promise<void> {
    if (keys.length === 0) return;
    const unique = new Map(keys.map((k) => [`${k.targetId}\u0000${k.location}\u0000${k.bucket}`, k]));
    const list = [...unique.values()].sort(
      (a, b) => a.targetId.localeCompare(b.targetId) || a.location.localeCompare(b.location) || a.bucket - b.bucket,
    );
    await sqlExecute(
      tx,
      `INSERT INTO rollup_dirty (target_id, location, bucket)
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
       ON CONFLICT (target_id, location, bucket) DO UPDATE SET marked_at = now()`,
      [list.map((k) => clean(k.targetId)), list.map((k) => k.location), list.map((k) => iso(k.bucket))],
    ).catch((err: unknown) => rethrowSql(err));
  }

  /**
   * Recomputes up to `limit` dirty buckets from raw rows (check results with their
   * latency, pushed updates and heartbeat pings as latency-less samples; ok = ok /
   * UP or PARTIAL / success; updates PAUSED, UNKNOWN or STALE are no sample, see COUNTED_UPDATE_STATUSES: a minute
   * with nothing else gets no rollup) and upserts rollups_1m. Correct under redelivery, late arrivals and
   * concurrent writers: a bucket is always recomputed whole, in two statements of one
   * transaction — the marks are taken (locked, skipping those a writer still holds) and
   * deleted first, then the raw rows are read with a snapshot taken after that, so a
   * writer that committed before its mark was taken is counted, and one still running
   * waits on the deleted mark and marks the bucket again. (Read in the same statement,
   * a writer committing between the statement's snapshot and the lock would be missed.)
   * Returns the number of buckets recomputed.
   *
   * `openMinuteDelayMs`: a mark of the minute in progress (or a later one) is taken at once while the minute has
   * no rollup yet (its first samples show without delay), and after that only once the mark is that old; a closed
   * minute's at once. A target seen every few seconds marks its minute again right after each pick, so recomputing
   * the open minute on every run rewrites it (and its mark) many times a minute — work the minute's last
   * recompute, after it closed, does anyway. 0: every mark at once.
   *
   * `rawCutoff` (epoch ms, the raw retention cutoff): a minute starting before it may have lost raw rows to
   * retention, so a late result there (spooled, or a dead letter replayed) never shrinks its rollup — recomputed
   * from the rows left it shrank to the late ones (count 20 → 1). Its rollup is only written where it has none or
   * where the raw rows now count more than it does: a minute whose results came in parts, with a run between them
   * (a spooled backlog replayed in batches, the first committed alone), was kept at its first part's count for ever
   * before. Its mark is cleared; its raw rows go with the next retention run. As the host rollups
   * (HostHistoryRepository). Left: a minute already pruned that gets more late results than it had is replaced by
   * them (the pruned rows are not known any more).
   */
  async recomputeDirtyRollups(
    limit = 1000,
    openMinuteDelayMs = 0,
    rawCutoff: number | null = null,
    options: RecomputeOptions<RollupKey> = {},
  ): Promise<number> {
    // (The mean is a numeric sum / count, not float8's avg(): that keeps a sum of squares, which overflows from ~1e154
    // ms, and a float8 sum of two values near its maximum overflows too — a row stored before the bus schema bounded
    // latencies failed every run, everyone's, its mark taken first each time.)
    const inTransaction = <T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> =>
      'connect' in this.pool
        ? runInSqlTransaction(this.pool as SqlPool, fn)
        : runInTransaction(this.pool as DatabaseClient, fn);
    return inTransaction(async (tx) => {
      await sqlQuery(tx, ROLLUP_LOCK_TIMEOUT).catch((err: unknown) => rethrowSql(err));
      const exclude = options.exclude ?? [];
      const picked = await sqlQuery<{ target_id: string; location: string; bucket: string; bucket_ms: number }>(
        tx,
        // The minute in progress as the marks compute their buckets (UTC minutes).
        exclude.length === 0 ? PICK_DIRTY_ROLLUPS : pickDirtyRollupsSql(true),
        exclude.length === 0
          ? [limit, openMinuteDelayMs]
          : [
              limit,
              openMinuteDelayMs,
              exclude.map((k) => k.targetId),
              exclude.map((k) => k.location),
              exclude.map((k) => k.bucket),
            ],
      ).catch((err: unknown) => rethrowSql(err));
      if (picked.length === 0) return 0;
      options.picked?.(
        picked.map((r) => ({ targetId: r.target_id, location: r.location, bucket: Math.round(Number(r.bucket_ms)) })),
      );
      await sqlExecute(
        tx,
        `WITH d AS (
           SELECT d.target_id, d.location, d.bucket::timestamptz AS bucket FROM unnest($1::text[], $2::text[], $3::text[]) AS d(target_id, location, bucket)
         ), samples AS (
           SELECT d.target_id, d.location, d.bucket, c.ok, c.latency_ms FROM d
             JOIN check_results c ON c.target_id = d.target_id AND c.location = d.location
              AND c.occurred_at >= d.bucket AND c.occurred_at < d.bucket + interval '1 minute'
           UNION ALL
           SELECT d.target_id, d.location, d.bucket, s.status IN (${sqlList(OK_UPDATE_STATUSES)}), NULL::float8 FROM d
             JOIN status_updates s ON s.target_id = d.target_id AND s.location = d.location
              AND s.occurred_at >= d.bucket AND s.occurred_at < d.bucket + interval '1 minute'
              AND s.status IN (${sqlList(COUNTED_UPDATE_STATUSES)})
           UNION ALL
           SELECT d.target_id, d.location, d.bucket, h.signal = 'success', NULL::float8 FROM d
             JOIN heartbeat_pings h ON h.target_id = d.target_id AND h.location = d.location AND h.signal <> 'start'
              AND h.received_at >= d.bucket AND h.received_at < d.bucket + interval '1 minute'
         )
         INSERT INTO rollups_1m (target_id, location, bucket, count, ok_count, min_latency_ms, avg_latency_ms, max_latency_ms, p95_latency_ms, latency_count)
         SELECT target_id, location, bucket, count(*)::int, (count(*) FILTER (WHERE ok))::int, min(latency_ms),
                ${float8Of('sum(latency_ms::numeric) / NULLIF(count(latency_ms), 0)')}, max(latency_ms),
                percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms), count(latency_ms)::int
         FROM samples GROUP BY target_id, location, bucket
         ON CONFLICT (target_id, location, bucket) DO UPDATE SET count = EXCLUDED.count, ok_count = EXCLUDED.ok_count,
           min_latency_ms = EXCLUDED.min_latency_ms, avg_latency_ms = EXCLUDED.avg_latency_ms, max_latency_ms = EXCLUDED.max_latency_ms,
           p95_latency_ms = EXCLUDED.p95_latency_ms, latency_count = EXCLUDED.latency_count
           WHERE $4::timestamptz IS NULL OR rollups_1m.bucket >= $4::timestamptz OR EXCLUDED.count > rollups_1m.count`,
        [
          picked.map((r) => r.target_id),
          picked.map((r) => r.location),
          picked.map((r) => r.bucket),
          rawCutoff === null ? null : iso(rawCutoff),
        ],
      ).catch((err: unknown) => rethrowSql(err));
      return picked.length;
    });
  }

  async rollups(targetId: string, from: Date, to: Date): Promise<RollupRecord[]> {
    const rows = await sqlQuery<{
      target_id: string;
      location: string;
      bucket: number;
      count: number;
      ok_count: number;
      min: number | null;
      avg: number | null;
      max: number | null;
      p95: number | null;
    }>(
      this.pool,
      `SELECT target_id, location, (extract(epoch FROM bucket) * 1000)::float8 AS bucket, count, ok_count,
                min_latency_ms AS min, avg_latency_ms AS avg, max_latency_ms AS max, p95_latency_ms AS p95
         FROM rollups_1m WHERE target_id = $1 AND bucket >= $2::timestamptz AND bucket < $3::timestamptz ORDER BY location, bucket`,
      [targetId, from.toISOString(), to.toISOString()],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({
      targetId: r.target_id,
      location: r.location,
      bucket: Math.round(Number(r.bucket)),
      count: r.count,
      okCount: r.ok_count,
      minLatencyMs: r.min,
      avgLatencyMs: r.avg,
      maxLatencyMs: r.max,
      p95LatencyMs: r.p95,
    }));
  }

  /**
   * Retention: deletes rows of `table` older than `before` in batches of `batchSize`
   * (each its own short statement, by ctid over the indexed time column), so no
   * statement holds locks for long; at most `maxBatches` of them, and none once `stop()`
   * says so (checked before each). Returns the rows deleted.
   * A raw row whose minute is still marked for its rollup (RETENTION_KEEP_MARKED) is kept until the rollup job has
   * taken the mark: a spool replayed from past the raw window, or a rollup job behind, had raw rows pruned before
   * their minute was rolled up, and the minute got no rollup at all. The mark is written in the raw row's own
   * transaction and taken in the rollup's, so a row this statement sees unmarked has been through a rollup run: in
   * its minute's rollup, or a late row of a minute past the raw window that its rollup did not take
   * (recomputeDirtyRollups' `rawCutoff`). Kept rows older than the deletable ones are read again by each batch.
   */
  async deleteOlderThan(
    table: RetentionTable,
    before: Date,
    batchSize = 5000,
    maxBatches = 1000,
    stop: () => boolean = () => false,
  ): Promise<number> {
    const column = RETENTION_COLUMNS[table];
    if (!column) throw new Error(`no retention for table ${String(table)}`);
    let total = 0;
    for (let i = 0; i < maxBatches && !stop(); i++) {
      const deleted = await sqlExecute(this.pool, retentionDeleteSql(table), [before.toISOString(), batchSize]).catch(
        (err: unknown) => rethrowSql(err),
      );
      total += deleted;
      if (deleted < batchSize) break;
    }
    return total;
  }
}
