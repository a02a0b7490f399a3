/*
 * ─────────────────────────────────────────────────────────────────────────────
 *  DO NOT RENAME anything in this file.
 *  These strings are the wire names of exchanges, queues and routing keys.
 *  Running sites, RabbitMQ definitions (deploy/rabbitmq), federation/shovel
 *  configs between sites and dashboards all depend on them. Renaming one
 *  orphans durable queues holding data. Add new names; never change old ones.
 * ─────────────────────────────────────────────────────────────────────────────
 */

/** Topic exchanges. */
export enum ExchangeName {
  /** Facts that happened: results, metrics, pushes, heartbeats, state changes. */
  Events = 'fleetwatch.events',
  /** Requests addressed to the owning service: apply config, pause ingress, sync steps, RPC. */
  Commands = 'fleetwatch.commands',
  /** Dead-letter exchange (topic): routed by the original queue name. */
  DeadLetter = 'fleetwatch.dlx',
}

/** Routing keys. Events start with `event.`, commands with `command.`. */
export enum RoutingKey {
  CheckResult = 'event.check.result',
  HostMetrics = 'event.host.metrics',
  StatusUpdate = 'event.status.update',
  StatusUpdateBatch = 'event.status.update-batch',
  /**
   * The same messages as StatusUpdate(Batch) when larger than BUS_BATCH_MAX_UPDATES /
   * BUS_BATCH_MAX_BYTES (a big batch POST travels whole, as one message): routed to
   * the aggregator's bulk queue, whose prefetch is sized for them.
   */
  StatusUpdateBulk = 'event.status.update-bulk',
  PingReceived = 'event.ping.received',
  CollectorHeartbeat = 'event.heartbeat.collector',
  SiteHeartbeat = 'event.heartbeat.site',
  StatusChanged = 'event.status.changed',
  /** Several status events in one message (what the aggregator publishes); consumers of StatusChanged bind both. */
  StatusChangedBatch = 'event.status.changed-batch',
  AlertStateChanged = 'event.alert.state-changed',
  ConfigChanged = 'event.config.changed',
  /**
   * A check's lifecycle in the configuration (created/resumed, paused, deleted), from the
   * configuration owner to the aggregator: an observation of the check's target, sharded
   * like its results (`event.check.lifecycle.shard-NN`).
   */
  CheckLifecycle = 'event.check.lifecycle',
  /**
   * A host taken out of service (DELETE /api/v1/hosts/{id}), from the gateway to the aggregator: an observation of
   * the host's target, sharded like its samples (`event.host.retire.shard-NN`), so folded in order with them.
   */
  HostRetire = 'event.host.retire',
  /** An API key used at status-ingest (coalesced per key per interval): the gateway records its last use. */
  ApiKeyUsed = 'event.apikey.used',

  ConfigApply = 'command.config.apply',
  IngressPause = 'command.ingress.pause',
  IngressResume = 'command.ingress.resume',
  SyncStep = 'command.sync.step',
  RpcRequest = 'command.rpc.request',
  /** An rpc.request addressed to the aggregator (channel test-send): lands in QueueName.AggregatorCommands. */
  AggregatorRpcRequest = 'command.rpc.aggregator',
}

/**
 * Durable quorum queues. Each gets `<name>.dlq` as its dead-letter queue
 * (see `deadLetterQueueOf`). One enum for every queue in the product.
 */
export enum QueueName {
  /**
   * Every observation the aggregator folds into live state and history. Since issue 14 observations are
   * published sharded, to `observationShardQueue(n)`; this queue only receives un-sharded keys (a publisher
   * older than sharding) and is drained by one replica.
   */
  AggregatorObservations = 'fleetwatch.aggregator.observations',
  /** Large status.update(.batch) messages (before sharding: now split per shard). Drained like the above. */
  AggregatorBulkObservations = 'fleetwatch.aggregator.observations-bulk',
  /** Status-changed events the aggregator's alert evaluator consumes. */
  AggregatorAlerts = 'fleetwatch.aggregator.alerts',
  /** Status-changed events the aggregator turns into status-change subscription deliveries (durable, shared). */
  AggregatorSubscriptions = 'fleetwatch.aggregator.subscriptions',
  /** Requests the aggregator answers (rpc.request with RoutingKey.AggregatorRpcRequest): any replica answers. */
  AggregatorCommands = 'fleetwatch.aggregator.commands',
  /** Commands the configuration owner executes. */
  SyncOrchestratorCommands = 'fleetwatch.sync-orchestrator.commands',
  /** Config-changed events collectors follow to refresh their assignment. */
  CollectorConfig = 'fleetwatch.collector.config',
  /** Ingress control for status-ingest. */
  StatusIngestCommands = 'fleetwatch.status-ingest.commands',
  /**
   * API-key uses reported by status-ingest, which the gateway writes to `api_keys.last_used_at` (any replica).
   * Bounded (`QUEUE_MAX_LENGTH`, overflow rejects publishes): with no gateway draining it, it
   * stops growing and ingest keeps the newest use per key in memory until it is taken again.
   */
  ApiGatewayApiKeyUse = 'fleetwatch.api-gateway.api-key-use',
}

/**
 * Queues bounded by `x-max-length` (their overflow rejects publishes: the publisher's confirm is a nack). Only
 * queues whose messages a publisher can hold back and resend (ingest's API-key uses, newest per key) belong here.
 */
