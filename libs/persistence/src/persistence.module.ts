import { DynamicModule, Inject, Module, OnModuleDestroy, Provider } from '@nestjs/common';
import { ApiKeysRepository } from './api-keys/api-keys.repository';
import { HeartbeatMonitorsRepository } from './heartbeat-monitors/heartbeat-monitors.repository';
import { HistoryReadRepository } from './history-read/history-read.repository';
import { createPrismaClient, DatabaseClient, DatabaseOptions } from './database';
import { ProcessedMessagesRepository } from './processed-messages/processed-messages.repository';
import { SessionsRepository } from './sessions/sessions.repository';
import { DATABASE_CLIENT, PERSISTENCE_OPTIONS } from './tokens';
import { UsersRepository } from './users/users.repository';

export interface PersistenceOptions extends DatabaseOptions {
  databaseUrl: string;
  /** Register globally so feature modules can inject repositories (default true). */
  global?: boolean;
}

export interface PersistenceAsyncOptions {
  useFactory: (...args: never[]) => PersistenceOptions | Promise<PersistenceOptions>;
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
  imports?: DynamicModule['imports'];
  global?: boolean;
}

/** Every repository the module provides. A new repository is added here and in index.ts. */
const REPOSITORIES = [
  UsersRepository,
  SessionsRepository,
  ApiKeysRepository,
  ProcessedMessagesRepository,
  HeartbeatMonitorsRepository,
  HistoryReadRepository,
];

const clientProvider: Provider = {
  provide: DATABASE_CLIENT,
  // The pool connects lazily: the app boots with the database away and /readyz says so.
  useFactory: (options: PersistenceOptions) => createPrismaClient(options.databaseUrl, options),
  inject: [PERSISTENCE_OPTIONS],
};

/**
 * Postgres for a service: the DatabaseClient (token DATABASE_CLIENT) and the
 * repositories; disconnects on shutdown. Migrations are NOT run here (SPEC §4: a
 * deploy step, `npm run db:migrate`, never raced by services at boot).
 */
@Module({})
export class PersistenceModule implements OnModuleDestroy {
  constructor(@Inject(DATABASE_CLIENT) private readonly db: DatabaseClient) {}

  static forRoot(options: PersistenceOptions): DynamicModule {
    return PersistenceModule.build({ provide: PERSISTENCE_OPTIONS, useValue: options }, options.global ?? true);
  }

  static forRootAsync(options: PersistenceAsyncOptions): DynamicModule {
    const module = PersistenceModule.build(
      { provide: PERSISTENCE_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
      options.global ?? true,
    );
    return { ...module, imports: options.imports ?? [] };
  }

  private static build(optionsProvider: Provider, global: boolean): DynamicModule {
    return {
      module: PersistenceModule,
      global,
      providers: [optionsProvider, clientProvider, ...REPOSITORIES],
      exports: [DATABASE_CLIENT, ...REPOSITORIES],
    };
  }

  async onModuleDestroy(): Promise<void> {
    await this.db.$disconnect();
  }
}
