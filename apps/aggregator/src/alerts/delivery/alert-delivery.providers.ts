import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, type OnApplicationBootstrap, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { Logger } from 'pino';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { AlertConfigRepository, AlertDeliveriesRepository, SecretSealer } from '@fleetwatch/persistence';
import { DEFAULT_RETRY_POLICY } from '@fleetwatch/alerting';
import { createTargetPolicy } from '@fleetwatch/domain';
import type { AggregatorConfig } from '../../config';
import { CHANNEL_SOURCE, type ChannelSource } from './delivery.types';
import { NotificationDelivery } from './notification-delivery.service';
import { StoredChannelSource } from './stored-channel-source';
import { ChannelTestRpcHandler } from './channel-test.rpc-handler';
import { checkedAgent } from './checked-connect';

/** Starts the delivery worker with the application; at shutdown waits for sends in flight and hands claims back. */
class AlertDeliveryLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(NotificationDelivery) private readonly delivery: NotificationDelivery) {}
  onApplicationBootstrap(): void {
    this.delivery.start();
  }
  async onApplicationShutdown(): Promise<void> {
    await this.delivery.stop();
  }
}

/**
 * Alert notification delivery in the aggregator (issue 18): every replica runs the queue worker (a
 * message is claimed by one), the evaluator queues into it and kicks it (NotificationDelivery.kick),
 * channels come from the configuration tables with their secrets opened under FLEETWATCH_ENCRYPTION_KEY.
 */
export function alertDeliveryProviders(config: AggregatorConfig): Provider[] {
  const d = config.alertDelivery;
  // The checks' target policy (FLEETWATCH_CHECK_DENY_NETWORKS) for every connection a notification makes.
  const policy = createTargetPolicy(d.denyNetworks);
  const owner = `${config.replicaId ?? `${hostname()}-${process.pid}`}-${randomBytes(3).toString('hex')}`;
  return [
    AlertDeliveriesRepository,
    AlertConfigRepository,
    {
      provide: CHANNEL_SOURCE,
      inject: [AlertConfigRepository],
      useFactory: (store: AlertConfigRepository) =>
        new StoredChannelSource(
          store,
          d.encryptionKey ? SecretSealer.fromText(d.encryptionKey, d.previousEncryptionKeys) : null,
        ),
    },
    {
      provide: NotificationDelivery,
      inject: [AlertDeliveriesRepository, CHANNEL_SOURCE, FLEETWATCH_LOGGER],
      useFactory: (repo: AlertDeliveriesRepository, channels: ChannelSource, logger: Logger) =>
        new NotificationDelivery(repo, channels, logger.child({ context: 'alert-delivery' }), {
          owner,
          site: config.site,
          externalURL: d.externalURL,
          policy: { ...DEFAULT_RETRY_POLICY, maxAttempts: d.maxAttempts },
          http: { timeoutMs: d.timeoutMs, maxResponseBytes: 4096, maxRedirects: 3, dispatcher: checkedAgent(policy) },
          smtp: { timeoutMs: d.timeoutMs, policy },
          // A claim outlives the longest send: the whole exchange is bounded by the timeout.
          leaseMs: Math.max(60_000, 4 * d.timeoutMs),
        }),
    },
    AlertDeliveryLifecycle,
    // Needs RpcServer (RpcServerModule on QueueName.AggregatorCommands, in AggregatorModule).
    ChannelTestRpcHandler,
  ];
}