export const QUEUE_MAX_LENGTH: Readonly<Partial<Record<QueueName, number>>> = {
  [QueueName.ApiGatewayApiKeyUse]: 10_000,
};

/**
 * Observations are sharded by target (SPEC §3, issue 14): every observation message is
 * published with its routing key suffixed by `.shard-NN`, NN = shard of its target id
 * (libs/messaging `shardOf`), and lands in that shard's queue. Aggregator replicas share
 * the shards (one holder per shard at a time), so one target's observations are folded
 * by one lane, in order. Fixed: changing it moves targets between queues (drain first).
 */
export const OBSERVATION_SHARDS = 8;

/** `fleetwatch.aggregator.observations.shard-03`: the durable quorum queue of one shard (single active consumer). */
export function observationShardQueue(shard: number): string {
  return `${QueueName.AggregatorObservations}.${shardLabel(shard)}`;
}

/** The routing-key suffix (`shard-03`) a sharded observation carries after its event key. */
export function shardLabel(shard: number): string {
  if (!Number.isInteger(shard) || shard < 0 || shard >= OBSERVATION_SHARDS)
    throw new RangeError(`shard must be an integer in 0..${OBSERVATION_SHARDS - 1}, got ${shard}`);
  return `shard-${String(shard).padStart(2, '0')}`;
}

/** `event.status.update.shard-03`: the routing key of an observation of a target in that shard. */
export function shardedRoutingKey(base: RoutingKey | string, shard: number): string {
  return `${base}.${shardLabel(shard)}`;
}

/** Bindings of a shard queue: every observation event key carrying its suffix. */
export function observationShardBindings(shard: number): QueueBinding[] {
  return [{ exchange: ExchangeName.Events, routingKey: `event.#.${shardLabel(shard)}` }];
}

export const DEAD_LETTER_SUFFIX = '.dlq';

export function deadLetterQueueOf(queue: QueueName | string): string {
  return `${queue}${DEAD_LETTER_SUFFIX}`;
}

export interface QueueBinding {
  exchange: ExchangeName;
  routingKey: RoutingKey | string;
}

/** Which routing keys land in which queue. The single source for topology. */
export const QUEUE_BINDINGS: Readonly<Record<QueueName, readonly QueueBinding[]>> = {
  [QueueName.AggregatorBulkObservations]: [{ exchange: ExchangeName.Events, routingKey: RoutingKey.StatusUpdateBulk }],
  [QueueName.AggregatorObservations]: [
    { exchange: ExchangeName.Events, routingKey: RoutingKey.CheckResult },
    { exchange: ExchangeName.Events, routingKey: RoutingKey.HostMetrics },
    { exchange: ExchangeName.Events, routingKey: RoutingKey.StatusUpdate },
    { exchange: ExchangeName.Events, routingKey: RoutingKey.StatusUpdateBatch },
    { exchange: ExchangeName.Events, routingKey: RoutingKey.PingReceived },
    { exchange: ExchangeName.Events, routingKey: RoutingKey.CollectorHeartbeat },
    { exchange: ExchangeName.Events, routingKey: RoutingKey.SiteHeartbeat },
    // From a publisher that does not shard (shardObservations: false): folded by the legacy lane.
    { exchange: ExchangeName.Events, routingKey: RoutingKey.CheckLifecycle },
  ],
  [QueueName.AggregatorAlerts]: [
    { exchange: ExchangeName.Events, routingKey: RoutingKey.StatusChanged },
    { exchange: ExchangeName.Events, routingKey: RoutingKey.StatusChangedBatch },
  ],
  [QueueName.AggregatorSubscriptions]: [
    { exchange: ExchangeName.Events, routingKey: RoutingKey.StatusChanged },
    { exchange: ExchangeName.Events, routingKey: RoutingKey.StatusChangedBatch },
  ],
  [QueueName.AggregatorCommands]: [{ exchange: ExchangeName.Commands, routingKey: RoutingKey.AggregatorRpcRequest }],
  [QueueName.SyncOrchestratorCommands]: [
    { exchange: ExchangeName.Commands, routingKey: RoutingKey.ConfigApply },
    { exchange: ExchangeName.Commands, routingKey: RoutingKey.SyncStep },
    { exchange: ExchangeName.Commands, routingKey: RoutingKey.RpcRequest },
  ],
  [QueueName.CollectorConfig]: [{ exchange: ExchangeName.Events, routingKey: RoutingKey.ConfigChanged }],
  [QueueName.StatusIngestCommands]: [
    { exchange: ExchangeName.Commands, routingKey: RoutingKey.IngressPause },
    { exchange: ExchangeName.Commands, routingKey: RoutingKey.IngressResume },
  ],
  [QueueName.ApiGatewayApiKeyUse]: [{ exchange: ExchangeName.Events, routingKey: RoutingKey.ApiKeyUsed }],
};

/** Headers set on dead-lettered messages by the consumer (in addition to RabbitMQ's x-death). */
export enum BusHeader {
  DeadLetterReason = 'x-fleetwatch-dead-letter-reason',
  DeadLetterQueue = 'x-fleetwatch-dead-letter-queue',
  SchemaVersion = 'x-fleetwatch-schema-version',
  MessageType = 'x-fleetwatch-type',
  /** On an update set aside from a batch: the API key that pushed it (its id, never the secret). */
  ApiKeyId = 'x-fleetwatch-api-key-id',
  /** On an update set aside from a batch: the update's id (client-chosen or assigned at the edge). */
  UpdateId = 'x-fleetwatch-update-id',
}
