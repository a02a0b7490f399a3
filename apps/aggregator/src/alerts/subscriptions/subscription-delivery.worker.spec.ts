import type { SubscriptionDeliveriesRepository, SubscriptionsRepository } from '@fleetwatch/persistence';
import { DEFAULT_RETRY_POLICY } from '@fleetwatch/alerting';
import { SubscriptionDeliveryWorker } from './subscription-delivery.worker';

// A round's sends are its own: a store error while one delivery is handled must not end the round while the others
// are still being sent — unwatched, they would outlast stop(), which hands their claims back, and another replica
// would send them again.

it('a store error on one delivery ends the round only after the others of the round were handled', async () => {
  const recorded: string[] = [];
  let claims = 0;
  const deliveries = {
    purgeFinished: async () => 0,
    claimDue: async () =>
      claims++ === 0
        ? ['a', 'b', 'c'].map((id) => ({
            id,
            subscriptionId: `s-${id}`,
            eventId: id,
            body: '{}',
            attempts: 0,
            createdAt: 0,
          }))
        : [],
    record: async (_owner: string, id: string) => {
      recorded.push(id);
      return true;
    },
  } as unknown as SubscriptionDeliveriesRepository;
  const subscriptions = {
    // Deleted subscriptions (nothing to send); the store fails for one, the others answer a moment later.
    find: (id: string) =>
      id === 's-a'
        ? Promise.reject(new Error('connection terminated'))
        : new Promise((r) => setTimeout(() => r(null), 50)),
  } as unknown as SubscriptionsRepository;
  const worker = new SubscriptionDeliveryWorker(
    deliveries,
    subscriptions,
    null,
    { warn: () => undefined, info: () => undefined } as never,
    {
      owner: 'o',
      policy: DEFAULT_RETRY_POLICY,
      http: { timeoutMs: 1000, maxResponseBytes: 4096, maxRedirects: 0 },
      leaseMs: 60_000,
      pollMs: 1000,
      batch: 20,
      retentionMs: 86_400_000,
    },
  );
  const outcome = await worker.drain().then(
    (n) => `handled ${n}`,
    (e: unknown) => `failed: ${(e as Error).message}`,
  );
  expect({ outcome, recordedWhenDone: [...recorded].sort() }).toEqual({
    outcome: 'handled 3',
    recordedWhenDone: ['b', 'c'],
  });
});
