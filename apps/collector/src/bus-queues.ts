import { QueueName } from '@fleetwatch/contracts';
import { observationShardQueueSpecs, type QueueRef } from '@fleetwatch/messaging';

/**
 * The queues the collector declares at boot (CollectorModule's MessagingModule): the aggregator's, so
 * results wait in them when the aggregator is not up yet. Also what deploy/rabbitmq/definitions.json is
 * generated from (tools/deploy/rabbitmq-definitions.mjs).
 */
export const COLLECTOR_QUEUES: readonly QueueRef[] = [
  ...observationShardQueueSpecs(),
  QueueName.AggregatorObservations,
];
