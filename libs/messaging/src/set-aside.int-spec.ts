import { buildEnvelope, deadLetterQueueOf, Messages, QueueName, uuidv7 } from '@fleetwatch/contracts';
import { createIsolatedVhost, type IsolatedVhost } from '@fleetwatch/testing';
import type { BusConnection } from './connection';
import { PublishUnroutableError } from './errors';
import { connect, type ChannelModel } from 'amqplib';
import { RawAmqp, TEST_SOURCE, testConnection } from './int-spec.helpers';
import { silentBusLogger } from './logger';
import { SetAsideWriter } from './set-aside';
import { BusTopology } from './topology';

// Setting a part of a message aside when its dead-letter queue was deleted by hand:
// the copy is unroutable (refused, never silently dropped), the writer declares the
// queue's topology again, and the caller's retry lands the copy.

const Q = QueueName.AggregatorObservations;
const DLQ = deadLetterQueueOf(Q);

jest.setTimeout(30_000);

let vhost: IsolatedVhost;
let connection: BusConnection;
let topology: BusTopology;
let raw: RawAmqp;
let admin: ChannelModel;

beforeAll(async () => {
  vhost = await createIsolatedVhost('set-aside');
  connection = testConnection(vhost.amqpUrl);
  topology = new BusTopology(connection, { queues: [Q] });
  connection.start();
  await connection.waitForSession(10_000);
  raw = await RawAmqp.open(vhost.amqpUrl);
  admin = await connect(vhost.amqpUrl);
});

async function deleteDlq(): Promise<void> {
  const ch = await admin.createChannel();
  await ch.deleteQueue(DLQ);
  await ch.close();
}
afterAll(async () => {
  await raw?.close();
  await admin?.close();
  await connection?.close();
  await vhost?.dispose();
});

const part = () => ({
  envelope: buildEnvelope(Messages.StatusUpdate.type, 1, TEST_SOURCE, { instanceId: 'web-1' }, { id: uuidv7() }),
  reason: 'could not be stored: test',
});

it('a deleted DLQ makes the copy unroutable, is declared again, and the retry lands', async () => {
  const redeclared: string[] = [];
  const writer = new SetAsideWriter(connection, silentBusLogger, async (queue) => {
    redeclared.push(queue);
    await topology.ensure(queue as QueueName);
  });
  try {
    await deleteDlq();
    const first = part();
    await expect(writer.setAside(Q, [first])).rejects.toBeInstanceOf(PublishUnroutableError);
    expect(redeclared).toEqual([Q]);
    await writer.setAside(Q, [first]);
    expect(await raw.count(DLQ)).toBe(1);
  } finally {
    await writer.close();
  }
});

it('without a way to declare it again, the copy is still refused, never dropped', async () => {
  const writer = new SetAsideWriter(connection, silentBusLogger);
  try {
    await deleteDlq();
    await expect(writer.setAside(Q, [part()])).rejects.toBeInstanceOf(PublishUnroutableError);
  } finally {
    await writer.close();
    await topology.ensure(Q);
  }
});
