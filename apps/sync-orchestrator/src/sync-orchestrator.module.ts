import { DynamicModule, Module } from '@nestjs/common';
import { QueueName } from '@fleetwatch/contracts';
import { LiveStateModule } from '@fleetwatch/live-state';
import { MessagingModule } from '@fleetwatch/messaging';
import { SqlPoolModule } from '@fleetwatch/persistence';
import type { SyncConfig } from './config';
import { ReadinessWiring } from './health/readiness.wiring';

/**
 * The configuration owner (SPEC §2). This issue wires its connections, queue,
 * health and shutdown; configuration versions, fleet polling, drift and
 * rolling sync arrive as capability modules beside `health/`.
 */
@Module({})
export class SyncOrchestratorModule {
  static forRoot(config: SyncConfig): DynamicModule {
    return {
      module: SyncOrchestratorModule,
      imports: [
        // A plain pg pool, not Prisma, until a capability needs Prisma's repositories: the first
        // Prisma query loads its Wasm query compiler, ~30–50 MB of RSS (docs/benchmarks.md, memory at rest).
        SqlPoolModule.forRoot({ databaseUrl: config.databaseUrl, max: 2, applicationName: 'sync-orchestrator' }),
        LiveStateModule.forRoot({
          url: config.redisUrl,
          keyPrefix: config.redisPrefix,
          connectionName: 'sync-orchestrator',
        }),
        MessagingModule.forRoot({
          url: config.amqpUrl,
          site: config.site,
          service: 'sync-orchestrator',
          location: config.location,
          queues: [QueueName.SyncOrchestratorCommands],
        }),
      ],
      providers: [ReadinessWiring],
    };
  }
}
