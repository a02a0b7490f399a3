import { ExchangeName, Messages, RoutingKey, type ConfigChangedPayload, type Envelope } from '@fleetwatch/contracts';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { createBus, type Bus } from './bus';
import { ConfigChangedFollower } from './config-changed.follower';
import { EventFollower } from './event-follower';
import { RawAmqp, TEST_SOURCE, testConnection } from './int-spec.helpers';
import { silentBusLogger } from './logger';

// EventFollower on the real broker: each follower has a queue of its own (two followers both get every event), an
// invalid message is logged and dropped, and a queue the broker takes away (deleted: the consumer is cancelled) is
// replaced on the same connection, with onConnected called again (what a follower holds must be re-read then).

jest.setTimeout(60_000);

const change = (version: number): ConfigChangedPayload => ({
  version,
  hash: 'a'.repeat(64),
  areas: ['checks'],
  actor: 'test',
  origin: 'local',
});

describe('EventFollower', () => {
  let vhost: IsolatedVhost;
  let bus: Bus;
  let raw: RawAmqp;
  const followers: { stop(): Promise<void> }[] = [];

  beforeAll(async () => {
    vhost = await createIsolatedVhost('event-follower');
    bus = createBus({
      shardObservations: false,
      url: vhost.amqpUrl,
      source: TEST_SOURCE,
      name: 'svc',
      queues: [],
      publishTimeoutMs: 5_000,
      logger: silentBusLogger,
    });
    await bus.connection.waitForSession(10_000);
    raw = await RawAmqp.open(vhost.amqpUrl);
  });

  afterEach(async () => {
    await Promise.all(followers.splice(0).map((f) => f.stop()));
  });

  afterAll(async () => {
    await bus?.close();
    await raw?.close();
    await vhost?.dispose();
  });

  function follow(routingKeys: string[]) {
    const seen: Envelope[] = [];
    const warnings: string[] = [];
    let connected = 0;
    const follower = new EventFollower(
      bus.connections.consuming,
      {
        name: 'test follower',
        routingKeys,
        onMessage: (e) => void seen.push(e),
        onConnected: () => void connected++,
      },
      { warn: (_o, msg) => void warnings.push(msg) },
    );
    followers.push(follower);
    follower.start();
    return { follower, seen, warnings, connected: () => connected };
  }

  it('every follower gets every event of its keys, and only those', async () => {
    const a = follow([RoutingKey.ConfigChanged]);
    const b = follow([RoutingKey.ConfigChanged, RoutingKey.StatusChanged]);
    await waitFor(() => a.connected() === 1 && b.connected() === 1, { description: 'both queues in place' });
    const sent = await bus.publisher.publish(Messages.ConfigChanged, change(1));
    await waitFor(() => a.seen.length === 1 && b.seen.length === 1, { description: 'both got the event' });
    expect(a.seen[0]?.id).toBe(sent.id);
    expect(b.seen[0]?.id).toBe(sent.id);
    expect(a.seen[0]?.payload).toEqual(change(1));
    expect(a.follower.queue).not.toBe(b.follower.queue);
  });

  it('an invalid message is logged and dropped; the next valid one arrives', async () => {
    const f = follow([RoutingKey.ConfigChanged]);
    await waitFor(() => f.connected() === 1, { description: 'queue in place' });
    await raw.publishRaw(ExchangeName.Events, RoutingKey.ConfigChanged, Buffer.from('{"not":"an envelope"'));
    const sent = await bus.publisher.publish(Messages.ConfigChanged, change(2));
    await waitFor(() => f.seen.length === 1, { description: 'valid event after the invalid one' });
    expect(f.seen[0]?.id).toBe(sent.id);
    expect(f.warnings).toEqual(['test follower: invalid message ignored']);
  });

  it('a queue the broker deletes is replaced on the same connection; onConnected is called again', async () => {
    const f = follow([RoutingKey.ConfigChanged]);
    await waitFor(() => f.connected() === 1, { description: 'queue in place' });
    const first = f.follower.queue as string;
    // An exclusive queue may be deleted only on its own connection (as the broker's own deletion would).
    const model = bus.connections.consuming.current()?.model;
    if (!model) throw new Error('not connected');
    const ch = await model.createChannel();
    await ch.deleteQueue(first);
    await ch.close();
    await waitFor(() => f.connected() === 2 && f.follower.queue !== undefined, {
      description: 'a new queue',
      timeoutMs: 10_000,
    });
    expect(f.follower.queue).not.toBe(first);
    const sent = await bus.publisher.publish(Messages.ConfigChanged, change(3));
    await waitFor(() => f.seen.some((e) => e.id === sent.id), { description: 'event through the new queue' });
  });

  it('a connection cut and back within the reopen delay: one queue, each event once, none after stop()', async () => {
    const proxy = TcpProxy.forUrl(vhost.amqpUrl);
    await proxy.start();
    const connection = testConnection(proxy.rewriteUrl(vhost.amqpUrl), { name: 'follower' });
    try {
      const seen: string[] = [];
      let connected = 0;
      const f = new EventFollower(
        connection,
        {
          name: 'test follower',
          routingKeys: [RoutingKey.ConfigChanged],
          onMessage: (e) => void seen.push(e.id),
          onConnected: () => void connected++,
        },
        silentBusLogger,
      );
      followers.push(f);
      f.start();
      await waitFor(() => connected === 1, { description: 'queue in place' });
      // The channel closes before the connection does: a reopen on the old session must not add a second queue to
      // the one the new connection's setup opens.
      proxy.cut();
      await waitFor(() => connected === 2, { description: 'reconnected', timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 1_500)); // past the reopen delay (1 s)
      expect(connected).toBe(2);
      const sent = await bus.publisher.publish(Messages.ConfigChanged, change(6));
      await waitFor(() => seen.includes(sent.id), { description: 'event after the cut' });
      await new Promise((r) => setTimeout(r, 300));
      expect(seen.filter((id) => id === sent.id)).toHaveLength(1);
      await f.stop();
      await expect(bus.publisher.publish(Messages.ConfigChanged, change(7))).rejects.toThrow(/no queue is bound/);
    } finally {
      await connection.close();
      await proxy.stop();
    }
  });

  it('ConfigChangedFollower hands the payload of config.changed to onChanged; stop() removes its queue', async () => {
    const got: ConfigChangedPayload[] = [];
    let connected = 0;
    const f = new ConfigChangedFollower(
      bus.connections.consuming,
      { onChanged: (p) => void got.push(p), onConnected: () => void connected++ },
      silentBusLogger,
    );
    followers.push(f);
    f.start();
    await waitFor(() => connected === 1, { description: 'queue in place' });
    await bus.publisher.publish(Messages.ConfigChanged, change(4));
    await waitFor(() => got.length === 1, { description: 'payload handed over' });
    expect(got[0]).toEqual(change(4));
    await f.stop();
    // Its queue is gone with it: nothing is bound to the key any more (the publish is mandatory).
    await expect(bus.publisher.publish(Messages.ConfigChanged, change(5))).rejects.toThrow(/no queue is bound/);
    expect(got).toHaveLength(1);
  });
});
