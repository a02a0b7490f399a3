import {
  BusHeader,
  deadLetterQueueOf,
  ExchangeName,
  Messages,
  QueueName,
  RoutingKey,
  uuidv7,
  type Envelope,
} from '@fleetwatch/contracts';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import type { GetMessage } from 'amqplib';
import { register } from 'prom-client';
import { BusConnection } from './connection';
import { BusConsumer } from './consumer';
import { DeadLetterHeader, type DeliveryContext } from './delivery';
import { PermanentError, RedeliverError } from './errors';
import { checkResult, RawAmqp, TEST_SOURCE, testConnection } from './int-spec.helpers';
import { silentBusLogger } from './logger';
import { BusPublisher, publishRequest } from './publisher';
import { FRESH_COPIES_HEADER, FRESH_COPY_MARGIN, MAX_FRESH_COPIES } from './settlement';
import { BusTopology, DEFAULT_DELIVERY_LIMIT } from './topology';

const Q = QueueName.AggregatorObservations;
const DLQ = deadLetterQueueOf(Q);

// jest's per-project testTimeout (jest.config.js) is overridden by the global default of 5 s.
jest.setTimeout(60_000);

describe('BusConsumer on RabbitMQ', () => {
  let vhost: IsolatedVhost;
  let connection: BusConnection;
  let publisher: BusPublisher;
  let consumer: BusConsumer;
  let raw: RawAmqp;
  /**
   * Run first after each test, passed or failed: opens the gates a test holds (a handler's batch, a held cancel) and
   * removes its spies, so that a failure before the test opens them cannot hang the stop below, the next tests and
   * afterAll.
   */
  const cleanups: Array<() => void> = [];

  /**
   * Samples `queue`'s ready count every 20 ms from now until `stop()`, which returns the samples: a delivery given
   * back at any moment of the window shows up, not only one given back before its end.
   */
  function sampleCount(queue: string): { stop(): Promise<number[]> } {
    const samples: number[] = [];
    let running = true;
    const sampling = (async () => {
      while (running) {
        samples.push(await raw.count(queue));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    sampling.catch(() => undefined); // rethrown by stop()
    cleanups.push(() => (running = false));
    return {
      stop: async () => {
        running = false;
        await sampling;
        return samples;
      },
    };
  }

  /** Nothing in the queue at any sample, and enough samples to have watched the whole window. */
  function expectNeverGivenBack(samples: number[], windowMs: number): void {
    expect(samples.length).toBeGreaterThanOrEqual(Math.floor(windowMs / 100));
    expect(samples.filter((n) => n !== 0)).toEqual([]);
  }

  beforeEach(async () => {
    vhost = await createIsolatedVhost('consumer');
    connection = testConnection(vhost.amqpUrl);
    const topology = new BusTopology(connection, { queues: [Q] });
    publisher = new BusPublisher(connection, { source: TEST_SOURCE, shardObservations: false });
    consumer = new BusConsumer(connection, { topology, logger: silentBusLogger });
    connection.start();
    await connection.waitForSession(10_000);
    raw = await RawAmqp.open(vhost.amqpUrl);
  });

  afterEach(async () => {
    for (const undo of cleanups.splice(0)) undo();
    await consumer.stop();
    await publisher.close();
    await connection.close();
    await raw.close();
    await vhost.dispose();
  });

  it('dead-letters poison, permanent, invalid and non-JSON messages with their reasons while the rest flow', async () => {
    const handled: string[] = [];
    const attempts = new Map<string, number>();
    const sub = consumer.consume(
      Q,
      async (envelope: Envelope, ctx: DeliveryContext) => {
        const payload = envelope.payload as { checkId: string };
        attempts.set(payload.checkId, (attempts.get(payload.checkId) ?? 0) + 1);
        if (payload.checkId === 'poison') throw new Error(`boom on attempt ${ctx.deliveryCount + 1}`);
        if (payload.checkId === 'permanent') throw new PermanentError('target no longer exists');
        await new Promise((r) => setImmediate(r));
        handled.push(envelope.id);
      },
      { prefetch: 20 },
    );
    await sub.waitUntilActive();

    const good = Array.from({ length: 300 }, (_, i) => publishRequest(Messages.CheckResult, checkResult(i)));
    await publisher.publishMany(good.slice(0, 100));
    await publisher.publish(Messages.CheckResult, checkResult(1, { checkId: 'poison' }));
    await publisher.publish(Messages.CheckResult, checkResult(2, { checkId: 'permanent' }));
    const invalidPayload = {
      id: uuidv7(),
      type: 'check.result',
      schemaVersion: 1,
      occurredAt: new Date().toISOString(),
      source: TEST_SOURCE,
      correlationId: 'c',
      payload: { checkId: '' },
    };
    await raw.publishRaw(ExchangeName.Events, RoutingKey.CheckResult, Buffer.from(JSON.stringify(invalidPayload)), {
      messageId: invalidPayload.id,
      type: 'check.result',
    });
    await raw.publishRaw(ExchangeName.Events, RoutingKey.CheckResult, Buffer.from([0xff, 0xfe, 0x00, 0x41]), {
      messageId: 'not-json',
    });
    const unknownType = { ...invalidPayload, id: uuidv7(), type: 'no.such.type' };
    await raw.publishRaw(ExchangeName.Events, RoutingKey.CheckResult, Buffer.from(JSON.stringify(unknownType)));
    await publisher.publishMany(good.slice(100));

    await waitFor(() => handled.length === 300, { timeoutMs: 20_000, description: 'all good messages handled' });
    await waitFor(async () => (await raw.count(DLQ)) === 5, {
      timeoutMs: 20_000,
      description: '5 messages in the DLQ',
    });
    expect(sub.active).toBe(true);
    expect(await raw.count(Q)).toBe(0);

    const dead = await raw.drain(DLQ);
    const reasonOf = (m: GetMessage): string => String(m.properties.headers?.[BusHeader.DeadLetterReason]);
    const byCheck = (checkId: string): GetMessage | undefined =>
      dead.find((m) => {
        try {
          return (JSON.parse(m.content.toString()) as { payload: { checkId?: string } }).payload.checkId === checkId;
        } catch {
          return false;
        }
      });

    const poison = byCheck('poison');
    expect(poison?.properties.headers?.[DeadLetterHeader.Cause]).toBe('delivery_limit');
    expect(reasonOf(poison as GetMessage)).toMatch(
      new RegExp(`handler failed ${DEFAULT_DELIVERY_LIMIT + 1} times.*boom on attempt ${DEFAULT_DELIVERY_LIMIT + 1}`),
    );
    expect(poison?.properties.headers?.[BusHeader.DeadLetterQueue]).toBe(Q);
    expect(attempts.get('poison')).toBe(DEFAULT_DELIVERY_LIMIT + 1);

    const permanent = byCheck('permanent');
    expect(reasonOf(permanent as GetMessage)).toMatch(/permanent failure: target no longer exists/);
    expect(attempts.get('permanent')).toBe(1);

    expect(reasonOf(byCheck('') as GetMessage)).toMatch(/invalid payload for "check.result": checkId/);
    const notJson = dead.find((m) => m.properties.messageId === 'not-json');
    expect(reasonOf(notJson as GetMessage)).toMatch(/not valid UTF-8 JSON/);
    expect(notJson?.content).toEqual(Buffer.from([0xff, 0xfe, 0x00, 0x41]));
    expect(dead.some((m) => /unknown message type "no.such.type"/.test(reasonOf(m)))).toBe(true);
    expect(new Set(handled).size).toBe(300);
  });

  it('batch mode: hands over batches, acks each after one commit, dead-letters invalid items apart', async () => {
    const batches: number[] = [];
    const seen = new Set<string>();
    const sub = consumer.consume(
      Q,
      async (envelopes: Envelope[]) => {
        await new Promise((r) => setTimeout(r, 5)); // "one commit"
        batches.push(envelopes.length);
        for (const e of envelopes) seen.add(e.id);
      },
      { prefetch: 200, batch: { maxSize: 100, maxWaitMs: 50 } },
    );
    await sub.waitUntilActive();
    await publisher.publishMany(
      Array.from({ length: 500 }, (_, i) => publishRequest(Messages.CheckResult, checkResult(i))),
    );
    await raw.publishRaw(ExchangeName.Events, RoutingKey.CheckResult, Buffer.from('{"not":"an envelope"}'));
    await publisher.publishMany(
      Array.from({ length: 499 }, (_, i) => publishRequest(Messages.CheckResult, checkResult(i))),
    );

    await waitFor(() => seen.size === 999, { timeoutMs: 20_000, description: '999 envelopes handled' });
    await waitFor(async () => (await raw.count(DLQ)) === 1, {
      timeoutMs: 10_000,
      description: 'invalid message in the DLQ',
    });
    expect(Math.max(...batches)).toBeLessThanOrEqual(100);
    expect(batches.length).toBeLessThan(999 / 5);
    await sub.stop();
    // Everything was acked: nothing returns to the queue once the channel is closed.
    expect(await raw.count(Q)).toBe(0);
    const [dead] = await raw.drain(DLQ);
    expect(String(dead.properties.headers?.[BusHeader.DeadLetterReason])).toMatch(/invalid envelope/);
  });

  it('a message given back (RedeliverError) more times than the delivery limit is never dead-lettered: fresh copies near the limit', async () => {
    const givenBack = 3 * (DEFAULT_DELIVERY_LIMIT + 1); // far past the limit: every return would count
    const seen: Array<{ count: number; copies: unknown; messageId: string | undefined }> = [];
    const handled: string[] = [];
    const sub = consumer.consume(
      Q,
      async (envelope: Envelope, ctx: DeliveryContext) => {
        const payload = envelope.payload as { checkId: string };
        if (payload.checkId !== 'elsewhere') {
          handled.push(envelope.id);
          return;
        }
        seen.push({ count: ctx.deliveryCount, copies: ctx.headers[FRESH_COPIES_HEADER], messageId: ctx.messageId });
        if (seen.length <= givenBack) throw new RedeliverError('shard held by another replica now');
        handled.push(envelope.id);
      },
      { prefetch: 10 },
    );
    await sub.waitUntilActive();
    const before = await redelivered(Q);
    const { id } = await publisher.publish(Messages.CheckResult, checkResult(1, { checkId: 'elsewhere' }));
    await publisher.publishMany(
      Array.from({ length: 20 }, (_, i) => publishRequest(Messages.CheckResult, checkResult(i))),
    );

    await waitFor(() => handled.length === 21, { timeoutMs: 30_000, description: 'every message handled' });
    expect(handled.filter((h) => h === id)).toHaveLength(1);
    expect(seen).toHaveLength(givenBack + 1);
    // Requeued (the broker counts each return) until FRESH_COPY_MARGIN returns are left, then a fresh copy with
    // the same message id, a delivery count of 0 again and its copy count one higher — never at or past the limit.
    const cycle = DEFAULT_DELIVERY_LIMIT - FRESH_COPY_MARGIN + 1; // deliveries per copy: counts 0..limit-margin
    expect(seen.map((s) => s.count)).toEqual(Array.from({ length: givenBack + 1 }, (_, i) => i % cycle));
    expect(seen.map((s) => s.copies ?? 0)).toEqual(
      Array.from({ length: givenBack + 1 }, (_, i) => Math.floor(i / cycle)),
    );
    expect(seen.every((s) => s.messageId === id)).toBe(true);
    const copies = Math.floor(givenBack / cycle);
    await sub.stop();
    expect(await raw.count(DLQ)).toBe(0);
    expect(await raw.count(Q)).toBe(0);
    const after = await redelivered(Q);
    expect(after.fresh_copy - before.fresh_copy).toBe(copies);
    expect(after.requeued - before.requeued).toBe(givenBack - copies);
  });

  it('batch mode: a batch given back (RedeliverError) is handled later, whole, and nothing is dead-lettered', async () => {
    const before = await redelivered(Q);
    let refusals = 0;
    const seen = new Map<string, number>();
    const sub = consumer.consume(
      Q,
      async (envelopes: Envelope[]) => {
        if (refusals < 2 * (DEFAULT_DELIVERY_LIMIT + 1)) {
          refusals++;
          throw new RedeliverError('fenced');
        }
        for (const e of envelopes) seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
      },
      { prefetch: 50, batch: { maxSize: 50, maxWaitMs: 20 } },
    );
    await sub.waitUntilActive();
    const ids = (
      await publisher.publishMany(
        Array.from({ length: 100 }, (_, i) => publishRequest(Messages.CheckResult, checkResult(i))),
      )
    ).map((e) => e.id);
    await waitFor(() => ids.every((id) => seen.has(id)), { timeoutMs: 30_000, description: 'every envelope handled' });
    await sub.stop();
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    // Refused more often than the delivery limit allows: some went back as fresh copies.
    const after = await redelivered(Q);
    expect(after.fresh_copy - before.fresh_copy).toBeGreaterThan(0);
    expect(after.requeued - before.requeued).toBeGreaterThan(0);
    expect(await raw.count(DLQ)).toBe(0);
    expect(await raw.count(Q)).toBe(0);
  });

  it('a message given back without end is dead-lettered after MAX_FRESH_COPIES fresh copies, with the reason', async () => {
    let deliveries = 0;
    const sub = consumer.consume(
      Q,
      async () => {
        deliveries++;
        throw new RedeliverError('never mine');
      },
      { prefetch: 5 },
    );
    await sub.waitUntilActive();
    const { id } = await publisher.publish(Messages.CheckResult, checkResult(1));
    await waitFor(async () => (await raw.count(DLQ)) === 1, {
      timeoutMs: 30_000,
      description: 'the message in the DLQ',
    });
    const [dead] = await raw.drain(DLQ);
    expect(dead.properties.messageId).toBe(id);
    expect(dead.properties.headers?.[DeadLetterHeader.Cause]).toBe('delivery_limit');
    expect(String(dead.properties.headers?.[BusHeader.DeadLetterReason])).toMatch(
      new RegExp(`given back ${MAX_FRESH_COPIES} times as a fresh copy, and again .*never mine`),
    );
    // Every copy went through the requeues first: (MAX_FRESH_COPIES + 1) cycles of deliveries.
    expect(deliveries).toBe((MAX_FRESH_COPIES + 1) * (DEFAULT_DELIVERY_LIMIT - FRESH_COPY_MARGIN + 1));
    await sub.stop();
    expect(await raw.count(Q)).toBe(0);
  });

  it('stop() lets in-flight handlers finish and ack, and returns the rest to the queue', async () => {
    let started = 0;
    let finished = 0;
    const sub = consumer.consume(
      Q,
      async () => {
        started++;
        await new Promise((r) => setTimeout(r, 30));
        finished++;
      },
      { prefetch: 5, concurrency: 5 },
    );
    await sub.waitUntilActive();
    await publisher.publishMany(
      Array.from({ length: 40 }, (_, i) => publishRequest(Messages.CheckResult, checkResult(i))),
    );
    await waitFor(() => started >= 5, { description: 'handlers running' });
    await sub.stop();
    expect(finished).toBe(started);
    // Acked ones are gone; the rest (never delivered, or prefetched but not started) are back.
    await waitFor(async () => (await raw.count(Q)) === 40 - finished, {
      timeoutMs: 5_000,
      description: 'the rest back in the queue',
    });
    expect(sub.active).toBe(false);
  });

  it('abort(): the batch in the handler settles on the live channel, the buffered deliveries are given back behind it, in order', async () => {
    const before = await redelivered(Q);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    cleanups.push(() => release());
    const handled: number[][] = [];
    const seqOf = (e: Envelope) => Number((e.payload as { checkId: string }).checkId.slice(2));
    const sub = consumer.consume(
      Q,
      async (envelopes: Envelope[]) => {
        await gate; // the first batch is "committing" when the abort comes
        handled.push(envelopes.map(seqOf));
      },
      { prefetch: 40, batch: { maxSize: 10, maxWaitMs: 2_000 } },
    );
    await sub.waitUntilActive();
    await publisher.publishMany(
      Array.from({ length: 40 }, (_, i) => publishRequest(Messages.CheckResult, checkResult(i, { checkId: `c-${i}` }))),
    );
    await waitFor(() => sub.inFlight === 40, {
      description: 'all 40 delivered: one batch in the handler, 30 buffered',
    });
    const aborting = sub.abort(5_000, 'queue taken over');
    // Nothing is given back while the batch ahead of them is still in the handler: they would overtake it.
    const counts = sampleCount(Q);
    await new Promise((r) => setTimeout(r, 500));
    expectNeverGivenBack(await counts.stop(), 500);
    release();
    await aborting;
    // Only the batch that was in the handler's hands was handled; nothing was returned unsettled by the close.
    expect(handled).toEqual([Array.from({ length: 10 }, (_, i) => i)]);
    const after = await redelivered(Q);
    expect(after.requeued - before.requeued).toBe(30);
    // The given-back deliveries are next in the queue, in their order.
    const next = await raw.drain(Q);
    expect(next.map((m) => seqOf(JSON.parse(m.content.toString()) as Envelope))).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 10),
    );
    expect(next.every((m) => m.properties.headers?.['x-delivery-count'] === 1)).toBe(true);
  });

  describe('abort() while its cancel is not through yet (the broker still delivers)', () => {
    const seqOf = (e: Envelope) => Number((e.payload as { checkId: string }).checkId.slice(2));
    const seqsOf = (messages: GetMessage[]) => messages.map((m) => seqOf(JSON.parse(m.content.toString()) as Envelope));
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
    const publishSeqs = (from: number, to: number) =>
      publisher.publishMany(
        range(from, to).map((i) => publishRequest(Messages.CheckResult, checkResult(i, { checkId: `c-${i}` }))),
      );

    /** holdCancels on the test's connection, released and restored after the test whatever happens. */
    function holdTheCancels() {
      const cancels = holdCancels(connection);
      cleanups.push(() => {
        cancels.release();
        cancels.restore();
      });
      return cancels;
    }

    /** A batch consumer whose first batch stays in the handler ("committing") until `release()`. */
    function gatedBatchConsumer() {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => (release = r));
      cleanups.push(() => release());
      const handled: number[][] = [];
      const sub = consumer.consume(
        Q,
        async (envelopes: Envelope[]) => {
          await gate;
          handled.push(envelopes.map(seqOf));
        },
        { prefetch: 40, batch: { maxSize: 10, maxWaitMs: 2_000 } },
      );
      return { sub, handled, release: () => release() };
    }

    /** The gated consumer with 20 delivered (one batch of 10 in the handler, 10 buffered) and its next cancel held. */
    async function twentyInFlight() {
      const before = await redelivered(Q);
      const cancels = holdTheCancels();
      const { sub, handled, release } = gatedBatchConsumer();
      await sub.waitUntilActive();
      cancels.restore();
      await publishSeqs(0, 20);
      await waitFor(() => sub.inFlight === 20, { description: '20 delivered: one batch in the handler, 10 buffered' });
      return { before, cancels, sub, handled, release };
    }

    it('what arrives after abort() is parked, never handled, and given back behind the buffered deliveries, in order', async () => {
      const { before, cancels, sub, handled, release } = await twentyInFlight();

      const aborting = sub.abort(5_000, 'queue taken over');
      // Nothing is given back while the batch ahead is in the handler, late arrivals included: watched from the
      // abort until the handler lets its batch go, 500 ms after the cancel is through.
      const counts = sampleCount(Q);
      await waitFor(() => cancels.requested === 1, { description: 'the cancel requested (and held)' });
      // The consumer is not cancelled yet: the broker delivers these, after abort().
      await publishSeqs(20, 35);
      await waitFor(() => sub.inFlight === 35, { description: 'the 15 late ones delivered to the client' });
      cancels.release();
      await waitFor(() => cancels.done === 1, { description: 'the cancel through' });
      await new Promise((r) => setTimeout(r, 500));
      expectNeverGivenBack(await counts.stop(), 500);
      release();
      await aborting;

      expect(handled).toEqual([range(0, 10)]);
      const after = await redelivered(Q);
      expect(after.requeued - before.requeued).toBe(25);
      expect(after.fresh_copy - before.fresh_copy).toBe(0);
      expect(await raw.count(DLQ)).toBe(0);

      // The next consumer gets them, each once, buffered ones first, then the late ones, in delivery order.
      const next: Array<{ seq: number; count: number; redelivered: boolean }> = [];
      const successor = consumer.consume(
        Q,
        (envelope: Envelope, ctx: DeliveryContext) =>
          void next.push({ seq: seqOf(envelope), count: ctx.deliveryCount, redelivered: ctx.redelivered }),
        { prefetch: 50 },
      );
      await waitFor(() => next.length === 25, { description: 'the 25 given back handled by the next consumer' });
      await successor.stop();
      expect(next.map((n) => n.seq)).toEqual(range(10, 35));
      expect(next.every((n) => n.count === 1 && n.redelivered)).toBe(true);
      expect(handled).toEqual([range(0, 10)]);
      expect(await raw.count(Q)).toBe(0);
      expect(await raw.count(DLQ)).toBe(0);
    });

    it('abort() during a stop() whose drain has not begun: what is buffered, and what still arrives, is given back, not handled', async () => {
      const { before, cancels, sub, handled, release } = await twentyInFlight();

      const stopping = sub.stop(5_000);
      await waitFor(() => cancels.requested === 1, { description: "stop()'s cancel requested (and held)" });
      // Still delivered while the stop waits for its cancel: buffered, as before any abort.
      await publishSeqs(20, 30);
      await waitFor(() => sub.inFlight === 30, { description: '10 more delivered during the stop' });
      const aborting = sub.abort(5_000, 'queue taken over');
      // Nothing given back from the abort until the handler lets its batch go, 500 ms after the cancel is through.
      const counts = sampleCount(Q);
      await publishSeqs(30, 35);
      await waitFor(() => sub.inFlight === 35, { description: '5 more delivered after the abort' });
      cancels.release();
      await waitFor(() => cancels.done === 1, { description: 'the cancel through' });
      await new Promise((r) => setTimeout(r, 500));
      expectNeverGivenBack(await counts.stop(), 500);
      release();
      await Promise.all([stopping, aborting]);

      // Only the batch already in the handler's hands was handled; the rest went back, in order.
      expect(handled).toEqual([range(0, 10)]);
      const after = await redelivered(Q);
      expect(after.requeued - before.requeued).toBe(25);
      const back = await raw.drain(Q);
      expect(seqsOf(back)).toEqual(range(10, 35));
      expect(back.every((m) => m.properties.headers?.['x-delivery-count'] === 1)).toBe(true);
      expect(await raw.count(DLQ)).toBe(0);
    });

    it("abort() once stop()'s drain has begun is that stop: what the drain hands over is handled and acked, nothing given back", async () => {
      const before = await redelivered(Q);
      const cancels = holdTheCancels();
      const { sub, handled, release } = gatedBatchConsumer();
      await sub.waitUntilActive();
      cancels.restore();
      cancels.release();
      await publishSeqs(0, 40);
      await waitFor(() => sub.inFlight === 40, {
        description: 'all 40 delivered: one batch in the handler, 30 buffered',
      });

      const stopping = sub.stop(5_000);
      await waitFor(() => cancels.done === 1, { description: "stop()'s cancel through" });
      await new Promise((r) => setImmediate(r)); // the drain starts right after the cancel
      const aborting = sub.abort(5_000, 'queue taken over');
      release();
      await Promise.all([stopping, aborting]);

      expect(handled).toEqual([range(0, 10), range(10, 20), range(20, 30), range(30, 40)]);
      const after = await redelivered(Q);
      expect(after.requeued - before.requeued).toBe(0);
      expect(after.fresh_copy - before.fresh_copy).toBe(0);
      // Everything was acked: nothing returns to the queue when the channel closes.
      expect(await raw.count(Q)).toBe(0);
      expect(await raw.count(DLQ)).toBe(0);
    });
  });

  it('recovers when its queue is deleted under it: redeclares and resumes on the same connection', async () => {
    const handled = new Set<string>();
    const sub = consumer.consume(Q, (envelope: Envelope) => void handled.add(envelope.id));
    await sub.waitUntilActive();
    const generation = connection.current()?.generation;
    await publisher.publish(Messages.CheckResult, checkResult(1));
    await waitFor(() => handled.size === 1, { description: 'first message handled' });

    const ch = await raw.channel();
    await ch.deleteQueue(Q); // the broker cancels our consumer
    await ch.close();
    await waitFor(() => !sub.active, { description: 'consumer cancelled' });
    await sub.waitUntilActive(10_000);
    // Redeclared with its bindings: publishing routes again.
    const env = await publisher.publish(Messages.CheckResult, checkResult(2));
    await waitFor(() => handled.has(env.id), { description: 'message after the redeclare handled' });
    expect(connection.current()?.generation).toBe(generation);
  });

  it('a consumer registered while the connection is still running its setups starts on that connection', async () => {
    const late = testConnection(vhost.amqpUrl, { name: 'late' });
    let setupRunning!: () => void;
    const setupStarted = new Promise<void>((r) => (setupRunning = r));
    late.addSetup({
      name: 'slow',
      order: 5,
      run: async () => {
        setupRunning();
        await new Promise((r) => setTimeout(r, 200));
      },
    });
    const lateConsumer = new BusConsumer(late, { topology: new BusTopology(late), logger: silentBusLogger });
    late.start();
    await setupStarted;
    expect(late.state).toBe('connecting');
    const handled: string[] = [];
    const sub = lateConsumer.consume(QueueName.CollectorConfig, (envelope: Envelope) => void handled.push(envelope.id));
    await sub.waitUntilActive(5_000);
    expect((await late.waitForSession(5_000)).generation).toBe(1); // no reconnect was needed
    const env = await publisher.publish(Messages.ConfigChanged, {
      version: 1,
      hash: 'b'.repeat(64),
      areas: ['checks'],
      actor: 'test',
      origin: 'local',
    });
    await waitFor(() => handled.includes(env.id), { description: 'handled on the first connection' });
    await lateConsumer.stop();
    await late.close();
  });
});

