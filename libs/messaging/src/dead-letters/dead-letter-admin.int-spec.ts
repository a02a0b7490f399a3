import {
  BusHeader,
  buildEnvelope,
  deadLetterQueueOf,
  ExchangeName,
  Messages,
  QueueName,
  RoutingKey,
  uuidv7,
  type Envelope,
} from '@fleetwatch/contracts';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { BusConnection } from '../connection';
import { BusConsumer } from '../consumer';
import { DeadLetterHeader, type DeliveryContext } from '../delivery';
import { BusUnavailableError, PermanentError } from '../errors';
import { checkResult, RawAmqp, TEST_SOURCE, testConnection } from '../int-spec.helpers';
import { silentBusLogger } from '../logger';
import { BusPublisher, publishRequest } from '../publisher';
import { SetAsideWriter } from '../set-aside';
import { BusTopology, declareTopology } from '../topology';
import { DeadLetterAdmin } from './dead-letter-admin';
import { ReplayHeader, siteDeadLetterQueues } from './dead-letter-message';
import { DeadLetterNotFoundError, QueueNotFoundError } from './errors';

const Q = QueueName.AggregatorObservations;
const DLQ = deadLetterQueueOf(Q);

jest.setTimeout(60_000);

describe('DeadLetterAdmin on RabbitMQ', () => {
  let vhost: IsolatedVhost;
  let connection: BusConnection;
  let publisher: BusPublisher;
  let consumer: BusConsumer;
  let raw: RawAmqp;
  let admin: DeadLetterAdmin;
  /** The "bug": while true, check results for 'permanent' are refused for good. */
  let broken: boolean;
  let received: Array<{ envelope: Envelope; context: DeliveryContext }>;

  beforeEach(async () => {
    vhost = await createIsolatedVhost('dead-letters');
    connection = testConnection(vhost.amqpUrl);
    const topology = new BusTopology(connection, { queues: [Q] });
    publisher = new BusPublisher(connection, { source: TEST_SOURCE, shardObservations: false });
    consumer = new BusConsumer(connection, { topology, logger: silentBusLogger });
    connection.start();
    await connection.waitForSession(10_000);
    raw = await RawAmqp.open(vhost.amqpUrl);
    broken = true;
    received = [];
    const sub = consumer.consume(Q, (envelope: Envelope, context: DeliveryContext) => {
      if (broken && (envelope.payload as { checkId?: string }).checkId === 'permanent')
        throw new PermanentError('target no longer exists');
      received.push({ envelope, context });
    });
    await sub.waitUntilActive();
    admin = await DeadLetterAdmin.connect({ url: vhost.amqpUrl });
  });

  afterEach(async () => {
    await admin.close();
    await consumer.stop();
    await publisher.close();
    await connection.close();
    await raw.close();
    await vhost.dispose();
  });

  /** Dead-letters `permanent` PermanentErrors and one invalid payload through the real consumer. */
  async function deadLetter(permanent = 1): Promise<{ permanentIds: string[]; invalidId: string }> {
    const permanentIds: string[] = [];
    for (let i = 0; i < permanent; i++)
      permanentIds.push((await publisher.publish(Messages.CheckResult, checkResult(i, { checkId: 'permanent' }))).id);
    const invalid = {
      id: uuidv7(),
      type: 'check.result',
      schemaVersion: 1,
      occurredAt: new Date().toISOString(),
      source: TEST_SOURCE,
      correlationId: 'c',
      payload: { checkId: '' },
    };
    await raw.publishRaw(ExchangeName.Events, RoutingKey.CheckResult, Buffer.from(JSON.stringify(invalid)), {
      messageId: invalid.id,
      type: 'check.result',
    });
    await publisher.publishMany([1, 2, 3].map((i) => publishRequest(Messages.CheckResult, checkResult(i))));
    await waitFor(async () => (await raw.count(DLQ)) === permanent + 1, {
      timeoutMs: 20_000,
      description: 'dead letters in the DLQ',
    });
    await waitFor(() => received.length === 3, { description: 'good messages handled' });
    return { permanentIds, invalidId: invalid.id };
  }

  it('lists every DLQ of the site with counts, ids, types, causes and reasons, in order, losing nothing', async () => {
    const { permanentIds, invalidId } = await deadLetter(30);

    const first = await admin.list({ limit: 100 });
    expect(first.map((q) => q.deadLetterQueue)).toEqual(siteDeadLetterQueues());
    expect(first.filter((q) => q.declared).map((q) => q.deadLetterQueue)).toEqual([DLQ]);
    const listing = first.find((q) => q.deadLetterQueue === DLQ);
    expect(listing).toMatchObject({ sourceQueue: Q, declared: true, messageCount: 31 });
    const ids = listing?.messages.map((m) => m.messageId);
    expect(ids).toEqual([...permanentIds, invalidId]);
    const permanent = listing?.messages.find((m) => m.messageId === permanentIds[0]);
    expect(permanent).toMatchObject({
      type: 'check.result',
      cause: 'permanent',
      reason: 'permanent failure: target no longer exists',
      deliveryCount: 0,
      replays: 0,
    });
    expect(Date.parse(permanent?.deadLetteredAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
    const invalid = listing?.messages.find((m) => m.messageId === invalidId);
    expect(invalid?.cause).toBe('invalid');
    expect(invalid?.reason).toMatch(/invalid payload for "check.result": checkId/);

    // Looking again (several times, paged) finds the same messages in the same order; nothing left the queue.
    // 25 looks: more than RabbitMQ 4's default quorum delivery limit (20), which our DLQs must not have.
    for (let i = 0; i < 25; i++) {
      const again = await admin.list({ queues: [Q], limit: 100 });
      expect(again).toHaveLength(1);
      expect(again[0].messages.map((m) => m.messageId)).toEqual(ids);
    }
    const page = await admin.list({ queues: [DLQ], limit: 5, offset: 10 });
    expect(page[0].messageCount).toBe(31);
    expect(page[0].messages.map((m) => m.messageId)).toEqual(ids?.slice(10, 15));
    expect((await admin.list({ queues: [Q], limit: 0 }))[0]).toMatchObject({ messageCount: 31, messages: [] });
    await waitFor(async () => (await raw.count(DLQ)) === 31, { description: 'all 31 still in the DLQ' });
    expect(await raw.count(Q)).toBe(0);
    // The servers these tests run on are 3.x: no default delivery limit, no warning.
    expect(admin.serverVersion).toMatch(/^3\./);
    expect(admin.looksCount).toBe(false);
  });

  it('shows one dead letter: reason headers, properties and the body', async () => {
    const { permanentIds } = await deadLetter();
    const [detail, ...more] = await admin.show(permanentIds[0]);
    expect(more).toHaveLength(0);
    expect(detail.summary).toMatchObject({
      messageId: permanentIds[0],
      deadLetterQueue: DLQ,
      sourceQueue: Q,
      cause: 'permanent',
    });
    expect(detail.headers[BusHeader.DeadLetterQueue]).toBe(Q);
    expect(detail.properties).toMatchObject({
      messageId: permanentIds[0],
      type: 'check.result',
      contentType: 'application/json',
    });
    expect(detail.body).toEqual({
      json: expect.objectContaining({
        id: permanentIds[0],
        payload: expect.objectContaining({ checkId: 'permanent' }),
      }),
    });
    await expect(admin.show(uuidv7())).rejects.toBeInstanceOf(DeadLetterNotFoundError);
    await waitFor(async () => (await raw.count(DLQ)) === 2, { description: 'both still in the DLQ' });
  });

  it('replays one message to its source queue: the consumer gets it with the same id, the DLQ lets it go', async () => {
    const { permanentIds, invalidId } = await deadLetter();
    broken = false; // the fix is deployed

    const [result] = await admin.replay(permanentIds[0]);
    expect(result).toEqual({ deadLetterQueue: DLQ, sourceQueue: Q, replayed: 1, messageIds: [permanentIds[0]] });
    await waitFor(() => received.some((r) => r.envelope.id === permanentIds[0]), {
      description: 'replayed message handled',
    });
    const replayed = received.find((r) => r.envelope.id === permanentIds[0]);
    expect(replayed?.context.messageId).toBe(permanentIds[0]);
    // Same content and headers, minus the dead-letter annotations, plus the replay mark.
    expect(replayed?.context.headers[BusHeader.MessageType]).toBe('check.result');
    expect(replayed?.context.headers[BusHeader.DeadLetterReason]).toBeUndefined();
    expect(replayed?.context.headers[DeadLetterHeader.Cause]).toBeUndefined();
    expect(replayed?.context.headers[ReplayHeader.Count]).toBe(1);

    await waitFor(async () => (await raw.count(DLQ)) === 1, { description: 'only the invalid one left' });
    expect((await admin.list())[0].messages.map((m) => m.messageId)).toEqual([invalidId]);
    // A second replay of the same id finds nothing left to do.
    await expect(admin.replay(permanentIds[0])).rejects.toBeInstanceOf(DeadLetterNotFoundError);
  });

  it('replays everything once: what fails again comes back once, marked as replayed', async () => {
    const { permanentIds, invalidId } = await deadLetter(20);
    broken = false;
    const progress: number[] = [];

    const results = await admin.replayAll({ window: 8, onProgress: (p) => progress.push(p.replayed) });
    expect(results).toEqual([expect.objectContaining({ deadLetterQueue: DLQ, replayed: 21 })]);
    expect(progress).toEqual([8, 16, 21]);
    await waitFor(() => permanentIds.every((id) => received.some((r) => r.envelope.id === id)), {
      description: 'all replayed handled',
    });
    // The invalid one is still invalid: dead-lettered again, once, with its history.
    await waitFor(async () => (await raw.count(DLQ)) === 1, { description: 'invalid message back in the DLQ' });
    const [again] = (await admin.list())[0].messages;
    expect(again).toMatchObject({ messageId: invalidId, cause: 'invalid', replays: 1 });
  });

  it('lists and replays an update set aside from a batch, with its api key and update id', async () => {
    const update = {
      updateId: 'upd-1',
      instanceId: 'web-1',
      kind: 'container',
      status: 'running',
      occurredAt: new Date().toISOString(),
      receivedAt: new Date().toISOString(),
    };
    const envelope = buildEnvelope(Messages.StatusUpdate.type, 1, TEST_SOURCE, update, { id: uuidv7() });
    // What the aggregator does with one bad update of a status.update.batch.
    const writer = new SetAsideWriter(connection, silentBusLogger);
    try {
      await writer.setAside(Q, [
        {
          envelope,
          reason: 'value too long for type character varying(256)',
          headers: { [BusHeader.ApiKeyId]: 'key-42', [BusHeader.UpdateId]: 'upd-1' },
        },
      ]);
    } finally {
      await writer.close();
    }
    const [listing] = await admin.list({ queues: [Q] });
    expect(listing.messages).toEqual([
      expect.objectContaining({
        messageId: envelope.id,
        type: 'status.update',
        cause: 'isolated',
        apiKeyId: 'key-42',
        updateId: 'upd-1',
        reason: 'value too long for type character varying(256)',
      }),
    ]);

    await admin.replay(envelope.id, { queues: [DLQ] });
    await waitFor(() => received.some((r) => r.envelope.id === envelope.id), {
      description: 'set-aside update handled',
    });
    const got = received.find((r) => r.envelope.id === envelope.id);
    expect(got?.envelope).toEqual(envelope);
    expect(got?.context.headers[BusHeader.ApiKeyId]).toBe('key-42');
    await waitFor(async () => (await raw.count(DLQ)) === 0, { description: 'DLQ empty' });
  });

  /** `n` dead letters straight into the DLQ (as the consumer would put them there), ids in order; `pad` bytes more each. */
  async function fillDlq(n: number, pad = 0): Promise<string[]> {
    const ch = await raw.channel();
    const ids: string[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const envelope = buildEnvelope(Messages.CheckResult.type, 1, TEST_SOURCE, checkResult(i), { id: uuidv7() });
        ids.push(envelope.id);
        const body = pad > 0 ? { ...envelope, pad: 'x'.repeat(pad) } : envelope;
        ch.publish(ExchangeName.DeadLetter, Q, Buffer.from(JSON.stringify(body)), {
          messageId: envelope.id,
          type: envelope.type,
          contentType: 'application/json',
          persistent: true,
          headers: { [BusHeader.DeadLetterReason]: `reason ${i}`, [DeadLetterHeader.Cause]: 'permanent' },
        });
      }
      await ch.waitForConfirms();
    } finally {
      await ch.close();
    }
    await waitFor(async () => (await raw.count(DLQ)) === n, { description: `${n} dead letters in the DLQ` });
    return ids;
  }

  const idsOf = async (options: { limit: number; offset?: number }): Promise<Array<string | null>> =>
    (await admin.list({ queues: [Q], ...options }))[0].messages.map((m) => m.messageId);

  it('keeps hundreds of dead letters in their order through looks, pages and a replay of one', async () => {
    // More than 32: RabbitMQ returns a larger `nack` of many in no particular order.
    const ids = await fillDlq(300);

    expect(await idsOf({ limit: 300 })).toEqual(ids);
    expect(await idsOf({ limit: 300 })).toEqual(ids);
    // Pages: each shows its slice, and looking at one does not move it behind the others.
    expect(await idsOf({ limit: 20, offset: 40 })).toEqual(ids.slice(40, 60));
    expect(await idsOf({ limit: 20 })).toEqual(ids.slice(0, 20));
    expect(await idsOf({ limit: 20, offset: 280 })).toEqual(ids.slice(280));
    await admin.show(ids[150]);
    // Replaying one from the middle leaves the others where they were.
    broken = false;
    await admin.replay(ids[100], { queues: [Q] });
    const rest = ids.filter((id) => id !== ids[100]);
    expect(await idsOf({ limit: 300 })).toEqual(rest);
    // And the queue itself, as a consumer (or replay --all) would take it.
    expect((await raw.drain(DLQ)).map((m) => m.properties.messageId)).toEqual(rest);
  });

  it('pages through thousands: the next look finds every message the last one gave back', async () => {
    const ids = await fillDlq(5_000);
    for (const offset of [0, 4_990, 2_500, 0]) {
      const [listing] = await admin.list({ queues: [Q], limit: 10, offset });
      expect(listing.messageCount).toBe(5_000);
      expect(listing.messages.map((m) => m.messageId)).toEqual(ids.slice(offset, offset + 10));
    }
  });

  it('a look whose deliveries stall for seconds mid-look still shows its whole page, and gives every message back', async () => {
    // A look's messages are all checked out to its consumer at once (none counted ready) and, in a large DLQ, can take
    // seconds to come. Here the broker's bytes to the look are held back for 2 s from its first delivery on.
    const n = 16;
    const pad = 1024 * 1024; // what the socket buffers take in before the first delivery is read (~4 MB) must not be all
    const ids = await fillDlq(n, pad);
    const proxy = TcpProxy.forUrl(vhost.amqpUrl);
    await proxy.start();
    const viaProxy = await DeadLetterAdmin.connect({ url: proxy.rewriteUrl(vhost.amqpUrl) });
    // amqplib's Channel#consume (not exported): wrapped to see the look's first delivery.
    type Consume = (
      this: unknown,
      queue: string,
      onMessage: (m: unknown) => void,
      options?: unknown,
    ) => Promise<unknown>;
    const probe = await raw.channel();
    await probe.close();
    let owner: object = probe;
    while (!Object.prototype.hasOwnProperty.call(owner, 'consume')) owner = Object.getPrototypeOf(owner) as object;
    const proto = owner as { consume: Consume };
    const consume = proto.consume;
    /** Resolves with the bytes held back, once released. */
    let stall: Promise<number> | undefined;
    const spy = jest.spyOn(proto, 'consume').mockImplementation(function (this: unknown, queue, onMessage, options) {
      const watch = (m: unknown): void => {
        if (m && queue === DLQ && !stall) {
          proxy.hold();
          stall = new Promise((resolve) =>
            setTimeout(() => {
              const held = proxy.heldBytes;
              proxy.release();
              resolve(held);
            }, 2_000),
          );
        }
        onMessage(m);
      };
      return consume.call(this, queue, watch, options);
    });
    try {
      const [listing] = await viaProxy.list({ queues: [Q], limit: n });
      // The stall did come mid-look: at least one message was still on its way.
      expect(await stall).toBeGreaterThan(pad);
      expect(listing.messageCount).toBe(n);
      expect(listing.messages.map((m) => m.messageId)).toEqual(ids);
    } finally {
      spy.mockRestore();
      await viaProxy.close();
      await proxy.stop();
    }
    await waitFor(async () => (await raw.count(DLQ)) === n, { description: 'every message back in the DLQ' });
  });

  it('a look while replay --all runs loses nothing and replays each message once', async () => {
    const ids = await fillDlq(150);
    broken = false;
    const [looked, replayed] = await Promise.all([
      (async () => {
        const seen: Array<string | null> = [];
        for (let i = 0; i < 3; i++) seen.push(...(await idsOf({ limit: 150 })));
        return seen;
      })(),
      admin.replayAll({ queues: [Q], window: 10 }),
    ]);
    expect(looked.every((id) => id !== null && ids.includes(id))).toBe(true);
    // A look can hold some while the replay passes: they stay in the DLQ (replay --all again). None is lost.
    await waitFor(async () => received.length + (await raw.count(DLQ)) === ids.length, {
      description: 'every message replayed or still in the DLQ',
    });
    const left = (await raw.drain(DLQ)).map((m) => m.properties.messageId as string);
    const handled = received.map((r) => r.context.messageId as string);
    expect(handled).toHaveLength(replayed[0].replayed);
    expect(new Set([...handled, ...left])).toEqual(new Set(ids));
    expect(handled.length + left.length).toBe(ids.length);
  });

  it('says "try again", not "no dead letter", when another dlq command holds the DLQ (replay ID, show)', async () => {
    const ids = await fillDlq(20);
    broken = false;
    // Another look (or replay) that holds every message of the DLQ meanwhile.
    const other = await raw.channel();
    let held = 0;
    await other.prefetch(100);
    await other.consume(DLQ, () => held++, { noAck: false });
    await waitFor(() => held === ids.length, { description: 'the other command holds the DLQ' });
    for (const attempt of [() => admin.replay(ids[7], { queues: [Q] }), () => admin.show(ids[7], { queues: [Q] })]) {
      const error = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DeadLetterNotFoundError);
      expect((error as DeadLetterNotFoundError).busy).toEqual([DLQ]);
      expect((error as Error).message).toMatch(/another dlq command .* held messages of .*: try again$/);
    }
    await other.close(); // its messages go back
    await waitFor(async () => (await raw.count(DLQ)) === ids.length, { description: 'given back' });
    expect((await admin.replay(ids[7], { queues: [Q] }))[0].messageIds).toEqual([ids[7]]);
    // A message that is not there, with nobody else looking: plain "not found".
    const missing = await admin.replay(ids[7], { queues: [Q] }).catch((e: unknown) => e);
    expect((missing as DeadLetterNotFoundError).busy).toEqual([]);
    expect((missing as Error).message).not.toMatch(/try again/);
  });

  it('refuses to replay into a source queue that is gone, and keeps the dead letter', async () => {
    const orphan = { name: `dlq-test.orphan-${uuidv7()}`, bindings: [] };
    const ch = await raw.channel();
    await declareTopology(ch, { queues: [orphan] });
    await ch.close();
    await raw.publishRaw(ExchangeName.DeadLetter, orphan.name, Buffer.from('{}'), { messageId: 'orphan-1' });
    const del = await raw.channel();
    await del.deleteQueue(orphan.name);
    await del.close();

    await expect(admin.replay('orphan-1', { queues: [orphan.name] })).rejects.toThrow(
      new QueueNotFoundError(orphan.name),
    );
    await expect(admin.replayAll({ queues: [orphan.name] })).rejects.toBeInstanceOf(QueueNotFoundError);
    // The requeue is asynchronous (nack, then channel close): the count catches up shortly.
    await waitFor(async () => (await raw.count(deadLetterQueueOf(orphan.name))) === 1, {
      description: 'dead letter kept',
    });
  });

  it('says the broker is away instead of hanging, and loses nothing when the connection drops', async () => {
    const proxy = TcpProxy.forUrl(vhost.amqpUrl);
    await proxy.start();
    try {
      const url = proxy.rewriteUrl(vhost.amqpUrl);
      proxy.pause();
      const refused = DeadLetterAdmin.connect({ url, connectTimeoutMs: 2_000 });
      await expect(refused).rejects.toBeInstanceOf(BusUnavailableError);
      await expect(refused).rejects.toThrow(/cannot reach RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1/);
      proxy.resume();

      const { permanentIds } = await deadLetter(3);
      const viaProxy = await DeadLetterAdmin.connect({ url });
      try {
        expect((await viaProxy.list({ queues: [Q] }))[0].messageCount).toBe(4);
        proxy.cut();
        await waitFor(() => proxy.connectionCount === 0, { description: 'connection cut' });
        await expect(viaProxy.replay(permanentIds[0])).rejects.toThrow(BusUnavailableError);
      } finally {
        await viaProxy.close();
      }
      await waitFor(async () => (await raw.count(DLQ)) === 4, { description: 'every dead letter still there' });
    } finally {
      await proxy.stop();
    }
  });
});
