import { Inject, Injectable } from '@nestjs/common';
import { NotFoundError } from '@fleetwatch/domain';
import { DatabaseClient, DatabaseTransaction, prismaOf, queryClient } from '../database';
import { isForeignKeyViolation, isUuid, rethrow } from '../errors';
import type { Session } from '../generated/prisma/client';
import { DATABASE_CLIENT } from '../tokens';
import { toUserRecord, UserRecord } from '../users/users.repository';

export interface SessionRecord {
  id: string;
  userId: string;
  /** SHA-256 (or similar) of the bearer token; the token itself is never stored. */
  tokenHash: string;
  expiresAt: Date;
  revokedAt: Date | null;
  createdAt: Date;
}

export interface NewSession {
  userId: string;
  tokenHash: string;
  expiresAt: Date;
}

/** A live session with its user, for authenticating a request. */
export interface ActiveSession {
  session: SessionRecord;
  user: UserRecord;
}

function toRecord(row: Session): SessionRecord {
  return {
    id: row.id,
    userId: row.userId,
    tokenHash: row.tokenHash,
    expiresAt: row.expiresAt,
    revokedAt: row.revokedAt,
    createdAt: row.createdAt,
  };
}

@Injectable()
export class SessionsRepository {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  /** Throws NotFoundError when the user is gone (deleted while signing in). */
  async create(input: NewSession, tx?: DatabaseTransaction): Promise<SessionRecord> {
    try {
      return toRecord(await queryClient(this.db, tx).session.create({ data: input }));
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new NotFoundError(`user ${input.userId} not found`);
      rethrow(err, { conflict: 'session token collision' });
    }
  }

  /**
   * The session for a token hash when it is neither expired nor revoked, with its user; null when either is gone. Two
   * reads (as Prisma's `include` made them too, each its own snapshot): a user deleted between them — their sessions
   * with them — is no session. The include answered `user: null` for its required relation there, and reading it threw
   * a TypeError: a 500 for any request racing the deletion of its user.
   */
  async findActiveByTokenHash(tokenHash: string, now: Date = new Date()): Promise<ActiveSession | null> {
    const client = prismaOf(this.db);
    const row = await client.session
      .findFirst({ where: { tokenHash, revokedAt: null, expiresAt: { gt: now } } })
      .catch((err: unknown) => rethrow(err));
    if (!row) return null;
    const user = await client.user.findUnique({ where: { id: row.userId } }).catch((err: unknown) => rethrow(err));
    return user ? { session: toRecord(row), user: toUserRecord(user) } : null;
  }

  async listActiveForUser(userId: string, now: Date = new Date()): Promise<SessionRecord[]> {
    if (!isUuid(userId)) return [];
    const rows = await prismaOf(this.db)
      .session.findMany({ where: { userId, revokedAt: null, expiresAt: { gt: now } }, orderBy: { createdAt: 'desc' } })
      .catch((err: unknown) => rethrow(err));
    return rows.map(toRecord);
  }

  /** Revokes one session. False when it does not exist or was already revoked. */
  async revoke(id: string, at: Date = new Date(), tx?: DatabaseTransaction): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { count } = await queryClient(this.db, tx)
      .session.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: at } })
      .catch((err: unknown) => rethrow(err));
    return count > 0;
  }

  /** Revokes every live session of a user (password or role change, SPEC §10). */
  async revokeAllForUser(userId: string, at: Date = new Date(), tx?: DatabaseTransaction): Promise<number> {
    if (!isUuid(userId)) return 0;
    const { count } = await queryClient(this.db, tx)
      .session.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: at } })
      .catch((err: unknown) => rethrow(err));
    return count;
  }

  /** Housekeeping: deletes sessions that expired before `before`, in batches. */
  async deleteExpired(before: Date, batchSize = 1000): Promise<number> {
    const client = prismaOf(this.db);
    let total = 0;
    for (;;) {
      const deleted = await client.$executeRaw`
        DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < ${before} LIMIT ${batchSize})`.catch(
        (err: unknown) => rethrow(err),
      );
      total += deleted;
      if (deleted < batchSize) return total;
    }
  }
}
