import { QueueName } from '@fleetwatch/contracts';
import { observationShardQueueSpecs, type QueueRef } from '@fleetwatch/messaging';

/**
 * The queues the aggregator declares at boot (AggregatorModule's MessagingModule). Also what
 * deploy/rabbitmq/definitions.json is generated from (tools/deploy/rabbitmq-definitions.mjs).
 */
export const AGGREGATOR_QUEUES: readonly QueueRef[] = [
  ...observationShardQueueSpecs(),
  QueueName.AggregatorObservations,
  QueueName.AggregatorBulkObservations,
  QueueName.AggregatorCommands,
  // Declared (with its status.changed(-batch) bindings) before anything is published: a relay publish is
  // mandatory: false, so one that no queue took yet would be confirmed and its events lost to subscriptions.
  QueueName.AggregatorSubscriptions,
];
