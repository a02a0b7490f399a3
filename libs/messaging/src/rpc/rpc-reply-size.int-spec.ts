import { QueueName } from '@fleetwatch/contracts';
import { createIsolatedVhost, type IsolatedVhost } from '@fleetwatch/testing';
import type { BusConnection } from '../connection';
import { BusConsumer } from '../consumer';
import { TEST_SOURCE, testConnection } from '../int-spec.helpers';
import { silentBusLogger, type BusLogger } from '../logger';
import { BusTopology } from '../topology';
import { RpcClient } from './rpc-client';
import { RpcServer, type RpcServerOptions } from './rpc-server';

jest.setTimeout(90_000);

const Q = QueueName.SyncOrchestratorCommands;
const MiB = 1024 * 1024;
// Owner and caller share this process here (on separate machines in production), so the owner building
// a 129 MiB answer holds the caller's event loop too: on a loaded CI box that took over 4 s, two missed
// 2 s test heartbeats, and the caller's connection was dropped ("unavailable"), which is not what these
// tests are about. Heartbeats long enough to outlast that pause.
const HEARTBEAT_SECONDS = 60;

// RabbitMQ refuses a message over its max_message_size (128 MiB by default on 3.x, 16 MiB on 4.x) by
// closing the channel it came on: an answer that large never reaches its caller, and every other reply
// awaiting its confirm on that channel is lost with it.
describe('RPC replies over the size the bus carries', () => {
  let vhost: IsolatedVhost;
  const closers: Array<() => Promise<unknown>> = [];

  beforeEach(async () => {
    vhost = await createIsolatedVhost('rpc-size');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    await vhost.dispose();
  });

  function owner(options: RpcServerOptions = {}, logger: BusLogger = silentBusLogger): RpcServer {
    const connection: BusConnection = testConnection(vhost.amqpUrl, {
      name: 'owner',
      heartbeatSeconds: HEARTBEAT_SECONDS,
    });
    const consumer = new BusConsumer(connection, {
      topology: new BusTopology(connection, { queues: [Q] }),
      logger: silentBusLogger,
    });
    const server = new RpcServer(consumer, connection, { logger, ...options });
    closers.push(
      () => connection.close(),
      () => consumer.stop(),
      () => server.stop(),
    );
    connection.start();
    return server;
  }

  function caller(timeoutMs: number): RpcClient {
    const publishing = testConnection(vhost.amqpUrl, { name: 'caller', heartbeatSeconds: HEARTBEAT_SECONDS });
    new BusTopology(publishing, { queues: [Q] });
    const replies = testConnection(vhost.amqpUrl, { name: 'caller.consume', heartbeatSeconds: HEARTBEAT_SECONDS });
    const client = new RpcClient(publishing, replies, { source: TEST_SOURCE, timeoutMs, logger: silentBusLogger });
    closers.push(
      () => publishing.close(),
      () => replies.close(),
      () => client.close(),
    );
    return client;
  }

  it('an answer over the broker limit (default options) is refused at once by the owner, naming its size; replies beside it still arrive', async () => {
    const server = owner();
    let release!: () => void;
    const bigSent = new Promise<void>((r) => (release = r));
    server
      .register('big', async () => {
        setTimeout(release, 200);
        return { yaml: 'x'.repeat(129 * MiB) };
      })
      .register('small', async () => {
        await bigSent;
        return { ok: 1 };
      })
      .start();
    // A deadline far past what building and refusing 129 MiB takes on a loaded box (9–13 s seen with CPU hogs).
    const client = caller(60_000);
    const started = Date.now();
    const [big, small] = await Promise.allSettled([client.request('big', {}), client.request('small', {})]);
    // The caller learns at once (not after waiting out its deadline as if the owner were away: 503 "try again").
    expect(big).toMatchObject({ status: 'rejected', reason: { code: 'internal' } });
    expect(String((big as PromiseRejectedResult).reason.message)).toMatch(/too large/);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(small).toEqual({ status: 'fulfilled', value: { ok: 1 } });
  });

  it('maxReplyBytes: a smaller broker limit (RabbitMQ 4: 16 MiB) is kept too', async () => {
    owner({ maxReplyBytes: 1 * MiB })
      .register('big', async () => ({ yaml: 'x'.repeat(1 * MiB) }))
      .register('fits', async () => ({ yaml: 'x'.repeat(MiB - 100) }))
      .start();
    const client = caller(5_000);
    await expect(client.request('big', {})).rejects.toMatchObject({ code: 'internal' });
    await expect(client.request('fits', {})).resolves.toEqual({ yaml: 'x'.repeat(MiB - 100) });
  });
});
