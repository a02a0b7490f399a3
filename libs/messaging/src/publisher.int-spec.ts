import { createServer, type AddressInfo } from 'node:net';
import { BusHeader, deadLetterQueueOf, ExchangeName, Messages, QueueName, RoutingKey } from '@fleetwatch/contracts';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { BusConnection } from './connection';
import {
  BusClosedError,
  BusError,
  BusUnavailableError,
  InvalidMessageError,
  PublishNackedError,
  PublishTimeoutError,
  PublishUnroutableError,
} from './errors';
import { checkResult, RawAmqp, TEST_SOURCE, testConnection } from './int-spec.helpers';
import { BusPublisher, publishRequest } from './publisher';
import { BusTopology, workQueueArguments } from './topology';

const Q = QueueName.AggregatorObservations;

// jest's per-project testTimeout (jest.config.js) is overridden by the global default of 5 s.
jest.setTimeout(60_000);

describe('BusPublisher on RabbitMQ', () => {
  let vhost: IsolatedVhost;
  let connection: BusConnection;
  let publisher: BusPublisher;
  let raw: RawAmqp;

  beforeAll(async () => {
    vhost = await createIsolatedVhost('publisher');
    connection = testConnection(vhost.amqpUrl);
    new BusTopology(connection, { queues: [Q] });
    publisher = new BusPublisher(connection, { source: TEST_SOURCE, shardObservations: false, timeoutMs: 2_000 });
    connection.start();
    await connection.waitForSession(10_000);
    raw = await RawAmqp.open(vhost.amqpUrl);
  });

  afterAll(async () => {
    await publisher?.close();
    await connection?.close();
    await raw?.close();
    await vhost?.dispose();
  });

  afterEach(async () => {
    await raw.purge(Q);
  });

  it('declares quorum queues with delivery limit, DLX and at-least-once dead-lettering (idempotently)', async () => {
    const ch = await raw.channel();
    // Re-asserting with the exact arguments succeeds only if they match what the topology declared.
    await expect(ch.assertQueue(Q, { durable: true, arguments: workQueueArguments(Q, 5) })).resolves.toMatchObject({
      queue: Q,
    });
    await expect(ch.checkQueue(deadLetterQueueOf(Q))).resolves.toMatchObject({ messageCount: 0 });
    await ch.close();
    const other = testConnection(vhost.amqpUrl);
    new BusTopology(other, { queues: [Q] });
    other.start();
    await other.waitForSession(10_000);
    await other.close();
  });

  it('publishes persistent, typed, confirmed envelopes', async () => {
    const envelope = await publisher.publish(Messages.CheckResult, checkResult(1), { correlationId: 'corr-1' });
    const [m] = await raw.drain(Q);
    expect(m.properties).toMatchObject({
      deliveryMode: 2,
      contentType: 'application/json',
      messageId: envelope.id,
      type: 'check.result',
      correlationId: 'corr-1',
      headers: { [BusHeader.SchemaVersion]: 1, [BusHeader.MessageType]: 'check.result' },
    });
    const body = JSON.parse(m.content.toString()) as Record<string, unknown>;
    expect(body).toMatchObject({
      id: envelope.id,
      type: 'check.result',
      schemaVersion: 1,
      source: TEST_SOURCE,
      correlationId: 'corr-1',
    });
  });

  it('refuses an invalid payload before anything is sent', async () => {
    const bad = { ...checkResult(2), latencyMs: -1 };
    await expect(publisher.publish(Messages.CheckResult, bad)).rejects.toBeInstanceOf(InvalidMessageError);
    await expect(
      publisher.publishMany([
        publishRequest(Messages.CheckResult, checkResult(3)),
        publishRequest(Messages.CheckResult, bad),
      ]),
    ).rejects.toBeInstanceOf(InvalidMessageError);
    expect(await raw.count(Q)).toBe(0);
  });

  it('fails an unroutable publish (basic.return) unless mandatory is off', async () => {
    const error = await publisher.publish(Messages.AlertStateChanged, alertChanged()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishUnroutableError);
    expect((error as PublishUnroutableError).routingKey).toBe(RoutingKey.AlertStateChanged);
    await expect(
      publisher.publish(Messages.AlertStateChanged, alertChanged(), { mandatory: false }),
    ).resolves.toMatchObject({ type: 'alert.state-changed' });
  });

  it('publishMany pipelines thousands of messages and confirms them all', async () => {
    const requests = Array.from({ length: 3_000 }, (_, i) => publishRequest(Messages.CheckResult, checkResult(i)));
    // What is asserted is that every one is confirmed, not how fast: on a loaded CI box the broker took more than the
    // suite's 2 s publish timeout to confirm a burst of 3,000.
    const envelopes = await publisher.publishMany(requests, { timeoutMs: 30_000 });
    expect(new Set(envelopes.map((e) => e.id)).size).toBe(3_000);
    expect(await raw.count(Q)).toBe(3_000);
  });

  it('reports a broker nack as PublishNackedError (full queue with reject-publish)', async () => {
    const ch = await raw.channel();
    await ch.assertQueue('full', {
      durable: true,
      arguments: { 'x-queue-type': 'quorum', 'x-max-length': 1, 'x-overflow': 'reject-publish' },
    });
    await ch.bindQueue('full', ExchangeName.Events, RoutingKey.ConfigChanged);
    await ch.close();
    const payload = {
      version: 1,
      hash: 'a'.repeat(64),
      areas: ['checks' as const],
      actor: 'test',
      origin: 'local' as const,
    };
    // A quorum queue checks its limit after enqueueing: the first publish over it still lands.
    const results = [];
    for (let i = 0; i < 4; i++)
      results.push(await publisher.publish(Messages.ConfigChanged, payload).catch((e: unknown) => e));
    expect(results.filter((r) => r instanceof PublishNackedError).length).toBeGreaterThan(0);
    expect((results.find((r) => r instanceof PublishNackedError) as PublishNackedError).message).toMatch(/basic\.nack/);
  });
});

