import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import type { StatusChangeDelivery, Subscription, SubscriptionDeliveryView } from '@fleetwatch/contracts';
import { verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from '@fleetwatch/alerting';
import { generateSealingKeyText } from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import { GatewayClient } from './gateway-client';
import { createSite, type E2eSite } from './site-launcher';

// Status-change subscriptions through the product (SPEC §7, issue 18): made over REST (the secret
// write-only: never answered, never in the audit log), written by sync-orchestrator as a config version;
// a pushed instance going DOWN reaches a receiver started here as exactly one request whose HMAC verifies;
// deleted, it sends nothing more.

jest.setTimeout(240_000);

const SECRET = 'e2e subscription secret 0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let site: E2eSite;
let gw: GatewayClient;
let pg: Client;
let receiver: Server;
let ingestUrl: string;
let ingestKey: string;
const received: Array<{ verified: boolean; body: StatusChangeDelivery }> = [];

/** A request to the gateway; a 503 (the owner did not answer in time on a loaded box) is tried again. */
async function call<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return waitFor(
    async () => {
      const res = await gw.request<T>(method, path, body, headers);
      return res.status === 503 ? null : res;
    },
    { timeoutMs: 60_000, intervalMs: 1000, description: `${method} ${path} answered (not 503)` },
  );
}

async function push(instanceId: string, status: 'running' | 'exited'): Promise<void> {
  const res = await fetch(`${ingestUrl}/api/v1/status/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` },
    body: JSON.stringify({ instanceId, kind: 'container', status, location: 'lab-1' }),
  });
  if (res.status !== 202) throw new Error(`push answered ${res.status}: ${await res.text()}`);
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const header = (name: string) => [req.headers[name]].flat()[0];
      received.push({
        verified: verifyWebhookSignature({
          secret: SECRET,
          body,
          timestamp: header(WEBHOOK_TIMESTAMP_HEADER),
          signature: header(WEBHOOK_SIGNATURE_HEADER),
          now: Date.now(),
        }),
        body: JSON.parse(body) as StatusChangeDelivery,
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  site = await createSite('subscriptions', {
    FLEETWATCH_ENCRYPTION_KEY: generateSealingKeyText(),
    AGGREGATOR_BATCH_WAIT_MS: '5',
  });
  pg = new Client({ connectionString: site.db.databaseUrl });
  pg.on('error', () => undefined);
  await pg.connect();
  await Promise.all([site.start('sync-orchestrator'), site.start('aggregator'), site.start('status-ingest')]);
  const gateway = await site.start('api-gateway');
  ingestUrl = site.service('status-ingest').url;
  gw = await GatewayClient.login(gateway.url);
  const key = await gw.request<{ key: string }>('POST', '/api/v1/api-keys', { name: 'sub-e2e', scopes: ['ingest'] });
  if (key.status !== 201) throw new Error(`POST /api/v1/api-keys answered ${key.status}: ${key.text}`);
  ingestKey = key.body.key;
});

afterAll(async () => {
  await pg?.end().catch(() => undefined);
  await site?.stop();
  await new Promise((r) => receiver?.close(r));
});

