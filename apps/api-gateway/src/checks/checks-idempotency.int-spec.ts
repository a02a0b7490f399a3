import type { ApiErrorBody, CheckDefinition, Page } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { TcpProxy } from '@fleetwatch/testing';
import { rmSync } from 'node:fs';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from './owner-process.int-helpers';

// A write the owner commits while its answer does not reach the gateway in time (the broker's bytes to
// the gateway held back, as on a congested or flapping link): the client is told 503 "outcome unknown",
// yet the check exists. A plain retry of the create is a 409 (no duplicate, but the script cannot tell
// its own check from someone else's, and a push check's ping token is lost). With an `Idempotency-Key`
// the retry is answered as the first request was: the same check (and token), nothing written twice.

jest.setTimeout(180_000);

const RPC_TIMEOUT_MS = 1_500;
let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
let token: string;
let proxy: TcpProxy;
let vhost: { amqpUrl: string; dispose(): Promise<void> };

beforeAll(async () => {
  // The gateway reaches the broker through a proxy of the test's; the owner directly, on the same vhost.
  vhost = await testing.createIsolatedVhost(`gw-idem-${Date.now().toString(36)}`);
  proxy = TcpProxy.forUrl(vhost.amqpUrl);
  await proxy.start();
  gw = await startGateway(testing, 'checks-idem', {
    env: { AMQP_URL: proxy.rewriteUrl(vhost.amqpUrl), GATEWAY_RPC_TIMEOUT_MS: String(RPC_TIMEOUT_MS) },
  });
  dist = await privateOwnerDist(`owner-idem-${testing.testEnv().runId}`);
  owner = await startOwnerProcess(dist, {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: vhost.amqpUrl,
    redisUrl: gw.config.redisUrl,
    redisPrefix: `${testing.testEnv().redisPrefix}owner-idem:`,
  });
  token = await gw.login('admin', ADMIN_PASSWORD);
  // One call first: the gateway's request channel is opened (a channel opened while the broker is held never is).
  expect(await named('warm-up')).toEqual([]);
  // And one write: the owner's first write is its slowest (first transaction, statements prepared), and each write
  // whose answer the tests hold must commit within the gateway's RPC timeout.
  const warm = await gw.request('POST', '/api/v1/checks', { token, body: tcp('warm-up-write') });
  expect(warm.status).toBe(201);
});

