import { QueueName } from '@fleetwatch/contracts';
import { observationShardQueueSpecs, type QueueRef } from '@fleetwatch/messaging';

/**
 * The queues status-ingest declares at boot (StatusIngestModule's MessagingModule): the aggregator's, so
 * pushes accepted before the aggregator first starts wait in them, and the gateway's API-key-use queue
 * (bounded: QUEUE_MAX_LENGTH), so uses reported before the gateway first starts wait there too. Also what deploy/rabbitmq/definitions.json
 * is generated from (tools/deploy/rabbitmq-definitions.mjs).
 */
export const STATUS_INGEST_QUEUES: readonly QueueRef[] = [
  ...observationShardQueueSpecs(),
  QueueName.AggregatorObservations,
  QueueName.AggregatorBulkObservations,
  QueueName.ApiGatewayApiKeyUse,
];

/** The queue status-ingest consumes (IngressControlHandler's @ConsumeQueue declares it before consuming). */
export const STATUS_INGEST_CONSUMED_QUEUE = QueueName.StatusIngestCommands;