describe('status-change subscriptions over the API', () => {
  let sub: Subscription;

  it('refuses a body without a secret or with a bad URL, naming the field', async () => {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const noSecret = await call<{ message: string }>('POST', '/api/v1/subscriptions', { name: 'x', url });
    expect(noSecret.status).toBe(400);
    expect(noSecret.text).toMatch(/secret/);
    const badUrl = await call('POST', '/api/v1/subscriptions', { name: 'x', url: 'ftp://x', secret: SECRET });
    expect(badUrl.status).toBe(400);
    expect(badUrl.text).toMatch(/url/);
    // The checks' target policy: a cloud metadata address is refused at save time.
    const metadata = await call('POST', '/api/v1/subscriptions', {
      name: 'x',
      url: 'http://169.254.169.254/latest/meta-data',
      secret: SECRET,
    });
    expect(metadata.status).toBe(400);
    expect(metadata.text).toMatch(/url.*169\.254\.0\.0\/16/s);
    const notUuid = await call('GET', '/api/v1/subscriptions/not-a-uuid');
    expect(notUuid.status).toBe(400);
  });

  it('creates one (the secret never answered nor audited), lists, reads and replaces it', async () => {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const created = await call<Subscription>('POST', '/api/v1/subscriptions', {
      name: 'api down',
      url,
      secret: SECRET,
      selector: { targetIds: ['instance:sub-api-1'] },
      transitions: { to: ['DOWN'] },
    });
    expect(created.status).toBe(201);
    sub = created.body;
    expect(sub).toMatchObject({ name: 'api down', url, secret: { set: true }, perLocation: false, enabled: true });
    expect(created.headers.get('location')).toBe(`/api/v1/subscriptions/${sub.id}`);
    expect(created.text).not.toContain(SECRET);

    const list = await call<{ items: Subscription[] }>('GET', '/api/v1/subscriptions');
    expect(list.body.items.map((s) => s.id)).toEqual([sub.id]);
    expect(list.text).not.toContain(SECRET);

    // A replace without the secret keeps it (the delivery below verifies with it).
    const replaced = await call<Subscription>(
      'PUT',
      `/api/v1/subscriptions/${sub.id}`,
      {
        name: 'api down (renamed)',
        url,
        selector: { targetIds: ['instance:sub-api-1'] },
        transitions: { to: ['DOWN'] },
      },
      { 'if-match': `"${sub.version}"` },
    );
    expect(replaced.status).toBe(200);
    expect(replaced.body.version).toBeGreaterThan(sub.version);
    const stale = await call(
      'PUT',
      `/api/v1/subscriptions/${sub.id}`,
      { name: 'z', url },
      { 'if-match': `"${sub.version}"` },
    );
    expect(stale.status).toBe(409);
    sub = replaced.body;
    // Moved to another origin without the secret: refused (the stored secret signs only for where it was given).
    const moved = await call<{ error: { issues: Array<{ path: string; message: string }> } }>(
      'PUT',
      `/api/v1/subscriptions/${sub.id}`,
      { name: 'api down (renamed)', url: 'http://127.0.0.2:9/elsewhere' },
      { 'if-match': `"${sub.version}"` },
    );
    expect(moved.status).toBe(400);
    expect(moved.body.error.issues[0]).toMatchObject({
      path: 'secret',
      message: expect.stringMatching(/send the secret again/),
    });
    expect((await call<Subscription>('GET', `/api/v1/subscriptions/${sub.id}`)).body).toMatchObject({
      url,
      version: sub.version,
    });

    const audit = await pg.query<{ action: string; text: string }>(
      "SELECT action, row_to_json(a)::text AS text FROM audit_log a WHERE action LIKE 'subscription.%' ORDER BY 1",
    );
    expect(audit.rows.map((r) => r.action).sort()).toEqual(['subscription.create', 'subscription.replace']);
    for (const r of audit.rows) expect(r.text).not.toContain(SECRET);
    const stored = await pg.query<{ secret: string }>('SELECT secret FROM status_subscriptions');
    expect(stored.rows[0].secret).not.toContain(SECRET);
  });

  it('a pushed instance going DOWN: exactly one signed request; another target sends nothing', async () => {
    await push('sub-api-1', 'running');
    await push('sub-api-2', 'running');
    await waitFor(async () => (await gw.target('instance:sub-api-1'))?.status === 'UP', {
      timeoutMs: 20_000,
      description: 'sub-api-1 UP',
    });
    await push('sub-api-2', 'exited');
    await push('sub-api-1', 'exited');
    await waitFor(() => received.length >= 1, { timeoutMs: 30_000, description: 'the signed request' });
    await waitFor(async () => (await gw.target('instance:sub-api-2'))?.status === 'DOWN', {
      timeoutMs: 20_000,
      description: 'sub-api-2 DOWN',
    });
    await sleep(2500);
    expect(received).toHaveLength(1);
    expect(received[0].verified).toBe(true);
    expect(received[0].body).toMatchObject({
      subscriptionId: sub.id,
      targetId: 'instance:sub-api-1',
      from: 'UP',
      to: 'DOWN',
      location: null,
    });
    // The delivery log over the API: one delivery, delivered at the first attempt.
    const log = await call<{ items: SubscriptionDeliveryView[] }>('GET', `/api/v1/subscriptions/${sub.id}/deliveries`);
    expect(log.status).toBe(200);
    expect(log.body.items).toEqual([
      expect.objectContaining({
        eventId: received[0].body.eventId,
        targetId: 'instance:sub-api-1',
        state: 'delivered',
        attempts: 1,
        log: [expect.objectContaining({ attempt: 1, outcome: 'delivered', httpStatus: 204, error: null })],
      }),
    ]);
  });

  it('deleted: 204, then 404, and the next DOWN sends nothing', async () => {
    const del = await call('DELETE', `/api/v1/subscriptions/${sub.id}`);
    expect(del.status).toBe(204);
    expect((await call('GET', `/api/v1/subscriptions/${sub.id}`)).status).toBe(404);
    await push('sub-api-1', 'running');
    await waitFor(async () => (await gw.target('instance:sub-api-1'))?.status === 'UP', {
      timeoutMs: 20_000,
      description: 'sub-api-1 UP again',
    });
    await push('sub-api-1', 'exited');
    await waitFor(async () => (await gw.target('instance:sub-api-1'))?.status === 'DOWN', {
      timeoutMs: 20_000,
      description: 'sub-api-1 DOWN again',
    });
    await sleep(2500);
    expect(received).toHaveLength(1);
  });
});
