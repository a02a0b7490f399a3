import { UserRole } from '@fleetwatch/contracts';
import { ConflictError, NotFoundError } from '@fleetwatch/domain';

import { createIsolatedDatabase, IsolatedDatabase } from '@fleetwatch/testing';
import { createPrismaClient, DatabaseClient } from '../database';
import { UsersRepository } from './users.repository';

// A private database: count() and createIfNoUsers() need an empty users table.
let isolated: IsolatedDatabase;
let db: DatabaseClient;
let users: UsersRepository;

beforeAll(async () => {
  isolated = await createIsolatedDatabase();
  db = createPrismaClient(isolated.databaseUrl);
  users = new UsersRepository(db);
});
afterAll(async () => {
  await db?.$disconnect();
  await isolated?.dispose();
});

describe('UsersRepository', () => {
  it('creates exactly one first admin when replicas race', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        users.createIfNoUsers({ username: 'admin', passwordHash: 'h', role: UserRole.Admin }),
      ),
    );
    expect(results.filter((r) => r !== null)).toHaveLength(1);
    expect(await users.count()).toBe(1);
    expect(await users.createIfNoUsers({ username: 'other', passwordHash: 'h', role: UserRole.Admin })).toBeNull();
  });

  it('creates, finds and lists users as plain records', async () => {
    const u = await users.create({ username: 'alice', passwordHash: 'argon2-hash', role: UserRole.Operator });
    expect(u).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      username: 'alice',
      passwordHash: 'argon2-hash',
      role: 'operator',
      tokenVersion: 0,
      createdAt: expect.any(Date),
      updatedAt: expect.any(Date),
    });
    expect(Object.getPrototypeOf(u)).toBe(Object.prototype);
    expect(await users.findById(u.id)).toEqual(u);
    expect(await users.findByUsername('alice')).toEqual(u);
    expect(await users.findById('not-a-uuid')).toBeNull();
    expect(await users.findByUsername('nobody')).toBeNull();
    // A NUL no username holds (Postgres refuses it in a query: 22021): none, not an error.
    expect(await users.findByUsername('ali\u0000ce')).toBeNull();
    expect((await users.list()).map((x) => x.username)).toEqual(['admin', 'alice']);
  });

  it('refuses a taken username with a ConflictError', async () => {
    await expect(users.create({ username: 'alice', passwordHash: 'x', role: UserRole.Viewer })).rejects.toBeInstanceOf(
      ConflictError,
    );
  });

  it('refuses a username that differs from a taken one only in case, also when they are created at once', async () => {
    await users.create({ username: 'erin', passwordHash: 'x', role: UserRole.Viewer });
    await expect(users.create({ username: 'ERIN', passwordHash: 'x', role: UserRole.Admin })).rejects.toThrow(
      /"erin" differs only in case/,
    );
    const raced = await Promise.allSettled(
      // Every spelling of `dave` (16).
      Array.from({ length: 16 }, (_, bits) =>
        [...'dave'].map((c, i) => (bits & (1 << i) ? c.toUpperCase() : c)).join(''),
      ).map((username) => users.create({ username, passwordHash: 'x', role: UserRole.Viewer })),
    );
    expect(raced.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of raced) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConflictError);
  });

  it('bumps tokenVersion on password change and on an actual role change only', async () => {
    const u = await users.create({ username: 'bob', passwordHash: 'one', role: UserRole.Viewer });
    const p = await users.setPassword(u.id, 'two');
    expect(p.passwordHash).toBe('two');
    expect(p.tokenVersion).toBe(1);
    expect(p.updatedAt.getTime()).toBeGreaterThanOrEqual(u.updatedAt.getTime());
    expect((await users.setRole(u.id, UserRole.Viewer)).tokenVersion).toBe(1);
    const r = await users.setRole(u.id, UserRole.Admin);
    expect(r.role).toBe('admin');
    expect(r.tokenVersion).toBe(2);
    expect((await users.revokeTokens(u.id)).tokenVersion).toBe(3);
  });

  it('reports unknown users as NotFoundError on update and false on delete', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    await expect(users.setPassword(missing, 'x')).rejects.toBeInstanceOf(NotFoundError);
    await expect(users.setRole('junk', UserRole.Admin)).rejects.toBeInstanceOf(NotFoundError);
    expect(await users.delete(missing)).toBe(false);
    const u = await users.create({ username: 'carol', passwordHash: 'x', role: UserRole.Viewer });
    expect(await users.delete(u.id)).toBe(true);
    expect(await users.findById(u.id)).toBeNull();
  });
});
