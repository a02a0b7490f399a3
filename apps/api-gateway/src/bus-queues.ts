import { QueueName } from '@fleetwatch/contracts';

/**
 * The queue api-gateway consumes (ApiKeyUseHandler's @ConsumeQueue declares it before consuming): API-key uses
 * status-ingest reports. Also what deploy/rabbitmq/definitions.json is generated from
 * (tools/deploy/rabbitmq-definitions.mjs).
 */
export const API_GATEWAY_CONSUMED_QUEUE = QueueName.ApiGatewayApiKeyUse;
