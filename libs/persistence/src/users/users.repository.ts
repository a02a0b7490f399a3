import { Inject, Injectable } from '@nestjs/common';
import { UserRole } from '@fleetwatch/contracts';
import { ConflictError, NotFoundError } from '@fleetwatch/domain';
import { DatabaseClient, DatabaseTransaction, prismaOf, queryClient, runInTransaction } from '../database';
import { isUuid, rethrow } from '../errors';
import type { User } from '../generated/prisma/client';
import { DATABASE_CLIENT } from '../tokens';

// ─── The pattern every repository follows ───
// * A plain record type declared here (never a Prisma type) and one `toRecord` mapper.
// * An @Injectable class taking the DatabaseClient; usable with `new` outside Nest.
// * Methods that may join a caller's transaction take an optional `tx` last.
// * Prisma errors leave as domain errors (`rethrow`): ConflictError, NotFoundError,
//   UnavailableError. "No such row" on a read is `null`, not an error.

export interface UserRecord {
  id: string;
  username: string;
  passwordHash: string;
  role: UserRole;
  /** Sessions and tokens carry the version they were issued at; a bump revokes them all. */
  tokenVersion: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewUser {
  username: string;
  passwordHash: string;
  role: UserRole;
}

export function toUserRecord(row: User): UserRecord {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.passwordHash,
    role: row.role as UserRole,
    tokenVersion: row.tokenVersion,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** Serialises "create the first admin" across replicas (pg_advisory_xact_lock key). */
const FIRST_USER_LOCK = 0x66770001;
/** Serialises user creation, so that a username is checked against the others in every case (pg_advisory_xact_lock key). */
const USER_CREATE_LOCK = 0x66770002;

@Injectable()
export class UsersRepository {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  /**
   * Throws ConflictError when the username is taken, in any case: `Admin` beside `admin` would be two accounts that
   * read as one in every list, audit line and sign-in form. Serialised with every other creation (a transaction-level
   * advisory lock), so two at once cannot both pass the check.
   */
  async create(input: NewUser, tx?: DatabaseTransaction): Promise<UserRecord> {
    const insert = async (t: DatabaseTransaction): Promise<UserRecord> => {
      const client = queryClient(this.db, t);
      await client.$executeRaw`SELECT pg_advisory_xact_lock(${USER_CREATE_LOCK})`;
      const clash = await client.$queryRaw<{ username: string }[]>`
        SELECT username FROM users WHERE lower(username) = lower(${input.username}) LIMIT 1`;
      if (clash.length > 0)
        throw new ConflictError(
          clash[0].username === input.username
            ? `username ${JSON.stringify(input.username)} is taken`
            : `username ${JSON.stringify(input.username)} is taken: ${JSON.stringify(clash[0].username)} differs only in case`,
        );
      return toUserRecord(await client.user.create({ data: input }));
    };
    try {
      return tx ? await insert(tx) : await runInTransaction(this.db, insert);
    } catch (err) {
      if (err instanceof ConflictError) throw err;
      rethrow(err, { conflict: `username ${JSON.stringify(input.username)} is taken` });
    }
  }

  /**
   * Creates the user only when there are no users at all (SPEC §11: first start creates
   * `admin`). Safe when several replicas start at once: exactly one gets the record,
   * the others null.
   */
  async createIfNoUsers(input: NewUser): Promise<UserRecord | null> {
    try {
      return await runInTransaction(this.db, async (tx) => {
        const client = queryClient(this.db, tx);
        await client.$executeRaw`SELECT pg_advisory_xact_lock(${FIRST_USER_LOCK})`;
        if ((await client.user.count()) > 0) return null;
        return toUserRecord(await client.user.create({ data: input }));
      });
    } catch (err) {
      rethrow(err, { conflict: `username ${JSON.stringify(input.username)} is taken` });
    }
  }

  async findById(id: string): Promise<UserRecord | null> {
    if (!isUuid(id)) return null;
    const row = await prismaOf(this.db)
      .user.findUnique({ where: { id } })
      .catch((err: unknown) => rethrow(err));
    return row ? toUserRecord(row) : null;
  }

  async findByUsername(username: string): Promise<UserRecord | null> {
    // No stored username holds a NUL (they are store-safe text), and Postgres refuses one in a query (22021): none.
    if (username.includes('\u0000')) return null;
    const row = await prismaOf(this.db)
      .user.findUnique({ where: { username } })
      .catch((err: unknown) => rethrow(err));
    return row ? toUserRecord(row) : null;
  }

  async list(): Promise<UserRecord[]> {
    const rows = await prismaOf(this.db)
      .user.findMany({ orderBy: { username: 'asc' } })
      .catch((err: unknown) => rethrow(err));
    return rows.map(toUserRecord);
  }

  async count(): Promise<number> {
    return prismaOf(this.db)
      .user.count()
      .catch((err: unknown) => rethrow(err));
  }

  /** Sets a new password hash and bumps tokenVersion (revoking every session). */
  async setPassword(id: string, passwordHash: string, tx?: DatabaseTransaction): Promise<UserRecord> {
    return this.update(id, { passwordHash, tokenVersion: { increment: 1 } }, tx);
  }

  /** Changes the role and bumps tokenVersion when it actually changed. */
  async setRole(id: string, role: UserRole, tx?: DatabaseTransaction): Promise<UserRecord> {
    if (!isUuid(id)) throw new NotFoundError(`user ${id} not found`);
    const current = await queryClient(this.db, tx)
      .user.findUnique({ where: { id } })
      .catch((err: unknown) => rethrow(err));
    if (!current) throw new NotFoundError(`user ${id} not found`);
    if (current.role === role) return toUserRecord(current);
    return this.update(id, { role, tokenVersion: { increment: 1 } }, tx);
  }

  /** Bumps tokenVersion: every session and token of the user stops working. */
  async revokeTokens(id: string, tx?: DatabaseTransaction): Promise<UserRecord> {
    return this.update(id, { tokenVersion: { increment: 1 } }, tx);
  }

  /** Deletes the user (sessions go with it). False when there was none. */
  async delete(id: string, tx?: DatabaseTransaction): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { count } = await queryClient(this.db, tx)
      .user.deleteMany({ where: { id } })
      .catch((err: unknown) => rethrow(err));
    return count > 0;
  }

  private async update(
    id: string,
    data: { passwordHash?: string; role?: UserRole; tokenVersion?: { increment: number } },
    tx?: DatabaseTransaction,
  ): Promise<UserRecord> {
    if (!isUuid(id)) throw new NotFoundError(`user ${id} not found`);
    try {
      return toUserRecord(await queryClient(this.db, tx).user.update({ where: { id }, data }));
    } catch (err) {
      rethrow(err, { notFound: `user ${id} not found` });
    }
  }
}
