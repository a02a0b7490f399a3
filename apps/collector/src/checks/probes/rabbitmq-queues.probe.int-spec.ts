import { rabbitmqQueuesCheckFields, type CheckInput } from '@fleetwatch/contracts';
import { createTargetPolicy, evaluateConditions } from '@fleetwatch/domain';
import { createIsolatedVhost, maybeTestEnv, TcpProxy, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { closedPort, probeContext } from './probes.int-helpers';
import { rabbitmqQueuesProbe } from './rabbitmq-queues.probe';

jest.setTimeout(90_000);

// Against the shared local RabbitMQ in a vhost of this file's own, and its real management
// API (the rabbitmq_management plugin, port 15672; .ci/run enables it). In the vhost:
// "orders" holds 5 messages and has no consumer; "emails" holds 1 message that its one
// consumer keeps unacknowledged; "busy" gets ~10 messages a second for the whole file, read
// and acknowledged by its consumer, so the API has rates to report. The API refreshes its
// figures every few seconds (collect_statistics_interval), so what it reports is polled for.
// Where the plugin does not answer, the management cases are skipped with a message.

const managementBase = (() => {
  const url = maybeTestEnv()?.server.amqpManagementUrl;
  if (!url) return undefined;
  const u = new URL(url);
  return {
    url: `${u.protocol}//${u.host}`,
    username: decodeURIComponent(u.username || 'guest'),
    password: decodeURIComponent(u.password || 'guest'),
  };
})();
if (!managementBase)
  console.warn(
    'rabbitmq-queues: the RabbitMQ management API does not answer (rabbitmq_management not enabled?): ' +
      'the cases against the real API are SKIPPED',
  );
const withManagement = managementBase ? it : it.skip;

let vhost: IsolatedVhost;
let host: string;
let port: number;
let admin: ChannelModel;
let ch: Channel;
let publisher: NodeJS.Timeout | undefined;

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

/** The check's fields for the real management API, its password through the collector's environment. */
const viaManagement = (fields: Input = {}): Input => ({
  managementUrl: managementBase?.url,
  username: managementBase?.username,
  passwordEnv: 'FLEETWATCH_SECRET_MGMT',
  ...fields,
});
const mgmtContext = (password = managementBase?.password ?? '') => ({
  ...probeContext({ timeoutMs: 10_000 }),
  env: { FLEETWATCH_SECRET_MGMT: password },
});

/** What the management API itself says of a queue, asked directly. */
async function apiQueue(name: string): Promise<Record<string, unknown>> {
  const b = managementBase as NonNullable<typeof managementBase>;
  const res = await fetch(`${b.url}/api/queues/${encodeURIComponent(vhost.vhost)}/${encodeURIComponent(name)}`, {
    headers: { authorization: `Basic ${Buffer.from(`${b.username}:${b.password}`).toString('base64')}` },
  });
  if (!res.ok) throw new Error(`management API answered ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}
const rate = (q: Record<string, unknown>, key: string): number => {
  const r = (q['message_stats'] as Record<string, { rate?: number }> | undefined)?.[`${key}_details`]?.rate;
  return typeof r === 'number' ? r : 0;
};

beforeAll(async () => {
  vhost = await createIsolatedVhost('queues');
  const u = new URL(vhost.amqpUrl);
  host = u.hostname;
  port = Number(u.port || 5672);
  admin = await connect(vhost.amqpUrl);
  ch = await admin.createChannel();
  await ch.assertQueue('orders', { durable: false });
  await ch.assertQueue('emails', { durable: false });
  await ch.assertQueue('busy', { durable: false });
  for (let i = 0; i < 5; i++) ch.sendToQueue('orders', Buffer.from(`o${i}`));
  ch.sendToQueue('emails', Buffer.from('e'));
  await ch.consume('emails', () => undefined, { noAck: false }); // one consumer, holding the message unacked
  await ch.consume('busy', (m) => m && ch.ack(m), { noAck: false });
  publisher = setInterval(() => ch.sendToQueue('busy', Buffer.from('b')), 100);
  await waitFor(async () => (await ch.checkQueue('orders')).messageCount === 5, { description: 'orders to hold 5' });
});
afterAll(async () => {
  clearInterval(publisher);
  await admin?.close().catch(() => undefined);
  await vhost?.dispose();
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

  withManagement(
    'the real management API: depth, ready, unacked, consumers and rates per queue, as the API reports them',
    async () => {
      // The API is eventually consistent (figures refresh every few seconds, not all at once):
      // polled until it reports the settled state, and one stats tick covers both the direct
      // reads around the probe's run and the probe's own read.
      const names = ['orders', 'emails', 'busy'];
      const fields = ['messages', 'messages_ready', 'messages_unacknowledged', 'consumers', 'message_stats'];
      const snapshot = async () =>
        Object.fromEntries(
          await Promise.all(
            names.map(async (n) => {
              const q = await apiQueue(n);
              return [n, Object.fromEntries(fields.map((f) => [f, q[f]]))] as const;
            }),
          ),
        );
      const settled = (api: Awaited<ReturnType<typeof snapshot>>) =>
        api['orders']['messages'] === 5 &&
        api['orders']['consumers'] === 0 &&
        api['emails']['messages_unacknowledged'] === 1 &&
        api['emails']['consumers'] === 1 &&
        api['busy']['consumers'] === 1 &&
        rate(api['busy'], 'publish') > 0 &&
        rate(api['busy'], 'ack') > 0;
      const { out, api } = await waitFor(
        async () => {
          const before = await snapshot();
          if (!settled(before)) return null;
          const out = await rabbitmqQueuesProbe(check(viaManagement({ queues: names })), mgmtContext());
          const after = await snapshot();
          return JSON.stringify(before) === JSON.stringify(after) ? { out, api: after } : null;
        },
        { timeoutMs: 60_000, intervalMs: 500, description: 'the management API to report the settled queues' },
      );
      const busy = api['busy'];
      for (const n of names) {
        expect(value(out, 'rabbitmq_queue_messages', n)).toBe(api[n]['messages']);
        expect(value(out, 'rabbitmq_queue_messages_ready', n)).toBe(api[n]['messages_ready']);
        expect(value(out, 'rabbitmq_queue_messages_unacked', n)).toBe(api[n]['messages_unacknowledged']);
        expect(value(out, 'rabbitmq_queue_consumers', n)).toBe(api[n]['consumers']);
      }
      expect(out.failureReason).toBeUndefined();
      expect(out.ok).toBe(true);
      expect(out.facts.result).toEqual({ source: 'management', management: 'ok', queues: 3, missing: 0 });
      expect(value(out, 'rabbitmq_management_up')).toBe(1);
      expect(value(out, 'rabbitmq_queues_reported')).toBe(3);
      expect(value(out, 'rabbitmq_queue_messages_ready', 'orders')).toBe(5);
      expect(value(out, 'rabbitmq_queue_messages_unacked', 'orders')).toBe(0);
      expect(value(out, 'rabbitmq_queue_consumers', 'orders')).toBe(0);
      expect(value(out, 'rabbitmq_queue_messages', 'emails')).toBe(1);
      expect(value(out, 'rabbitmq_queue_messages_ready', 'emails')).toBe(0);
      expect(value(out, 'rabbitmq_queue_consumers', 'emails')).toBe(1);
      expect(value(out, 'rabbitmq_queue_consumers', 'busy')).toBe(1);
      // Rates exactly as the API gave them (messages per second), non-zero where traffic flows.
      expect(value(out, 'rabbitmq_queue_publish_rate', 'busy')).toBe(rate(busy, 'publish'));
      expect(value(out, 'rabbitmq_queue_deliver_rate', 'busy')).toBe(rate(busy, 'deliver_get'));
      expect(value(out, 'rabbitmq_queue_ack_rate', 'busy')).toBe(rate(busy, 'ack'));
      expect(value(out, 'rabbitmq_queue_publish_rate', 'busy')).toBeGreaterThan(0);
      expect(value(out, 'rabbitmq_queue_ack_rate', 'busy')).toBeGreaterThan(0);
      expect(value(out, 'rabbitmq_queue_redeliver_rate', 'busy')).toBe(0);
      const facts = { ok: true, latencyMs: out.latencyMs, ...out.facts };
      expect(evaluateConditions(['metric("rabbitmq_queue_publish_rate", {"queue": "busy"}) > 0'], facts)).toEqual({
        ok: true,
      });
    },
  );

  withManagement('the real management API with no queue named: every queue of the vhost, by name', async () => {
    const out = await rabbitmqQueuesProbe(check(viaManagement()), mgmtContext());
    expect(out.failureReason).toBeUndefined();
    expect(out.facts.result).toMatchObject({ source: 'management', queues: 3, missing: 0 });
    expect(
      out.metrics?.filter((m) => m.name === 'rabbitmq_queue_exists').map((m) => [m.labels?.['queue'], m.value]),
    ).toEqual([
      ['busy', 1],
      ['emails', 1],
      ['orders', 1],
    ]);
    const capped = await rabbitmqQueuesProbe(check(viaManagement({ maxQueues: 2 })), mgmtContext());
    expect(value(capped, 'rabbitmq_queues_reported')).toBe(2);
  });

  withManagement('the real management API: a named queue it does not know fails the run', async () => {
    const out = await rabbitmqQueuesProbe(check(viaManagement({ queues: ['nope', 'orders'] })), mgmtContext());
    expect(out.ok).toBe(false);
    expect(out.facts.result).toMatchObject({ source: 'management', missing: 1 });
    expect(out.failureReason).toBe(`queue "nope" not found in vhost "${vhost.vhost}"`);
    expect(value(out, 'rabbitmq_queue_exists', 'nope')).toBe(0);
  });

  it('degrades to passive declares when the management API does not answer, and says so', async () => {
    // A closed port on the broker's host: the plugin not listening.
    const dead = `http://${host}:${await closedPort()}`;
    const out = await rabbitmqQueuesProbe(check({ queues: ['orders'], managementUrl: dead }), probeContext());
    expect(out.ok).toBe(true);
    expect(out.facts.result).toMatchObject({
      source: 'amqp',
      management: expect.stringMatching(/^unavailable: .*ECONNREFUSED/),
    });
    expect(value(out, 'rabbitmq_management_up')).toBe(0);
    expect(value(out, 'rabbitmq_queue_messages', 'orders')).toBe(5);
    expect(value(out, 'rabbitmq_queue_publish_rate', 'orders')).toBeUndefined();
    const none = await rabbitmqQueuesProbe(check({ managementUrl: dead }), probeContext());
    expect(none.ok).toBe(false);
    expect(none.failureReason).toMatch(
      /^management API unavailable: .*ECONNREFUSED.*; name the queues to fall back to passive declares$/,
    );
  });

  withManagement('the real management API: vhost "/" and a queue name with / # ? % and spaces are found', async () => {
    // In the broker's default vhost "/" (%2F in the path): an exclusive queue, gone with this connection.
    const u = new URL(vhost.amqpUrl);
    u.pathname = '/%2F';
    const root = await connect(u.toString());
    try {
      const rc = await root.createChannel();
      const name = `fw test/a#b?c%d&e+${Math.random().toString(36).slice(2, 8)}`;
      await rc.assertQueue(name, { exclusive: true, durable: false });
      rc.sendToQueue(name, Buffer.from('x'));
      await waitFor(async () => (await rc.checkQueue(name)).messageCount === 1, { description: 'the message' });
      const out = await waitFor(
        async () => {
          const o = await rabbitmqQueuesProbe(check(viaManagement({ vhost: '/', queues: [name] })), mgmtContext());
          return value(o, 'rabbitmq_queue_messages', name) === 1 ? o : null;
        },
        { timeoutMs: 30_000, intervalMs: 500, description: 'the management API to report the queue' },
      );
      expect(out).toMatchObject({ ok: true, facts: { result: { source: 'management', missing: 0 } } });
      expect(value(out, 'rabbitmq_queue_exists', name)).toBe(1);
    } finally {
      await root.close().catch(() => undefined);
    }
  });

  withManagement('queues named "." and "..": asked of the API, not taken for its path\'s own segments', async () => {
    // "/api/queues/<vhost>/." is "/api/queues/<vhost>/" once the URL is parsed (and "%2E" too): the vhost's list,
    // 200, read as the queue, UP whether it existed or not; ".." was every vhost's queues.
    const missing = await rabbitmqQueuesProbe(check(viaManagement({ queues: ['.', '..', 'orders'] })), mgmtContext());
    expect(missing).toMatchObject({
      ok: false,
      failureReason: `queues ".", ".." not found in vhost "${vhost.vhost}"`,
      facts: { result: { source: 'management', missing: 2 } },
    });
    expect(value(missing, 'rabbitmq_queue_exists', '.')).toBe(0);
    expect(value(missing, 'rabbitmq_queue_exists', '..')).toBe(0);
    await ch.assertQueue('.', { durable: false });
    try {
      ch.sendToQueue('.', Buffer.from('1'));
      ch.sendToQueue('.', Buffer.from('2'));
      const out = await waitFor(
        async () => {
          const o = await rabbitmqQueuesProbe(check(viaManagement({ queues: ['.'] })), mgmtContext());
          // A queue's first record from the API may carry its depth before its consumer count (its stats not yet
          // emitted): wait for both.
          return value(o, 'rabbitmq_queue_messages', '.') === 2 &&
            value(o, 'rabbitmq_queue_consumers', '.') !== undefined
            ? o
            : null;
        },
        {
          timeoutMs: 30_000,
          intervalMs: 500,
          description: 'the management API to report queue "." (depth and consumers)',
        },
      );
      expect(out).toMatchObject({ ok: true, facts: { result: { source: 'management', missing: 0 } } });
      expect(value(out, 'rabbitmq_queue_consumers', '.')).toBe(0);
    } finally {
      await ch.deleteQueue('.');
    }
  });

  withManagement('degrades when the real management API drops the connection (through a proxy)', async () => {
    const proxy = TcpProxy.forUrl(managementBase?.url as string);
    const p = await proxy.start();
    proxy.pause();
    try {
      const out = await rabbitmqQueuesProbe(
        check(viaManagement({ queues: ['orders'], managementUrl: `http://127.0.0.1:${p}` })),
        mgmtContext(),
      );
      expect(out.ok).toBe(true);
      expect(out.facts.result).toMatchObject({ source: 'amqp', management: expect.stringMatching(/^unavailable: /) });
      expect(value(out, 'rabbitmq_queue_messages', 'orders')).toBe(5);
      expect(proxy.stats.refused).toBeGreaterThanOrEqual(1);
    } finally {
      await proxy.stop();
    }
  });

  withManagement(
    'a wrong password: the real API answers 401, the broker refuses it too, the password is not shown',
    async () => {
      const out = await rabbitmqQueuesProbe(
        check(viaManagement({ queues: ['orders'] })),
        mgmtContext('wrong-password-xyz'),
      );
      expect(out.ok).toBe(false);
      expect(out.failureReason).toMatch(/ACCESS_REFUSED/);
      expect(out.failureReason).toMatch(/; the management API was unavailable: \/api\/queues\/.* answered 401$/);
      expect(out.failureReason).not.toContain('wrong-password-xyz');
    },
  );

  withManagement(
    'the management URL and the broker go through the target policy: nothing is connected to',
    async () => {
      const proxy = TcpProxy.forUrl(managementBase?.url as string);
      const p = await proxy.start();
      try {
        const allowed = await rabbitmqQueuesProbe(
          check(viaManagement({ queues: ['orders'], managementUrl: `http://127.0.0.1:${p}`, host: '127.0.0.1' })),
          mgmtContext(),
        );
        expect(allowed.facts.result).toMatchObject({ source: 'management' });
        const accepted = proxy.stats.accepted;
        expect(accepted).toBeGreaterThanOrEqual(1);
        const out = await rabbitmqQueuesProbe(
          check(viaManagement({ queues: ['orders'], managementUrl: `http://127.0.0.1:${p}`, host: '127.0.0.1' })),
          { ...mgmtContext(), policy: createTargetPolicy(['127.0.0.1/32']) },
        );
        expect(out.ok).toBe(false);
        expect(out.failureReason).toMatch(/denied network 127\.0\.0\.1\/32/);
        expect(proxy.stats.accepted).toBe(accepted);
      } finally {
        await proxy.stop();
      }
    },
  );
});
