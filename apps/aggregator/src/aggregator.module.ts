import { DynamicModule, Module } from '@nestjs/common';
import { QueueName } from '@fleetwatch/contracts';
import { LIVE_STATE_REDIS, LiveStateModule } from '@fleetwatch/live-state';
import {
  BusConnection,
  BusTopology,
  MessagingModule,
  RpcServerModule,
  SetAsideWriter,
  observationShardQueueSpecs,
} from '@fleetwatch/messaging';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  AdvisoryLease,
  HistoryRepository,
  HostHistoryRepository,
  CheckMetricsHistoryRepository,
  SqlPoolModule,
  ShardEpochsRepository,
  StatusEventsRepository,
  TargetStatesRepository,
} from '@fleetwatch/persistence';
import { SerialLane } from './status/serial-lane';
import type { AggregatorConfig } from './config';
import { alertDeliveryProviders } from './alerts/delivery/alert-delivery.providers';
import { alertEvaluationProviders } from './alerts/evaluation/alert-evaluation.providers';
import { subscriptionProviders } from './alerts/subscriptions/subscriptions.providers';
import { StatusEventsRelay } from './events/status-events.relay';
import { ReadinessWiring } from './health/readiness.wiring';
import { HistoryMaintenance } from './history/history-maintenance.service';
import { HostConflicts } from './hosts/host-conflicts.service';
import { HostLiveState } from './hosts/host-live-state.service';
import { LiveProjection } from './live/live-projection.service';
import { LiveStateBoot } from './live/live-state.boot';
import { ProjectionQueue } from './live/projection.queue';
import { ObservationsHandler } from './observations/observations.handler';
import { ObservationsService } from './observations/observations.service';
import { DeadlineCache } from './staleness/deadline-cache';
import { DeadlineExpiry } from './staleness/deadline-expiry.service';
import { SweeperService } from './staleness/sweeper.service';
import { shardBackends } from './shards/shard-backends';
import { ShardCoordinator } from './shards/shard-coordinator.service';
import { ShardFence } from './shards/shard-fence';
import { StatusPropagation } from './status/status-propagation.service';
import { AGGREGATOR_QUEUES } from './bus-queues';
import { AGGREGATOR_CONFIG, SHARD_BACKENDS, SWEEPER_LEASE } from './tokens';

/** The shard queues by name (a set-aside observation goes to its shard queue's DLQ, declared on demand). */
const shardSpecs = new Map(observationShardQueueSpecs().map((q) => [q.name, q]));

/** Name of the advisory lock the sweeper and history jobs hold (one holder per site database). */
export const SWEEPER_LEASE_NAME = 'fleetwatch.aggregator.sweeper';

/**
 * Live state, staleness, history and status events (SPEC §2). Capabilities:
 * observations/ (the queue → one transaction per batch), live/ (Redis projection
 * and rebuild), status/ + events/ (propagation, status.changed outbox relay),
 * staleness/ (the leased sweeper loop and its expire job), history/ (rollups, retention).
 */
@Module({})
export class AggregatorModule {
  static forRoot(config: AggregatorConfig): DynamicModule {
    return {
      module: AggregatorModule,
      imports: [
        // A plain pg pool: the batched write path commits thousands of rows a second (see libs/persistence README).
        SqlPoolModule.forRoot({
          ...config.database,
          max: config.dbPoolSize,
          applicationName: 'fleetwatch aggregator',
          preparedStatements: config.dbPreparedStatements,
        }),
        LiveStateModule.forRoot({
          url: config.redisUrl,
          keyPrefix: config.redisPrefix,
          connectionName: 'aggregator',
          logger: FLEETWATCH_LOGGER,
          commandTimeoutMs: config.redisTimeoutMs,
        }),
        MessagingModule.forRoot({
          url: config.amqpUrl,
          site: config.site,
          service: 'aggregator',
          location: config.location,
          queues: AGGREGATOR_QUEUES,
          stopTimeoutMs: Math.max(1000, config.shutdownTimeoutMs - 2000),
        }),
        // Requests the aggregator answers (a channel's test-send): any replica takes one.
        RpcServerModule.forRoot({ queue: QueueName.AggregatorCommands, prefetch: 8, concurrency: 4 }),
      ],
      providers: [
        { provide: AGGREGATOR_CONFIG, useValue: config },
        {
          provide: SWEEPER_LEASE,
          useFactory: () =>
            new AdvisoryLease({
              databaseUrl: config.lockDatabaseUrl,
              name: SWEEPER_LEASE_NAME,
              applicationName: 'fleetwatch aggregator lease',
            }),
        },
        {
          provide: SetAsideWriter,
          inject: [BusConnection, BusTopology, FLEETWATCH_LOGGER],
          useFactory: (bus: BusConnection, topology: BusTopology, logger: Logger) =>
            new SetAsideWriter(bus, logger, (queue) => topology.ensure(shardSpecs.get(queue) ?? (queue as QueueName))),
        },
        TargetStatesRepository,
        HistoryRepository,
        HostHistoryRepository,
        CheckMetricsHistoryRepository,
        HostLiveState,
        HostConflicts,
        StatusEventsRepository,
        SerialLane,
        LiveProjection,
        ProjectionQueue,
        LiveStateBoot,
        StatusEventsRelay,
        StatusPropagation,
        ObservationsService,
        ObservationsHandler,
        DeadlineCache,
        DeadlineExpiry,
        SweeperService,
        ShardEpochsRepository,
        ShardFence,
        {
          provide: SHARD_BACKENDS,
          inject: [LIVE_STATE_REDIS],
          useFactory: (redis: Redis) => shardBackends(redis, config),
        },
        ShardCoordinator,
        HistoryMaintenance,
        ReadinessWiring,
        ...alertDeliveryProviders(config),
        ...alertEvaluationProviders(config),
        ...subscriptionProviders(config),
      ],
    };
  }
}
