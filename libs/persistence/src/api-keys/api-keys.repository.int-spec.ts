import { randomUUID } from 'node:crypto';
import { UserRole } from '@fleetwatch/contracts';
import { NotFoundError } from '@fleetwatch/domain';

import { testEnv } from '@fleetwatch/testing';
import { createPrismaClient, DatabaseClient } from '../database';
import { UsersRepository } from '../users/users.repository';
import { generateApiKey } from './api-key-secret';
import { ApiKeysRepository } from './api-keys.repository';

let db: DatabaseClient;
let keys: ApiKeysRepository;
let users: UsersRepository;

beforeAll(() => {
  db = createPrismaClient(testEnv().databaseUrl);
  keys = new ApiKeysRepository(db);
  users = new UsersRepository(db);
});
afterAll(() => db?.$disconnect());

const prefix = () => `fwk_${randomUUID().slice(0, 8)}`;

describe('ApiKeysRepository', () => {
  it('stores a key and finds it by prefix until it is revoked', async () => {
    const creator = await users.create({ username: `keys-${randomUUID()}`, passwordHash: 'h', role: UserRole.Admin });
    const p = prefix();
    const k = await keys.create({
      name: 'docker watcher',
      prefix: p,
      keyHash: 'hash',
      scopes: ['ingest'],
      allowedCidrs: ['10.0.0.0/8'],
      createdBy: creator.id,
      createdByName: creator.username,
    });
    expect(k).toEqual({
      id: expect.any(String),
      name: 'docker watcher',
      prefix: p,
      keyHash: 'hash',
      scopes: ['ingest'],
      allowedCidrs: ['10.0.0.0/8'],
      clientCertSubject: null,
      createdBy: creator.id,
      createdByName: creator.username,
      createdAt: expect.any(Date),
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(await keys.findActiveByPrefix(p)).toEqual([k]);
    expect(await keys.findById(k.id)).toEqual(k);
    expect((await keys.list()).map((x) => x.id)).toContain(k.id);

    expect(await keys.revoke(k.id)).toBe(true);
    expect(await keys.revoke(k.id)).toBe(false);
    expect(await keys.findActiveByPrefix(p)).toEqual([]);
    expect((await keys.list()).map((x) => x.id)).not.toContain(k.id);
    expect((await keys.list({ includeRevoked: true })).map((x) => x.id)).toContain(k.id);
  });

  it('lists the prefixes of active keys issued before checksums, and only those', async () => {
    const legacy = await keys.create({ name: 'old', prefix: prefix(), keyHash: 'h', scopes: ['ingest'] });
    const revoked = await keys.create({ name: 'old, revoked', prefix: prefix(), keyHash: 'h', scopes: ['ingest'] });
    await keys.revoke(revoked.id);
    const fresh = generateApiKey();
    await keys.create({ name: 'new', prefix: fresh.prefix, keyHash: fresh.keyHash, scopes: ['ingest'] });
    const listed = await keys.listActiveLegacyPrefixes();
    expect(listed).toContain(legacy.prefix);
    expect(listed).not.toContain(revoked.prefix);
    expect(listed).not.toContain(fresh.prefix);
  });

  it('refuses a key whose creator is gone (deleted meanwhile) with NotFoundError, not a raw database error (a 500)', async () => {
    const creator = await users.create({ username: `gone-${randomUUID()}`, passwordHash: 'h', role: UserRole.Admin });
    await users.delete(creator.id);
    const p = prefix();
    await expect(
      keys.create({ name: 'k', prefix: p, keyHash: 'h', scopes: ['read'], createdBy: creator.id, createdByName: 'x' }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(await keys.findActiveByPrefix(p)).toEqual([]);
  });

  it('defaults to no CIDR restriction and no creator', async () => {
    const k = await keys.create({ name: 'k', prefix: prefix(), keyHash: 'h', scopes: ['ingest', 'read'] });
    expect(k.allowedCidrs).toEqual([]);
    expect(k.createdBy).toBeNull();
    expect(k.createdByName).toBeNull();
  });

  it('moves last-used forward only', async () => {
    const k = await keys.create({ name: 'k', prefix: prefix(), keyHash: 'h', scopes: ['ingest'] });
    const later = new Date('2030-01-01T00:00:00Z');
    await keys.touchLastUsed(k.id, later);
    await keys.touchLastUsed(k.id, new Date('2029-01-01T00:00:00Z'));
    expect((await keys.findById(k.id))?.lastUsedAt).toEqual(later);
  });
});
