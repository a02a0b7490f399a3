import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { amqpCheckFields, type CheckInput } from '@fleetwatch/contracts';
import { createTargetPolicy, evaluateConditions } from '@fleetwatch/domain';
import { createIsolatedVhost, waitFor, type IsolatedVhost } from '@fleetwatch/testing';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { amqpProbe, ratesOf } from './amqp.probe';
import { closedPort, openSockets, probeContext, silentListener, socketsSettle } from './probes.int-helpers';

jest.setTimeout(60_000);

// Against the shared local RabbitMQ, in a vhost of this file's own (libs/testing), with
// queues made and filled here. The broker here has no management plugin (and it is not
// enabled for a test: the server is shared), so the rates path runs against a small
// local HTTP server that answers like the management API (same paths, basic auth, 401
// and 404, message_stats shape of RabbitMQ 3.10).

type AmqpInput = Partial<Extract<CheckInput, { type: 'amqp' }>>;

let vhost: IsolatedVhost;
let host: string;
let port: number;
let user: string;
let pass: string;
let admin: ChannelModel;
let ch: Channel;

const check = (fields: AmqpInput = {}) =>
  amqpCheckFields.parse({
    name: 'a',
    type: 'amqp',
    host,
    port,
    vhost: vhost.vhost,
    username: user,
    passwordEnv: 'FLEETWATCH_SECRET_AMQP_PASSWORD',
    ...fields,
  });
const ctxWith = (over: Parameters<typeof probeContext>[0] = {}) =>
  probeContext({ env: { FLEETWATCH_SECRET_AMQP_PASSWORD: pass }, ...over });

beforeAll(async () => {
  vhost = await createIsolatedVhost('amqp-probe');
  const u = new URL(vhost.amqpUrl);
  host = u.hostname;
  port = Number(u.port || 5672);
  user = decodeURIComponent(u.username || 'guest');
  pass = decodeURIComponent(u.password || 'guest');
  admin = await connect(vhost.amqpUrl);
  ch = await admin.createChannel();
});
afterAll(async () => {
  await admin?.close();
  await vhost?.dispose();
});

