import { createServer, type Server } from 'node:http';
import { rabbitmqQueuesCheckFields, type CheckInput } from '@fleetwatch/contracts';
import { createTargetPolicy, evaluateConditions } from '@fleetwatch/domain';
import { createIsolatedVhost, type IsolatedVhost } from '@fleetwatch/testing';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { closedPort, probeContext } from './probes.int-helpers';
import { rabbitmqQueuesProbe } from './rabbitmq-queues.probe';

jest.setTimeout(60_000);

// Against the shared local RabbitMQ in a vhost of this file's own. The broker here runs
// without the management plugin (it is not enabled for a test: the server is shared), so
// the management path runs against a small local HTTP server with the plugin's paths,
// basic auth and JSON shape (RabbitMQ 3.10), whose depths and consumers it reads from the
// real broker (passive declares) and whose rates are fixed — the degraded path runs
// against the broker itself.

let vhost: IsolatedVhost;
let host: string;
let port: number;
let admin: ChannelModel;
let ch: Channel;
let api: Server;
let apiUrl: string;
let apiHits = 0;

type Input = Partial<Extract<CheckInput, { type: 'rabbitmq-queues' }>>;
const check = (fields: Input = {}) =>
  rabbitmqQueuesCheckFields.parse({
    name: 'q',
    type: 'rabbitmq-queues',
    host,
    port,
    vhost: vhost.vhost,
    ...fields,
  });
type Out = Awaited<ReturnType<typeof rabbitmqQueuesProbe>>;
const value = (out: Out, name: string, queue?: string) =>
  out.metrics?.find((m) => m.name === name && (queue === undefined || m.labels?.['queue'] === queue))?.value;

beforeAll(async () => {
  vhost = await createIsolatedVhost('queues');
  const u = new URL(vhost.amqpUrl);
  host = u.hostname;
  port = Number(u.port || 5672);
  admin = await connect(vhost.amqpUrl);
  ch = await admin.createChannel();
  await ch.assertQueue('orders', { durable: false });
  await ch.assertQueue('emails', { durable: false });
  for (let i = 0; i < 5; i++) ch.sendToQueue('orders', Buffer.from(`o${i}`));
  ch.sendToQueue('emails', Buffer.from('e'));
  await ch.consume('emails', () => undefined, { noAck: false }); // one consumer, holding the message unacked
  await new Promise((r) => setTimeout(r, 300));

  api = createServer((req, res) => {
    apiHits++;
    if (req.headers.authorization !== `Basic ${Buffer.from('guest:guest').toString('base64')}`) {
      res.writeHead(401).end('{"error":"not_authorised"}');
      return;
    }
    const m = /^\/api\/queues\/([^/?]+)(?:\/([^/?]+))?/.exec(req.url ?? '');
    if (!m || decodeURIComponent(m[1]) !== vhost.vhost) {
      res.writeHead(404).end('{"error":"Object Not Found"}');
      return;
    }
    const read = async (name: string) => {
      const c = await admin.createChannel();
      c.on('error', () => undefined);
      try {
        const q = await c.checkQueue(name);
        await c.close();
        return {
          name,
          messages: q.messageCount,
          messages_ready: q.messageCount,
          messages_unacknowledged: name === 'emails' ? 1 : 0,
          consumers: q.consumerCount,
          message_stats: { publish_details: { rate: 4.2 }, deliver_get_details: { rate: 1.5 } },
        };
      } catch {
        return null;
      }
    };
    void (async () => {
      if (m[2]) {
        const q = await read(decodeURIComponent(m[2]));
        if (!q) res.writeHead(404).end('{"error":"Object Not Found"}');
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(q));
        return;
      }
      const items = [await read('emails'), await read('orders')];
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items, page: 1 }));
    })();
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apiUrl = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
});
afterAll(async () => {
  await admin?.close().catch(() => undefined);
  await vhost?.dispose();
  await new Promise((r) => api?.close(r));
});

