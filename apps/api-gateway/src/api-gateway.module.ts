import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { LiveStateModule } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { MessagingModule, RpcClientModule } from '@fleetwatch/messaging';
import {
  DATABASE_CLIENT,
  HostHistoryRepository,
  ReceivedRepository,
  TargetStatesRepository,
  PersistenceModule,
  type DatabaseClient,
} from '@fleetwatch/persistence';
import { AlertConfigOwner } from './alerting/alert-config-owner.service';
import {
  AlertRulesController,
  AlertRulesExportController,
  ChannelsController,
  ChannelTestController,
  MaintenanceWindowsController,
  SilencesController,
} from './alerting/alerting.controller';
import { BusChannelTestSender, CHANNEL_TEST_SENDER } from './alerting/channel-test-sender';
import { AlertsController } from './alerting/alerts.controller';
import { alertsReadProviders } from './alerting/alerts.providers';
import { ApiKeyLastUse } from './api-keys/api-key-last-use.service';
import { ApiKeyUseHandler } from './api-keys/api-key-use.handler';
import { ApiKeysController } from './api-keys/api-keys.controller';
import { ApiKeysService } from './api-keys/api-keys.service';
import { AdminBootstrapService } from './auth/admin-bootstrap.service';
import { AuthController } from './auth/auth.controller';
import { AuthGuard } from './auth/auth.guard';
import { authProviders } from './auth/auth.providers';
import { AuthService } from './auth/auth.service';
import { PasswordHasher } from './auth/password-hasher.service';
import { SessionHousekeeping } from './auth/session-housekeeping.service';
import { SessionController } from './auth/session.controller';
import { ChecksController } from './checks/checks.controller';
import { ChecksService } from './checks/checks.service';
import { ConfigOwner } from './checks/config-owner.service';
import type { GatewayConfig } from './config';
import { ConfigAsCodeController } from './config/config-as-code.controller';
import { ConfigAsCodeService } from './config/config-as-code.service';
import { YamlBodyParser } from './config/yaml-body.parser';
import { JsonBodyParser } from './web/json-body';
import { ReadinessWiring } from './health/readiness.wiring';
import { FleetMemberController } from './fleet-member/fleet-member.controller';
import { fleetMemberProviders } from './fleet-member/fleet-member.providers';
import { FleetLeaderController } from './fleet-leader/fleet-leader.controller';
import { fleetLeaderProviders } from './fleet-leader/fleet-leader.providers';
import { HeartbeatsController } from './heartbeats/heartbeats.controller';
import { HeartbeatsService } from './heartbeats/heartbeats.service';
import { HostMetricsExporter } from './hosts/host-metrics.exporter';
import { HostsController } from './hosts/hosts.controller';
import { HostsService } from './hosts/hosts.service';
import { TargetMetricsService } from './metrics/target-metrics.service';
import { ReceivedController } from './received/received.controller';
import { ReceivedService } from './received/received.service';
import { TargetsController } from './targets/targets.controller';
import { TargetsService } from './targets/targets.service';
import { GATEWAY_CONFIG } from './tokens';
import { UsersController } from './users/users.controller';
import { UsersService } from './users/users.service';
import { WsHub } from './ws/ws-hub.service';
import { WsMetrics } from './ws/ws.metrics';
import { CorruptRecordInterceptor, CorruptRecords } from './live/corrupt-records';
import { InstanceRemovalService } from './instances/instance-removal.service';
import { InstancesController } from './instances/instances.controller';
import { StatusController } from './status/status.controller';
import { statusProviders } from './status/status.providers';
import { usersProviders } from './users/users.providers';
import { PublicStatusController } from './status-pages/public-status.controller';
import { StatusPagesController } from './status-pages/status-pages.controller';
import { statusPagesProviders } from './status-pages/status-pages.providers';
import { PropertiesController } from './properties/properties.controller';
import { propertiesProviders } from './properties/properties.providers';
import { SubscriptionsController } from './subscriptions/subscriptions.controller';
import { subscriptionsProviders } from './subscriptions/subscriptions.providers';

/** Every controller of the gateway: each is behind the AuthGuard (deny by default). */
export const GATEWAY_CONTROLLERS = [
  AuthController,
  SessionController,
  StatusController,
  UsersController,
  ApiKeysController,
  HeartbeatsController,
  TargetsController,
  ReceivedController,
  HostsController,
  InstancesController,
  ChecksController,
  ConfigAsCodeController,
  AlertRulesExportController,
  AlertRulesController,
  ChannelsController,
  ChannelTestController,
  MaintenanceWindowsController,
  SilencesController,
  AlertsController,
  FleetMemberController,
  FleetLeaderController,
  StatusPagesController,
  PropertiesController,
  SubscriptionsController,
  PublicStatusController,
];

/**
 * The REST API for people and automation (SPEC §2): users, sessions and API keys
 * (it owns those tables), heartbeat monitors' ping credentials, targets read from
 * Redis and Postgres, and the site's target series on /metrics. Checks and config as
 * code are forwarded to their owner (sync-orchestrator) as requests over the bus.
 */
@Module({})
export class ApiGatewayModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: ApiGatewayModule,
      imports: [
        PersistenceModule.forRoot({ ...config.database, applicationName: 'api-gateway' }),
        LiveStateModule.forRoot({
          url: config.redisUrl,
          keyPrefix: config.redisPrefix,
          connectionName: 'api-gateway',
          logger: FLEETWATCH_LOGGER,
          commandTimeoutMs: config.redisTimeoutMs,
        }),
        MessagingModule.forRoot({
          url: config.amqpUrl,
          site: config.site,
          service: 'api-gateway',
          location: config.location,
        }),
        // Configuration reads and writes go to their owner, sync-orchestrator, over the bus.
        RpcClientModule.forRoot(),
      ],
      controllers: GATEWAY_CONTROLLERS,
      providers: [
        { provide: GATEWAY_CONFIG, useValue: config },
        { provide: APP_GUARD, useClass: AuthGuard },
        PasswordHasher,
        ...authProviders(config),
        AuthService,
        AdminBootstrapService,
        SessionHousekeeping,
        UsersService,
        ApiKeysService,
        ApiKeyLastUse,
        ApiKeyUseHandler,
        HeartbeatsService,
        TargetsService,
        TargetMetricsService,
        {
          provide: ReceivedRepository,
          inject: [DATABASE_CLIENT],
          useFactory: (db: DatabaseClient) => new ReceivedRepository(db),
        },
        ReceivedService,
        {
          provide: HostHistoryRepository,
          inject: [DATABASE_CLIENT],
          useFactory: (db: DatabaseClient) => new HostHistoryRepository(db),
        },
        HostsService,
        {
          provide: TargetStatesRepository,
          inject: [DATABASE_CLIENT],
          useFactory: (db: DatabaseClient) => new TargetStatesRepository(db),
        },
        CorruptRecords,
        { provide: APP_INTERCEPTOR, useClass: CorruptRecordInterceptor },
        InstanceRemovalService,
        HostMetricsExporter,
        ConfigOwner,
        ChecksService,
        ConfigAsCodeService,
        AlertConfigOwner,
        { provide: CHANNEL_TEST_SENDER, useClass: BusChannelTestSender },
        YamlBodyParser,
        JsonBodyParser,
        ReadinessWiring,
        WsHub,
        WsMetrics,
        ...alertsReadProviders,
        ...statusProviders,
        ...usersProviders,
        ...fleetMemberProviders,
        ...fleetLeaderProviders,
        ...statusPagesProviders,
        ...propertiesProviders,
        ...subscriptionsProviders,
      ],
    };
  }
}
