import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, type OnApplicationBootstrap, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { Logger } from 'pino';
import { DEFAULT_RETRY_POLICY } from '@fleetwatch/alerting';
import { createTargetPolicy } from '@fleetwatch/domain';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { SecretSealer, SubscriptionDeliveriesRepository, SubscriptionsRepository } from '@fleetwatch/persistence';
import type { AggregatorConfig } from '../../config';
import { checkedAgent } from '../delivery/checked-connect';
import { SubscriptionDeliveryWorker } from './subscription-delivery.worker';
import { SubscriptionEventsHandler } from './subscription-events.handler';

/** Starts the worker with the application; at shutdown waits for sends in flight and hands claims back. */
class SubscriptionDeliveryLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(SubscriptionDeliveryWorker) private readonly worker: SubscriptionDeliveryWorker) {}
  onApplicationBootstrap(): void {
    this.worker.start();
  }
  async onApplicationShutdown(): Promise<void> {
    await this.worker.stop();
  }
}

/**
 * Status-change subscriptions in the aggregator (issue 18, SPEC §7): the status.changed consumer that queues
 * deliveries, and the worker that sends them (every replica; a delivery is claimed by one). Secrets are
 * opened under FLEETWATCH_ENCRYPTION_KEY, the send timeout is ALERT_DELIVERY_TIMEOUT_MS, every connection
 * checked against FLEETWATCH_CHECK_DENY_NETWORKS (a denied address fails the delivery, not retried).
 */
export function subscriptionProviders(config: AggregatorConfig): Provider[] {
  const d = config.alertDelivery;
  // The checks' target policy (FLEETWATCH_CHECK_DENY_NETWORKS) on every connection, as for channels.
  const dispatcher = checkedAgent(createTargetPolicy(d.denyNetworks));
  const owner = `${config.replicaId ?? `${hostname()}-${process.pid}`}-sub-${randomBytes(3).toString('hex')}`;
  return [
    SubscriptionsRepository,
    SubscriptionDeliveriesRepository,
    {
      provide: SubscriptionDeliveryWorker,
      inject: [SubscriptionDeliveriesRepository, SubscriptionsRepository, FLEETWATCH_LOGGER],
      useFactory: (deliveries: SubscriptionDeliveriesRepository, subs: SubscriptionsRepository, logger: Logger) =>
        new SubscriptionDeliveryWorker(
          deliveries,
          subs,
          d.encryptionKey ? SecretSealer.fromText(d.encryptionKey, d.previousEncryptionKeys) : null,
          logger.child({ context: 'subscriptions' }),
          {
            owner,
            policy: { ...DEFAULT_RETRY_POLICY, maxAttempts: d.subscriptionMaxAttempts },
            http: { timeoutMs: d.timeoutMs, maxResponseBytes: 4096, maxRedirects: 3, dispatcher },
            leaseMs: Math.max(60_000, 4 * d.timeoutMs),
            pollMs: 1000,
            batch: 20,
            retentionMs: 7 * 86_400_000,
          },
        ),
    },
    SubscriptionEventsHandler,
    SubscriptionDeliveryLifecycle,
  ];
}
