import { deadLetterQueueOf, Messages, QueueName, uuidv7, type Envelope } from '@fleetwatch/contracts';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { BusConsumer } from './consumer';
import { BusError, BusUnavailableError } from './errors';
import { checkResult, RawAmqp, TEST_SOURCE, testConnection } from './int-spec.helpers';
import { silentBusLogger } from './logger';
import { BusPublisher, publishRequest, type PublishRequest } from './publisher';
import { BusTopology } from './topology';

const Q = QueueName.AggregatorObservations;

// jest's per-project testTimeout (jest.config.js) is overridden by the global default of 5 s.
jest.setTimeout(60_000);

describe('connections cut mid-stream', () => {
  let vhost: IsolatedVhost;
  let proxy: TcpProxy;
  let raw: RawAmqp;
  /** Closed after the test even when it fails, so no connection outlives it. */
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    vhost = await createIsolatedVhost('reconnect');
    proxy = TcpProxy.forUrl(vhost.amqpUrl);
    await proxy.start();
    raw = await RawAmqp.open(vhost.amqpUrl);
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await proxy?.stop();
    await raw?.close();
    await vhost?.dispose();
  });

  it('no silent loss: each publish is confirmed or rejected with a typed error, retries land, the consumer reconnects and gets them all', async () => {
    const url = proxy.rewriteUrl(vhost.amqpUrl);
    // Two "processes", both through the proxy.
    const pubConnection = testConnection(url, { name: 'publisher' });
    new BusTopology(pubConnection, { queues: [Q] });
    const publisher = new BusPublisher(pubConnection, {
      source: TEST_SOURCE,
      shardObservations: false,
      timeoutMs: 3_000,
    });
    const subConnection = testConnection(url, { name: 'consumer' });
    const consumer = new BusConsumer(subConnection, {
      topology: new BusTopology(subConnection, { queues: [Q] }),
      logger: silentBusLogger,
    });
    const received = new Map<string, number>();
    closers.push(
      () => subConnection.close(),
      () => pubConnection.close(),
      () => publisher.close(),
      () => consumer.stop(),
    );
    pubConnection.start();
    subConnection.start();
    const sub = consumer.consume(
      Q,
      async (envelope: Envelope) => {
        await new Promise((r) => setImmediate(r));
        received.set(envelope.id, (received.get(envelope.id) ?? 0) + 1);
      },
      { prefetch: 50 },
    );
    await sub.waitUntilActive(10_000);
    await pubConnection.waitForSession(10_000);

    // Ids chosen up front, so a retry re-sends the same message (consumers de-duplicate by id).
    const ROUNDS = 6;
    const PER_ROUND = 1_000;
    const all = Array.from({ length: ROUNDS * PER_ROUND }, (_, i) => ({ id: uuidv7(), i }));
    const request = (m: { id: string; i: number }): PublishRequest =>
      publishRequest(Messages.CheckResult, checkResult(m.i), { id: m.id });
    const confirmed = new Set<string>();
    let pending: Array<{ id: string; i: number }> = [];
    const rejections: BusError[] = [];
    const subGenerations = new Set<number>();
    subConnection.on('connected', (s: { generation: number }) => subGenerations.add(s.generation));

    for (let round = 0; round < ROUNDS; round++) {
      const batch = all.slice(round * PER_ROUND, (round + 1) * PER_ROUND);
      // Cut every connection while the odd rounds' confirms are still outstanding.
      const cut = round % 2 === 1 ? setTimeout(() => proxy.cut(), 3) : undefined;
      const outcomes = await publisher.publishManySettled(batch.map(request));
      if (cut) clearTimeout(cut);
      outcomes.forEach((o, k) => {
        if (o.ok) confirmed.add(o.envelope.id);
        else {
          rejections.push(o.error);
          pending.push(batch[k]);
        }
      });
    }
    // Retry what was rejected until the broker confirms it.
    for (let attempt = 0; pending.length > 0 && attempt < 20; attempt++) {
      const outcomes = await publisher.publishManySettled(pending.map(request));
      const next: typeof pending = [];
      outcomes.forEach((o, k) =>
        o.ok ? confirmed.add(o.envelope.id) : (rejections.push(o.error), next.push(pending[k])),
      );
      pending = next;
      if (pending.length) await new Promise((r) => setTimeout(r, 200));
    }

    expect(pending).toHaveLength(0);
    expect(confirmed.size).toBe(all.length);
    expect(rejections.length).toBeGreaterThan(0);
    for (const e of rejections) expect(e).toBeInstanceOf(BusError);
    expect(rejections.some((e) => e instanceof BusUnavailableError)).toBe(true);

    await waitFor(() => [...confirmed].every((id) => received.has(id)), {
      timeoutMs: 60_000,
      description: 'every confirmed message consumed',
    });
    expect(subGenerations.size).toBeGreaterThanOrEqual(1); // the consumer reconnected (listener added after the first connect)
    await sub.waitUntilActive(5_000);
    // A publish cut before its confirm may have reached the queue and been sent again: that copy is a duplicate the
    // consumer has still to take (and drop by id). Waiting for every id is not waiting for them: wait for the queue.
    await waitFor(async () => (await raw.count(Q)) === 0, { timeoutMs: 60_000, description: 'the queue drained' });
    await consumer.stop();
    expect(await raw.count(Q)).toBe(0);
    expect(await raw.count(deadLetterQueueOf(Q))).toBe(0);
    await publisher.close();
    await pubConnection.close();
    await subConnection.close();
  });
});
