import { randomUUID } from 'node:crypto';
import { register } from 'prom-client';
import type { RetryPolicy } from '@fleetwatch/alerting';
import type { AlertDeliveriesRepository } from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import {
  alertOf,
  deliveryTestBed,
  notificationOf,
  rateLimitingResponder,
  type HttpReceiver,
  type ReceivedRequest,
} from './receivers.int-helpers';

// A receiver that rate limits (429 + Retry-After) pauses its whole channel, not only the message it answered: the
// channel's other queued messages are not sent into the limit meanwhile — by this replica, by another, or by one
// started after a restart — and go out once each, in their order, when the pause ends; nobody is charged an attempt
// for waiting, and the other channels keep flowing.

const FAST: RetryPolicy = { maxAttempts: 4, baseDelayMs: 150, maxDelayMs: 2000, maxAgeMs: 600_000, jitter: 0 };
const bed = deliveryTestBed(FAST);
const { worker, webhook } = bed;
let repo: AlertDeliveriesRepository;
beforeAll(() => {
  repo = bed.repo();
});

/** A receiver that rate limits (rateLimitingResponder), closed after the spec. */
async function rateLimiting(seconds: number): Promise<HttpReceiver & { openAt: () => number }> {
  const { respond, openAt } = rateLimitingResponder(seconds);
  return Object.assign(await bed.receiver(respond), { openAt });
}

const flowing = (): Promise<HttpReceiver> => bed.receiver(() => ({ status: 200 }));

const idOf = (q: ReceivedRequest) => String(q.headers['x-fleetwatch-delivery']);

/** Messages of one channel in different groups (so none waits for another by its group). */
const messages = (channelId: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    channelId,
    notification: notificationOf([alertOf({ fingerprint: `f${i}` })], { groupKey: `g${i}:${randomUUID()}` }),
  }));

/** Until every one of `ids` was delivered or given up. */
async function allFinished(ids: string[], timeoutMs = 15_000): Promise<void> {
  await waitFor(async () => (await Promise.all(ids.map((id) => finished(id)))).every(Boolean), {
    timeoutMs,
    description: `${ids.length} deliveries to finish`,
  });
}

async function finished(id: string): Promise<boolean> {
  const l = await repo.listLog({ deliveryId: id });
  return l.length > 0 && l[0].outcome !== 'retrying';
}

describe('a channel rate limited by its receiver', () => {
  it('pauses as a whole until Retry-After: nothing more is sent to it meanwhile, then each message once, in order; another channel is not held up', async () => {
    const limited = await rateLimiting(2);
    const other = await flowing();
    const a = webhook(`${limited.url}/in`);
    const b = webhook(`${other.url}/in`);
    // One send of a channel at a time: the order the receiver sees is the order the messages go out in.
    const d = worker({ perChannel: 1 });
    const aIds = await d.enqueue(messages(a.id, 5));
    const queuedAt = Date.now();
    const bIds = await d.enqueue(messages(b.id, 4));
    await allFinished(aIds);
    await allFinished(bIds);

    const openAt = limited.openAt();
    // Before: the four others were each sent into the limit (one 429 apiece), each charged an attempt.
    expect(limited.requests.filter((q) => q.at < openAt).map(idOf)).toEqual([aIds[0]]);
    const after = limited.requests.filter((q) => q.at >= openAt);
    expect(after.map(idOf)).toEqual(aIds);
    // The other channel went on at its own pace, not after the pause.
    expect(other.requests.map(idOf).sort()).toEqual([...bIds].sort());
    expect(Math.max(...other.requests.map((q) => q.at))).toBeLessThan(openAt);
    expect(Math.max(...other.requests.map((q) => q.at)) - queuedAt).toBeLessThan(1500);

    // Waiting was not charged: the answered message's delivery counts as its first attempt still; the rest had one.
    const firstLog = (await repo.listLog({ deliveryId: aIds[0] })).reverse();
    expect(firstLog.map((e) => [e.attempt, e.outcome, e.httpStatus])).toEqual([
      [1, 'retrying', 429],
      [1, 'delivered', 200],
    ]);
    expect(firstLog[0].error).toMatch(/rate limited: the channel pauses until .*; not counted as an attempt/);
    expect(firstLog[0].nextAttemptAt).toBeGreaterThanOrEqual(openAt - 50);
    for (const id of aIds.slice(1))
      expect((await repo.listLog({ deliveryId: id })).map((e) => [e.attempt, e.outcome])).toEqual([[1, 'delivered']]);
    expect(await repo.listPending(a.id)).toEqual([]);
    const counted = await register.getSingleMetricAsString('fleetwatch_alert_delivery_rate_limited_total');
    expect(counted).toMatch(/channel_type="webhook"\} [1-9]/);
  });

  it('with several sends of the channel under way: only those already sent meet the limit; each message is delivered once', async () => {
    const limited = await rateLimiting(2);
    const a = webhook(`${limited.url}/in`);
    const d = worker({ perChannel: 3, concurrency: 8 });
    const aIds = await d.enqueue(messages(a.id, 8));
    await allFinished(aIds);
    const openAt = limited.openAt();
    // The sends on their way when the first 429 came back (at most the channel's 3), none after it.
    expect(limited.requests.filter((q) => q.at < openAt).length).toBeLessThanOrEqual(3);
    const ok = limited.requests.filter((q) => q.at >= openAt).map(idOf);
    expect([...ok].sort()).toEqual([...aIds].sort());
    for (const id of aIds)
      expect((await repo.listLog({ deliveryId: id })).filter((e) => e.outcome === 'delivered')).toEqual([
        expect.objectContaining({ attempt: 1 }),
      ]);
  });

  it('a message too old to wait out the pause gives up (the age limit still holds); the channel pauses all the same', async () => {
    const limited = await rateLimiting(30);
    const a = webhook(`${limited.url}/in`);
    const d = worker({ policy: { ...FAST, maxAgeMs: 10_000 } });
    const [id] = await d.enqueue(messages(a.id, 1));
    await allFinished([id]);
    const [entry] = await repo.listLog({ deliveryId: id });
    expect([entry.attempt, entry.outcome, entry.httpStatus]).toEqual([1, 'failed', 429]);
    expect(entry.error).toMatch(/^HTTP 429 \(gave up: older than 0 min\)$/);
    expect(await repo.listPending(a.id)).toEqual([]);
    expect(await repo.channelPausedUntil(a.id)).toBeGreaterThan(Date.now() + 25_000);
  });

  it('the pause is kept in Postgres: a replica started after a restart sends nothing to the channel until it ends', async () => {
    const limited = await rateLimiting(3);
    const a = webhook(`${limited.url}/in`);
    const first = worker({ perChannel: 1 });
    const aIds = await first.enqueue(messages(a.id, 3));
    await waitFor(async () => (await repo.channelPausedUntil(a.id)) !== null, {
      timeoutMs: 5000,
      description: 'the channel to pause',
    });
    // This replica stops (a restart, or another replica takes over): the new one knows nothing of the 429 itself.
    await first.stop();
    const second = worker({ perChannel: 1 });
    second.kick();
    await allFinished(aIds);
    const openAt = limited.openAt();
    expect(limited.requests.filter((q) => q.at < openAt).map(idOf)).toEqual([aIds[0]]);
    expect(limited.requests.filter((q) => q.at >= openAt).map(idOf)).toEqual(aIds);
  });
});