/** fleetwatch_bus_messages_redelivered_total of a queue, by how (the collect hook flushes pending increments). */
async function redelivered(queue: string): Promise<{ requeued: number; fresh_copy: number }> {
  const out = { requeued: 0, fresh_copy: 0 };
  const metric = register.getSingleMetric('fleetwatch_bus_messages_redelivered_total');
  if (!metric) return out;
  for (const v of (await metric.get()).values)
    if (v.labels.queue === queue && (v.labels.how === 'requeued' || v.labels.how === 'fresh_copy'))
      out[v.labels.how] += v.value;
  return out;
}

/**
 * Holds each basic.cancel on the channels opened until `restore()` (the consumer's, opened by consume()) until
 * `release()`, before it is sent: the window between abort()/stop() and their cancel being through, while the broker
 * still delivers, kept open as long as the test needs.
 */
function holdCancels(connection: BusConnection): {
  readonly requested: number;
  readonly done: number;
  release(): void;
  restore(): void;
} {
  const session = connection.current();
  if (!session) throw new Error('holdCancels: not connected');
  const { model } = session;
  const createChannel = model.createChannel.bind(model);
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => (open = r));
  const state = { requested: 0, done: 0 };
  let restored = false;
  const spy = jest.spyOn(model, 'createChannel').mockImplementation(async (options) => {
    const channel = await createChannel(options);
    const cancel = channel.cancel.bind(channel);
    channel.cancel = async (consumerTag: string) => {
      state.requested++;
      await gate;
      const ok = await cancel(consumerTag);
      state.done++;
      return ok;
    };
    return channel;
  });
  return {
    get requested() {
      return state.requested;
    },
    get done() {
      return state.done;
    },
    release: () => open(),
    restore: () => {
      if (restored) return;
      restored = true;
      spy.mockRestore();
    },
  };
}
