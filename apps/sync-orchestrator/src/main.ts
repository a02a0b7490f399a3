import { loadConfigOrExit } from '@fleetwatch/config';
import { amqpBootCheck } from '@fleetwatch/messaging';
import { bootstrapService } from '@fleetwatch/observability';
import { databaseBootCheck } from '@fleetwatch/persistence';
import { redisBootCheck } from '@fleetwatch/live-state';
import { loadSyncConfig } from './config';
import { SyncOrchestratorModule } from './sync-orchestrator.module';

const config = loadConfigOrExit(() => loadSyncConfig(), 'sync-orchestrator');
void bootstrapService({
  module: SyncOrchestratorModule.forRoot(config),
  config,
  dependencies: [databaseBootCheck(config.databaseUrl), redisBootCheck(config.redisUrl), amqpBootCheck(config.amqpUrl)],
});