describe('amqp probe against the local broker', () => {
  it('is up: connects to the vhost, names the broker', async () => {
    const out = await amqpProbe(check(), ctxWith());
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    expect(out.latencyMs).toBeGreaterThan(0);
    expect(out.facts.result).toEqual({ product: 'RabbitMQ', serverVersion: expect.stringMatching(/^\d+\.\d+/) });
  });

  it('reports the depth and consumers of a queue it was given, as facts and metrics', async () => {
    const queue = 'fw-probe-depth';
    await ch.assertQueue(queue, { durable: false });
    for (let i = 0; i < 5; i++) ch.sendToQueue(queue, Buffer.from(`m${i}`));
    await waitFor(async () => (await ch.checkQueue(queue)).messageCount === 5, { description: '5 messages queued' });

    const idle = await amqpProbe(check({ queue }), ctxWith());
    expect(idle.ok).toBe(true);
    expect(idle.facts.result).toMatchObject({ messages: 5, consumers: 0 });
    expect(idle.facts.metrics).toEqual([
      { name: 'messages', labels: {}, value: 5 },
      { name: 'consumers', labels: {}, value: 0 },
      { name: 'rabbitmq_queue_messages', labels: { queue }, value: 5 },
      { name: 'rabbitmq_queue_consumers', labels: { queue }, value: 0 },
    ]);
    // Published with the result, named as the queue collector names them: a queue_depth rule (or a check_metric
    // rule) selecting this check reads them from live state (the aggregator's checkSeries turns
    // rabbitmq_queue_messages{queue} into queue_depth); facts alone never leave the collector.
    expect(idle.metrics).toEqual([
      { name: 'rabbitmq_queue_messages', labels: { queue }, value: 5 },
      { name: 'rabbitmq_queue_consumers', labels: { queue }, value: 0 },
    ]);

    // Two consumers holding one unacked message each: 3 ready, 2 consumers.
    const consumers = await admin.createChannel();
    await consumers.prefetch(1);
    let held = 0;
    for (let i = 0; i < 2; i++) await consumers.consume(queue, () => void held++, { noAck: false });
    await waitFor(() => held === 2, { description: 'each consumer holds one' });
    const busy = await amqpProbe(check({ queue }), ctxWith());
    expect(busy.facts.result).toMatchObject({ messages: 3, consumers: 2 });
    const facts = { ok: busy.ok, latencyMs: busy.latencyMs, ...busy.facts };
    expect(evaluateConditions(['result.messages < 4', 'metric("consumers") >= 2'], facts)).toEqual({ ok: true });
    // The series it publishes (shown on the target) are read by its conditions too.
    expect(
      evaluateConditions(
        [
          `metric("rabbitmq_queue_messages", {"queue": "${queue}"}) == 3.0`,
          'metric("rabbitmq_queue_consumers") == 2.0',
        ],
        facts,
      ),
    ).toEqual({ ok: true });
    expect(evaluateConditions(['result.messages == 0'], facts).ok).toBe(false);
    await consumers.close();
  });

  it('a missing queue is a failed result that names it; the connection is still closed', async () => {
    const before = openSockets();
    const out = await amqpProbe(check({ queue: 'fw-probe-no-such-queue' }), ctxWith());
    expect(out.ok).toBe(false);
    expect(out.failureReason).toBe(`queue "fw-probe-no-such-queue" does not exist in vhost "${vhost.vhost}"`);
    expect(out.latencyMs).toBeGreaterThan(0);
    expect(await socketsSettle(before)).toBeLessThanOrEqual(before);
  });

  it('a wrong password is refused by the broker, and appears nowhere', async () => {
    const wrong = 'not-the-password-4711';
    const out = await amqpProbe(check(), probeContext({ env: { FLEETWATCH_SECRET_AMQP_PASSWORD: wrong } }));
    expect(out.ok).toBe(false);
    expect(out.failureReason).toMatch(/ACCESS[-_]REFUSED/);
    expect(JSON.stringify(out)).not.toContain(wrong);
  });

  it('a variable that is not set is named', async () => {
    const out = await amqpProbe(check({ passwordEnv: 'FLEETWATCH_SECRET_AMQP_UNSET' }), ctxWith());
    expect(out).toEqual({
      ok: false,
      latencyMs: null,
      failureReason: 'environment variable FLEETWATCH_SECRET_AMQP_UNSET (passwordEnv) is not set on this collector',
      facts: {},
    });
  });

  it('a vhost that does not exist is named by the broker', async () => {
    const out = await amqpProbe(check({ vhost: `${vhost.vhost}-missing` }), ctxWith());
    expect(out).toMatchObject({
      ok: false,
      failureReason: `the broker refused vhost "${vhost.vhost}-missing" (it does not exist, or user "${user}" may not use it)`,
    });
  });

  it('a closed port is connection refused', async () => {
    const p = await closedPort();
    const out = await amqpProbe(check({ port: p }), ctxWith());
    expect(out).toMatchObject({ ok: false, latencyMs: null, failureReason: `connect ECONNREFUSED 127.0.0.1:${p}` });
  });

  it('a broker that never answers the handshake: ends at the deadline, socket closed', async () => {
    const silent = await silentListener();
    try {
      const started = performance.now();
      const out = await amqpProbe(check({ host: '127.0.0.1', port: silent.port }), ctxWith({ timeoutMs: 300 }));
      expect(out).toMatchObject({ ok: false, failureReason: 'timed out after 300 ms' });
      expect(performance.now() - started).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 100));
      expect(silent.accepted).toBe(1);
      expect(silent.open()).toBe(0);
    } finally {
      await silent.close();
    }
  });

  it('a denied address is refused without connecting', async () => {
    const listener = await silentListener();
    try {
      const policy = createTargetPolicy(['127.0.0.1/32']);
      const out = await amqpProbe(check({ host: '127.0.0.1', port: listener.port }), ctxWith({ policy }));
      expect(out).toMatchObject({ ok: false, failureReason: 'address 127.0.0.1 is in denied network 127.0.0.1/32' });
      expect(listener.accepted).toBe(0);
    } finally {
      await listener.close();
    }
  });

  it('leaves no socket behind over 50 runs of success, missing queue, refusal and timeout', async () => {
    await ch.assertQueue('fw-probe-leak', { durable: false });
    const silent = await silentListener();
    const refused = await closedPort();
    try {
      const before = openSockets();
      for (let i = 0; i < 50; i++) {
        const kind = i % 5;
        const c =
          kind === 0
            ? check({ queue: 'fw-probe-leak' })
            : kind === 1
              ? check({ queue: 'fw-probe-missing' })
              : kind === 2
                ? check({ passwordEnv: 'FLEETWATCH_SECRET_WRONG' })
                : kind === 3
                  ? check({ port: refused })
                  : check({ port: silent.port });
        const out = await amqpProbe(
          c,
          ctxWith({
            timeoutMs: kind === 4 ? 50 : 5000,
            env: { FLEETWATCH_SECRET_AMQP_PASSWORD: pass, FLEETWATCH_SECRET_WRONG: 'x' },
          }),
        );
        expect(out.ok).toBe(kind === 0);
      }
      expect(await socketsSettle(before)).toBeLessThanOrEqual(before);
      expect(silent.open()).toBe(0);
    } finally {
      await silent.close();
    }
  });
});

