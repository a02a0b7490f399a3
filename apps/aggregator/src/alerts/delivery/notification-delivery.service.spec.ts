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
  let claims = 0;
  const repo = {
    claimDue: async () => (claims++ === 0 ? [pending('a'), pending('b'), pending('c')] : []),
    renewClaim: async (id: string) => {
      if (id === 'a') throw new Error('connection terminated');
      return true;
    },
    recordAttempt: async (_owner: string, attempt: DeliveryAttempt) => {
      recorded.push(attempt.deliveryId);
    },
    pruneLog: async () => 0,
    releaseClaims: async () => 0,
  } as unknown as AlertDeliveriesRepository;
  // Reading a channel takes a while (the store, unsealing): the other messages are still in flight when 'a' fails.
  const channels: ChannelSource = { get: () => new Promise((r) => setTimeout(() => r(null), 50)) };
  const d = new NotificationDelivery(repo, channels, pino({ level: 'silent' }), {
    owner: 'o',
    site: 's',
    externalURL: 'https://fleet.example.com',
    concurrency: 3,
  });
  d.start();
  const end = Date.now() + 2_000;
  while (claims === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  // stop() waits for the round under way: a round that ended at 'a's failure would leave 'b' and 'c' unwatched.
  const outcome = await d.stop().then(
    () => 'stopped',
    (e: unknown) => `failed: ${(e as Error).message}`,
  );
  expect({ outcome, recordedWhenDone: [...recorded].sort() }).toEqual({
    outcome: 'stopped',
    recordedWhenDone: ['b', 'c'],
  });
});

describe('claims while a send hangs', () => {
  /** A worker whose repository answers claims from `claims` in turn (a function: its answer; then nothing due). */
  function setup(claims: Array<() => Promise<PendingDelivery[]>>, pollIntervalMs: number) {
    const recorded: string[] = [];
    let release!: () => void;
    const hanging = new Promise<null>((r) => (release = () => r(null)));
    let n = 0;
    const repo = {
      claimDue: async () => (n < claims.length ? claims[n++]() : []),
      renewClaim: async () => true,
      recordAttempt: async (_owner: string, attempt: DeliveryAttempt) => void recorded.push(attempt.deliveryId),
      pruneLog: async () => 0,
      releaseClaims: async () => 0,
    } as unknown as AlertDeliveriesRepository;
    // The channel of `hang` is read for as long as the test holds it: its send is under way until then.
    const channels: ChannelSource = { get: (id: string) => (id === 'ch-hang' ? hanging : Promise.resolve(null)) };
    const d = new NotificationDelivery(repo, channels, pino({ level: 'silent' }), {
      owner: 'o',
      site: 's',
      externalURL: 'https://fleet.example.com',
      pollIntervalMs,
    });
    return { d, recorded, release, claimsMade: () => n };
  }

  const until = async (what: () => boolean, ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    while (!what() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    return what();
  };

  it('a claim that fails does not hold new messages until the hung send ends: the next poll claims again', async () => {
    const { d, recorded, release } = setup(
      [
        async () => [pending('hang')],
        async () => {
          throw new Error('connection terminated');
        },
        async () => [pending('x')],
      ],
      50,
    );
    d.start();
    try {
      await new Promise((r) => setTimeout(r, 20));
      d.kick();
      // Before: the failed claim ended the round, which waited for the hung send before any other claim.
      expect(await until(() => recorded.includes('x'), 2_000)).toBe(true);
      expect(recorded).not.toContain('hang');
    } finally {
      release();
      await d.stop();
    }
  });

  it('a kick during a claim is seen after it, not at the next poll', async () => {
    let kickDuringClaim = (): void => undefined;
    const { d, recorded, release, claimsMade } = setup(
      [
        async () => [pending('hang')],
        async () => {
          kickDuringClaim();
          await new Promise((r) => setTimeout(r, 50));
          return [];
        },
        async () => [pending('x')],
      ],
      60_000,
    );
    d.start();
    try {
      await until(() => claimsMade() === 1, 2_000);
      await new Promise((r) => setTimeout(r, 20));
      kickDuringClaim = () => d.kick();
      d.kick();
      // Before: the second kick, made while the round awaited its claim, waited for the poll (a minute here).
      expect(await until(() => recorded.includes('x'), 2_000)).toBe(true);
    } finally {
      release();
      await d.stop();
    }
  });
});
