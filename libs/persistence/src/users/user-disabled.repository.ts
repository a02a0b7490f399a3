import { Inject, Injectable } from '@nestjs/common';
import { NotFoundError } from '@fleetwatch/domain';
import { DatabaseClient, DatabaseTransaction, prismaOf, queryClient } from '../database';
import { isUuid, rethrow } from '../errors';
import { DATABASE_CLIENT } from '../tokens';

/**
 * users.disabled_at (issue 17), in SQL: the column is newer than the generated client
 * some checkouts hold, and only the gateway's user admin and sign-in read it.
 */
@Injectable()
export class UserDisabledRepository {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  /** Disables (bumping token_version: every session and token stops working) or enables a user. */
  async setDisabled(id: string, disabledAt: Date | null, tx?: DatabaseTransaction): Promise<void> {
    if (!isUuid(id)) throw new NotFoundError(`user ${id} not found`);
    const sql =
      disabledAt === null
        ? `UPDATE users SET disabled_at = NULL, updated_at = now() WHERE id = $1::uuid`
        : `UPDATE users SET disabled_at = $2::timestamptz, token_version = token_version + 1, updated_at = now() WHERE id = $1::uuid`;
    const params: unknown[] = disabledAt === null ? [id] : [id, disabledAt.toISOString()];
    const count = await queryClient(this.db, tx)
      .$executeRawUnsafe(sql, ...params)
      .catch((err: unknown) => rethrow(err));
    if (count === 0) throw new NotFoundError(`user ${id} not found`);
  }

  /** When the user was disabled, or null (enabled or unknown). */
  async disabledAt(id: string): Promise<Date | null> {
    if (!isUuid(id)) return null;
    const rows = await prismaOf(this.db)
      .$queryRawUnsafe<{ disabled_at: Date | null }[]>(`SELECT disabled_at FROM users WHERE id = $1::uuid`, id)
      .catch((err: unknown) => rethrow(err));
    return rows[0]?.disabled_at ?? null;
  }

  /** Disabled users: id → since when. */
  async listDisabled(): Promise<Map<string, Date>> {
    const rows = await prismaOf(this.db)
      .$queryRawUnsafe<{ id: string; disabled_at: Date }[]>(
        `SELECT id::text AS id, disabled_at FROM users WHERE disabled_at IS NOT NULL`,
      )
      .catch((err: unknown) => rethrow(err));
    return new Map(rows.map((r) => [r.id, new Date(r.disabled_at)]));
  }

  /**
   * Inside a transaction that removes an admin (role change, disable, delete): serialises every such change
   * (a transaction-level advisory lock) and counts the enabled admins other than `id`. Two admins removing
   * each other at once cannot both pass.
   */
  async lockAndCountOtherEnabledAdmins(id: string, tx: DatabaseTransaction): Promise<number> {
    const client = queryClient(this.db, tx);
    await client
      .$executeRawUnsafe(`SELECT pg_advisory_xact_lock(hashtext('fleetwatch.users.enabled-admins'))`)
      .catch((err: unknown) => rethrow(err));
    const rows = await client
      .$queryRawUnsafe<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM users WHERE role = 'admin' AND disabled_at IS NULL AND id <> $1::uuid`,
        isUuid(id) ? id : '00000000-0000-0000-0000-000000000000',
      )
      .catch((err: unknown) => rethrow(err));
    return Number(rows[0]?.n ?? 0);
  }
}
