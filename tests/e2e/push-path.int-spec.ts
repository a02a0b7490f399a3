import { waitFor } from '@fleetwatch/testing';
import { ADMIN_PASSWORD, startSite, type E2eSite } from './e2e-site';

// The first whole path through the product, across three running services:
// a person logs in and makes a key at the gateway, a daemon pushes to
// status-ingest, the aggregator folds it, the person reads it back — and a key
// revoked at the gateway stops working at the ingest edge within 5 s.
const PORTS = { gateway: 13100, ingest: 13101, aggregator: 13103 };
let site: E2eSite;

const json = (body: unknown) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

beforeAll(async () => {
  site = await startSite('push-path', {
    aggregator: PORTS.aggregator,
    'status-ingest': PORTS.ingest,
    'api-gateway': PORTS.gateway,
  });
}, 120_000);

afterAll(async () => {
  await site?.stop();
});

describe('push path across the running services', () => {
  it('login → API key → push → target readable → revoke → refused at ingest within 5 s', async () => {
    const gw = `http://127.0.0.1:${PORTS.gateway}`;
    const ingest = `http://127.0.0.1:${PORTS.ingest}`;
    const login = await fetch(`${gw}/api/v1/auth/login`, json({ username: 'admin', password: ADMIN_PASSWORD }));
    expect(login.status).toBe(200);
    const { token } = (await login.json()) as { token: string };
    const auth = { authorization: `Bearer ${token}` };

    const created = await fetch(`${gw}/api/v1/api-keys`, {
      ...json({ name: 'e2e', scopes: ['ingest'] }),
      headers: { 'content-type': 'application/json', ...auth },
    });
    expect(created.status).toBe(201);
    const key = (await created.json()) as { id: string; key: string };

    const push = (instanceId: string, status: string) =>
      fetch(`${ingest}/api/v1/status/updates`, {
        ...json({ instanceId, kind: 'container', status, location: 'lab-1' }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key.key}` },
      });
    expect((await push('web-1', 'running')).status).toBe(202);

    const target = await waitFor(
      async () => {
        const r = await fetch(`${gw}/api/v1/targets/instance:web-1`, { headers: auth });
        return r.status === 200
          ? ((await r.json()) as { status: string; locations: { location: string; status: string }[] })
          : null;
      },
      { timeoutMs: 10_000, intervalMs: 50, description: 'instance:web-1 readable through the gateway' },
    );
    expect(target).toMatchObject({ status: 'UP', locations: [{ location: 'lab-1', status: 'UP' }] });

    expect((await push('web-1', 'exited')).status).toBe(202);
    await waitFor(
      async () =>
        ((await (await fetch(`${gw}/api/v1/targets/instance:web-1`, { headers: auth })).json()) as { status: string })
          .status === 'DOWN',
      {
        timeoutMs: 10_000,
        description: 'the transition to DOWN',
      },
    );
    const history = (await (
      await fetch(`${gw}/api/v1/targets/instance:web-1/history?minutes=5`, { headers: auth })
    ).json()) as { events: { from: string; to: string }[] };
    expect(history.events.map((e) => `${e.from}>${e.to}`)).toEqual(expect.arrayContaining(['UP>DOWN']));
    const metrics = await (await fetch(`${gw}/metrics`)).text();
    expect(metrics).toContain('fleetwatch_target_up{target="instance:web-1",kind="instance",location="lab-1"} 0');

    const revoked = await fetch(`${gw}/api/v1/api-keys/${key.id}`, { method: 'DELETE', headers: auth });
    expect(revoked.status).toBeLessThan(300);
    const t0 = Date.now();
    await waitFor(async () => (await push('web-1', 'running')).status === 401, {
      timeoutMs: 5_000,
      intervalMs: 100,
      description: 'the revoked key refused at the ingest edge',
    });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
