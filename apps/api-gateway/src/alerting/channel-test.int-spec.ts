import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import type {
  ApiErrorBody,
  Channel,
  ChannelTestResult,
  CreateApiKeyResponse,
  DeliveryLogResponse,
} from '@fleetwatch/contracts';
import { verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from '@fleetwatch/alerting';
import { DEFAULT_DENY_NETWORKS } from '@fleetwatch/domain';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from '../checks/owner-process.int-helpers';
import { startAggregatorProcess, type AggregatorProcess } from './aggregator-process.int-helpers';

// A channel's test-send end to end: the gateway asks the aggregator over the bus; the aggregator (built from
// today's sources, run as a process, holding FLEETWATCH_ENCRYPTION_KEY) opens the channel's sealed secret,
// sends once to a local webhook receiver started here, which verifies the HMAC, logs the attempt as a test,
// and answers the outcome. A receiver's refusal comes back with its status and text, the secret scrubbed
// even where the receiver echoed it; an unknown channel is a 404; the aggregator away is a 503.

jest.setTimeout(180_000);

const SECRET = 'zz-webhook-canary-7f3a-secret';

interface Received {
  path: string;
  body: string;
  valid: boolean;
  test: boolean;
}

let gw: GatewayHarness;
let owner: OwnerProcess;
let aggregator: AggregatorProcess;
let dist: string;
let receiver: Server;
let base: string;
let operator: string;
let viewer: string;
let readKey: string;
const received: Received[] = [];

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    void bodyOf(req).then((body) => {
      const valid = verifyWebhookSignature({
        secret: SECRET,
        body,
        timestamp: req.headers[WEBHOOK_TIMESTAMP_HEADER] as string | undefined,
        signature: req.headers[WEBHOOK_SIGNATURE_HEADER] as string | undefined,
        now: Date.now(),
      });
      let test = false;
      try {
        test = (JSON.parse(body) as { test?: boolean }).test === true;
      } catch {
        test = false;
      }
      received.push({ path: req.url ?? '', body, valid, test });
      // A receiver that refuses, echoing what it was given (the secret among it): the answer must be scrubbed.
      if (req.url === '/refuse') res.writeHead(500).end(`refused: signature made with ${SECRET} is not ours`);
      else res.writeHead(valid ? 200 : 401).end(valid ? 'ok' : 'bad signature');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  gw = await startGateway(testing, 'channel-test', { env: { GATEWAY_RPC_TIMEOUT_MS: '3000' } });
  dist = await privateOwnerDist(`channel-test-${testing.testEnv().runId}`);
  const servers = {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: gw.config.amqpUrl,
    redisUrl: gw.config.redisUrl,
  };
  [owner, aggregator] = await Promise.all([
    startOwnerProcess(dist, { ...servers, redisPrefix: `${testing.testEnv().redisPrefix}chtest-owner:` }),
    // The aggregator's policy also denies 127.0.0.2 (the owner's does not: such an address is saved, and refused
    // when sent to — the send-time check is the one that always holds).
    startAggregatorProcess(
      dist,
      { ...servers, redisPrefix: gw.config.redisPrefix },
      {
        ALERT_DELIVERY_TIMEOUT_MS: '2000',
        FLEETWATCH_CHECK_DENY_NETWORKS: [...DEFAULT_DENY_NETWORKS, '127.0.0.2/32'].join(','),
      },
    ),
  ]);
  const admin = await gw.login('admin', ADMIN_PASSWORD);
  for (const role of ['viewer', 'operator'] as const)
    await gw.request('POST', '/api/v1/users', {
      token: admin,
      body: { username: role, password: `${role}-password`, role },
    });
  operator = await gw.login('operator', 'operator-password');
  viewer = await gw.login('viewer', 'viewer-password');
  const key = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
    token: admin,
    body: { name: 'ci-read', scopes: ['read'] },
  });
  readKey = key.body.key;
});

