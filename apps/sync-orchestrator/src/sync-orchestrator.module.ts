import { DynamicModule, Module } from '@nestjs/common';
import { createTargetPolicy } from '@fleetwatch/domain';
import { LiveStateModule } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { MessagingModule, RpcServerModule } from '@fleetwatch/messaging';
import {
  AlertConfigRepository,
  SubscriptionsRepository,
  ChecksRepository,
  ConfigVersionsRepository,
  PushMonitorsRepository,
  SecretSealer,
  SilencesRepository,
  SqlPoolModule,
  StatusPagesRepository,
  PropertiesRepository,
} from '@fleetwatch/persistence';
import { AlertConfigService } from './alerting/alert-config.service';
import { AlertingRpcHandler } from './alerting/alerting.rpc-handler';
import { CHANNEL_SEALER, SEED_DEFAULT_RULES, SITE_NAME } from './alerting/alerting.tokens';
import { DefaultRulesSeeder } from './alerting/default-rules.seeder';
import { SecretResealer } from './alerting/secret-resealer';
import { SilencesService } from './alerting/silences.service';
import { SubscriptionsRpcHandler } from './subscriptions/subscriptions.rpc-handler';
import { SubscriptionsService } from './subscriptions/subscriptions.service';
import { SYNC_ORCHESTRATOR_QUEUES } from './bus-queues';
import type { SyncConfig } from './config';
import { ConfigAsCodeService } from './config/config-as-code.service';
import { ConfigChangedRelay } from './config/config-changed.relay';
import { ConfigRpcHandler } from './config/config.rpc-handler';
import { ConfigService } from './config/config.service';
import { CHECK_TARGET_POLICY, CONFIG_RELAY_INTERVAL_MS } from './config/config.tokens';
import { ConfigWriter } from './config/config-writer';
import { HeartbeatAdoption, PushMonitors } from './config/push-monitors';
import { fleetProviders } from './fleet/fleet.providers';
import { ReadinessWiring } from './health/readiness.wiring';
import { StatusPagesRpcHandler } from './status-pages/status-pages.rpc-handler';
import { PropertiesRpcHandler } from './properties/properties.rpc-handler';
import { PropertiesService } from './properties/properties.service';
import { StatusPagesService } from './status-pages/status-pages.service';

/**
 * The configuration owner (SPEC §2). Capabilities: config/ (checks, versions, audit,
 * config as code, the config.changed outbox relay, the RPC methods the gateway and the
 * collectors call), alerting/ (alert rules, channels with sealed secrets, maintenance windows,
 * silences, the shipped default rules) and health/. Fleet polling, drift and rolling sync arrive beside them.
 */
@Module({})
export class SyncOrchestratorModule {
  static forRoot(config: SyncConfig): DynamicModule {
    return {
      module: SyncOrchestratorModule,
      imports: [
        // A plain pg pool, not Prisma: the first Prisma query loads its Wasm query compiler,
        // ~30–50 MB of RSS (docs/benchmarks.md, memory at rest). Writes take turns on
        // config_head's lock, so a few connections serve reads beside the one writer.
        SqlPoolModule.forRoot({ ...config.database, max: 4, applicationName: 'sync-orchestrator' }),
        LiveStateModule.forRoot({
          url: config.redisUrl,
          keyPrefix: config.redisPrefix,
          connectionName: 'sync-orchestrator',
          logger: FLEETWATCH_LOGGER,
          commandTimeoutMs: config.redisTimeoutMs,
        }),
        MessagingModule.forRoot({
          url: config.amqpUrl,
          site: config.site,
          service: 'sync-orchestrator',
          location: config.location,
          // The aggregator's shard queues too: check.lifecycle is published with `mandatory`, and
          // must be routable even before an aggregator first declared them (as collectors do).
          queues: SYNC_ORCHESTRATOR_QUEUES,
          stopTimeoutMs: Math.max(1000, config.shutdownTimeoutMs - 2000),
        }),
        RpcServerModule.forRoot(),
      ],
      providers: [
        { provide: CHECK_TARGET_POLICY, useValue: createTargetPolicy(config.denyNetworks) },
        { provide: CONFIG_RELAY_INTERVAL_MS, useValue: config.configRelayIntervalMs },
        ChecksRepository,
        ConfigVersionsRepository,
        PushMonitorsRepository,
        ConfigChangedRelay,
        ConfigWriter,
        PushMonitors,
        HeartbeatAdoption,
        ConfigService,
        ConfigAsCodeService,
        ConfigRpcHandler,
        // Alert rules, channels, maintenance windows and silences (issue 18): the same writer.
        {
          provide: CHANNEL_SEALER,
          useValue: config.encryptionKey
            ? SecretSealer.fromText(config.encryptionKey, config.previousEncryptionKeys)
            : null,
        },
        { provide: SITE_NAME, useValue: config.site },
        { provide: SEED_DEFAULT_RULES, useValue: config.seedDefaultAlertRules },
        AlertConfigRepository,
        SilencesRepository,
        AlertConfigService,
        SilencesService,
        DefaultRulesSeeder,
        AlertingRpcHandler,
        // Status-change subscriptions (issue 18): the same writer, sealed with the channels' key.
        SubscriptionsRepository,
        SubscriptionsService,
        SubscriptionsRpcHandler,
        // Secrets sealed under an earlier key (FLEETWATCH_ENCRYPTION_KEY_PREVIOUS) sealed again under the current one.
        SecretResealer,
        // Public status pages (issue 17): the same writer.
        StatusPagesRepository,
        StatusPagesService,
        StatusPagesRpcHandler,
        // Site properties (issue 19): the same writer; in snapshots, config as code and the config hash.
        PropertiesRepository,
        PropertiesService,
        PropertiesRpcHandler,
        ReadinessWiring,
        ...fleetProviders(config),
      ],
    };
  }
}
