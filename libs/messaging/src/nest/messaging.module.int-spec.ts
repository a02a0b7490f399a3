import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Messages, QueueName, type Envelope } from '@fleetwatch/contracts';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { busReadinessCheck } from '../bus';
import { BusConnection } from '../connection';
import type { DeliveryContext } from '../delivery';
import { InMemoryIdempotencyStore } from '../idempotency';
import { checkResult, RawAmqp } from '../int-spec.helpers';
import { silentBusLogger } from '../logger';
import { BusPublisher } from '../publisher';
import { ConsumeQueue } from './consume-queue.decorator';
import { MessagingModule } from './messaging.module';

const seen: Array<{ id: string; queue: string }> = [];
const batches: number[] = [];
let slowFinished = 0;

@Injectable()
class ObservationsHandler {
  @ConsumeQueue(QueueName.AggregatorObservations, { prefetch: 20, idempotent: true })
  async handle(envelope: Envelope, ctx: DeliveryContext): Promise<void> {
    await new Promise((r) => setTimeout(r, 1));
    seen.push({ id: envelope.id, queue: ctx.queue });
  }
}

@Injectable()
class AlertsHandler {
  @ConsumeQueue(QueueName.AggregatorAlerts, { prefetch: 50, batch: { maxSize: 10, maxWaitMs: 20 } })
  async handleBatch(envelopes: Envelope[]): Promise<void> {
    await new Promise((r) => setTimeout(r, 50));
    batches.push(envelopes.length);
    slowFinished += envelopes.length;
  }
}

// jest's per-project testTimeout (jest.config.js) is overridden by the global default of 5 s.
jest.setTimeout(60_000);

describe('MessagingModule (Nest)', () => {
  let vhost: IsolatedVhost;
  let app: INestApplicationContext;
  let raw: RawAmqp;
  const store = new InMemoryIdempotencyStore();

  beforeAll(async () => {
    vhost = await createIsolatedVhost('nest');
    @Module({
      imports: [
        MessagingModule.forRootAsync({
          useFactory: () => ({
            url: vhost.amqpUrl,
            site: 'test-site',
            service: 'aggregator',
            location: 'lab-1',
            logger: silentBusLogger,
            idempotencyStore: store,
            // Observation types serve here as generic messages on the un-sharded queue.
            shardObservations: false,
          }),
        }),
      ],
      providers: [ObservationsHandler, AlertsHandler],
    })
    class AppModule {}
    app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    await app.init();
    raw = await RawAmqp.open(vhost.amqpUrl);
  });

  afterAll(async () => {
    await raw?.close();
    await vhost?.dispose();
  });

  it('wires the publisher and @ConsumeQueue handlers; acks after the handler; readiness follows the connection', async () => {
    const connection = app.get(BusConnection);
    const readiness = busReadinessCheck(connection);
    await waitFor(() => connection.isConnected(), { description: 'bus connected' });
    expect(() => readiness.check()).not.toThrow();

    const publisher = app.get(BusPublisher);
    const env = await publisher.publish(Messages.CheckResult, checkResult(1));
    // The same id again (a publisher retry): handled once thanks to the idempotency store.
    await publisher.publish(Messages.CheckResult, checkResult(1), { id: env.id });
    await publisher.publish(Messages.CheckResult, checkResult(2));
    await waitFor(() => seen.length === 2, { description: 'two handled' });
    expect(seen[0]).toEqual({ id: env.id, queue: QueueName.AggregatorObservations });
    expect(env.source).toEqual({ site: 'test-site', service: 'aggregator', location: 'lab-1' });
    await waitFor(async () => (await raw.count(QueueName.AggregatorObservations)) === 0, {
      description: 'observations queue empty',
    });
  });

  it('shutdown drains in-flight batches before closing the connection', async () => {
    const publisher = app.get(BusPublisher);
    const statusChanged = (i: number) => ({
      targetId: `check:c${i}`,
      kind: 'check' as const,
      location: null,
      from: 'UP' as const,
      to: 'DOWN' as const,
      reason: 'timeout',
      at: new Date().toISOString(),
      sequence: i,
    });
    await publisher.publishMany(
      Array.from({ length: 25 }, (_, i) => ({ definition: Messages.StatusChanged, payload: statusChanged(i) })),
    );
    await waitFor(() => batches.length >= 1, { description: 'first batch handled' });
    const connection = app.get(BusConnection);
    await app.close();
    expect(connection.state).toBe('closed');
    // Everything delivered was handled and acked before the connection closed.
    const left = await raw.count(QueueName.AggregatorAlerts);
    expect(slowFinished + left).toBe(25);
    expect(Math.max(...batches)).toBeLessThanOrEqual(10);
  });
});
