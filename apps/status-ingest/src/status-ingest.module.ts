import { DynamicModule, Module } from '@nestjs/common';
import { MessagingModule } from '@fleetwatch/messaging';
import { LiveStateModule } from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { PersistenceModule } from '@fleetwatch/persistence';
import type { Logger } from 'pino';
import { ApiKeyAuthService } from './auth/api-key-auth.service';
import { ApiKeyUseReporter } from './auth/api-key-use.recorder';
import { KeyLookups } from './auth/key-lookups';
import { STATUS_INGEST_QUEUES } from './bus-queues';
import type { IngestConfig } from './config';
import { ReadinessWiring } from './health/readiness.wiring';
import { IngestRoutes } from './http/ingest.routes';
import { IngressControlHandler } from './ingress/ingress-control.handler';
import { IngressStateService } from './ingress/ingress-state.service';
import { IngressStateSync } from './ingress/ingress-state.sync';
import { PublishGate } from './ingress/publish-gate.service';
import { IngestRateLimits } from './limits/ingest-rate-limits';
import { SharedStateMetrics } from './limits/shared-state.metrics';
import { IngestMetrics } from './metrics/ingest.metrics';
import { MonitorCacheFollower } from './pings/monitor-cache.follower';
import { PingsService } from './pings/pings.service';
import { INGEST_CONFIG } from './tokens';
import { StatusUpdatesService } from './updates/status-updates.service';

/**
 * The HTTP edge for pushes (SPEC §2, §6): status updates and heartbeat pings in,
 * confirmed `status.update` / `ping.received` out. Reads API keys and monitors;
 * writes nothing (API-key uses go to the gateway as `apikey.used`).
 */
@Module({})
export class StatusIngestModule {
  static forRoot(config: IngestConfig): DynamicModule {
    return {
      module: StatusIngestModule,
      imports: [
        // Cache misses only: a handful of connections is plenty.
        PersistenceModule.forRoot({ ...config.database, poolSize: 4, applicationName: 'status-ingest' }),
        // Shared by replicas: rate-limit buckets and the ingress pause.
        LiveStateModule.forRoot({
          url: config.redisUrl,
          keyPrefix: config.redisPrefix,
          connectionName: 'status-ingest',
          logger: FLEETWATCH_LOGGER,
          commandTimeoutMs: config.redisTimeoutMs,
        }),
        MessagingModule.forRootAsync({
          inject: [FLEETWATCH_LOGGER],
          useFactory: (logger: Logger) => ({
            url: config.amqpUrl,
            site: config.site,
            service: 'status-ingest',
            location: config.location,
            // Declared here too, so pushes accepted before the aggregator first starts wait in its queue.
            queues: STATUS_INGEST_QUEUES,
            publishTimeoutMs: config.publishTimeoutMs,
            logger,
            stopTimeoutMs: Math.max(1000, config.shutdownTimeoutMs - 2000),
          }),
        }),
      ],
      providers: [
        { provide: INGEST_CONFIG, useValue: config },
        IngestMetrics,
        IngressStateService,
        IngressStateSync,
        SharedStateMetrics,
        IngestRateLimits,
        PublishGate,
        ApiKeyUseReporter,
        KeyLookups,
        ApiKeyAuthService,
        StatusUpdatesService,
        PingsService,
        MonitorCacheFollower,
        IngestRoutes,
        IngressControlHandler,
        ReadinessWiring,
      ],
    };
  }
}
