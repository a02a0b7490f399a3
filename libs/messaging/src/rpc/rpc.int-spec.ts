import {
  buildEnvelope,
  BusHeader,
  ConfigRpcMethod,
  deadLetterQueueOf,
  Messages,
  QueueName,
  rpcReplySchema,
  uuidv7,
} from '@fleetwatch/contracts';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { register } from 'prom-client';
import { z } from 'zod';
import type { BusConnection } from '../connection';
import { BusConsumer } from '../consumer';
import { RawAmqp, TEST_SOURCE, testConnection } from '../int-spec.helpers';
import { silentBusLogger, type BusLogger } from '../logger';
import { BusPublisher } from '../publisher';
import { BusTopology } from '../topology';
import { RpcClient } from './rpc-client';
import { RpcError } from './rpc-error';
import { RpcServer, type RpcContext } from './rpc-server';

jest.setTimeout(60_000);

const Q = QueueName.SyncOrchestratorCommands;
const CHECK_ID = '0190f0e0-0000-7000-8000-000000000001';

/** Resolves after `ms`. */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RPC over RabbitMQ', () => {
  let vhost: IsolatedVhost;
  let raw: RawAmqp;
  const closers: Array<() => Promise<unknown>> = [];

  beforeEach(async () => {
    vhost = await createIsolatedVhost('rpc');
    raw = await RawAmqp.open(vhost.amqpUrl);
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    await raw.close();
    await vhost.dispose();
  });

  /** The owner's side: its own connection, the command queue, an RpcServer (not started). */
  function owner(
    url = vhost.amqpUrl,
    logger: BusLogger = silentBusLogger,
  ): { server: RpcServer; connection: BusConnection } {
    const connection = testConnection(url, { name: 'owner' });
    const consumer = new BusConsumer(connection, {
      topology: new BusTopology(connection, { queues: [Q] }),
      logger: silentBusLogger,
    });
    const server = new RpcServer(consumer, connection, { logger });
    closers.push(
      () => connection.close(),
      () => consumer.stop(),
    );
    connection.start();
    return { server, connection };
  }

  /** The caller's side: publishing and reply connections (through `url`: a proxy in the reconnect test). */
  function caller(url = vhost.amqpUrl, timeoutMs = 5_000): RpcClient {
    const publishing = testConnection(url, { name: 'caller' });
    // The command queue exists even while no owner runs (as after the owner's first start).
    new BusTopology(publishing, { queues: [Q] });
    const replies = testConnection(url, { name: 'caller.consume' });
    const client = new RpcClient(publishing, replies, { source: TEST_SOURCE, timeoutMs, logger: silentBusLogger });
    closers.push(
      () => publishing.close(),
      () => replies.close(),
      () => client.close(),
    );
    return client;
  }

  async function queuesEmpty(): Promise<void> {
    await waitFor(async () => (await raw.count(Q)) === 0, { description: 'command queue empty' });
    expect(await raw.count(deadLetterQueueOf(Q))).toBe(0);
  }

  it('round trip: params validated on both sides, result and context delivered, correlation kept', async () => {
    const { server } = owner();
    const seen: Array<{ params: unknown; ctx: RpcContext }> = [];
    server
      .handle(ConfigRpcMethod.ChecksList, async (params, ctx) => {
        seen.push({ params, ctx });
        return { items: [], nextCursor: `after-${params.limit}` };
      })
      .register('echo', async (params) => ({ echoed: params }))
      .start();
    const client = caller();

    const started = Date.now();
    const page = await client.call(ConfigRpcMethod.ChecksList, { tag: 'db' });
    expect(page).toEqual({ items: [], nextCursor: 'after-100' }); // the owner applied the default limit
    expect(seen[0].params).toEqual({ tag: 'db', limit: 100 });
    expect(seen[0].ctx.method).toBe('checks.list');
    expect(seen[0].ctx.deadline.getTime()).toBeGreaterThanOrEqual(started + 5_000 - 50);
    expect(seen[0].ctx.deadline.getTime()).toBeLessThanOrEqual(Date.now() + 5_000);
    expect(seen[0].ctx.correlationId).toBe(seen[0].ctx.messageId);
    expect(await client.request('echo', { a: [1, 'two'] })).toEqual({ echoed: { a: [1, 'two'] } });

    // 50 concurrent calls: each answer reaches its own caller.
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.request('echo', { i }) as Promise<{ echoed: { i: number } }>),
    );
    expect(answers.map((a) => a.echoed.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));

    // The caller validates params before sending: nothing leaves.
    await expect(client.call(ConfigRpcMethod.ChecksGet, { id: 'nope' })).rejects.toMatchObject({
      code: 'invalid',
      issues: [{ path: 'id', message: 'a check id (UUID)' }],
    });
    // The owner validates too (a caller that skipped it): issues name the param.
    await expect(client.request(ConfigRpcMethod.ChecksList, { limit: 0 })).rejects.toMatchObject({
      code: 'invalid',
      issues: [{ path: 'limit' }],
    });
    expect(seen).toHaveLength(1);
    await queuesEmpty();
    // Both sides are measured, by method and outcome.
    const metric = await register.getSingleMetricAsString('fleetwatch_rpc_duration_seconds');
    expect(metric).toContain(
      'fleetwatch_rpc_duration_seconds_count{side="client",method="checks.list",outcome="ok"} 1',
    );
    expect(metric).toContain('fleetwatch_rpc_duration_seconds_count{side="server",method="echo",outcome="ok"} 51');
    expect(metric).toContain('{side="server",method="checks.list",outcome="invalid"} 1');
  });

  it('error replies keep their code, issues and current version; the consumer survives handler crashes', async () => {
    const { server } = owner();
    let unavailableCalls = 0;
    server
      .register('conflict', async () => {
        throw new RpcError('conflict', 'check changed since version 3', { currentVersion: 7 });
      })
      .register('denied', async () => {
        throw new RpcError('denied', 'url: 169.254.169.254 is in the denied network 169.254.0.0/16');
      })
      .register('unavailable', async () => {
        unavailableCalls++;
        throw new RpcError('unavailable', 'database unreachable');
      })
      .register('zod', async (params) => z.strictObject({ name: z.string() }).parse(params))
      .register('crash', async () => {
        throw new TypeError('cannot read properties of undefined');
      })
      .register('bigint', async () => ({ n: 1n }))
      .start();
    const client = caller();

    await expect(client.request('conflict', {})).rejects.toMatchObject({ code: 'conflict', currentVersion: 7 });
    await expect(client.request('denied', {})).rejects.toMatchObject({
      code: 'denied',
      message: expect.stringContaining('169.254.0.0/16'),
    });
    await expect(client.request('zod', { name: 3 })).rejects.toMatchObject({
      code: 'invalid',
      issues: [{ path: 'name' }],
    });
    const crash = await client.request('crash', {}).catch((e: unknown) => e);
    expect(crash).toBeInstanceOf(RpcError);
    expect(crash).toMatchObject({ code: 'internal' });
    // Internal details stay in the owner's log.
    expect((crash as Error).message).not.toContain('undefined');
    await expect(client.request('bigint', {})).rejects.toMatchObject({ code: 'internal' });
    await expect(client.request('no.such.method', {})).rejects.toMatchObject({
      code: 'invalid',
      issues: [{ path: 'method' }],
    });
    // A transient failure is answered, not retried: the handler ran once.
    await expect(client.request('unavailable', {})).rejects.toMatchObject({ code: 'unavailable' });
    await sleep(300);
    expect(unavailableCalls).toBe(1);
    // Still consuming after all that.
    server.register('ping', async () => 'pong');
    expect(await client.request('ping', {})).toBe('pong');
    await queuesEmpty();
  });

  it('no owner: the call fails with unavailable at its deadline, and the owner started later acks it without running it', async () => {
    const client = caller(vhost.amqpUrl, 800);
    const started = Date.now();
    const error = await client.request('slow.write', { x: 1 }).catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(error).toBeInstanceOf(RpcError);
    expect(error).toMatchObject({ code: 'unavailable', message: expect.stringContaining('within 800 ms') });
    expect(took).toBeGreaterThanOrEqual(790);
    expect(took).toBeLessThan(2_000);
    expect(await raw.count(Q)).toBe(1); // stored, waiting for an owner

    const ran: unknown[] = [];
    const { server } = owner();
    server.register('slow.write', async (params) => void ran.push(params));
    server.register('ping', async () => 'pong');
    server.start();
    expect(await client.request('ping', {})).toBe('pong');
    await queuesEmpty();
    expect(ran).toEqual([]); // acked, never executed, not dead-lettered
  });

  it('answers to the AMQP replyTo with the AMQP correlationId (any AMQP client); a request without replyTo is acked unrun', async () => {
    const unrun: string[] = [];
    const { server } = owner(vhost.amqpUrl, {
      ...silentBusLogger,
      warn: (fields, message) => void unrun.push(`${(fields as { correlationId?: string }).correlationId}: ${message}`),
    });
    const ran: RpcContext[] = [];
    server.register('echo', async (params, ctx) => (ran.push(ctx), { echoed: params })).start();
    await caller().request('echo', {}); // the owner is consuming
    ran.length = 0;
    const ch = await raw.channel();
    closers.push(() => ch.close());
    const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    const request = (correlationId: string | undefined, replyTo: string | undefined) => {
      const envelope = buildEnvelope(Messages.RpcRequest.type, Messages.RpcRequest.schemaVersion, TEST_SOURCE, {
        method: 'echo',
        params: { n: correlationId ?? 'none' },
        deadline: new Date(Date.now() + 10_000).toISOString(),
      });
      return raw.publishRaw(
        Messages.RpcRequest.exchange,
        Messages.RpcRequest.routingKey,
        Buffer.from(JSON.stringify(envelope)),
        {
          messageId: envelope.id,
          type: envelope.type,
          contentType: 'application/json',
          headers: { [BusHeader.SchemaVersion]: envelope.schemaVersion, [BusHeader.MessageType]: envelope.type },
          ...(correlationId === undefined ? {} : { correlationId }),
          ...(replyTo === undefined ? {} : { replyTo }),
        },
      );
    };
    // The AMQP correlation id differs from the envelope's: the property is what comes back.
    await request('corr-none', undefined);
    await request('corr-by-property', queue);
    const replies: Awaited<ReturnType<RawAmqp['drain']>> = [];
    await waitFor(async () => (replies.push(...(await raw.drain(queue))), replies.length >= 1 && unrun.length >= 1), {
      description: 'one reply, one request refused',
    });
    await queuesEmpty();
    expect(unrun).toEqual(['corr-none: rpc request without a reply queue; not run']);
    expect(replies).toHaveLength(1);
    expect(replies[0].properties.correlationId).toBe('corr-by-property');
    expect(rpcReplySchema.parse(JSON.parse(replies[0].content.toString('utf8')))).toEqual({
      ok: true,
      result: { echoed: { n: 'corr-by-property' } },
    });
    expect(ran.map((c) => c.correlationId)).toEqual(['corr-by-property']);
  });

  it('other commands of the queue reach their handlers beside the RPC requests', async () => {
    const { server, connection } = owner();
    const steps: string[] = [];
    server
      .onCommand(Messages.SyncStep, async (env) => void steps.push(env.payload.step))
      .register('ping', async () => 'pong')
      .start();
    const publisher = new BusPublisher(connection, { source: TEST_SOURCE });
    closers.push(() => publisher.close());
    const client = caller();
    await publisher.publish(Messages.SyncStep, { operationId: 'op-1', memberId: 'm-1', step: 'DRAINING' });
    expect(await client.request('ping', {})).toBe('pong');
    await waitFor(() => steps.length === 1, { description: 'sync.step handled' });
    expect(steps).toEqual(['DRAINING']);
    await queuesEmpty();
  });

  it('reconnect: a call waiting when the connection drops fails at once; the next call works on a new reply queue', async () => {
    const proxy = TcpProxy.forUrl(vhost.amqpUrl);
    await proxy.start();
    closers.push(() => proxy.stop());
    const { server } = owner(); // direct: only the caller's connections are cut
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let slowRuns = 0;
    server
      .register('slow', async () => {
        slowRuns++;
        await released;
        return 'late';
      })
      .register('ping', async () => 'pong')
      .start();
    const client = caller(proxy.rewriteUrl(vhost.amqpUrl), 10_000);
    expect(await client.request('ping', {})).toBe('pong');

    const waiting = client.request('slow', {}).catch((e: unknown) => e);
    await waitFor(() => slowRuns === 1, { description: 'slow handler running' });
    const cutAt = Date.now();
    proxy.cut();
    const error = await waiting;
    expect(Date.now() - cutAt).toBeLessThan(2_000); // not the 10 s timeout
    expect(error).toMatchObject({
      code: 'unavailable',
      message: expect.stringContaining('connection to RabbitMQ lost'),
    });

    // The owner finishes: its reply has nowhere to go; the request is acked all the same.
    release();
    expect(await client.request('ping', {})).toBe('pong');
    await queuesEmpty();
    expect(slowRuns).toBe(1);
  });

  it('a closed client refuses at once; a client whose owner queue does not exist fails fast', async () => {
    const publishing = testConnection(vhost.amqpUrl, { name: 'lonely' });
    new BusTopology(publishing); // the exchanges, no queue
    const client = new RpcClient(publishing, publishing, { source: TEST_SOURCE, logger: silentBusLogger });
    closers.push(
      () => publishing.close(),
      () => client.close(),
    );
    const started = Date.now();
    await expect(client.request('ping', { id: uuidv7() })).rejects.toMatchObject({
      code: 'unavailable',
      message: expect.stringContaining('queue does not exist'),
    });
    expect(Date.now() - started).toBeLessThan(2_000);
    await client.close();
    await expect(client.call(ConfigRpcMethod.ChecksGet, { id: CHECK_ID })).rejects.toMatchObject({
      code: 'unavailable',
    });
  });
});
