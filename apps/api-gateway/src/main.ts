import { loadConfigOrExit } from '@fleetwatch/config';
import { redisBootCheck } from '@fleetwatch/live-state';
import { amqpBootCheck } from '@fleetwatch/messaging';
import { bootstrapService } from '@fleetwatch/observability';
import { databaseBootCheck } from '@fleetwatch/persistence';
import { ApiGatewayModule } from './api-gateway.module';
import { loadGatewayConfig } from './config';
import { configureGateway, GATEWAY_MAX_PARAM_LENGTH } from './gateway.setup';

const config = loadConfigOrExit(() => loadGatewayConfig(), 'api-gateway');
void bootstrapService({
  module: ApiGatewayModule.forRoot(config),
  config,
  dependencies: [databaseBootCheck(config.databaseUrl), redisBootCheck(config.redisUrl), amqpBootCheck(config.amqpUrl)],
  trustedProxies: config.trustedProxies,
  maxParamLength: GATEWAY_MAX_PARAM_LENGTH,
  configure: (app, logger) => configureGateway(app, logger, config),
});
