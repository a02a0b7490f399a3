import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  rethrowSql,
  runInSqlTransaction,
  SQL_POOL,
  sqlExecute,
  sqlQuery,
  type SqlPool,
  type SqlTx,
} from '../sql/sql-pool';
import { iso, jsonOrNull } from '../sql-values';

// Alert evaluation state (writer: the aggregator replica holding the evaluator lease; see the migration
// 20261202153100_alert_evaluation): the alerts that are pending, firing or resolved, the grouping
// scheduler's groups, and the lease's fencing token. States and groups are written in the transaction that
// queues the notifications they caused, after `holdsEpoch` confirmed the lease is still this replica's.

/** The columns an alert's row copies out of its state for queries; `json` is the whole state. */
export interface StoredAlertState {
  key: string;
  ruleId: string;
  targetId: string;
  fingerprint: string;
  state: string;
  labels: Record<string, string>;
  value: number | null;
  activeAt: number;
  firedAt: number | null;
  resolvedAt: number | null;
  lastSentAt: number | null;
}

/** A grouping scheduler's group: its key, channel and whole state as JSON-able value. */
export interface StoredNotificationGroup {
  key: string;
  channelId: string;
  group: unknown;
}

/**
 * Keys of the engine hold NUL separators, which Postgres text refuses: `%` and NUL are escaped (`%25`,
 * `%00`), reversibly, for the primary key. The JSON text columns keep NUL as the `\u0000` escape.
 */
export const escapeKey = (key: string): string => key.replaceAll('%', '%25').replaceAll('\u0000', '%00');

/**
 * Longest escaped key stored as itself (UTF-8 bytes): a btree entry may hold at most 2,704 (less the row's overhead).
 * Keys up to it were stored so by every version before, so their rows keep their keys.
 */
const KEY_MAX_BYTES = 2048;

/**
 * The primary key of an alert or a group: its escaped engine key, or for a longer one `sha256:` and the key's digest
 * (an engine key starts with a rule's or a channel's id, never so). A group's key holds its labels, and a rule may
 * have 16 labels of 1,024 characters (`groupBy: ['...']` groups by all of them): over the btree's 2,704 bytes, the
 * evaluator's transaction failed at every tick — and with it every rule's alerts, not only that one's. Rows are read
 * back from their JSON, never from the key, so short keys stay as they were stored. So does a key that is not
 * well-formed UTF-16 (a label's lone surrogate), which Postgres would have stored altered.
 */
export function storedKey(key: string): string {
  const escaped = escapeKey(key);
  // Not well-formed (a lone surrogate), the text would reach Postgres with U+FFFD in its place: two keys would be one.
  if (escaped.isWellFormed() && Buffer.byteLength(escaped, 'utf8') <= KEY_MAX_BYTES) return escaped;
  // UTF-16 code units, every one as it is (UTF-8 would turn lone surrogates into the same U+FFFD).
  return `sha256:${createHash('sha256').update(Buffer.from(escaped, 'utf16le')).digest('hex')}`;
}

/**
 * The keys a version before storedKey wrote these under, where they differ from storedKey's (a key of 2,049–2,704
 * bytes, or one with a lone surrogate, stored with U+FFFD in its place): deleted with every write of them, so the row
 * of the old form never outlives its alert as a second one (an alert resolved long ago listed as firing).
 */
function legacyKeys(keys: readonly string[]): string[] {
  const out: string[] = [];
  for (const k of keys) {
    const escaped = escapeKey(k);
    if (storedKey(k) !== escaped) out.push(escaped);
  }
  return out;
}

const finite = (v: number | null): number | null => (v === null || !Number.isFinite(v) ? null : v);

