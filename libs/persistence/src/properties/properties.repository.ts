import { Inject, Injectable } from '@nestjs/common';
import { rethrowSql, SQL_POOL, sqlExecute, sqlQuery, type SqlHandle, type SqlTx } from '../sql/sql-pool';

// properties (writer: sync-orchestrator, inside the config writer's transaction, like alert rules;
// readers: the owner, and api-gateway for the snapshot's `properties` area). Key → JSON value, with
// the content hash the config hash aggregates (config-versions.repository.ts CONFIG_HASH_SQL).

export interface PropertyRecord {
  key: string;
  value: unknown;
  hash: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface PropertyWrite {
  key: string;
  value: unknown;
  hash: string;
}

interface Row {
  key: string;
  value: unknown;
  content_hash: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'key, value, content_hash, version, created_at, updated_at';

function toRecord(r: Row): PropertyRecord {
  return {
    key: r.key,
    value: r.value,
    hash: r.content_hash,
    version: r.version,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

@Injectable()
export class PropertiesRepository {
  /** `pool`: the service's SqlPool (SQL_POOL), or the gateway's Prisma DatabaseClient. */
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  async find(key: string, tx?: SqlTx): Promise<PropertyRecord | null> {
    const rows = await sqlQuery<Row>(tx ?? this.pool, `SELECT ${COLUMNS} FROM properties WHERE key = $1`, [key]).catch(
      (err: unknown) => rethrowSql(err),
    );
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** Every property (a site holds at most 10,000), by key in byte order (as the config hash orders them). */
  async all(tx?: SqlTx): Promise<PropertyRecord[]> {
    const rows = await sqlQuery<Row>(
      tx ?? this.pool,
      `SELECT ${COLUMNS} FROM properties ORDER BY key COLLATE "C"`,
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map(toRecord);
  }

  async count(tx?: SqlTx): Promise<number> {
    const rows = await sqlQuery<{ n: number }>(tx ?? this.pool, 'SELECT count(*)::int AS n FROM properties').catch(
      (err: unknown) => rethrowSql(err),
    );
    return rows[0].n;
  }

  /** Creates or replaces each, at config version `version`. */
  async upsertMany(tx: SqlTx, writes: readonly PropertyWrite[], version: number): Promise<PropertyRecord[]> {
    if (writes.length === 0) return [];
    const rows = await sqlQuery<Row>(
      tx,
      `INSERT INTO properties (key, value, content_hash, version)
       SELECT w.key, w.value::jsonb, w.hash, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS w(key, value, hash)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, content_hash = EXCLUDED.content_hash,
         version = EXCLUDED.version, updated_at = now()
       RETURNING ${COLUMNS}`,
      [writes.map((w) => w.key), writes.map((w) => JSON.stringify(w.value)), writes.map((w) => w.hash), version],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map(toRecord);
  }

  async deleteMany(tx: SqlTx, keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return sqlExecute(tx, 'DELETE FROM properties WHERE key = ANY($1::text[])', [[...keys]]).catch((err: unknown) =>
      rethrowSql(err),
    );
  }
}
