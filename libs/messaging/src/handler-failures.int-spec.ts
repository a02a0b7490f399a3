import { BusHeader, deadLetterQueueOf, Messages, QueueName, type Envelope } from '@fleetwatch/contracts';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { BusConnection } from './connection';
import { BusConsumer } from './consumer';
import { DeadLetterHeader, type DeliveryContext } from './delivery';
import { PermanentError, TransientError } from './errors';
import { checkResult, RawAmqp, TEST_SOURCE, testConnection } from './int-spec.helpers';
import { silentBusLogger } from './logger';
import { BusPublisher, publishRequest } from './publisher';
import { BusTopology } from './topology';

const Q = QueueName.AggregatorObservations;
const DLQ = deadLetterQueueOf(Q);

jest.setTimeout(60_000);

describe('handler failures on RabbitMQ', () => {
  let vhost: IsolatedVhost;
  let connection: BusConnection;
  let publisher: BusPublisher;
  let consumer: BusConsumer;
  let raw: RawAmqp;

  beforeEach(async () => {
    vhost = await createIsolatedVhost('failures');
    connection = testConnection(vhost.amqpUrl);
    const topology = new BusTopology(connection, { queues: [Q] });
    publisher = new BusPublisher(connection, { source: TEST_SOURCE, shardObservations: false });
    consumer = new BusConsumer(connection, { topology, logger: silentBusLogger });
    connection.start();
    await connection.waitForSession(10_000);
    raw = await RawAmqp.open(vhost.amqpUrl);
  });

  afterEach(async () => {
    await consumer.stop();
    await publisher.close();
    await connection.close();
    await raw.close();
    await vhost.dispose();
  });

  it('batch mode: a batch failing for one poison message dead-letters that message alone; its neighbours are handled', async () => {
    const handled = new Set<string>();
    const sub = consumer.consume(
      Q,
      async (envelopes: Envelope[]) => {
        await new Promise((r) => setTimeout(r, 2));
        if (envelopes.some((e) => (e.payload as { checkId: string }).checkId === 'poison'))
          throw new Error('row refused by the store');
        for (const e of envelopes) handled.add(e.id);
      },
      { prefetch: 40, batch: { maxSize: 20, maxWaitMs: 30 } },
    );
    await sub.waitUntilActive();
    const requests = Array.from({ length: 20 }, (_, i) =>
      publishRequest(Messages.CheckResult, checkResult(i, i === 7 ? { checkId: 'poison' } : {})),
    );
    const envelopes = await publisher.publishMany(requests);
    const poisonId = envelopes[7].id;
    const good = envelopes.filter((e) => e.id !== poisonId).map((e) => e.id);
    await waitFor(async () => (await raw.count(DLQ)) >= 1 && good.every((id) => handled.has(id)), {
      timeoutMs: 20_000,
      description: 'the good messages handled and the poison dead-lettered',
    }).catch(() => undefined);
    await sub.stop();
    const dead = await raw.drain(DLQ);
    expect(dead.map((m) => m.properties.messageId)).toEqual([poisonId]);
    expect(good.filter((id) => !handled.has(id))).toEqual([]);
    expect(String(dead[0].properties.headers?.[BusHeader.DeadLetterReason])).toMatch(/row refused by the store/);
    expect(await raw.count(Q)).toBe(0);
  });

  it('batch mode: a PermanentError for one message of a batch dead-letters that message alone, at once', async () => {
    const handled = new Set<string>();
    const sub = consumer.consume(
      Q,
      async (envelopes: Envelope[]) => {
        if (envelopes.some((e) => (e.payload as { checkId: string }).checkId === 'gone'))
          throw new PermanentError('target no longer exists');
        for (const e of envelopes) handled.add(e.id);
      },
      { prefetch: 40, batch: { maxSize: 20, maxWaitMs: 30 } },
    );
    await sub.waitUntilActive();
    const envelopes = await publisher.publishMany(
      Array.from({ length: 20 }, (_, i) =>
        publishRequest(Messages.CheckResult, checkResult(i, i === 12 ? { checkId: 'gone' } : {})),
      ),
    );
    const goneId = envelopes[12].id;
    const good = envelopes.filter((e) => e.id !== goneId).map((e) => e.id);
    await waitFor(async () => (await raw.count(DLQ)) >= 1 && good.every((id) => handled.has(id)), {
      timeoutMs: 20_000,
      description: 'the good messages handled and the refused one dead-lettered',
    }).catch(() => undefined);
    await sub.stop();
    const dead = await raw.drain(DLQ);
    expect(dead.map((m) => m.properties.messageId)).toEqual([goneId]);
    expect(dead[0].properties.headers?.[DeadLetterHeader.Cause]).toBe('permanent');
    expect(dead[0].properties.headers?.[DeadLetterHeader.DeliveryCount]).toBe(0);
    expect(good.filter((id) => !handled.has(id))).toEqual([]);
    expect(await raw.count(Q)).toBe(0);
  });

  /** What libs/domain's UnavailableError looks like to the bus (repositories throw it while the database is away). */
  class StoreUnavailable extends Error {
    readonly kind = 'unavailable' as const;
  }

  it.each([
    ['one by one', false],
    ['batch mode', true],
  ])(
    '%s: a store away (UnavailableError) pauses and retries with backoff: nothing dead-lettered, no delivery spent',
    async (_name, batch) => {
      const outageMs = 1_500;
      let outageEnds = 0;
      let failures = 0;
      const handled = new Map<string, number>();
      const counts: number[] = [];
      const handle = async (envelopes: Envelope[], contexts: DeliveryContext[]): Promise<void> => {
        if (Date.now() < outageEnds) {
          failures++;
          throw new StoreUnavailable('database unavailable: connect ECONNREFUSED 127.0.0.1:5432');
        }
        for (const c of contexts) counts.push(c.deliveryCount);
        for (const e of envelopes) handled.set(e.id, (handled.get(e.id) ?? 0) + 1);
      };
      const sub = batch
        ? consumer.consume(Q, handle, { prefetch: 20, batch: { maxSize: 10, maxWaitMs: 20 } })
        : consumer.consume(Q, (e: Envelope, c: DeliveryContext) => handle([e], [c]), { prefetch: 20 });
      await sub.waitUntilActive();
      outageEnds = Date.now() + outageMs;
      const ids = (
        await publisher.publishMany(
          Array.from({ length: 30 }, (_, i) => publishRequest(Messages.CheckResult, checkResult(i))),
        )
      ).map((e) => e.id);
      await waitFor(async () => handled.size === 30 || (await raw.count(DLQ)) > 0, {
        timeoutMs: 20_000,
        description: 'every message handled (or some dead-lettered)',
      });
      await sub.stop();
      expect(await raw.count(DLQ)).toBe(0);
      expect(ids.filter((id) => handled.get(id) !== 1)).toEqual([]);
      // Held while the store was away, never returned to the queue: no attempt of the delivery limit spent.
      expect(counts.every((c) => c === 0)).toBe(true);
      // With backoff: a handful of tries over the outage, not a busy loop.
      expect(failures).toBeGreaterThan(1);
      expect(failures).toBeLessThan(batch ? 40 : 60);
      expect(await raw.count(Q)).toBe(0);
    },
  );

  it('a consumer stopped while its handler waits out a store gives the delivery back at once: not a failure, not dead-lettered', async () => {
    const calls: number[] = [];
    const sub = consumer.consume(
      Q,
      async (_e: Envelope, ctx: DeliveryContext) => {
        calls.push(ctx.deliveryCount);
        throw new TransientError('redis: Connection is closed');
      },
      { prefetch: 5, stopTimeoutMs: 20_000 },
    );
    await sub.waitUntilActive();
    const { id } = await publisher.publish(Messages.CheckResult, checkResult(1));
    // The fourth call failed: the next waits 0.8-1.6 s (1.6 s with up to half taken off).
    await waitFor(() => calls.length >= 4, { timeoutMs: 10_000, description: 'retried three times' });
    const started = Date.now();
    await sub.stop();
    // Woken from its backoff by the stop, not waited out.
    expect(Date.now() - started).toBeLessThan(500);
    expect(calls.every((c) => c === 0)).toBe(true);
    expect(await raw.count(DLQ)).toBe(0);
    const [back] = await raw.drain(Q);
    expect(back.properties.messageId).toBe(id);
  });
});
