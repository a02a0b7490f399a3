import { Messages, QueueName, type Envelope } from '@fleetwatch/contracts';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { busReadinessCheck, createBus, type Bus } from './bus';
import { BrokerBlockedError } from './errors';
import { checkResult, RawAmqp, TEST_SOURCE } from './int-spec.helpers';
import { silentBusLogger } from './logger';

const Q = QueueName.AggregatorObservations;

// The broker's `connection.blocked` is simulated here on the publishing connection's
// amqplib model (what amqplib emits when the frame arrives); a real alarm is raised in
// tests/e2e/broker-alarm.alone.int-spec.ts, which must run alone.

jest.setTimeout(60_000);

describe('a service bus: one connection to publish, one to consume', () => {
  let vhost: IsolatedVhost;
  let bus: Bus;
  let raw: RawAmqp;

  beforeAll(async () => {
    vhost = await createIsolatedVhost('connections');
    bus = createBus({
      shardObservations: false,
      url: vhost.amqpUrl,
      source: TEST_SOURCE,
      name: 'svc',
      queues: [Q],
      publishTimeoutMs: 5_000,
      logger: silentBusLogger,
    });
    await bus.connection.waitForSession(10_000);
    raw = await RawAmqp.open(vhost.amqpUrl);
  });

  afterAll(async () => {
    await bus?.close();
    await raw?.close();
    await vhost?.dispose();
  });

  it('the consuming connection opens with the first subscription; readiness counts both', async () => {
    const readiness = busReadinessCheck(bus.connections);
    expect(bus.connections.consuming.state).toBe('idle');
    expect(() => readiness.check()).not.toThrow();
    const seen: string[] = [];
    const sub = bus.consumer.consume(Q, async (e: Envelope) => void seen.push(e.id), { prefetch: 10 });
    await sub.waitUntilActive(10_000);
    await waitFor(() => bus.connections.consuming.isConnected(), { description: 'consuming connection up' });
    expect(bus.connections.consuming.name).toBe('svc.consume');
    const sent = await bus.publisher.publish(Messages.CheckResult, checkResult(1));
    await waitFor(() => seen.includes(sent.id), { description: 'consumed on the other connection' });
    expect(() => readiness.check()).not.toThrow();
  });

  it('while the broker blocks publishing: publishes fail at once with BrokerBlockedError, readiness fails, consuming goes on', async () => {
    const publishing = bus.connections.publishing;
    const model = publishing.current()?.model;
    if (!model) throw new Error('not connected');
    const readiness = busReadinessCheck(bus.connections);
    const changes: Array<string | undefined> = [];
    const unlisten = publishing.onBlocked((reason) => changes.push(reason));

    // A publish in flight when the alarm comes is failed at once instead of waiting out its timeout.
    const inFlight = bus.publisher.publish(Messages.CheckResult, checkResult(2));
    await new Promise((r) => process.nextTick(r));
    model.emit('blocked', 'low on memory');
    const t0 = performance.now();
    await expect(inFlight).rejects.toBeInstanceOf(BrokerBlockedError);
    expect(performance.now() - t0).toBeLessThan(500);

    // New publishes never reach the wire.
    const before = await raw.count(Q);
    const refused = await bus.publisher.publish(Messages.CheckResult, checkResult(3)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BrokerBlockedError);
    expect(refused).toMatchObject({ reason: 'low on memory', maybeDelivered: false });
    const many = await bus.publisher.publishManySettled([
      { definition: Messages.CheckResult, payload: checkResult(4) },
    ]);
    expect(many[0]).toMatchObject({ ok: false });
    expect((many[0] as { error: unknown }).error).toBeInstanceOf(BrokerBlockedError);
    expect(() => readiness.check()).toThrow(/blocks publishing \(resource alarm: low on memory\)/);
    expect(bus.connections.consuming.blocked).toBeUndefined();

    model.emit('unblocked');
    expect(changes).toEqual(['low on memory', undefined]);
    expect(() => readiness.check()).not.toThrow();
    await bus.publisher.publish(Messages.CheckResult, checkResult(5));
    await waitFor(async () => (await raw.count(Q)) === 0, { description: 'everything consumed' });
    expect(before).toBe(0);
    unlisten();
  });
});
