import { Inject, Injectable } from '@nestjs/common';
import type {
  AuditEntry,
  CheckLifecyclePayload,
  ConfigChangedPayload,
  ConfigDiffEntry,
  ConfigVersionSummary,
} from '@fleetwatch/contracts';
import {
  rethrowSql,
  runInSqlSnapshot,
  SQL_POOL,
  sqlExecute,
  sqlQuery,
  type SqlHandle,
  type SqlPool,
  type SqlTransaction,
  type SqlTx,
} from '../sql/sql-pool';

// config_head, config_versions, audit_log, config_changed_outbox and config_requests
// (writer: sync-orchestrator). A configuration write locks config_head first (lockHead), so
// writers take turns and versions are gap-free; it then records the version, its audit
// entries and its `config.changed` outbox row in one statement (record), in the same
// transaction as the checks it changed — and, when an RPC request asked for it, the
// request's id with the answer (recordRequest), so a redelivery is answered, not re-applied.

export interface ConfigHead {
  /** 0 before the first version. */
  version: number;
  /** Hash of the current snapshot; null before the first version. */
  hash: string | null;
}

export interface AuditDraft {
  action: string;
  /** The check id (or another subject) the entry is about. */
  subject: string | null;
  diff: ConfigDiffEntry[];
  details?: Record<string, unknown>;
}

/** What a writer reads right after taking the head lock (a statement of its own: it sees what earlier writers committed). */
export interface WriteState {
  /** Checks in the configuration before this write. */
  checks: number;
  /** Checks without a stored content hash (written before they were stored). */
  missingHashes: number;
  /** The answer recorded for the request's id, if one asked and its write committed. */
  recorded: RecordedRequest | null;
  /**
   * Another request recorded under the request's key id (a client's Idempotency-Key, method and caller: the same key
   * sent with another body), with the version it was applied as; null when none (or no key id was given).
   */
  keyUsedBy: { requestId: string; version: number } | null;
}

/**
 * A new version. Its hash is computed by Postgres in the same statement from the checks'
 * stored content hashes (CONFIG_HASH_SQL), so the writer never reads the configuration back for it.
 */
export interface NewConfigVersion {
  version: number;
  /**
   * What the version stores: the whole configuration (`snapshot`) or only what it changed
   * (`changes`); exactly one of them is set (the table refuses both or neither). A snapshot
   * is rebuilt from the nearest full one at or before it (history).
   */
  snapshot: unknown | null;
  changes: unknown | null;
  /** `name (id)` of who made it. */
  actor: string;
  summary: string;
  origin: 'local' | 'leader';
  audit: readonly AuditDraft[];
  /** The request this write answers: its answer is recorded in the same statement (see recordRequest). */
  request?: NewRecordedRequest;
  /**
   * The `config.changed` to publish after commit (Postgres sets its `hash`), and its envelope
   * id; `lifecycle`: the write's `check.lifecycle` payloads, published before it by the same relay.
   */
  outbox: { messageId: string; payload: ConfigChangedPayload; lifecycle?: readonly CheckLifecyclePayload[] };
}

/** A `config.changed` waiting for its confirm. */
export interface PendingConfigChanged {
  messageId: string;
  version: number;
  payload: ConfigChangedPayload;
  /** The write's `check.lifecycle` payloads (empty when it had none). */
  lifecycle: CheckLifecyclePayload[];
  createdAt: string;
}

/** A config write's answer, recorded under the id of the request that asked for it. */
export interface RecordedRequest {
  method: string;
  /** The answer without its secrets. */
  reply: Record<string, unknown>;
  /** What the answer carried that is a credential (ping tokens); null once cleared. */
  secrets: Record<string, unknown> | null;
}

export interface NewRecordedRequest extends RecordedRequest {
  /** The request's message id (a UUID: the envelope id). */
  requestId: string;
  /** The caller's deadline: after it the owner no longer runs the request, so secrets can go. */
  deadline: Date;
  /**
   * A keyed request's key id (the client's Idempotency-Key, method and caller, without the body): unique while the row
   * is kept, so a second request with the same key id is found (writeState) and refused.
   */
  keyId?: string | null;
}

export interface AuditQuery {
  limit: number;
  /** Entries strictly older than this position (from the previous page). */
  before?: { at: string; id: string };
  subject?: string;
}

/** A version row as the rebuild of a snapshot needs it: its full snapshot, or its changes. */
export interface ConfigHistoryRow {
  version: number;
  snapshot: unknown | null;
  changes: unknown | null;
}

interface VersionRow {
  version: number;
  hash: string;
  actor: string;
  summary: string;
  created_at: Date;
}

const toSummary = (r: VersionRow): ConfigVersionSummary => ({
  version: r.version,
  hash: r.hash,
  actor: r.actor,
  summary: r.summary,
  createdAt: new Date(r.created_at).toISOString(),
});

