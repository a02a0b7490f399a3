import { Messages, QueueName, type Envelope } from '@fleetwatch/contracts';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { BusConnection } from './connection';
import { BusConsumer } from './consumer';
import { RedeliverError } from './errors';
import { checkResult, RawAmqp, TEST_SOURCE, testConnection } from './int-spec.helpers';
import { silentBusLogger } from './logger';
import { BusPublisher } from './publisher';
import { FRESH_COPY_MARGIN } from './settlement';
import type { Subscription } from './subscription';
import { BusTopology } from './topology';

// Subscription.markDeliveries (what the aggregator's catch-up hold waits on): a mark over the deliveries received
// so far is settled once those are acked, whatever arrives after; one of them given back to the queue (a handler
// failure requeues it, a give-back near the delivery limit republishes it) breaks it: it was not handled.

const Q = QueueName.AggregatorObservations;

jest.setTimeout(60_000);

describe('Subscription.markDeliveries on RabbitMQ', () => {
  let vhost: IsolatedVhost;
  let connection: BusConnection;
  let publisher: BusPublisher;
  let raw: RawAmqp;
  const gates = new Map<string, (outcome?: Error) => void>();
  const arrived: string[] = [];

  /** Consumes Q one message at a time; each waits for its gate (`open(id)`), then succeeds or throws what it is given. */
  async function gatedConsumer(deliveryLimit?: number): Promise<{ consumer: BusConsumer; sub: Subscription }> {
    const topology = new BusTopology(connection, { queues: [Q] });
    const consumer = new BusConsumer(connection, { topology, logger: silentBusLogger, deliveryLimit });
    const sub = consumer.consume(
      Q,
      async (envelope: Envelope) => {
        const id = (envelope.payload as { checkId: string }).checkId;
        arrived.push(id);
        const outcome = await new Promise<Error | undefined>((resolve) => gates.set(id, resolve));
        if (outcome) throw outcome;
      },
      { prefetch: 10 },
    );
    await sub.waitUntilActive();
    return { consumer, sub };
  }

  const publish = (checkId: string) => publisher.publish(Messages.CheckResult, checkResult(1, { checkId }));
  /** Lets `id`'s handler call end (a throw with `outcome`); its next call waits for a gate of its own. */
  const open = (id: string, outcome?: Error) => {
    const gate = gates.get(id) as (outcome?: Error) => void;
    gates.delete(id);
    gate(outcome);
  };
  const inHandler = (id: string) =>
    waitFor(() => gates.has(id), { timeoutMs: 10_000, description: `${id} in the handler` });

  beforeEach(async () => {
    vhost = await createIsolatedVhost('delivery-mark');
    connection = testConnection(vhost.amqpUrl);
    publisher = new BusPublisher(connection, { source: TEST_SOURCE, shardObservations: false });
    connection.start();
    await connection.waitForSession(10_000);
    raw = await RawAmqp.open(vhost.amqpUrl);
  });

  afterEach(async () => {
    for (const gate of gates.values()) gate();
    gates.clear();
    arrived.length = 0;
    await publisher.close();
    await connection.close();
    await raw.close();
    await vhost.dispose();
  });

  it('is settled once what it covers is acked, while later deliveries are still in hand', async () => {
    const { consumer, sub } = await gatedConsumer();
    await publish('m1');
    await inHandler('m1');
    const mark = sub.markDeliveries();
    expect(mark?.state).toBe('open');
    mark?.close();
    await publish('m2');
    await waitFor(() => sub.inFlight === 2, { description: 'm2 received behind m1' });
    expect(mark?.state).toBe('pending');
    open('m1');
    await waitFor(() => mark?.state === 'settled', { description: 'the mark settled' });
    // m2 came after the mark: still in hand, and it does not count.
    expect(sub.inFlight).toBe(1);
    await inHandler('m2');
    open('m2');
    await waitFor(() => sub.inFlight === 0);
    await consumer.stop();
  });

  it('breaks when a delivery it covers is requeued by a handler failure', async () => {
    const { consumer, sub } = await gatedConsumer();
    await publish('m1');
    await inHandler('m1');
    const mark = sub.markDeliveries();
    mark?.close();
    open('m1', new Error('store away'));
    // Back in the queue, and delivered again: settled as far as the channel goes, but not handled.
    await waitFor(() => arrived.length === 2, { description: 'm1 delivered again' });
    expect(mark?.state).toBe('broken');
    await inHandler('m1');
    open('m1');
    await waitFor(() => sub.inFlight === 0);
    expect(mark?.state).toBe('broken');
    await consumer.stop();
  });

  it('breaks when a delivery it covers is given back as a fresh copy near the delivery limit', async () => {
    // With this limit a first delivery is already within FRESH_COPY_MARGIN of it: a give-back republishes it.
    const { consumer, sub } = await gatedConsumer(FRESH_COPY_MARGIN);
    await publish('m1');
    await inHandler('m1');
    const mark = sub.markDeliveries();
    mark?.close();
    open('m1', new RedeliverError('not mine now'));
    await waitFor(() => arrived.length === 2, { description: 'the fresh copy of m1 delivered' });
    expect(mark?.state).toBe('broken');
    await inHandler('m1');
    open('m1');
    await waitFor(() => sub.inFlight === 0);
    await consumer.stop();
  });
});