afterAll(async () => {
  await aggregator?.stop();
  await owner?.stop();
  await gw?.close();
  await new Promise((resolve) => receiver?.close(resolve));
  if (dist) rmSync(dist, { recursive: true, force: true });
});

async function webhook(name: string, path: string): Promise<Channel> {
  const res = await gw.request<Channel>('POST', '/api/v1/channels', {
    token: operator,
    body: { type: 'webhook', name, url: `${base}${path}`, secret: SECRET },
  });
  expect(res.status).toBe(201);
  return res.body;
}

const test = (id: string, token = operator) =>
  gw.request<ChannelTestResult & ApiErrorBody>('POST', `/api/v1/channels/${id}/test`, { token });

describe('POST /api/v1/channels/{id}/test', () => {
  it('sends one signed test notification; the answer and the delivery log say delivered', async () => {
    const ch = await webhook('ops hook', '/hook');
    const res = await test(ch.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, outcome: 'delivered', httpStatus: 200, error: null });
    const hits = received.filter((r) => r.path === '/hook');
    expect(hits).toHaveLength(1);
    expect(hits[0]).toMatchObject({ valid: true, test: true });
    const log = await gw.request<DeliveryLogResponse>('GET', `/api/v1/alerts/deliveries?channelId=${ch.id}`, {
      token: viewer,
    });
    expect(log.body.items).toHaveLength(1);
    expect(log.body.items[0]).toMatchObject({
      deliveryId: res.body.deliveryId,
      channelName: 'ops hook',
      channelType: 'webhook',
      outcome: 'delivered',
      httpStatus: 200,
      test: true,
      attempt: 1,
    });
  });

  it("a receiver's refusal comes back with its status and text, the secret scrubbed everywhere", async () => {
    const ch = await webhook('refusing hook', '/refuse');
    const res = await test(ch.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: false, outcome: 'failed', httpStatus: 500 });
    expect(res.body.error).toMatch(/^HTTP 500: refused/);
    expect(res.text).not.toContain(SECRET);
    expect(received.filter((r) => r.path === '/refuse')).toHaveLength(1);
    const log = await gw.request('GET', `/api/v1/alerts/deliveries?channelId=${ch.id}&outcome=failed`, {
      token: viewer,
    });
    expect(log.text).toContain('HTTP 500');
    expect(log.text).not.toContain(SECRET);
    expect(aggregator.output()).not.toContain(SECRET);
  });

  it('a receiver that is not there: failed with the connection error, not retried', async () => {
    const res = await gw.request<Channel>('POST', '/api/v1/channels', {
      token: operator,
      body: { type: 'slack', name: 'nobody home', url: 'http://127.0.0.1:9/services/T000/B000/zz-slack-url-secret' },
    });
    expect(res.status).toBe(201);
    const sent = await test(res.body.id);
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({ ok: false, outcome: 'failed', httpStatus: null });
    expect(sent.body.error).toMatch(/ECONNREFUSED/);
    // (Scrubbing of the secret URL from errors is shown by the /refuse case: a connect error never holds it.)
  });

  it('the target policy: a denied literal is a 422 naming the field at save; a denied address at send never sees a connection', async () => {
    const refused = await gw.request<ApiErrorBody>('POST', '/api/v1/channels', {
      token: operator,
      body: { type: 'webhook', name: 'metadata', url: 'http://169.254.169.254/latest/meta-data' },
    });
    expect(refused.status).toBe(422);
    expect(refused.body.error.issues?.map((i) => i.path)).toEqual(['url']);

    let connections = 0;
    const canary = createNetServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((resolve) => canary.listen(0, '127.0.0.2', resolve));
    try {
      const port = (canary.address() as AddressInfo).port;
      const ch = await webhook('canary hook', '/x');
      // Another origin: its secret is sent again (a stored one never follows a move, see below).
      const moved = await gw.request<Channel>('PATCH', `/api/v1/channels/${ch.id}`, {
        token: operator,
        body: { url: `http://127.0.0.2:${port}/in`, secret: SECRET },
      });
      expect(moved.status).toBe(200);
      const res = await test(ch.id);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ ok: false, outcome: 'failed', httpStatus: null });
      expect(res.body.error).toMatch(/refused by the target policy: address 127\.0\.0\.2 is in denied network/);
      expect(connections).toBe(0);
    } finally {
      await new Promise((resolve) => canary.close(resolve));
    }
  });

  it('a stored secret never follows a channel to another host: moving a webhook to another origin needs its secrets sent again', async () => {
    const TOKEN = 'zz-bearer-canary-91c4-token';
    const seen: { path: string; authorization: string | undefined; body: string }[] = [];
    // Another origin (another port) that an operator points the channel at, keeping what is stored.
    const elsewhere = createServer((req, res) => {
      void bodyOf(req).then((body) => {
        seen.push({ path: req.url ?? '', authorization: req.headers.authorization, body });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const other = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
    try {
      const created = await gw.request<Channel>('POST', '/api/v1/channels', {
        token: operator,
        body: { type: 'webhook', name: 'moving hook', url: `${base}/moving`, secret: SECRET, bearerToken: TOKEN },
      });
      expect(created.status).toBe(201);
      const id = created.body.id;
      const patch = (body: Record<string, unknown>) =>
        gw.request<Channel & ApiErrorBody>('PATCH', `/api/v1/channels/${id}`, { token: operator, body });

      const moved = await patch({ url: `${other}/in` });
      // Whatever that answered, a send must not bring the stored token or a signature made with the key there.
      await test(id);
      expect(seen.map((s) => s.authorization)).not.toContain(`Bearer ${TOKEN}`);
      expect(seen).toEqual([]);
      expect(moved.status).toBe(400);
      expect(moved.body.error.issues?.map((i) => i.path).sort()).toEqual(['bearerToken', 'secret']);
      expect(moved.body.error.message).toContain(`${other}`);
      expect(moved.text).not.toContain(TOKEN);
      expect((await gw.request<Channel>('GET', `/api/v1/channels/${id}`, { token: viewer })).body).toMatchObject({
        url: `${base}/moving`,
      });

      // Another path on the same origin keeps them: the same host already holds them.
      const samePlace = await patch({ url: `${base}/moving-on` });
      expect(samePlace.status).toBe(200);
      expect(samePlace.body).toMatchObject({ secret: { set: true }, bearerToken: { set: true } });

      // Moved with its secrets sent again (the signing key the new receiver knows, a new token): accepted, sent there.
      const resent = await patch({ url: `${other}/in`, secret: SECRET, bearerToken: 'zz-token-for-the-new-host' });
      expect(resent.status).toBe(200);
      expect((await test(id)).body).toMatchObject({ ok: true, outcome: 'delivered' });
      expect(seen.map((s) => s.authorization)).toEqual(['Bearer zz-token-for-the-new-host']);
    } finally {
      await new Promise((resolve) => elsewhere.close(resolve));
    }
  });

  it('who may: 401 without a token, 403 for viewers and read keys; a bad id 400, an unknown channel 404', async () => {
    const ch = await webhook('auth hook', '/auth');
    expect((await gw.request('POST', `/api/v1/channels/${ch.id}/test`)).status).toBe(401);
    expect((await test(ch.id, viewer)).status).toBe(403);
    expect((await test(ch.id, readKey)).status).toBe(403);
    expect(received.filter((r) => r.path === '/auth')).toHaveLength(0);
    const bad = await test('has%20space');
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues?.[0].path).toBe('id');
    expect((await test('no-such-channel')).status).toBe(404);
  });

  it('the aggregator away: 503 with Retry-After after the wait', async () => {
    const ch = await webhook('late hook', '/late');
    await aggregator.stop();
    const started = Date.now();
    const res = await test(ch.id);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(received.filter((r) => r.path === '/late')).toHaveLength(0);
  });
});