@Injectable()
export class AlertStatesRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlPool) {}

  /** Takes the next epoch of the lease `name` for `holder`; waits for decisions committed under the old one. */
  async advanceEpoch(name: string, holder: string): Promise<number> {
    const rows = await sqlQuery<{ epoch: string }>(
      this.pool,
      `INSERT INTO alert_evaluator_epochs (name, epoch, holder) VALUES ($1, 1, $2)
       ON CONFLICT (name) DO UPDATE
         SET epoch = alert_evaluator_epochs.epoch + 1, holder = EXCLUDED.holder, taken_at = CURRENT_TIMESTAMP
       RETURNING epoch::text AS epoch`,
      [name, holder.slice(0, 256)],
    ).catch((err: unknown) => rethrowSql(err));
    return Number(rows[0].epoch);
  }

  /**
   * Inside a decision: whether `epoch` is still the lease's current one. The row stays share-locked until
   * the transaction ends, so a new holder's advance waits for this decision to commit or roll back.
   */
  async holdsEpoch(tx: SqlTx, name: string, epoch: number): Promise<boolean> {
    const rows = await sqlQuery<{ epoch: string }>(
      tx,
      'SELECT epoch::text AS epoch FROM alert_evaluator_epochs WHERE name = $1 FOR SHARE',
      [name],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.length === 1 && Number(rows[0].epoch) === epoch;
  }

  /** Every stored alert state, as the JSON text it was saved with (parsed). */
  async loadStates<S>(): Promise<S[]> {
    // Oldest first: should an alert have two rows (a key's two forms, written by replicas of two versions taking the
    // lease in turn), the newest is the one a caller's map keeps.
    const rows = await sqlQuery<{ state_json: string }>(
      this.pool,
      'SELECT state_json FROM alert_states ORDER BY updated_at, alert_key',
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => JSON.parse(r.state_json) as S);
  }

  /** Every stored notification group (parsed). */
  async loadGroups<G>(): Promise<G[]> {
    const rows = await sqlQuery<{ group_json: string }>(
      this.pool,
      'SELECT group_json FROM alert_notification_groups ORDER BY updated_at, group_key',
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => JSON.parse(r.group_json) as G);
  }

  /** Writes states (upsert) and deletes those given as null, by engine key. */
  async saveStates(tx: SqlTx, upserts: readonly StoredAlertState[], deletes: readonly string[]): Promise<void> {
    try {
      const legacy = legacyKeys([...deletes, ...upserts.map((s) => s.key)]);
      if (deletes.length || legacy.length)
        await sqlExecute(tx, 'DELETE FROM alert_states WHERE alert_key = ANY($1::text[])', [
          [...deletes.map(storedKey), ...legacy],
        ]);
      if (!upserts.length) return;
      await sqlExecute(
        tx,
        `INSERT INTO alert_states (alert_key, rule_id, target_id, fingerprint, state, labels, value, active_at,
           fired_at, resolved_at, last_sent_at, state_json, updated_at)
         SELECT u.k, u.r, u.t, u.f, u.s, u.l::jsonb, u.v, u.a, u.fa, u.ra, u.la, u.j, now()
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[],
           $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::text[])
           AS u(k, r, t, f, s, l, v, a, fa, ra, la, j)
         ON CONFLICT (alert_key) DO UPDATE SET rule_id = EXCLUDED.rule_id, target_id = EXCLUDED.target_id,
           fingerprint = EXCLUDED.fingerprint, state = EXCLUDED.state, labels = EXCLUDED.labels,
           value = EXCLUDED.value, active_at = EXCLUDED.active_at, fired_at = EXCLUDED.fired_at,
           resolved_at = EXCLUDED.resolved_at, last_sent_at = EXCLUDED.last_sent_at,
           state_json = EXCLUDED.state_json, updated_at = now()`,
        [
          upserts.map((s) => storedKey(s.key)),
          upserts.map((s) => s.ruleId),
          upserts.map((s) => s.targetId),
          upserts.map((s) => s.fingerprint),
          upserts.map((s) => s.state),
          upserts.map((s) => jsonOrNull(s.labels) ?? '{}'),
          upserts.map((s) => finite(s.value)),
          upserts.map((s) => iso(s.activeAt)),
          upserts.map((s) => iso(s.firedAt)),
          upserts.map((s) => iso(s.resolvedAt)),
          upserts.map((s) => iso(s.lastSentAt)),
          upserts.map((s) => JSON.stringify(s)),
        ],
      );
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** Writes groups (upsert) and deletes those by key. */
  async saveGroups(tx: SqlTx, upserts: readonly StoredNotificationGroup[], deletes: readonly string[]): Promise<void> {
    try {
      const legacy = legacyKeys([...deletes, ...upserts.map((g) => g.key)]);
      if (deletes.length || legacy.length)
        await sqlExecute(tx, 'DELETE FROM alert_notification_groups WHERE group_key = ANY($1::text[])', [
          [...deletes.map(storedKey), ...legacy],
        ]);
      if (!upserts.length) return;
      await sqlExecute(
        tx,
        `INSERT INTO alert_notification_groups (group_key, channel_id, group_json, updated_at)
         SELECT u.k, u.c, u.j, now() FROM unnest($1::text[], $2::text[], $3::text[]) AS u(k, c, j)
         ON CONFLICT (group_key) DO UPDATE SET channel_id = EXCLUDED.channel_id, group_json = EXCLUDED.group_json,
           updated_at = now()`,
        [
          upserts.map((g) => storedKey(g.key)),
          upserts.map((g) => g.channelId),
          upserts.map((g) => JSON.stringify(g.group)),
        ],
      );
    } catch (err) {
      rethrowSql(err);
    }
  }

  /** Runs one decision in a transaction on this repository's pool. */
  transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    return runInSqlTransaction(this.pool, fn);
  }
}