/**
 * The config hash as the statement sees the configuration: sha256 of every check's content hash
 * and a newline, in name order by UTF-8 bytes, then the same of alert rules, channels and
 * maintenance windows (each area by id, byte order) and of properties (by key) — the owner's definition,
 * apps/sync-orchestrator/src/config/config-hash.ts. A check without a stored hash is left out, so
 * writers fill those first; with no alert configuration the hash is the checks' alone, as before.
 */
const agg = (table: string, key: string) =>
  `COALESCE((SELECT string_agg(content_hash || chr(10), '' ORDER BY ${key} COLLATE "C") FROM ${table}), '')`;
const CONFIG_HASH_SQL = `SELECT encode(sha256(convert_to(
    ${agg('checks', 'name')} || ${agg('alert_rules', 'id')} || ${agg('notification_channels', 'id')}
    || ${agg('maintenance_windows', 'id')} || ${agg('properties', 'key')}, 'UTF8')), 'hex') AS hash`;

@Injectable()
export class ConfigVersionsRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  /**
   * Locks the head row until the transaction ends: the next writer waits here — at most `waitMs` when given (the
   * caller's deadline: past it nobody takes the answer, and a waiter held its pool connection and transaction into
   * the statement timeout), then an UnavailableError with sqlState 55P03. The lock timeout stays set for the rest of
   * the transaction (transaction-local): writers take turns on this lock, so later locks of the write are not
   * contended by another writer.
   */
  async lockHead(tx: SqlTx, waitMs?: number): Promise<ConfigHead> {
    if (waitMs !== undefined)
      await sqlQuery(tx, `SELECT set_config('lock_timeout', $1, true)`, [`${Math.max(1, Math.ceil(waitMs))}ms`]).catch(
        (err: unknown) => rethrowSql(err),
      );
    return this.readHead(tx, 'FOR UPDATE');
  }

  async head(): Promise<ConfigHead> {
    return this.readHead(this.pool, '');
  }

  /**
   * Runs `fn`'s reads at one snapshot of the database (REPEATABLE READ, READ ONLY): the head and every
   * configuration table read through `tx` show the same committed versions, all of each version or none of it,
   * whatever writers commit meanwhile — they take turns on the head lock, and this takes no lock.
   */
  async atOneSnapshot<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    if (typeof (this.pool as { connect?: unknown }).connect !== 'function')
      throw new Error('ConfigVersionsRepository.atOneSnapshot needs the SQL pool, not a Prisma client');
    return runInSqlSnapshot(this.pool as SqlPool, fn);
  }

  /**
   * What a writer needs to know once it holds the head lock, in one statement: how many checks
   * there are, how many lack a content hash, the answer recorded for `requestId`, and another request recorded under
   * `keyId` (the same Idempotency-Key with another body). Never in
   * the locking statement itself: that one's snapshot predates the wait for the lock, so it
   * would miss what the writer before committed (a racing redelivery's recorded answer).
   */
  async writeState(tx: SqlTx, requestId: string | null, keyId: string | null = null): Promise<WriteState> {
    const rows = await sqlQuery<{
      checks: number;
      missing: number;
      method: string | null;
      reply: Record<string, unknown> | null;
      secrets: Record<string, unknown> | null;
      key_request: string | null;
      key_version: number | null;
    }>(
      tx,
      `SELECT c.checks, c.missing, r.method, r.reply, r.secrets,
              k.request_id::text AS key_request, (k.reply->>'version')::int AS key_version
       FROM (SELECT count(*)::int AS checks, count(*) FILTER (WHERE content_hash IS NULL)::int AS missing FROM checks) c
       LEFT JOIN config_requests r ON r.request_id = $1::uuid
       LEFT JOIN config_requests k ON k.key_id = $2::uuid AND k.request_id IS DISTINCT FROM $1::uuid`,
      [requestId, keyId],
    ).catch((err: unknown) => rethrowSql(err));
    const r = rows[0];
    return {
      checks: r.checks,
      missingHashes: r.missing,
      recorded: r.method !== null && r.reply !== null ? { method: r.method, reply: r.reply, secrets: r.secrets } : null,
      keyUsedBy: r.key_request !== null ? { requestId: r.key_request, version: r.key_version ?? 0 } : null,
    };
  }

  private async readHead(on: SqlHandle | SqlTx, lock: string): Promise<ConfigHead> {
    const rows = await sqlQuery<ConfigHead>(on, `SELECT version, hash FROM config_head WHERE id = 1 ${lock}`).catch(
      (err: unknown) => rethrowSql(err),
    );
    if (!rows[0]) throw new Error('config_head has no row: the configuration migration did not run');
    return rows[0];
  }

  /**
   * Computes the hash, inserts the version, its audit entries, its outbox row and the request's
   * answer, and moves the head: one statement (each round trip is paid by every write, and
   * writes take turns). Answers the hash.
   */
  async record(tx: SqlTx, v: NewConfigVersion): Promise<{ createdAt: string; hash: string }> {
    const r = v.request;
    try {
      const rows = await sqlQuery<{ created_at: Date; hash: string }>(
        tx,
        `WITH hc AS (${CONFIG_HASH_SQL}), v AS (
           INSERT INTO config_versions (version, hash, snapshot, changes, actor, summary, origin)
           SELECT $1, hc.hash, $2::jsonb, $3::jsonb, $4, $5, $6 FROM hc RETURNING created_at, hash
         ), a AS (
           INSERT INTO audit_log (actor, action, subject, version, diff, details)
           SELECT $4, e->>'action', e->>'subject', $1, COALESCE(e->'diff', '[]'::jsonb), e->'details'
           FROM jsonb_array_elements($7::jsonb) e
         ), o AS (
           INSERT INTO config_changed_outbox (message_id, version, payload, lifecycle)
           SELECT $8::uuid, $1, jsonb_set($9::jsonb, '{hash}', to_jsonb(hc.hash)), $10::jsonb FROM hc
         ), q AS (
           INSERT INTO config_requests (request_id, method, reply, secrets, deadline, key_id)
           SELECT $11::uuid, $12, $13::jsonb, $14::jsonb, $15, $16::uuid WHERE $11::uuid IS NOT NULL
         ), h AS (
           UPDATE config_head SET version = $1, hash = hc.hash, updated_at = now() FROM hc WHERE id = 1
         )
         SELECT created_at, hash FROM v`,
        [
          v.version,
          v.snapshot === null ? null : JSON.stringify(v.snapshot),
          v.changes === null ? null : JSON.stringify(v.changes),
          v.actor,
          v.summary,
          v.origin,
          JSON.stringify(v.audit),
          v.outbox.messageId,
          JSON.stringify(v.outbox.payload),
          v.outbox.lifecycle?.length ? JSON.stringify(v.outbox.lifecycle) : null,
          r?.requestId ?? null,
          r?.method ?? null,
          r ? JSON.stringify(r.reply) : null,
          r?.secrets ? JSON.stringify(r.secrets) : null,
          r?.deadline ?? null,
          r?.keyId ?? null,
        ],
      );
      return { createdAt: new Date(rows[0].created_at).toISOString(), hash: rows[0].hash };
    } catch (err) {
      rethrowSql(err, `config version ${v.version} or request ${r?.requestId ?? '-'} already exists`);
    }
  }

  /** Newest first, versions below `before`. */
  async list(limit: number, before?: number): Promise<ConfigVersionSummary[]> {
    const rows = await sqlQuery<VersionRow>(
      this.pool,
      `SELECT version, hash, actor, summary, created_at FROM config_versions
       WHERE ($2::int IS NULL OR version < $2) ORDER BY version DESC LIMIT $1`,
      [limit, before ?? null],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map(toSummary);
  }

  /**
   * Version `version` with what rebuilds its snapshot: the rows from the nearest full snapshot
   * at or before it (or from version 1) up to it, oldest first; null if there is no such version.
   * Full snapshots are at most SNAPSHOT_EVERY versions apart, so this reads a bounded number
   * of rows (the unique index on version, walked backwards).
   */
  async history(version: number): Promise<{ summary: ConfigVersionSummary; rows: ConfigHistoryRow[] } | null> {
    const rows = await sqlQuery<VersionRow & ConfigHistoryRow>(
      this.pool,
      `SELECT version, hash, actor, summary, created_at, snapshot, changes FROM config_versions
       WHERE version <= $1 AND version >= COALESCE(
         (SELECT version FROM config_versions WHERE version <= $1 AND snapshot IS NOT NULL ORDER BY version DESC LIMIT 1),
         1)
       ORDER BY version`,
      [version],
    ).catch((err: unknown) => rethrowSql(err));
    const last = rows[rows.length - 1];
    if (!last || last.version !== version) return null;
    return {
      summary: toSummary(last),
      rows: rows.map((r) => ({ version: r.version, snapshot: r.snapshot, changes: r.changes })),
    };
  }

  /** The config hash of the checks as `tx` sees them (CONFIG_HASH_SQL). */
  async configHash(tx: SqlTx): Promise<string> {
    const rows = await sqlQuery<{ hash: string }>(tx, CONFIG_HASH_SQL).catch((err: unknown) => rethrowSql(err));
    return rows[0].hash;
  }

  /** Sets the head's hash without a new version (after content hashes were filled in: same content, new definition). */
  async setHeadHash(tx: SqlTx, hash: string): Promise<void> {
    await sqlExecute(tx, 'UPDATE config_head SET hash = $1, updated_at = now() WHERE id = 1', [hash]).catch(
      (err: unknown) => rethrowSql(err),
    );
  }

  /** Audit entries newest first (at, then id: a stable order for paging). */
  async audit(q: AuditQuery): Promise<AuditEntry[]> {
    const rows = await sqlQuery<{
      id: string;
      at: Date;
      actor: string;
      action: string;
      subject: string | null;
      version: number | null;
      diff: ConfigDiffEntry[];
    }>(
      this.pool,
      `SELECT id::text AS id, at, actor, action, subject, version, diff FROM audit_log
       WHERE ($2::text IS NULL OR subject = $2)
         AND ($3::timestamptz IS NULL OR (at, id) < ($3::timestamptz, $4::uuid))
       ORDER BY at DESC, id DESC LIMIT $1`,
      [q.limit, q.subject ?? null, q.before?.at ?? null, q.before?.id ?? null],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({
      id: r.id,
      at: new Date(r.at).toISOString(),
      actor: r.actor,
      action: r.action,
      subject: r.subject,
      version: r.version,
      diff: r.diff,
    }));
  }

  /** The answer recorded for a request id, if its write committed (read under the head lock). */
  async recordedRequest(tx: SqlTx, requestId: string): Promise<RecordedRequest | null> {
    const rows = await sqlQuery<RecordedRequest>(
      tx,
      'SELECT method, reply, secrets FROM config_requests WHERE request_id = $1::uuid',
      [requestId],
    ).catch((err: unknown) => rethrowSql(err));
    return rows[0] ?? null;
  }

  /** Records a write's answer under its request id, in the write's transaction (a second record is a ConflictError). */
  async recordRequest(tx: SqlTx, r: NewRecordedRequest): Promise<void> {
    await sqlExecute(
      tx,
      `INSERT INTO config_requests (request_id, method, reply, secrets, deadline, key_id)
       VALUES ($1::uuid, $2, $3::jsonb, $4::jsonb, $5, $6::uuid)`,
      [
        r.requestId,
        r.method,
        JSON.stringify(r.reply),
        r.secrets ? JSON.stringify(r.secrets) : null,
        r.deadline,
        r.keyId ?? null,
      ],
    ).catch((err: unknown) => rethrowSql(err, `request ${r.requestId} is already recorded`));
  }

  /**
   * Forgets answers recorded more than `keepMs` ago. Of requests whose deadline passed more than
   * `secretsGraceMs` ago (a margin for the owner's clock against the database's: the owner acks a
   * request past its deadline without running it, and its caller has stopped waiting) it clears the
   * secrets and cuts the answer down to its `version`: the row stays until `keepMs`, so a redelivery
   * is still never applied twice, but the whole answer — an import's plan lists every check, even
   * when it changed nothing; a bulk create's, every check it made — is kept only while a caller can
   * still receive it. `cleared` counts the rows cut.
   */
  async pruneRequests(keepMs = 86_400_000, secretsGraceMs = 300_000): Promise<{ deleted: number; cleared: number }> {
    const deleted = await sqlExecute(
      this.pool,
      'DELETE FROM config_requests WHERE at < now() - make_interval(secs => $1::float8 / 1000)',
      [keepMs],
    ).catch((err: unknown) => rethrowSql(err));
    const cleared = await sqlExecute(
      this.pool,
      `UPDATE config_requests SET secrets = NULL, reply = jsonb_build_object('version', reply->'version')
       WHERE deadline < now() - make_interval(secs => $1::float8 / 1000)
         AND (secrets IS NOT NULL OR reply - 'version' <> '{}'::jsonb)`,
      [secretsGraceMs],
    ).catch((err: unknown) => rethrowSql(err));
    return { deleted, cleared };
  }

  /** `config.changed` not yet confirmed, oldest version first. */
  async pendingChanged(limit = 100): Promise<PendingConfigChanged[]> {
    const rows = await sqlQuery<{
      message_id: string;
      version: number;
      payload: ConfigChangedPayload;
      lifecycle: CheckLifecyclePayload[] | null;
      created_at: Date;
    }>(
      this.pool,
      'SELECT message_id::text AS message_id, version, payload, lifecycle, created_at FROM config_changed_outbox ORDER BY version LIMIT $1',
      [limit],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => ({
      messageId: r.message_id,
      version: r.version,
      payload: r.payload,
      lifecycle: r.lifecycle ?? [],
      createdAt: new Date(r.created_at).toISOString(),
    }));
  }

  /** The broker confirmed these: drop them from the outbox. */
  async markPublished(messageIds: readonly string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await sqlExecute(this.pool, 'DELETE FROM config_changed_outbox WHERE message_id = ANY($1::uuid[])', [
      [...messageIds],
    ]).catch((err: unknown) => rethrowSql(err));
  }
}