describe('BusPublisher with the broker unreachable', () => {
  let vhost: IsolatedVhost;
  beforeAll(async () => {
    vhost = await createIsolatedVhost('unreachable');
  });
  const closers: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await vhost?.dispose();
  });

  it('rejects with BusUnavailableError in bounded time when nothing listens on the port', async () => {
    const port = await freePort();
    const url = new URL(vhost.amqpUrl);
    url.port = String(port);
    const connection = testConnection(url.toString());
    const publisher = new BusPublisher(connection, { source: TEST_SOURCE, shardObservations: false, timeoutMs: 1_500 });
    closers.push(() => connection.close());
    connection.start();
    const started = Date.now();
    const error = await publisher.publish(Messages.CheckResult, checkResult(1)).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(BusUnavailableError);
    expect(elapsed).toBeGreaterThanOrEqual(1_400);
    expect(elapsed).toBeLessThan(1_500 + 500);
    await connection.close();
    await expect(publisher.publish(Messages.CheckResult, checkResult(1))).rejects.toBeInstanceOf(BusClosedError);
  });

  it('rejects with a typed error in bounded time when the broker goes away mid-stream, and recovers', async () => {
    const proxy = TcpProxy.forUrl(vhost.amqpUrl);
    await proxy.start();
    const connection = testConnection(proxy.rewriteUrl(vhost.amqpUrl));
    closers.push(
      () => proxy.stop(),
      () => connection.close(),
    );
    new BusTopology(connection, { queues: [Q] });
    const publisher = new BusPublisher(connection, { source: TEST_SOURCE, shardObservations: false, timeoutMs: 1_500 });
    connection.start();
    await publisher.publish(Messages.CheckResult, checkResult(1));

    proxy.pause();
    proxy.cut(); // outage: live connections drop, new ones are refused
    const started = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => publisher.publish(Messages.CheckResult, checkResult(i))),
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(1_500 + 500);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(BusError);
    }

    // With the outage known (reconnects refused), a publish waits for a connection until its deadline.
    const again = Date.now();
    await expect(publisher.publish(Messages.CheckResult, checkResult(3))).rejects.toBeInstanceOf(BusUnavailableError);
    expect(Date.now() - again).toBeGreaterThanOrEqual(1_400);
    expect(Date.now() - again).toBeLessThan(1_500 + 500);
    expect(connection.isConnected()).toBe(false);

    proxy.resume();
    await connection.waitForSession(10_000);
    await expect(publisher.publish(Messages.CheckResult, checkResult(2))).resolves.toMatchObject({
      type: 'check.result',
    });
    await publisher.close();
    await connection.close();
    await proxy.stop();
  });

  it('a network stall between publish and confirm: the publish fails at its deadline (PublishTimeoutError), the connection is dropped by heartbeat, then publishing resumes', async () => {
    const proxy = TcpProxy.forUrl(vhost.amqpUrl);
    await proxy.start();
    const connection = testConnection(proxy.rewriteUrl(vhost.amqpUrl)); // heartbeat 2 s
    closers.push(
      () => proxy.stop(),
      () => connection.close(),
    );
    new BusTopology(connection, { queues: [Q] });
    const publisher = new BusPublisher(connection, { source: TEST_SOURCE, shardObservations: false, timeoutMs: 1_500 });
    connection.start();
    await publisher.publish(Messages.CheckResult, checkResult(1));

    proxy.hold(); // the broker's answers (the confirm among them) never arrive; nothing is closed
    const started = Date.now();
    const error = await publisher.publish(Messages.CheckResult, checkResult(2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PublishTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    expect(Date.now() - started).toBeLessThan(1_500 + 500);

    // The silent broker is declared dead (about two heartbeats); a reconnect through the healed path works.
    await waitFor(() => !connection.isConnected(), {
      timeoutMs: 10_000,
      description: 'connection dropped by heartbeat',
    });
    proxy.cut();
    proxy.release();
    await connection.waitForSession(10_000);
    await expect(publisher.publish(Messages.CheckResult, checkResult(3))).resolves.toMatchObject({
      type: 'check.result',
    });
    await publisher.close();
    await connection.close();
    await proxy.stop();
  });
});

function alertChanged() {
  return {
    ruleId: 'r1',
    fingerprint: 'f1',
    from: 'pending',
    to: 'firing',
    labels: {},
    annotations: {},
    value: null,
    at: new Date().toISOString(),
  } as const;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