describe('rabbitmq-queues', () => {
  it('without a management API: passive declares of the named queues on the broker (depth, consumers)', async () => {
    const out = await rabbitmqQueuesProbe(check({ queues: ['orders', 'emails'] }), probeContext());
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    expect(out.facts.result).toMatchObject({ source: 'amqp', queues: 2, missing: 0 });
    expect(value(out, 'rabbitmq_queue_messages', 'orders')).toBe(5);
    expect(value(out, 'rabbitmq_queue_consumers', 'orders')).toBe(0);
    expect(value(out, 'rabbitmq_queue_consumers', 'emails')).toBe(1);
    expect(value(out, 'rabbitmq_queue_publish_rate', 'orders')).toBeUndefined();
    const facts = { ok: true, latencyMs: out.latencyMs, ...out.facts };
    expect(evaluateConditions(['metric("rabbitmq_queue_messages", {"queue": "orders"}) < 10'], facts)).toEqual({
      ok: true,
    });
    expect(evaluateConditions(['metric("rabbitmq_queue_messages", {"queue": "orders"}) < 5'], facts).ok).toBe(false);
  });

  it('a missing queue fails the run, is reported as not existing, and the others are still read', async () => {
    const out = await rabbitmqQueuesProbe(check({ queues: ['nope', 'orders'] }), probeContext());
    expect(out.ok).toBe(false);
    expect(out.failureReason).toBe(`queue "nope" not found in vhost "${vhost.vhost}"`);
    expect(value(out, 'rabbitmq_queue_exists', 'nope')).toBe(0);
    expect(value(out, 'rabbitmq_queue_messages', 'orders')).toBe(5);
  });

  it('with the management API: depth, unacked, consumers and rates per queue; every queue when none is named', async () => {
    const named = await rabbitmqQueuesProbe(check({ queues: ['orders'], managementUrl: apiUrl }), probeContext());
    expect(named.ok).toBe(true);
    expect(named.facts.result).toMatchObject({ source: 'management', management: 'ok' });
    expect(value(named, 'rabbitmq_queue_messages', 'orders')).toBe(5);
    expect(value(named, 'rabbitmq_queue_publish_rate', 'orders')).toBe(4.2);
    expect(value(named, 'rabbitmq_queue_deliver_rate', 'orders')).toBe(1.5);
    expect(value(named, 'rabbitmq_management_up')).toBe(1);
    const all = await rabbitmqQueuesProbe(check({ managementUrl: apiUrl }), probeContext());
    expect(all.ok).toBe(true);
    expect(value(all, 'rabbitmq_queues_reported')).toBe(2);
    expect(value(all, 'rabbitmq_queue_messages_unacked', 'emails')).toBe(1);
    expect(value(all, 'rabbitmq_queue_consumers', 'emails')).toBe(1);
  });

  it('degrades to passive declares when the management API does not answer, and says so', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const out = await rabbitmqQueuesProbe(check({ queues: ['orders'], managementUrl: dead }), probeContext());
    expect(out.ok).toBe(true);
    expect(out.facts.result).toMatchObject({
      source: 'amqp',
      management: expect.stringMatching(/^unavailable: .*ECONNREFUSED/),
    });
    expect(value(out, 'rabbitmq_management_up')).toBe(0);
    expect(value(out, 'rabbitmq_queue_messages', 'orders')).toBe(5);
    const refused = await rabbitmqQueuesProbe(
      check({ queues: ['orders'], managementUrl: apiUrl, username: 'guest', passwordEnv: 'FLEETWATCH_SECRET_X' }),
      { ...probeContext(), env: { FLEETWATCH_SECRET_X: 'wrong' } },
    );
    // 401 from the API, and the broker refuses the wrong password too.
    expect(refused.ok).toBe(false);
    expect(refused.failureReason).not.toContain('wrong');
  });

  it('the management URL and the broker go through the target policy', async () => {
    const hits = apiHits;
    const out = await rabbitmqQueuesProbe(
      check({ queues: ['orders'], managementUrl: apiUrl, host: '127.0.0.1' }),
      probeContext({ policy: createTargetPolicy(['127.0.0.1/32']) }),
    );
    expect(out.ok).toBe(false);
    expect(out.failureReason).toMatch(/denied network 127\.0\.0\.1\/32/);
    expect(apiHits).toBe(hits);
  });
});
