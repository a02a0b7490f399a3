import {
  Inject,
  Module,
  type DynamicModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import type { Logger } from 'pino';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { AlertDeliveriesRepository } from '@fleetwatch/persistence';
import { CHANNEL_SOURCE, type ChannelSource } from './delivery.types';
import { NotificationDelivery, type DeliveryOptions } from './notification-delivery.service';

export type AlertDeliveryModuleOptions = Partial<DeliveryOptions> &
  Pick<DeliveryOptions, 'owner' | 'site' | 'externalURL'> & {
    /** Provides CHANNEL_SOURCE (channels with their secrets unsealed). */
    channelSource: Omit<Provider, 'provide'> & Record<string, unknown>;
  };

/** Starts the delivery worker with the application and stops it (claims handed back) at shutdown. */
class DeliveryLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(NotificationDelivery) private readonly delivery: NotificationDelivery) {}
  onApplicationBootstrap(): void {
    this.delivery.start();
  }
  async onApplicationShutdown(): Promise<void> {
    await this.delivery.stop();
  }
}

/**
 * Alert notification delivery for the aggregator (issue 18): the queue worker and test-sends. Needs the
 * global SQL_POOL (SqlPoolModule) and FLEETWATCH_LOGGER; exports NotificationDelivery for the evaluator.
 */
@Module({})
export class AlertDeliveryModule {
  static forRoot(options: AlertDeliveryModuleOptions): DynamicModule {
    const { channelSource, ...delivery } = options;
    return {
      module: AlertDeliveryModule,
      providers: [
        AlertDeliveriesRepository,
        { ...channelSource, provide: CHANNEL_SOURCE } as Provider,
        {
          provide: NotificationDelivery,
          inject: [AlertDeliveriesRepository, CHANNEL_SOURCE, FLEETWATCH_LOGGER],
          useFactory: (repo: AlertDeliveriesRepository, channels: ChannelSource, logger: Logger) =>
            new NotificationDelivery(repo, channels, logger.child({ context: 'alert-delivery' }), delivery),
        },
        DeliveryLifecycle,
      ],
      exports: [NotificationDelivery, AlertDeliveriesRepository],
    };
  }
}
