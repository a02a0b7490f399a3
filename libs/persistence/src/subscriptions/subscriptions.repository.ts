import { Inject, Injectable } from '@nestjs/common';
import { rethrowSql, SQL_POOL, sqlExecute, sqlQuery, type SqlHandle, type SqlTx } from '../sql/sql-pool';

// status_subscriptions (issue 18; writer: sync-orchestrator inside the config writer's transaction; the
// aggregator reads). The validated spec, and the signing secret sealed by the caller (SecretSealer, context
// `subscription:<id>:secret`): this file only moves the sealed text, and only `sealedSecret` reads it.

export interface SubscriptionRecord<S = Record<string, unknown>> {
  id: string;
  spec: S;
  version: number;
  createdAt: string;
  updatedAt: string;
  /**
   * As find and list read it: when its rate-limit pause ends (ISO, the database's clock), null when it is not paused
   * now. Absent where not read (enabled, and writes: a write ends the pause).
   */
  pausedUntil?: string | null;
}

interface Row {
  id: string;
  spec: Record<string, unknown>;
  version: number;
  created_at: Date;
  updated_at: Date;
  paused_until?: Date | null;
}

const COLUMNS = 'id, spec, version, created_at, updated_at';
/** What find and list read: with the end of its rate-limit pause (subscription_pauses) still running. */
const READ_COLUMNS = `${COLUMNS}, (SELECT p.paused_until FROM subscription_pauses p
  WHERE p.subscription_id = status_subscriptions.id AND p.paused_until > now()) AS paused_until`;

