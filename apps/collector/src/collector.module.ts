import { DynamicModule, Module } from '@nestjs/common';
import { QueueName } from '@fleetwatch/contracts';
import { MessagingModule, observationShardQueueSpecs } from '@fleetwatch/messaging';
import type { CollectorConfig } from './config';
import { HeartbeatService } from './heartbeat/heartbeat.service';
import { ReadinessWiring } from './health/readiness.wiring';
import { COLLECTOR_CONFIG } from './tokens';

/**
 * Runs at each location. This issue wires the bus, health and the collector
 * heartbeat; host sampling, checks and the spool arrive as modules beside these.
 */
@Module({})
export class CollectorModule {
  static forRoot(config: CollectorConfig): DynamicModule {
    return {
      module: CollectorModule,
      imports: [
        MessagingModule.forRoot({
          url: config.amqpUrl,
          site: config.site,
          service: 'collector',
          location: config.location,
          // Declared here too so results wait in the queue when the aggregator is not up yet.
          queues: [...observationShardQueueSpecs(), QueueName.AggregatorObservations],
        }),
      ],
      providers: [{ provide: COLLECTOR_CONFIG, useValue: config }, HeartbeatService, ReadinessWiring],
    };
  }
}
