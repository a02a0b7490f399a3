import { loadConfigOrExit } from '@fleetwatch/config';
import { amqpBootCheck } from '@fleetwatch/messaging';
import { bootstrapService } from '@fleetwatch/observability';
import { CollectorModule } from './collector.module';
import { loadCollectorConfig } from './config';

const config = loadConfigOrExit(() => loadCollectorConfig(), 'collector');
void bootstrapService({
  module: CollectorModule.forRoot(config),
  config,
  // The collector keeps working from its last assignment without the bus (SPEC §2).
  dependencies: [{ ...amqpBootCheck(config.amqpUrl), required: false }],
});
