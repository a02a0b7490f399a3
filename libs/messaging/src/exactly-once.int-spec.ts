import { deadLetterQueueOf, Messages, QueueName, type Envelope } from '@fleetwatch/contracts';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { BusConnection } from './connection';
import { BusConsumer } from './consumer';
import type { DeliveryContext } from './delivery';
import { idempotent, InMemoryIdempotencyStore } from './idempotency';
import { checkResult, RawAmqp, TEST_SOURCE, testConnection } from './int-spec.helpers';
import { silentBusLogger } from './logger';
import { BusPublisher, publishRequest } from './publisher';
import { BusTopology } from './topology';

const Q = QueueName.AggregatorObservations;
const N = 10_000;

/** One consumer "process": its own connection (through a proxy we can cut) and consumer. */
interface ConsumerProcess {
  connection: BusConnection;
  consumer: BusConsumer;
  proxy: TcpProxy;
}

// jest's per-project testTimeout (jest.config.js) is overridden by the global default of 5 s.
jest.setTimeout(60_000);

describe('at-least-once delivery, exactly-once effects', () => {
  let vhost: IsolatedVhost;
  let raw: RawAmqp;
  /** Closed after the test even when it fails, so no connection outlives it. */
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    vhost = await createIsolatedVhost('exactly-once');
    raw = await RawAmqp.open(vhost.amqpUrl);
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await raw?.close();
    await vhost?.dispose();
  });

  it(`${N} confirmed messages, consumer killed mid-stream twice and restarted: every side effect exactly once, none lost`, async () => {
    // The "database": processed ids and side effects survive the consumer processes.
    const store = new InMemoryIdempotencyStore(N * 2);
    const effects = new Map<string, number>();
    let deliveries = 0;
    let redeliveries = 0;
    const handler = idempotent(
      async (envelope: Envelope) => {
        await new Promise((r) => setImmediate(r)); // an async commit
        effects.set(envelope.id, (effects.get(envelope.id) ?? 0) + 1);
      },
      store,
      'exactly-once-test',
    );
    const counting = async (envelope: Envelope, ctx: DeliveryContext): Promise<void> => {
      deliveries++;
      if (ctx.redelivered) redeliveries++;
      await handler(envelope, ctx);
    };

    const startConsumer = async (): Promise<ConsumerProcess> => {
      const proxy = TcpProxy.forUrl(vhost.amqpUrl);
      await proxy.start();
      const connection = testConnection(proxy.rewriteUrl(vhost.amqpUrl), { name: 'consumer' });
      const consumer = new BusConsumer(connection, {
        topology: new BusTopology(connection, { queues: [Q] }),
        logger: silentBusLogger,
      });
      closers.push(
        () => proxy.stop(),
        () => connection.close(),
        () => consumer.stop(),
      );
      connection.start();
      await consumer.consume(Q, counting, { prefetch: 50 }).waitUntilActive(10_000);
      return { connection, consumer, proxy };
    };
    /** A crash: the socket dies with deliveries unacked; the process is gone (no reconnect, no graceful stop). */
    const kill = async (p: ConsumerProcess): Promise<void> => {
      p.proxy.cut();
      await p.connection.close();
      await p.proxy.stop();
    };

    const pubConnection = testConnection(vhost.amqpUrl, { name: 'publisher' });
    new BusTopology(pubConnection, { queues: [Q] });
    const publisher = new BusPublisher(pubConnection, {
      source: TEST_SOURCE,
      shardObservations: false,
      timeoutMs: 10_000,
    });
    closers.push(
      () => pubConnection.close(),
      () => publisher.close(),
    );
    pubConnection.start();
    await pubConnection.waitForSession(10_000);

    let current = await startConsumer();
    const published = new Set<string>();
    const publishing = (async () => {
      for (let i = 0; i < N; i += 500) {
        const batch = Array.from({ length: Math.min(500, N - i) }, (_, j) =>
          publishRequest(Messages.CheckResult, checkResult(i + j)),
        );
        for (const e of await publisher.publishMany(batch)) published.add(e.id);
      }
    })();

    await waitFor(() => effects.size >= 2_500, { timeoutMs: 30_000, description: '2500 effects' });
    await kill(current);
    current = await startConsumer();
    await waitFor(() => effects.size >= 6_000, { timeoutMs: 30_000, description: '6000 effects' });
    await kill(current);
    current = await startConsumer();

    await publishing;
    expect(published.size).toBe(N);
    await waitFor(() => effects.size === N, { timeoutMs: 60_000, description: `${N} effects` });
    await current.consumer.stop();

    const duplicates = [...effects.values()].filter((n) => n !== 1).length;
    expect(duplicates).toBe(0);
    expect([...published].every((id) => effects.get(id) === 1)).toBe(true);
    // The kills really lost acks: the broker redelivered, and idempotency absorbed it.
    expect(deliveries).toBeGreaterThan(N);
    expect(redeliveries).toBeGreaterThan(0);
    expect(await raw.count(Q)).toBe(0);
    expect(await raw.count(deadLetterQueueOf(Q))).toBe(0);

    await current.connection.close();
    await current.proxy.stop();
    await publisher.close();
    await pubConnection.close();
  });
});
