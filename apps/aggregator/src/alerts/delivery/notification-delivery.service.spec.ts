import type { AlertDeliveriesRepository, DeliveryAttempt, PendingDelivery } from '@fleetwatch/persistence';
import pino from 'pino';
import type { ChannelSource } from './delivery.types';
import { NotificationDelivery } from './notification-delivery.service';

// One round's sends are its own: a failure of the store while one message is handled (renewing its claim) must not
// end the round while the others are still being sent. Otherwise those sends go on unwatched: the next round starts
// beside them (more sends at once than `concurrency`), and stop() — not waiting for them — hands their claims back,
// so another replica sends the same messages again.

const pending = (id: string): PendingDelivery => ({
  id,
  channelId: `ch-${id}`,
  groupKey: `g-${id}`,
  notification: { groupKey: `g-${id}`, status: 'firing', alerts: [] },
  attempts: 0,
  nextAttemptAt: 0,
  createdAt: 0,
});

it('a store error on one message ends the round only after the others of the round were handled', async () => {
  const recorded: string[] = [];
  const repo = {
    claimDue: async () => [pending('a'), pending('b'), pending('c')],
    renewClaim: async (id: string) => {
      if (id === 'a') throw new Error('connection terminated');
      return true;
    },
    recordAttempt: async (_owner: string, attempt: DeliveryAttempt) => {
      recorded.push(attempt.deliveryId);
    },
    pruneLog: async () => 0,
  } as unknown as AlertDeliveriesRepository;
  // Reading a channel takes a while (the store, unsealing): the other messages are still in flight when 'a' fails.
  const channels: ChannelSource = { get: () => new Promise((r) => setTimeout(() => r(null), 50)) };
  const d = new NotificationDelivery(repo, channels, pino({ level: 'silent' }), {
    owner: 'o',
    site: 's',
    externalURL: 'https://fleet.example.com',
    concurrency: 3,
  });
  const outcome = await d.runOnce().then(
    (n) => `handled ${n}`,
    (e: unknown) => `failed: ${(e as Error).message}`,
  );
  expect({ outcome, recordedWhenDone: [...recorded].sort() }).toEqual({
    outcome: 'handled 3',
    recordedWhenDone: ['b', 'c'],
  });
});
