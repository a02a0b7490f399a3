import { Messages, QueueName, type Envelope } from '@fleetwatch/contracts';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { BusConnections } from './connections';
import { BusConsumer } from './consumer';
import { checkResult, RawAmqp, TEST_SOURCE } from './int-spec.helpers';
import { silentBusLogger } from './logger';
import { BusPublisher, publishRequest } from './publisher';
import type { Subscription } from './subscription';
import { BusTopology } from './topology';

const Q = QueueName.AggregatorObservations;

// A message's weight is carried in `attempt` (a stand-in for "updates in a status.update.batch").
const weigh = (e: Envelope): number => (e.payload as { attempt: number }).attempt;

jest.setTimeout(60_000);

describe('consumer budget in units and bytes (RabbitMQ)', () => {
  let vhost: IsolatedVhost;
  let connections: BusConnections;
  let publisher: BusPublisher;
  let consumer: BusConsumer;
  let raw: RawAmqp;

  beforeEach(async () => {
    vhost = await createIsolatedVhost('budget');
    connections = new BusConnections({
      url: vhost.amqpUrl,
      name: 'test',
      heartbeatSeconds: 2,
      logger: silentBusLogger,
      backoff: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    const topology = new BusTopology(connections.publishing, { queues: [Q] });
    publisher = new BusPublisher(connections.publishing, { source: TEST_SOURCE, shardObservations: false });
    consumer = new BusConsumer(connections.consuming, {
      topology,
      logger: silentBusLogger,
      publishing: connections.publishing,
    });
    connections.start();
    await connections.publishing.waitForSession(10_000);
    raw = await RawAmqp.open(vhost.amqpUrl);
  });

  afterEach(async () => {
    await consumer.stop();
    await publisher.close();
    await connections.close();
    await raw.close();
    await vhost.dispose();
  });

  const publish = async (n: number, weight: number) => {
    for (let i = 0; i < n; i += 200) {
      await publisher.publishMany(
        Array.from({ length: Math.min(200, n - i) }, (_, j) =>
          publishRequest(Messages.CheckResult, checkResult(i + j, { attempt: weight })),
        ),
      );
    }
  };

  /** Samples what the subscription holds at every handler call and every 2 ms. */
  const sampler = (sub: () => Subscription | undefined) => {
    const seen = { maxUnits: 0, maxMessages: 0, paused: false, prefetches: new Set<number>() };
    const take = () => {
      const s = sub()?.intakeState;
      if (!s) return;
      seen.maxUnits = Math.max(seen.maxUnits, s.units);
      seen.maxMessages = Math.max(seen.maxMessages, s.messages);
      seen.paused ||= s.paused;
      seen.prefetches.add(s.prefetch);
    };
    const timer = setInterval(take, 2);
    return { seen, take, stop: () => clearInterval(timer) };
  };

  it('a backlog of heavy messages never holds more than the budget; the window widens again for light ones', async () => {
    // 40 messages of 100 units queued before the consumer starts (a stopped aggregator's backlog).
    await publish(40, 100);
    const holder: { sub?: Subscription } = {};
    const s = sampler(() => holder.sub);
    let handled = 0;
    let heaviestBatch = 0;
    holder.sub = consumer.consume(
      Q,
      async (envelopes: Envelope[]) => {
        s.take();
        heaviestBatch = Math.max(
          heaviestBatch,
          envelopes.reduce((n, e) => n + weigh(e), 0),
        );
        await new Promise((r) => setTimeout(r, 20));
        handled += envelopes.length;
      },
      {
        prefetch: 500,
        batch: { maxSize: 500, maxWaitMs: 5, maxUnits: 300 },
        weigh,
        budget: { maxUnits: 1_000, unitsPerMessageHint: 100 },
      },
    );
    await waitFor(() => handled === 40, { timeoutMs: 20_000, description: '40 heavy messages handled' });
    expect(s.seen.maxUnits).toBeLessThanOrEqual(1_000);
    expect(s.seen.maxUnits).toBeGreaterThan(0);
    expect(heaviestBatch).toBeLessThanOrEqual(300);
    expect(s.seen.prefetches).toEqual(new Set([10]));

    // 2,000 light messages: the prefetch that fits the budget grows (the consumer is re-opened wider).
    await publish(2_000, 1);
    await waitFor(() => handled === 2_040, { timeoutMs: 30_000, description: '2,000 light messages handled' });
    s.stop();
    expect(Math.max(...s.seen.prefetches)).toBeGreaterThanOrEqual(40);
    expect(await raw.count(Q)).toBe(0);
  });

  it('messages heavier than expected pause intake (consumer cancelled) and shrink the window; nothing is lost', async () => {
    const holder: { sub?: Subscription } = {};
    const s = sampler(() => holder.sub);
    let handled = 0;
    const sub = (holder.sub = consumer.consume(
      Q,
      async (envelopes: Envelope[]) => {
        s.take();
        await new Promise((r) => setTimeout(r, 30));
        handled += envelopes.length;
      },
      {
        prefetch: 100,
        batch: { maxSize: 100, maxWaitMs: 5, maxUnits: 400 },
        weigh,
        budget: { maxUnits: 1_000, unitsPerMessageHint: 50 },
      },
    ));
    await sub.waitUntilActive();
    // The window opened for 50-unit messages (20); these weigh 200: the first window overshoots, then intake pauses.
    await publish(60, 200);
    await waitFor(() => handled === 60, { timeoutMs: 30_000, description: '60 messages handled' });
    s.stop();
    expect(s.seen.paused).toBe(true);
    expect(s.seen.prefetches.has(5)).toBe(true); // 1,000 / 200
    // At most the first window (20 × 200) before the pause took effect.
    expect(s.seen.maxUnits).toBeLessThanOrEqual(20 * 200);
    expect(await raw.count(Q)).toBe(0);
    expect(sub.intakeState).toMatchObject({ units: 0, messages: 0, paused: false });
  });
  it('with a worst case (as the aggregator sets it), a burst of heavy messages after quiet hours of light ones stays within the budget', async () => {
    const holder: { sub?: Subscription } = {};
    const s = sampler(() => holder.sub);
    let handled = 0;
    let slow = false;
    holder.sub = consumer.consume(
      Q,
      async (envelopes: Envelope[]) => {
        s.take();
        await new Promise((r) => setTimeout(r, slow ? 200 : 1));
        handled += envelopes.length;
      },
      {
        prefetch: 1000,
        batch: { maxSize: 500, maxWaitMs: 5, maxUnits: 5000 },
        weigh,
        budget: { maxUnits: 10_000, unitsPerMessageHint: 1000, worstCase: { units: 1000, bytes: 1024 * 1024 } },
      },
    );
    await holder.sub.waitUntilActive();
    // Quiet hours: light messages, long enough that recent peaks alone would let the window widen.
    for (let round = 0; round < 4; round++) {
      await publish(400, 1);
      await waitFor(() => handled === 400 * (round + 1), { timeoutMs: 30_000, description: 'light messages handled' });
    }
    s.seen.maxUnits = 0;
    slow = true;
    await publish(200, 1000);
    await waitFor(() => handled === 1600 + 200, { timeoutMs: 60_000, description: 'heavy messages handled' });
    s.stop();
    // Held at most one budget plus the message in hand when the pause took effect.
    expect(s.seen.maxUnits).toBeLessThanOrEqual(10_000 + 1000);
  });
});
