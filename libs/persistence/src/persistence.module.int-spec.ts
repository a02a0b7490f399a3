import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { UnavailableError } from '@fleetwatch/domain';

import { TcpProxy, testEnv } from '@fleetwatch/testing';
import { createPrismaClient, DatabaseClient, pingDatabase } from './database';
import {
  ApiKeysRepository,
  DATABASE_CLIENT,
  PersistenceModule,
  ProcessedMessagesRepository,
  SessionsRepository,
  UsersRepository,
} from './index';

@Injectable()
class NeedsUsers {
  constructor(readonly users: UsersRepository) {}
}

@Module({ providers: [NeedsUsers] })
class FeatureModule {}

describe('PersistenceModule', () => {
  it('provides the client and repositories to feature modules and disconnects on close', async () => {
    @Module({
      imports: [PersistenceModule.forRoot({ databaseUrl: testEnv().databaseUrl, poolSize: 2 }), FeatureModule],
    })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const db = app.get<DatabaseClient>(DATABASE_CLIENT);
    expect((await pingDatabase(db)).ok).toBe(true);
    expect(app.get(NeedsUsers).users).toBeInstanceOf(UsersRepository);
    for (const repo of [SessionsRepository, ApiKeysRepository, ProcessedMessagesRepository])
      expect(app.get(repo)).toBeInstanceOf(repo);
    expect(await app.get(UsersRepository).findByUsername('nobody-here')).toBeNull();
    const disconnect = jest.spyOn(db, '$disconnect');
    await app.close();
    expect(disconnect).toHaveBeenCalled();
  });

  it('boots from an async factory', async () => {
    @Module({
      imports: [PersistenceModule.forRootAsync({ useFactory: async () => ({ databaseUrl: testEnv().databaseUrl }) })],
    })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    expect((await pingDatabase(app.get<DatabaseClient>(DATABASE_CLIENT))).ok).toBe(true);
    await app.close();
  });
});

describe('database away', () => {
  it('pingDatabase reports it, repositories throw UnavailableError, and both recover', async () => {
    const proxy = TcpProxy.forUrl(testEnv().databaseUrl);
    await proxy.start();
    const db = createPrismaClient(proxy.rewriteUrl(testEnv().databaseUrl), { connectionTimeoutMs: 1000 });
    const users = new UsersRepository(db);
    try {
      expect((await pingDatabase(db)).ok).toBe(true);
      proxy.pause();
      proxy.cut();
      const down = await pingDatabase(db, 1500);
      expect(down.ok).toBe(false);
      expect(down.error).toEqual(expect.any(String));
      await expect(users.findByUsername('x')).rejects.toBeInstanceOf(UnavailableError);
      proxy.resume();
      expect((await pingDatabase(db)).ok).toBe(true);
      expect(await users.findByUsername('x')).toBeNull();
    } finally {
      await db.$disconnect();
      await proxy.stop();
    }
  });
});
