import { Inject, Injectable } from '@nestjs/common';
import { rethrowSql, SQL_POOL, sqlExecute, sqlQuery, type SqlHandle, type SqlTx } from '../sql/sql-pool';

// alert_rules, notification_channels and maintenance_windows (writer: sync-orchestrator, inside the
// config writer's transaction, like checks). One shape for the three: the id, a name copy for lists,
// the validated spec, its content hash (part of the config hash) and the config version that last
// changed it. Channels add their sealed secrets and the redacted form answers show; sealing and
// opening is the caller's (SecretSealer): this file only moves the sealed text.

export type AlertConfigArea = 'alertRules' | 'channels' | 'maintenanceWindows';

const TABLES: Record<AlertConfigArea, string> = {
  alertRules: 'alert_rules',
  channels: 'notification_channels',
  maintenanceWindows: 'maintenance_windows',
};

/** A stored entry; `secretsRedacted` only for channels. */
export interface AlertConfigRecord<S = Record<string, unknown>> {
  id: string;
  spec: S;
  contentHash: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  secretsRedacted?: Record<string, unknown>;
  /**
   * Channels, as find and list read them: when its rate-limit pause ends (ISO, the database's clock), null when it is
   * not paused now. Absent where not read (all, and writes: a write ends the pause).
   */
  pausedUntil?: string | null;
}

/** A row to write. For channels, `secrets` (sealed, by field) and `secretsRedacted` replace what is stored. */
export interface AlertConfigWrite {
  id: string;
  name: string;
  spec: unknown;
  hash: string;
  type?: string;
  secrets?: Record<string, string>;
  secretsRedacted?: Record<string, unknown>;
}

interface Row {
  id: string;
  spec: Record<string, unknown>;
  content_hash: string;
  version: number;
  created_at: Date;
  updated_at: Date;
  secrets_redacted?: Record<string, unknown>;
  paused_until?: Date | null;
}

function columns(area: AlertConfigArea): string {
  const base = 'id, spec, content_hash, version, created_at, updated_at';
  return area === 'channels' ? `${base}, secrets_redacted` : base;
}

/** What find and list read: a channel with the end of its rate-limit pause (alert_channel_pauses) still running. */
function readColumns(area: AlertConfigArea): string {
  if (area !== 'channels') return columns(area);
  return `${columns(area)}, (SELECT p.paused_until FROM alert_channel_pauses p
    WHERE p.channel_id = notification_channels.id AND p.paused_until > now()) AS paused_until`;
}

