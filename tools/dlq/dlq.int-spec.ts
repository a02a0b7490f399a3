import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { deadLetterQueueOf, Messages, QueueName, type Envelope, type MessageSource } from '@fleetwatch/contracts';
import {
  BusConnection,
  BusConsumer,
  BusPublisher,
  BusTopology,
  PermanentError,
  silentBusLogger,
  siteDeadLetterQueues,
} from '@fleetwatch/messaging';
import { createIsolatedVhost, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { connect, type ChannelModel } from 'amqplib';

// The operator's command as a process: `node tools/dlq/dlq.mjs …` (what `npm run dlq --` runs).
const root = join(__dirname, '../..');
const Q = QueueName.AggregatorObservations;
const DLQ = deadLetterQueueOf(Q);
const SOURCE: MessageSource = { site: 'test-site', service: 'tool', location: 'lab-1' };

jest.setTimeout(90_000);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function dlq(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'tools/dlq/dlq.mjs'), ...args],
      { cwd: root, env: { ...process.env, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('npm run dlq', () => {
  let vhost: IsolatedVhost;
  let connection: BusConnection;
  let publisher: BusPublisher;
  let consumer: BusConsumer;
  let amqp: ChannelModel;
  let broken = true;
  const received: Envelope[] = [];
  const env = (): Record<string, string> => ({ AMQP_URL: vhost.amqpUrl });

  const dlqCount = async (): Promise<number> => {
    const ch = await amqp.createChannel();
    try {
      return (await ch.checkQueue(DLQ)).messageCount;
    } finally {
      await ch.close();
    }
  };

  beforeAll(async () => {
    vhost = await createIsolatedVhost('dlq-cli');
    connection = new BusConnection({ url: vhost.amqpUrl, name: 'test', logger: silentBusLogger });
    const topology = new BusTopology(connection, { queues: [Q] });
    publisher = new BusPublisher(connection, { source: SOURCE, shardObservations: false });
    consumer = new BusConsumer(connection, { topology, logger: silentBusLogger });
    connection.start();
    await connection.waitForSession(10_000);
    const sub = consumer.consume(Q, (envelope: Envelope) => {
      if (broken) throw new PermanentError('target no longer exists');
      received.push(envelope);
    });
    await sub.waitUntilActive();
    amqp = await connect(vhost.amqpUrl);
  });

  afterAll(async () => {
    await consumer.stop();
    await publisher.close();
    await connection.close();
    await amqp.close();
    await vhost.dispose();
  });

  it('lists, shows and replays dead letters; replaying again is a clean no-op', async () => {
    const startedAt = new Date().toISOString();
    const ids: string[] = [];
    for (const checkId of ['a', 'b']) {
      const e = await publisher.publish(Messages.CheckResult, {
        checkId,
        targetId: `check:${checkId}`,
        location: 'lab-1',
        ok: false,
        latencyMs: 1,
        attempt: 1,
        startedAt,
      });
      ids.push(e.id);
    }
    await waitFor(async () => (await dlqCount()) === 2, { description: 'two dead letters' });

    const listJson = await dlq(['list', '--json'], env());
    expect(listJson).toMatchObject({ code: 0, stderr: '' });
    const { queues } = JSON.parse(listJson.stdout) as {
      queues: Array<{
        deadLetterQueue: string;
        declared: boolean;
        messageCount: number;
        messages: Array<{ messageId: string; cause: string; reason: string }>;
      }>;
    };
    expect(queues).toHaveLength(siteDeadLetterQueues().length);
    const listed = queues.find((q) => q.deadLetterQueue === DLQ);
    expect(listed).toMatchObject({ declared: true, messageCount: 2 });
    expect(listed?.messages.map((m) => [m.messageId, m.cause, m.reason])).toEqual(
      ids.map((id) => [id, 'permanent', 'permanent failure: target no longer exists']),
    );

    const listText = await dlq(['list', '--queue', Q], env());
    expect(listText.code).toBe(0);
    expect(listText.stdout).toContain(`${DLQ}: 2 message(s), from ${Q}`);
    expect(listText.stdout).toContain(ids[0]);
    expect(listText.stdout).toContain('permanent failure: target no longer exists');

    const show = await dlq(['show', ids[0]], env());
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`message id\\s+${ids[0]}`));
    expect(show.stdout).toMatch(/reason\s+permanent failure: target no longer exists/);
    expect(show.stdout).toContain('"checkId": "a"');
    await waitFor(async () => (await dlqCount()) === 2, { description: 'both still in the DLQ' });

    broken = false; // the fix is out
    const replay = await dlq(['replay', ids[0]], env());
    expect(replay).toMatchObject({ code: 0, stdout: `replayed 1 message(s)\n  ${DLQ} → ${Q}: 1\n` });
    await waitFor(() => received.some((e) => e.id === ids[0]), { description: 'replayed message consumed' });

    const all = await dlq(['replay', '--all', '--queue', Q], env());
    expect(all.code).toBe(0);
    expect(all.stderr).toContain(`${DLQ} → ${Q}: 1/1 replayed`);
    await waitFor(() => received.some((e) => e.id === ids[1]), { description: 'second message consumed' });
    await waitFor(async () => (await dlqCount()) === 0, { description: 'DLQ empty' });

    const again = await dlq(['replay', ids[0]], env());
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(new RegExp(`^dlq: no dead letter with message id ${ids[0]} in `));
    expect(received.filter((e) => ids.includes(e.id))).toHaveLength(2);
  });

  it('exits 3 with one clear line when RabbitMQ is away, 2 on a usage error', async () => {
    const proxy = TcpProxy.forUrl(vhost.amqpUrl);
    await proxy.start();
    const url = proxy.rewriteUrl(vhost.amqpUrl).replace('guest:guest@', 'guest:s3cret@');
    await proxy.stop(); // nothing listens there any more

    const away = await dlq(['replay', '--all'], { AMQP_URL: url });
    expect(away.code).toBe(3);
    expect(away.stdout).toBe('');
    expect(away.stderr).toMatch(
      /^dlq: cannot reach RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+\/.*ECONNREFUSED.*\n$/,
    );
    expect(away.stderr).not.toContain('s3cret');

    const usage = await dlq(['replay'], env());
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^dlq: replay needs a message id, or --all/);
  });
});