function toRecord<S>(r: Row): SubscriptionRecord<S> {
  const out: SubscriptionRecord<S> = {
    id: r.id,
    spec: r.spec as S,
    version: r.version,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
  if (r.paused_until !== undefined)
    out.pausedUntil = r.paused_until === null ? null : new Date(r.paused_until).toISOString();
  return out;
}

/** The sealing context of a subscription's secret (a sealed value opens only for its own subscription). */
export const subscriptionSecretContext = (id: string): string => `subscription:${id}:secret`;

@Injectable()
export class SubscriptionsRepository {
  constructor(@Inject(SQL_POOL) private readonly pool: SqlHandle) {}

  async find<S = Record<string, unknown>>(id: string, tx?: SqlTx): Promise<SubscriptionRecord<S> | null> {
    const rows = await sqlQuery<Row>(
      tx ?? this.pool,
      `SELECT ${READ_COLUMNS} FROM status_subscriptions WHERE id = $1`,
      [id],
    ).catch((err: unknown) => rethrowSql(err));
    return rows[0] ? toRecord<S>(rows[0]) : null;
  }

  /** A page by id (byte order), after `afterId`. */
  async list<S = Record<string, unknown>>(q: { afterId?: string; limit: number }): Promise<SubscriptionRecord<S>[]> {
    const rows = await sqlQuery<Row>(
      this.pool,
      `SELECT ${READ_COLUMNS} FROM status_subscriptions
       WHERE ($1::text IS NULL OR id COLLATE "C" > $1::text COLLATE "C") ORDER BY id COLLATE "C" LIMIT $2`,
      [q.afterId ?? null, q.limit],
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => toRecord<S>(r));
  }

  /** Every enabled subscription (the aggregator's matching; the table is small: one query per batch of events). */
  async enabled<S = Record<string, unknown>>(): Promise<SubscriptionRecord<S>[]> {
    const rows = await sqlQuery<Row>(
      this.pool,
      `SELECT ${COLUMNS} FROM status_subscriptions WHERE (spec->>'enabled')::boolean IS NOT FALSE ORDER BY id`,
    ).catch((err: unknown) => rethrowSql(err));
    return rows.map((r) => toRecord<S>(r));
  }

  async insert<S>(
    tx: SqlTx,
    w: { id: string; name: string; spec: S; sealedSecret: string },
    version: number,
  ): Promise<SubscriptionRecord<S>> {
    const rows = await sqlQuery<Row>(
      tx,
      `INSERT INTO status_subscriptions (id, name, spec, secret, version) VALUES ($1, $2, $3::jsonb, $4, $5)
       RETURNING ${COLUMNS}`,
      [w.id, w.name, JSON.stringify(w.spec), w.sealedSecret, version],
    ).catch((err: unknown) => rethrowSql(err, `subscription ${w.id} exists`));
    return toRecord<S>(rows[0]);
  }

  /**
   * Replaces the spec; the secret only when `sealedSecret` is given. A rate-limit pause of the subscription ends with
   * the change (or the disabling), in its transaction: its receiver was fixed or turned off, and it is not held back
   * up to an hour for the old one.
   */
  async update<S>(
    tx: SqlTx,
    w: { id: string; name: string; spec: S; sealedSecret?: string },
    version: number,
  ): Promise<SubscriptionRecord<S> | null> {
    const rows = await sqlQuery<Row>(
      tx,
      `UPDATE status_subscriptions SET name = $2, spec = $3::jsonb, secret = COALESCE($4, secret), version = $5,
         updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`,
      [w.id, w.name, JSON.stringify(w.spec), w.sealedSecret ?? null, version],
    ).catch((err: unknown) => rethrowSql(err));
    if (rows[0]) await this.endPause(tx, w.id);
    return rows[0] ? toRecord<S>(rows[0]) : null;
  }

  /** Deletes it; its rate-limit pause goes with it (subscription_pauses has no foreign key). */
  async delete(tx: SqlTx, id: string): Promise<number> {
    const n = await sqlExecute(tx, 'DELETE FROM status_subscriptions WHERE id = $1', [id]).catch((err: unknown) =>
      rethrowSql(err),
    );
    await this.endPause(tx, id);
    return n;
  }

  private async endPause(tx: SqlTx, id: string): Promise<void> {
    await sqlExecute(tx, 'DELETE FROM subscription_pauses WHERE subscription_id = $1', [id]).catch((err: unknown) =>
      rethrowSql(err),
    );
  }

  /**
   * The sealed secret (null: no such subscription). For delivery, which opens it with the sealer, and for a write
   * (`tx`) telling a secret sent again from a new one.
   */
  async sealedSecret(id: string, tx?: SqlTx): Promise<string | null> {
    const rows = await sqlQuery<{ secret: string }>(
      tx ?? this.pool,
      'SELECT secret FROM status_subscriptions WHERE id = $1',
      [id],
    ).catch((err: unknown) => rethrowSql(err));
    return rows[0]?.secret ?? null;
  }

  /**
   * Subscriptions whose sealed secret does not begin with `sealedPrefix` (`fw1.<current key id>.`): what re-sealing
   * after a key rotation has left to do. By id (byte order) after `afterId`, at most `limit`.
   */
  async secretsNotSealedWith(
    sealedPrefix: string,
    q: { afterId?: string; limit: number },
  ): Promise<{ id: string; secret: string }[]> {
    return sqlQuery<{ id: string; secret: string }>(
      this.pool,
      `SELECT id, secret FROM status_subscriptions
       WHERE ($2::text IS NULL OR id COLLATE "C" > $2::text COLLATE "C") AND left(secret, length($1)) <> $1
       ORDER BY id COLLATE "C" LIMIT $3`,
      [sealedPrefix, q.afterId ?? null, q.limit],
    ).catch((err: unknown) => rethrowSql(err));
  }

  /**
   * Re-sealed secrets (a key rotation), one statement for the batch: each subscription's secret becomes `after` only
   * where it still is `before` (compare-and-set: a write that changed it since it was read wins). Neither its version
   * nor updated_at moves. Answers the ids written.
   */
  async resealSecrets(rows: readonly { id: string; before: string; after: string }[]): Promise<string[]> {
    if (rows.length === 0) return [];
    const written = await sqlQuery<{ id: string }>(
      this.pool,
      `UPDATE status_subscriptions t SET secret = w.after
       FROM jsonb_to_recordset($1::jsonb) AS w(id text, before text, after text)
       WHERE t.id = w.id AND t.secret = w.before
       RETURNING t.id`,
      [JSON.stringify(rows)],
    ).catch((err: unknown) => rethrowSql(err));
    return written.map((r) => r.id);
  }
}