describe('amqp probe: rates from the management API', () => {
  // Answers GET /api/queues/{vhost}/{queue} and /api/vhosts/{vhost} as RabbitMQ 3.10 does.
  let api: Server;
  let apiUrl: string;
  const seen: string[] = [];
  // The credentials the API accepts: the check's, unless a test plays a user without the monitoring tag.
  let accepts: { user: string; pass: string };
  const queueStats = {
    publish: 120,
    publish_details: { rate: 4.2 },
    deliver_get: 100,
    deliver_get_details: { rate: 3.8 },
    ack: 90,
    ack_details: { rate: 3.5 },
    redeliver: 0,
    redeliver_details: { rate: 0 },
  };
  beforeEach(() => {
    accepts = { user, pass };
  });
  beforeAll(async () => {
    api = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push(req.url ?? '');
      const expected = `Basic ${Buffer.from(`${accepts.user}:${accepts.pass}`).toString('base64')}`;
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== expected) return send(401, { error: 'not_authorised', reason: 'Login failed' });
      const v = encodeURIComponent(vhost.vhost);
      if (req.url === `/api/queues/${v}/fw-probe-depth`)
        return send(200, {
          name: 'fw-probe-depth',
          vhost: vhost.vhost,
          messages_unacknowledged: 2,
          message_stats: queueStats,
        });
      if (req.url === `/api/queues/${v}/fw-probe-quiet`)
        return send(200, { name: 'fw-probe-quiet', messages_unacknowledged: 0 });
      if (req.url === `/api/vhosts/${v}`) return send(200, { name: vhost.vhost, message_stats: queueStats });
      send(404, { error: 'Object Not Found', reason: 'Not Found' });
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
    await ch.assertQueue('fw-probe-quiet', { durable: false });
  });
  afterAll(() => new Promise<void>((resolve) => api.close(() => resolve())));

  it("reads the queue's publish and deliver rates with the check's credentials", async () => {
    const out = await amqpProbe(check({ queue: 'fw-probe-depth', managementUrl: apiUrl }), ctxWith());
    expect(out.ok).toBe(true);
    expect(out.facts.result).toMatchObject({
      management: 'ok',
      publishRate: 4.2,
      deliverRate: 3.8,
      ackRate: 3.5,
      redeliverRate: 0,
      messagesUnacked: 2,
    });
    const names = out.facts.metrics?.map((m) => m.name);
    expect(names).toEqual(expect.arrayContaining(['messages', 'consumers', 'publishRate', 'deliverRate']));
    expect(seen).toContain(`/api/queues/${encodeURIComponent(vhost.vhost)}/fw-probe-depth`);
  });

  it('a queue with no traffic yet has no message_stats: rates are 0', async () => {
    const out = await amqpProbe(check({ queue: 'fw-probe-quiet', managementUrl: `${apiUrl}/` }), ctxWith());
    expect(out.facts.result).toMatchObject({ management: 'ok', publishRate: 0, deliverRate: 0 });
  });

  it("without a queue, the vhost's rates", async () => {
    const out = await amqpProbe(check({ managementUrl: apiUrl }), ctxWith());
    expect(out.facts.result).toMatchObject({ management: 'ok', publishRate: 4.2 });
  });

  it('a management API that is not there (plugin not enabled) is said in the facts, not a failure', async () => {
    const p = await closedPort();
    const out = await amqpProbe(check({ queue: 'fw-probe-depth', managementUrl: `http://127.0.0.1:${p}` }), ctxWith());
    expect(out.ok).toBe(true);
    expect(out.facts.result).toMatchObject({
      messages: expect.any(Number),
      management: `unavailable: connect ECONNREFUSED 127.0.0.1:${p}`,
    });
    expect(out.facts.result).not.toHaveProperty('publishRate');
  });

  it('a management API that accepts and never answers: ends at the timeout, UP on what AMQP showed, said so', async () => {
    const silent = await silentListener();
    try {
      const timeoutMs = 1_000;
      const started = performance.now();
      const out = await amqpProbe(
        check({ queue: 'fw-probe-quiet', managementUrl: `http://127.0.0.1:${silent.port}` }),
        ctxWith({ timeoutMs }),
      );
      const took = performance.now() - started;
      // Bounded by the check's timeout (the attempt's signal), not left hanging: the runner's grace is not needed.
      expect(took).toBeGreaterThanOrEqual(timeoutMs - 50);
      expect(took).toBeLessThan(timeoutMs + 500);
      // The management API is optional: AMQP answered (the queue is there), so UP, its latency AMQP's own.
      expect(out).toMatchObject({ ok: true, facts: { result: { messages: 0, consumers: 0 } } });
      expect(out.facts.result?.['management']).toBe(`unavailable: timed out after ${timeoutMs} ms`);
      expect(out.latencyMs).toBeLessThan(timeoutMs);
    } finally {
      await silent.close();
    }
  });

  it('a queue named "." is not asked of the API (its path would be the vhost\'s queue list): said in the facts', async () => {
    await ch.assertQueue('.', { durable: false });
    try {
      const before = seen.length;
      const out = await amqpProbe(check({ queue: '.', managementUrl: apiUrl }), ctxWith());
      expect(out).toMatchObject({ ok: true, facts: { result: { messages: 0 } } });
      expect(out.facts.result?.['management']).toBe('unavailable: "." cannot be named in its API paths');
      expect(out.facts.result).not.toHaveProperty('publishRate');
      expect(seen.slice(before)).toEqual([]);
    } finally {
      await ch.deleteQueue('.');
    }
  });

  it('refused credentials or an unknown queue there: said in the facts', async () => {
    await ch.assertQueue('fw-probe-not-in-api', { durable: false });
    const notThere = await amqpProbe(check({ queue: 'fw-probe-not-in-api', managementUrl: apiUrl }), ctxWith());
    expect(notThere.ok).toBe(true);
    expect(notThere.facts.result).toMatchObject({
      management: expect.stringMatching(/^unavailable: .* answered 404$/),
    });

    // The broker lets the user in, the API does not (no monitoring tag): 401, said so.
    accepts = { user: 'monitoring-only', pass: 'other' };
    const refused = await amqpProbe(check({ queue: 'fw-probe-depth', managementUrl: apiUrl }), ctxWith());
    expect(refused.ok).toBe(true);
    expect(refused.facts.result).toMatchObject({ management: expect.stringMatching(/^unavailable: .* answered 401$/) });
  });

  it('the management URL goes through the target policy too', async () => {
    const out = await amqpProbe(
      check({ managementUrl: 'http://127.0.0.2:15672' }),
      ctxWith({ policy: createTargetPolicy(['127.0.0.2/32']) }),
    );
    expect(out.ok).toBe(true);
    expect(out.facts.result).toMatchObject({
      management: 'unavailable: address 127.0.0.2 is in denied network 127.0.0.2/32',
    });
  });
});

describe('amqp management rates', () => {
  it('reads *_details.rate, 0 where absent or not a number', () => {
    expect(ratesOf(undefined)).toEqual({ publishRate: 0, deliverRate: 0, ackRate: 0, redeliverRate: 0 });
    expect(ratesOf({ publish_details: { rate: 1.5 }, ack_details: { rate: 'x' } })).toEqual({
      publishRate: 1.5,
      deliverRate: 0,
      ackRate: 0,
      redeliverRate: 0,
    });
  });
});