afterAll(async () => {
  proxy?.release();
  await owner?.stop();
  await gw?.close();
  await proxy?.stop();
  await vhost?.dispose();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function named(name: string): Promise<CheckDefinition[]> {
  const res = await gw.request<Page<CheckDefinition>>('GET', '/api/v1/checks?limit=1000', { token });
  expect(res.status).toBe(200);
  return res.body.items.filter((c) => c.name === name);
}

/** Sends a write while the broker's answers to the gateway are held past its RPC timeout: 503, yet committed. */
async function lostAnswer(
  method: 'POST' | 'PATCH' | 'DELETE',
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  proxy.hold();
  try {
    const res = await gw.request<ApiErrorBody>(method, path, { token, body, headers });
    expect([res.status, res.body.error?.code]).toEqual([503, 'unavailable']);
  } finally {
    proxy.release();
  }
  // Let the gateway's connection settle (its late reply is dropped) before the retry.
  await sleep(500);
}

/** The checks named so, once there is one (the first request committed; its answer was what got lost). */
async function madeOnce(name: string): Promise<CheckDefinition> {
  const until = Date.now() + 20_000;
  for (;;) {
    const found = await named(name);
    if (found.length > 0 || Date.now() > until) {
      expect(found).toHaveLength(1);
      return found[0];
    }
    await sleep(200);
  }
}

const tcp = (name: string) => ({ name, type: 'tcp', host: '127.0.0.1', port: 5999, intervalSeconds: 30 });

describe('a write committed while its answer was lost (503)', () => {
  it('without Idempotency-Key: the retry of a create is a 409 (the check exists, made by the first request)', async () => {
    await lostAnswer('POST', '/api/v1/checks', tcp('plain'));
    await madeOnce('plain');
    const retry = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', { token, body: tcp('plain') });
    expect([retry.status, retry.body.error?.code]).toEqual([409, 'conflict']);
  });

  it('with Idempotency-Key: the retry gets the first answer — the same check, 201, one check, one version', async () => {
    const key = { 'idempotency-key': 'deploy-42/create-keyed' };
    await lostAnswer('POST', '/api/v1/checks', tcp('keyed'), key);
    const made = await madeOnce('keyed');
    const retry = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token,
      body: tcp('keyed'),
      headers: key,
    });
    expect(retry.status).toBe(201);
    expect(retry.body).toMatchObject({ id: made.id, version: made.version });
    expect(retry.headers.get('etag')).toBe(`"${made.version}"`);
    expect(await named('keyed')).toHaveLength(1);
    // Another key is another request: the name is taken.
    const other = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      token,
      body: tcp('keyed'),
      headers: { 'idempotency-key': 'deploy-43/create-keyed' },
    });
    expect(other.status).toBe(409);
  });

  it('a heartbeat (push check): the retry with the key gets the ping token the lost answer carried', async () => {
    const key = { 'idempotency-key': 'hb-1' };
    const body = { name: 'nightly', periodSeconds: 3600, graceSeconds: 600 };
    await lostAnswer('POST', '/api/v1/heartbeats', body, key);
    const made = await madeOnce('nightly');
    const retry = await gw.request<{ id: string; token: string; pingUrl: string }>('POST', '/api/v1/heartbeats', {
      token,
      body,
      headers: key,
    });
    expect(retry.status).toBe(201);
    expect(retry.body.token).toEqual(expect.any(String));
    expect(retry.body.pingUrl).toContain(retry.body.token);
    expect(retry.body.id).toBe(made.id);
    expect((await named('nightly')).map((c) => c.id)).toEqual([made.id]);
  });

  it('the key is per caller and per request: the same key with another body or route is another request', async () => {
    const key = { 'idempotency-key': 'reused' };
    const a = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token,
      body: tcp('reused-a'),
      headers: key,
    });
    expect(a.status).toBe(201);
    // The same body with its fields in another order (a client that builds it again) is the same request.
    const { name, type, ...rest } = tcp('reused-a');
    const again = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token,
      body: { ...rest, type, name },
      headers: key,
    });
    expect([again.status, again.body.id]).toEqual([201, a.body.id]);
    const b = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token,
      body: tcp('reused-b'),
      headers: key,
    });
    expect(b.status).toBe(201);
    expect(b.body.id).not.toBe(a.body.id);
    // The same key on a PATCH of the first: applied, then answered again as applied.
    const patch = () =>
      gw.request<CheckDefinition>('PATCH', `/api/v1/checks/${a.body.id}`, {
        token,
        body: { intervalSeconds: 45 },
        headers: key,
      });
    const p1 = await patch();
    const p2 = await patch();
    expect([p1.status, p2.status, p2.body.version]).toEqual([200, 200, p1.body.version]);
    // A delete repeated with its key: 204 both times, not 404.
    const del = () =>
      gw.request('DELETE', `/api/v1/checks/${b.body.id}`, { token, headers: { 'idempotency-key': 'del-b' } });
    expect([(await del()).status, (await del()).status]).toEqual([204, 204]);
  });

  it('a key that is not 1–255 visible ASCII characters is a 400 naming the header', async () => {
    for (const bad of ['', ' ', 'x'.repeat(256), 'naïve']) {
      const res = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
        token,
        body: tcp('bad-key'),
        headers: { 'idempotency-key': bad },
      });
      // '' too: fetch sends an empty header, and it is no key (not "no header").
      expect([bad, res.status, res.body.error?.issues?.[0]?.path]).toEqual([bad, 400, 'Idempotency-Key']);
    }
  });
});
