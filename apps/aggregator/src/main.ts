import { loadConfigOrExit } from '@fleetwatch/config';
import { redisBootCheck } from '@fleetwatch/live-state';
import { amqpBootCheck } from '@fleetwatch/messaging';
import { bootstrapService } from '@fleetwatch/observability';
import { databaseBootCheck } from '@fleetwatch/persistence';
import { AggregatorModule } from './aggregator.module';
import { loadAggregatorConfig } from './config';

const config = loadConfigOrExit(() => loadAggregatorConfig(), 'aggregator');
void bootstrapService({
  module: AggregatorModule.forRoot(config),
  config,
  dependencies: [databaseBootCheck(config.databaseUrl), redisBootCheck(config.redisUrl), amqpBootCheck(config.amqpUrl)],
});
