import { randomUUID } from 'node:crypto';
import { UserRole } from '@fleetwatch/contracts';
import { NotFoundError } from '@fleetwatch/domain';

import { testEnv } from '@fleetwatch/testing';
import { createPrismaClient, DatabaseClient } from '../database';
import { UsersRepository, UserRecord } from '../users/users.repository';
import { SessionsRepository } from './sessions.repository';

let db: DatabaseClient;
let users: UsersRepository;
let sessions: SessionsRepository;
let user: UserRecord;
const hour = 3600_000;

beforeAll(async () => {
  db = createPrismaClient(testEnv().databaseUrl); // the run's shared database: unique names only
  users = new UsersRepository(db);
  sessions = new SessionsRepository(db);
  user = await users.create({ username: `sess-${randomUUID()}`, passwordHash: 'h', role: UserRole.Viewer });
});
afterAll(() => db?.$disconnect());

describe('SessionsRepository', () => {
  it('finds a live session with its user by token hash', async () => {
    const s = await sessions.create({
      userId: user.id,
      tokenHash: `t-${randomUUID()}`,
      expiresAt: new Date(Date.now() + hour),
    });
    expect(s).toMatchObject({ userId: user.id, revokedAt: null });
    const active = await sessions.findActiveByTokenHash(s.tokenHash);
    expect(active?.session).toEqual(s);
    expect(active?.user).toEqual(user);
  });

  it('ignores expired and revoked sessions', async () => {
    const expired = await sessions.create({
      userId: user.id,
      tokenHash: `t-${randomUUID()}`,
      expiresAt: new Date(Date.now() - 1000),
    });
    expect(await sessions.findActiveByTokenHash(expired.tokenHash)).toBeNull();
    const s = await sessions.create({
      userId: user.id,
      tokenHash: `t-${randomUUID()}`,
      expiresAt: new Date(Date.now() + hour),
    });
    expect(await sessions.revoke(s.id)).toBe(true);
    expect(await sessions.revoke(s.id)).toBe(false);
    expect(await sessions.findActiveByTokenHash(s.tokenHash)).toBeNull();
  });

  it('a session for a user deleted meanwhile is a NotFoundError (signing in while being deleted), not a raw driver error', async () => {
    const u = await users.create({ username: `sess-${randomUUID()}`, passwordHash: 'h', role: UserRole.Viewer });
    expect(await users.delete(u.id)).toBe(true);
    await expect(
      sessions.create({ userId: u.id, tokenHash: `t-${randomUUID()}`, expiresAt: new Date(Date.now() + hour) }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('revokes every session of a user at once', async () => {
    const u = await users.create({ username: `sess-${randomUUID()}`, passwordHash: 'h', role: UserRole.Viewer });
    for (let i = 0; i < 3; i++)
      await sessions.create({ userId: u.id, tokenHash: `t-${randomUUID()}`, expiresAt: new Date(Date.now() + hour) });
    expect(await sessions.listActiveForUser(u.id)).toHaveLength(3);
    expect(await sessions.revokeAllForUser(u.id)).toBe(3);
    expect(await sessions.listActiveForUser(u.id)).toHaveLength(0);
  });

  it('deletes long-expired sessions in batches, and sessions go with their user', async () => {
    const u = await users.create({ username: `sess-${randomUUID()}`, passwordHash: 'h', role: UserRole.Viewer });
    const old = new Date('2000-01-01T00:00:00Z');
    for (let i = 0; i < 5; i++) await sessions.create({ userId: u.id, tokenHash: `t-${randomUUID()}`, expiresAt: old });
    expect(await sessions.deleteExpired(new Date('2000-01-02T00:00:00Z'), 2)).toBeGreaterThanOrEqual(5);
    const live = await sessions.create({
      userId: u.id,
      tokenHash: `t-${randomUUID()}`,
      expiresAt: new Date(Date.now() + hour),
    });
    await users.delete(u.id);
    expect(await sessions.findActiveByTokenHash(live.tokenHash)).toBeNull();
  });
});
