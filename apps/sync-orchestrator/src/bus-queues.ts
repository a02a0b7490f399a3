import { QueueName } from '@fleetwatch/contracts';
import { observationShardQueueSpecs, type QueueRef } from '@fleetwatch/messaging';

/**
 * The queues sync-orchestrator declares at boot (SyncOrchestratorModule's MessagingModule). The aggregator's
 * shard queues too: check.lifecycle is published with `mandatory`, and must be routable even before an
 * aggregator first declared them (as collectors do). Also what deploy/rabbitmq/definitions.json is generated
 * from (tools/deploy/rabbitmq-definitions.mjs).
 */
export const SYNC_ORCHESTRATOR_QUEUES: readonly QueueRef[] = [
  QueueName.SyncOrchestratorCommands,
  ...observationShardQueueSpecs(),
];
