import { Inject, Injectable } from '@nestjs/common';
import { ChangeOwnPasswordRequest, CreateUserRequest, UserAdminView, UserRole, UserView } from '@fleetwatch/contracts';
import { ConflictError, ForbiddenError, InvalidError, NotFoundError, UnauthorizedError } from '@fleetwatch/domain';
import {
  DATABASE_CLIENT,
  DatabaseClient,
  type DatabaseTransaction,
  runInTransaction,
  SessionsRepository,
  UserDisabledRepository,
  UserRecord,
  UsersRepository,
} from '@fleetwatch/persistence';
import { CredentialLookups } from '../auth/credential-lookups';
import { PasswordHasher } from '../auth/password-hasher.service';
import type { Principal } from '../auth/principal';

export function toUserView(u: UserRecord): UserView {
  return {
    id: u.id,
    username: u.username,
    role: u.role,
    createdAt: u.createdAt.toISOString(),
    updatedAt: u.updatedAt.toISOString(),
  };
}

export function toAdminView(u: UserRecord, disabledAt: Date | null): UserAdminView {
  return { ...toUserView(u), disabled: disabledAt !== null, disabledAt: disabledAt?.toISOString() ?? null };
}

/**
 * Users and their credentials (SPEC §10). A password or role change bumps the user's
 * tokenVersion and revokes every session in the same transaction: old tokens get 401.
 */
@Injectable()
export class UsersService {
  constructor(
    private readonly users: UsersRepository,
    private readonly sessions: SessionsRepository,
    private readonly hasher: PasswordHasher,
    @Inject(DATABASE_CLIENT) private readonly db: DatabaseClient,
    private readonly disabled: UserDisabledRepository,
    private readonly lookups: CredentialLookups,
  ) {}

  async list(): Promise<UserAdminView[]> {
    const [users, disabled] = await Promise.all([this.users.list(), this.disabled.listDisabled()]);
    return users.map((u) => toAdminView(u, disabled.get(u.id) ?? null));
  }

  /**
   * Disables a user (sign-in refused; every session revoked, and with them live sockets)
   * or enables one. Nobody disables themselves or the last enabled admin.
   */
  async setDisabled(actor: Principal, id: string, disable: boolean): Promise<UserAdminView> {
    const user = await this.require(id);
    if (disable) {
      if (actor.kind === 'user' && actor.id === user.id) throw new ConflictError('you cannot disable yourself');
      await runInTransaction(this.db, async (tx) => {
        if (user.role === UserRole.Admin) await this.refuseLastAdmin(user, `cannot disable ${user.username}`, tx);
        await this.disabled.setDisabled(id, new Date(), tx);
        await this.sessions.revokeAllForUser(id, new Date(), tx);
      });
      this.sessionsEnded();
    } else {
      await this.disabled.setDisabled(id, null);
    }
    const [updated, since] = await Promise.all([this.require(id), this.disabled.disabledAt(id)]);
    return toAdminView(updated, since);
  }

  async create(input: CreateUserRequest): Promise<UserView> {
    const passwordHash = await this.hasher.hash(input.password);
    return toUserView(await this.users.create({ username: input.username, passwordHash, role: input.role }));
  }

  async changeRole(id: string, role: UserRole): Promise<UserView> {
    const user = await this.require(id);
    if (user.role === role) return toUserView(user);
    const updated = await runInTransaction(this.db, async (tx) => {
      if (user.role === UserRole.Admin) await this.refuseLastAdmin(user, `cannot make ${user.username} ${role}`, tx);
      const record = await this.users.setRole(id, role, tx);
      await this.sessions.revokeAllForUser(id, new Date(), tx);
      return record;
    });
    this.sessionsEnded();
    return toUserView(updated);
  }

  async setPassword(id: string, password: string): Promise<void> {
    await this.require(id);
    await this.replacePassword(id, password);
  }

  async changeOwnPassword(principal: Principal, input: ChangeOwnPasswordRequest): Promise<void> {
    if (principal.kind !== 'user') throw new ForbiddenError('an API key has no password: sign in as a user');
    try {
      const user = await this.require(principal.id);
      if (!(await this.hasher.verify(user.passwordHash, input.currentPassword))) {
        throw new InvalidError('currentPassword: does not match', [
          { path: 'currentPassword', message: 'does not match your current password' },
        ]);
      }
      await this.replacePassword(user.id, input.newPassword);
    } catch (err) {
      // Deleted while this request was on its way (their sessions with them): as a request after, not "user <id> not
      // found" about one's own account.
      if (err instanceof NotFoundError) throw new UnauthorizedError('this account no longer exists');
      throw err;
    }
  }

  async delete(actor: Principal, id: string): Promise<void> {
    const user = await this.require(id);
    if (actor.kind === 'user' && actor.id === user.id) throw new ConflictError('you cannot delete yourself');
    const deleted = await runInTransaction(this.db, async (tx) => {
      if (user.role === UserRole.Admin) await this.refuseLastAdmin(user, `cannot delete ${user.username}`, tx);
      return this.users.delete(id, tx);
    });
    this.sessionsEnded();
    if (!deleted) throw new NotFoundError(`user ${id} not found`);
  }

  private async replacePassword(id: string, password: string): Promise<void> {
    const passwordHash = await this.hasher.hash(password);
    await runInTransaction(this.db, async (tx) => {
      await this.users.setPassword(id, passwordHash, tx);
      await this.sessions.revokeAllForUser(id, new Date(), tx);
    });
    this.sessionsEnded();
  }

  /**
   * After sessions ended (committed): the gateway's bounded session lookups (CredentialLookups) stop sharing a query
   * begun before and drop an answer kept for a retry — either may have read a session row from before, for as long as
   * a slow query ran — so the next request reads the rows as they are now.
   */
  private sessionsEnded(): void {
    this.lookups.forget('session:');
  }

  private async require(id: string): Promise<UserRecord> {
    const user = await this.users.findById(id);
    if (!user) throw new NotFoundError(`user ${id} not found`);
    return user;
  }

  /**
   * Nobody may remove the last enabled admin (a disabled one cannot sign in: the site would have no one to
   * manage users). Inside the removing transaction, serialised with every other such change.
   */
  private async refuseLastAdmin(user: UserRecord, what: string, tx: DatabaseTransaction): Promise<void> {
    if ((await this.disabled.lockAndCountOtherEnabledAdmins(user.id, tx)) === 0)
      throw new ConflictError(`${what}: it is the last admin enabled`);
  }
}
