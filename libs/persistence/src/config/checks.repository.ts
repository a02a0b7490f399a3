import { Inject, Injectable } from '@nestjs/common';
import type { CheckDefinition, CheckSpec } from '@fleetwatch/contracts';
import { rethrowSql, SQL_POOL, sqlExecute, sqlQuery, type SqlHandle, type SqlTx } from '../sql/sql-pool';

// checks (writer: sync-orchestrator). A row keeps the whole validated definition in
// `spec`; name, type, paused, locations and tags are copies for lookups and filters.
// Writes join the caller's transaction (ConfigService holds config_head's lock there);
// every write says which config version it belongs to.

interface CheckRow {
  id: string;
  spec: CheckSpec;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'c.id::text AS id, c.spec, c.version, c.created_at, c.updated_at';

function toDefinition(r: CheckRow): CheckDefinition {
  return {
    ...r.spec,
    id: r.id,
    targetId: `check:${r.id}`,
    version: r.version,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

/**
 * Rows to write: the id (chosen by the caller, so the target id is known before commit), the
 * spec, and its content hash (the configuration owner's definition; the config hash is
 * computed from these in SQL, see ConfigVersionsRepository.record).
 */
export interface CheckWrite {
  id: string;
  spec: CheckSpec;
  hash: string;
}

export interface CheckListFilter {
  type?: string;
  tag?: string;
  /** Checks that run there: listing the location, or listing none (every location). */
  location?: string;
  /** Only checks whose name sorts after this one (paging). */
  afterName?: string;
  limit: number;
}

/** Checks and the config version they belong to, read together. */
export interface CheckAssignmentRows {
  version: number;
  hash: string | null;
  checks: CheckDefinition[];
}

/** Derives the copied columns from each `{id, spec, hash}` of the jsonb array parameter. */
const FROM_WRITES = `jsonb_array_elements($1::jsonb) w,
  LATERAL (SELECT (w->>'id')::uuid AS id, w->'spec' AS spec, w->>'hash' AS hash) s`;
const COPIED = `s.spec->>'name', s.spec->>'type', s.spec, COALESCE((s.spec->>'paused')::boolean, false),
  ARRAY(SELECT jsonb_array_elements_text(s.spec->'locations')), ARRAY(SELECT jsonb_array_elements_text(s.spec->'tags')),
  s.hash`;

@Injectable()
export class ChecksRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  async findById(id: string, tx?: SqlTx): Promise<CheckDefinition | null> {
    const rows = await sqlQuery<CheckRow>(tx ?? this.pool, `SELECT ${COLUMNS} FROM checks c WHERE c.id = $1::uuid`, [
      id,
    ]).catch((err: unknown) => rethrowSql(err));
    return rows[0] ? toDefinition(rows[0]) : null;
  }

  /** Those of `ids` that exist, in the caller's transaction (what a write left them as). */
  async findMany(tx: SqlTx, ids: readonly string[]): Promise<CheckDefinition[]> {
    if (ids.length === 0) return [];
    const rows = await sqlQuery<CheckRow>(tx, `SELECT ${COLUMNS} FROM checks c WHERE c.id = ANY($1::uuid[])`, [
      [...ids],
    ]).catch((err: unknown) => rethrowSql(err));
    return rows.map(toDefinition);
  }

  /** Those of `names` that a check already has. */
  async namesTaken(tx: SqlTx, names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const rows = await sqlQuery<{ name: string }>(
      tx,
      'SELECT name FROM checks WHERE name = ANY($1::text[]) ORDER BY name',
      [[...names]],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => r.name);
  }

  /** Every check, by name. */
  async all(tx?: SqlTx): Promise<CheckDefinition[]> {
    const rows = await sqlQuery<CheckRow>(tx ?? this.pool, `SELECT ${COLUMNS} FROM checks c ORDER BY c.name`).catch(
      (err: unknown) => rethrowSql(err),
    );
    return rows.map(toDefinition);
  }

  /** A page of checks by name, filtered. */
  async list(filter: CheckListFilter): Promise<CheckDefinition[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (n: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (filter.type !== undefined) add((p) => `c.type = ${p}`, filter.type);
    if (filter.tag !== undefined) add((p) => `c.tags @> ARRAY[${p}::text]`, filter.tag);
    if (filter.location !== undefined)
      add((p) => `(cardinality(c.locations) = 0 OR c.locations @> ARRAY[${p}::text])`, filter.location);
    if (filter.afterName !== undefined) add((p) => `c.name > ${p}`, filter.afterName);
    params.push(filter.limit);
    const rows = await sqlQuery<CheckRow>(
      this.pool,
      `SELECT ${COLUMNS} FROM checks c ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY c.name LIMIT $${params.length}`,
      params,
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map(toDefinition);
  }

  /**
   * Checks with the config version they belong to, read in one statement (one moment):
   * every check, or — with `location` — what a collector there runs (not paused, not
   * `push`; listing the location or none). With `tx`, as its snapshot shows them.
   */
  async withHead(location?: string, tx?: SqlTx): Promise<CheckAssignmentRows> {
    const filter =
      location === undefined
        ? 'true'
        : // Push checks are heard, not run: no collector is assigned one.
          "NOT c.paused AND c.type <> 'push' AND (cardinality(c.locations) = 0 OR c.locations @> ARRAY[$1::text])";
    const rows = await sqlQuery<{ head_version: number; head_hash: string | null } & Partial<CheckRow>>(
      tx ?? this.pool,
      `SELECT h.version AS head_version, h.hash AS head_hash, ${COLUMNS}
       FROM config_head h LEFT JOIN checks c ON ${filter}
       WHERE h.id = 1 ORDER BY c.name`,
      location === undefined ? [] : [location],
    ).catch((err: unknown) => rethrowSql(err));
    if (rows.length === 0) throw new Error('config_head has no row: the configuration migration did not run');
    return {
      version: rows[0].head_version,
      hash: rows[0].head_hash,
      checks: rows.filter((r) => typeof r.id === 'string').map((r) => toDefinition(r as CheckRow)),
    };
  }

  /** Inserts checks of config version `version` (one statement). A taken name is a ConflictError. */
  async insertMany(tx: SqlTx, checks: readonly CheckWrite[], version: number): Promise<CheckDefinition[]> {
    if (checks.length === 0) return [];
    try {
      const rows = await sqlQuery<CheckRow>(
        tx,
        `INSERT INTO checks AS c (id, name, type, spec, paused, locations, tags, content_hash, version)
         SELECT s.id, ${COPIED}, $2 FROM ${FROM_WRITES}
         RETURNING ${COLUMNS}`,
        [JSON.stringify(checks), version],
      );
      const byId = new Map(rows.map((r) => [r.id, toDefinition(r)]));
      return checks.map((c) => byId.get(c.id) as CheckDefinition);
    } catch (err) {
      rethrowSql(err, 'a check with this name already exists');
    }
  }

  /**
   * Inserts the checks whose names are free (one statement, no name lookup before it): answers
   * those created, in order, and the names already taken — the caller refuses the write then.
   */
  async insertNew(
    tx: SqlTx,
    checks: readonly CheckWrite[],
    version: number,
  ): Promise<{ created: CheckDefinition[]; taken: string[] }> {
    if (checks.length === 0) return { created: [], taken: [] };
    const rows = await sqlQuery<CheckRow>(
      tx,
      `INSERT INTO checks AS c (id, name, type, spec, paused, locations, tags, content_hash, version)
       SELECT s.id, ${COPIED}, $2 FROM ${FROM_WRITES}
       ON CONFLICT (name) DO NOTHING
       RETURNING ${COLUMNS}`,
      [JSON.stringify(checks), version],
    ).catch((err: unknown) => rethrowSql(err, 'a check with this id already exists'));
    const byId = new Map(rows.map((r) => [r.id, toDefinition(r)]));
    const created: CheckDefinition[] = [];
    const taken: string[] = [];
    for (const c of checks) {
      const row = byId.get(c.id);
      if (row) created.push(row);
      else taken.push(c.spec.name);
    }
    return { created, taken };
  }

  /** Replaces the specs of existing checks (one statement); returns them as stored. */
  async updateMany(tx: SqlTx, checks: readonly CheckWrite[], version: number): Promise<CheckDefinition[]> {
    if (checks.length === 0) return [];
    try {
      const rows = await sqlQuery<CheckRow>(
        tx,
        `UPDATE checks AS c SET name = s.spec->>'name', type = s.spec->>'type', spec = s.spec,
           paused = COALESCE((s.spec->>'paused')::boolean, false),
           locations = ARRAY(SELECT jsonb_array_elements_text(s.spec->'locations')),
           tags = ARRAY(SELECT jsonb_array_elements_text(s.spec->'tags')),
           content_hash = s.hash, version = $2, updated_at = now()
         FROM ${FROM_WRITES}
         WHERE c.id = s.id
         RETURNING ${COLUMNS}`,
        [JSON.stringify(checks), version],
      );
      const byId = new Map(rows.map((r) => [r.id, toDefinition(r)]));
      return checks.map((c) => byId.get(c.id) as CheckDefinition);
    } catch (err) {
      rethrowSql(err, 'a check with this name already exists');
    }
  }

  /** Checks written before content hashes were stored (the migration cannot compute them): id and spec. */
  async withoutHash(tx: SqlTx): Promise<{ id: string; spec: CheckSpec }[]> {
    return sqlQuery<{ id: string; spec: CheckSpec }>(
      tx,
      'SELECT id::text AS id, spec FROM checks WHERE content_hash IS NULL',
    ).catch((err: unknown) => rethrowSql(err));
  }

  /**
   * http checks with headers and their stored content hashes: those of a check with a credential header changed
   * definition when such headers became write-only (their config form holds `{set: true}`, not the value), and
   * sync-orchestrator's start stores them again.
   */
  async httpWithHeaders(tx: SqlTx): Promise<{ id: string; spec: CheckSpec; hash: string | null }[]> {
    return sqlQuery<{ id: string; spec: CheckSpec; hash: string | null }>(
      tx,
      `SELECT id::text AS id, spec, content_hash AS hash FROM checks
       WHERE type = 'http' AND jsonb_typeof(spec->'headers') = 'object' AND spec->'headers' <> '{}'::jsonb`,
    ).catch((err: unknown) => rethrowSql(err));
  }

  /** Stores content hashes of existing checks (version and timestamps untouched: their content did not change). */
  async setHashes(tx: SqlTx, hashes: readonly { id: string; hash: string }[]): Promise<void> {
    if (hashes.length === 0) return;
    await sqlExecute(
      tx,
      `UPDATE checks AS c SET content_hash = h.hash
       FROM jsonb_to_recordset($1::jsonb) AS h(id uuid, hash text) WHERE c.id = h.id`,
      [JSON.stringify(hashes)],
    ).catch((err: unknown) => rethrowSql(err));
  }

  /** Deletes checks; returns how many there were. */
  async deleteMany(tx: SqlTx, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return sqlExecute(tx, 'DELETE FROM checks WHERE id = ANY($1::uuid[])', [[...ids]]).catch((err: unknown) =>
      rethrowSql(err),
    );
  }
}