function toRecord<S>(r: Row): AlertConfigRecord<S> {
  const out: AlertConfigRecord<S> = {
    id: r.id,
    spec: r.spec as S,
    contentHash: r.content_hash,
    version: r.version,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
  if (r.secrets_redacted !== undefined) out.secretsRedacted = r.secrets_redacted;
  if (r.paused_until !== undefined)
    out.pausedUntil = r.paused_until === null ? null : new Date(r.paused_until).toISOString();
  return out;
}

@Injectable()
export class AlertConfigRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  async find<S = Record<string, unknown>>(
    area: AlertConfigArea,
    id: string,
    tx?: SqlTx,
  ): Promise<AlertConfigRecord<S> | null> {
    const rows = await sqlQuery<Row>(
      tx ?? this.pool,
      `SELECT ${readColumns(area)} FROM ${TABLES[area]} WHERE id = $1`,
      [id],
    ).catch((err: unknown) => rethrowSql(err));
    return rows[0] ? toRecord<S>(rows[0]) : null;
  }

  /** Every entry, by id in byte order (the config hash's order). */
  async all<S = Record<string, unknown>>(area: AlertConfigArea, tx?: SqlTx): Promise<AlertConfigRecord<S>[]> {
    const rows = await sqlQuery<Row>(
      tx ?? this.pool,
      `SELECT ${columns(area)} FROM ${TABLES[area]} ORDER BY id COLLATE "C"`,
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => toRecord<S>(r));
  }

  /** A page by id (byte order), after `afterId`. */
  async list<S = Record<string, unknown>>(
    area: AlertConfigArea,
    q: { afterId?: string; limit: number },
  ): Promise<AlertConfigRecord<S>[]> {
    const rows = await sqlQuery<Row>(
      this.pool,
      `SELECT ${readColumns(area)} FROM ${TABLES[area]}
       WHERE ($1::text IS NULL OR id COLLATE "C" > $1::text COLLATE "C") ORDER BY id COLLATE "C" LIMIT $2`,
      [q.afterId ?? null, q.limit],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => toRecord<S>(r));
  }

  /** Entries of the three areas together (how big the alert part of the configuration is). */
  async count(tx: SqlTx): Promise<number> {
    const rows = await sqlQuery<{ n: number }>(
      tx,
      `SELECT ((SELECT count(*) FROM alert_rules) + (SELECT count(*) FROM notification_channels)
        + (SELECT count(*) FROM maintenance_windows))::int AS n`,
    ).catch((err: unknown) => rethrowSql(err));
    return rows[0].n;
  }

  /** Inserts the entries whose ids are free; answers those created and the ids already taken. */
  async insertNew<S = Record<string, unknown>>(
    tx: SqlTx,
    area: AlertConfigArea,
    writes: readonly AlertConfigWrite[],
    version: number,
  ): Promise<{ created: AlertConfigRecord<S>[]; taken: string[] }> {
    if (writes.length === 0) return { created: [], taken: [] };
    const channel = area === 'channels';
    const rows = await sqlQuery<Row>(
      tx,
      `INSERT INTO ${TABLES[area]} (id, name, spec, content_hash, version${channel ? ', type, secrets, secrets_redacted' : ''})
       SELECT w->>'id', w->>'name', w->'spec', w->>'hash', $2${
         channel ? `, w->>'type', COALESCE(w->'secrets', '{}'), COALESCE(w->'secretsRedacted', '{}')` : ''
       }
       FROM jsonb_array_elements($1::jsonb) w
       ON CONFLICT (id) DO NOTHING
       RETURNING ${columns(area)}`,
      [JSON.stringify(writes), version],
    ).catch((err: unknown) => rethrowSql(err));
    const byId = new Map(rows.map((r) => [r.id, toRecord<S>(r)]));
    const created: AlertConfigRecord<S>[] = [];
    const taken: string[] = [];
    for (const w of writes) {
      const row = byId.get(w.id);
      if (row) created.push(row);
      else taken.push(w.id);
    }
    return { created, taken };
  }

  /** Replaces existing entries (a channel's secrets only where the write carries them); answers them as stored. */
  async update<S = Record<string, unknown>>(
    tx: SqlTx,
    area: AlertConfigArea,
    writes: readonly AlertConfigWrite[],
    version: number,
  ): Promise<AlertConfigRecord<S>[]> {
    if (writes.length === 0) return [];
    const channel = area === 'channels';
    const rows = await sqlQuery<Row>(
      tx,
      `UPDATE ${TABLES[area]} AS t SET name = w->>'name', spec = w->'spec', content_hash = w->>'hash',
         version = $2, updated_at = now()${
           channel
             ? `, type = w->>'type', secrets = COALESCE(w->'secrets', t.secrets),
                secrets_redacted = COALESCE(w->'secretsRedacted', t.secrets_redacted)`
             : ''
         }
       FROM jsonb_array_elements($1::jsonb) w
       WHERE t.id = w->>'id'
       RETURNING ${columns(area)
         .split(', ')
         .map((c) => `t.${c}`)
         .join(', ')}`,
      [JSON.stringify(writes), version],
    ).catch((err: unknown) => rethrowSql(err));
    // A changed (or disabled) channel's rate-limit pause ends with the change, in its transaction: its receiver's
    // config was fixed or it was turned off, and the edited channel is not held back up to an hour for the old one.
    if (channel)
      await this.endPauses(
        tx,
        rows.map((r) => r.id),
      );
    const byId = new Map(rows.map((r) => [r.id, toRecord<S>(r)]));
    return writes.map((w) => byId.get(w.id)).filter((r): r is AlertConfigRecord<S> => r !== undefined);
  }

  /** Deletes entries; a deleted channel's rate-limit pause goes with it (alert_channel_pauses has no foreign key). */
  async delete(tx: SqlTx, area: AlertConfigArea, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const n = await sqlExecute(tx, `DELETE FROM ${TABLES[area]} WHERE id = ANY($1::text[])`, [[...ids]]).catch(
      (err: unknown) => rethrowSql(err),
    );
    if (area === 'channels') await this.endPauses(tx, ids);
    return n;
  }

  private async endPauses(tx: SqlTx, channelIds: readonly string[]): Promise<void> {
    if (channelIds.length === 0) return;
    await sqlExecute(tx, 'DELETE FROM alert_channel_pauses WHERE channel_id = ANY($1::text[])', [
      [...channelIds],
    ]).catch((err: unknown) => rethrowSql(err));
  }

  /**
   * A channel's sealed secrets by field ({} when it has none; null when there is no such channel):
   * for the owner (keeping secrets on a write) and for delivery, which opens them with the sealer.
   */
  async sealedSecrets(id: string, tx?: SqlTx): Promise<Record<string, string> | null> {
    const rows = await sqlQuery<{ secrets: Record<string, string> }>(
      tx ?? this.pool,
      'SELECT secrets FROM notification_channels WHERE id = $1',
      [id],
    ).catch((err: unknown) => rethrowSql(err));
    return rows[0] ? rows[0].secrets : null;
  }

  /**
   * Channels holding a sealed secret that does not begin with `sealedPrefix` (`fw1.<current key id>.`): what re-sealing
   * after a key rotation has left to do. By id (byte order) after `afterId`, at most `limit`; each with all its secrets.
   */
  async secretsNotSealedWith(
    sealedPrefix: string,
    q: { afterId?: string; limit: number },
  ): Promise<{ id: string; secrets: Record<string, string> }[]> {
    return sqlQuery<{ id: string; secrets: Record<string, string> }>(
      this.pool,
      `SELECT id, secrets FROM notification_channels
       WHERE ($2::text IS NULL OR id COLLATE "C" > $2::text COLLATE "C")
         AND EXISTS (SELECT 1 FROM jsonb_each_text(secrets) e WHERE left(e.value, length($1)) <> $1)
       ORDER BY id COLLATE "C" LIMIT $3`,
      [sealedPrefix, q.afterId ?? null, q.limit],
    ).catch((err: unknown) => rethrowSql(err));
  }

  /**
   * Re-sealed secrets (a key rotation: the same values under the current key), one statement for the batch: each
   * channel's `secrets` becomes `after` only where it still is `before` (compare-and-set: a write that changed them
   * since they were read wins, and the channel is left for the next pass). Neither its version nor updated_at moves:
   * no configuration changed. Answers the ids written.
   */
  async resealSecrets(
    rows: readonly { id: string; before: Record<string, string>; after: Record<string, string> }[],
  ): Promise<string[]> {
    if (rows.length === 0) return [];
    const written = await sqlQuery<{ id: string }>(
      this.pool,
      `UPDATE notification_channels t SET secrets = w.after
       FROM jsonb_to_recordset($1::jsonb) AS w(id text, before jsonb, after jsonb)
       WHERE t.id = w.id AND t.secrets = w.before
       RETURNING t.id`,
      [JSON.stringify(rows)],
    ).catch((err: unknown) => rethrowSql(err));
    return written.map((r) => r.id);
  }

  /** Whether the one-time seed `name` ran. */
  async seeded(tx: SqlTx, name: string): Promise<boolean> {
    const rows = await sqlQuery<{ name: string }>(tx, 'SELECT name FROM config_seeds WHERE name = $1', [name]).catch(
      (err: unknown) => rethrowSql(err),
    );
    return rows.length > 0;
  }

  /** Records that the seed `name` ran (in the seeding write's transaction). */
  async markSeeded(tx: SqlTx, name: string, version: number): Promise<void> {
    await sqlExecute(tx, 'INSERT INTO config_seeds (name, version) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
      name,
      version,
    ]).catch((err: unknown) => rethrowSql(err));
  }
}
