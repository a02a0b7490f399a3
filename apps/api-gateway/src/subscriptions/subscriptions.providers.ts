import type { Provider } from '@nestjs/common';
import { DATABASE_CLIENT, SubscriptionDeliveriesRepository, type DatabaseClient } from '@fleetwatch/persistence';
import { SubscriptionsOwner } from './subscriptions-owner.service';

/** Subscriptions (issue 18): writes and reads of the configuration through its owner; the delivery log from Postgres. */
export const subscriptionsProviders: Provider[] = [
  SubscriptionsOwner,
  {
    provide: SubscriptionDeliveriesRepository,
    inject: [DATABASE_CLIENT],
    useFactory: (db: DatabaseClient) => new SubscriptionDeliveriesRepository(db),
  },
];
