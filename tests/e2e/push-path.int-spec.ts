import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createIsolatedDatabase, createIsolatedVhost, testEnv, waitFor, type IsolatedDatabase, type IsolatedVhost } from '@fleetwatch/testing';

// The first whole path through the product, across three running services:
// a person logs in and makes a key at the gateway, a daemon pushes to
// status-ingest, the aggregator folds it, the person reads it back — and a key
// revoked at the gateway stops working at the ingest edge within 5 s.
const root = join(__dirname, '../..');
const PORTS = { gateway: 13100, ingest: 13101, aggregator: 13103 };
const children: ChildProcess[] = [];
let db: IsolatedDatabase;
let vhost: IsolatedVhost;

function start(service: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [join(root, 'dist/apps', service, 'src/main.js')], { cwd: root, env: { ...process.env, ...env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  return child;
}

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  db = await createIsolatedDatabase();
  vhost = await createIsolatedVhost('push-path');
  const env = {
    DATABASE_URL: db.databaseUrl,
    AMQP_URL: vhost.amqpUrl,
    REDIS_URL: testEnv().redisUrl,
    FLEETWATCH_REDIS_PREFIX: `${testEnv().redisPrefix}push-path:`,
    FLEETWATCH_ADMIN_PASSWORD: 'e2e-admin-password',
    API_GATEWAY_PORT: String(PORTS.gateway),
    STATUS_INGEST_PORT: String(PORTS.ingest),
    AGGREGATOR_PORT: String(PORTS.aggregator),
  };
  start('aggregator', env);
  start('status-ingest', env);
  start('api-gateway', env);
  for (const port of Object.values(PORTS)) {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200, { timeoutMs: 60_000, intervalMs: 200, description: `:${port}/readyz` });
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(
    children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((resolve) => {
      c.once('exit', resolve);
      c.kill('SIGINT');
    }))),
  );
  await vhost?.dispose();
  await db?.dispose();
});

describe('push path across the running services', () => {
  it('login → API key → push → target readable → revoke → refused at ingest within 5 s', async () => {
    const gw = `http://127.0.0.1:${PORTS.gateway}`;
    const ingest = `http://127.0.0.1:${PORTS.ingest}`;
    const login = await fetch(`${gw}/api/v1/auth/login`, json({ username: 'admin', password: 'e2e-admin-password' }));
    expect(login.status).toBe(200);
    const { token } = (await login.json()) as { token: string };
    const auth = { authorization: `Bearer ${token}` };

    const created = await fetch(`${gw}/api/v1/api-keys`, { ...json({ name: 'e2e', scopes: ['ingest'] }), headers: { 'content-type': 'application/json', ...auth } });
    expect(created.status).toBe(201);
    const key = (await created.json()) as { id: string; key: string };

    const push = (instanceId: string, status: string) =>
      fetch(`${ingest}/api/v1/status/updates`, { ...json({ instanceId, kind: 'container', status, location: 'lab-1' }), headers: { 'content-type': 'application/json', authorization: `Bearer ${key.key}` } });
    expect((await push('web-1', 'running')).status).toBe(202);

    const target = await waitFor(
      async () => {
        const r = await fetch(`${gw}/api/v1/targets/instance:web-1`, { headers: auth });
        return r.status === 200 ? ((await r.json()) as { status: string; locations: { location: string; status: string }[] }) : null;
      },
      { timeoutMs: 10_000, intervalMs: 50, description: 'instance:web-1 readable through the gateway' },
    );
    expect(target).toMatchObject({ status: 'UP', locations: [{ location: 'lab-1', status: 'UP' }] });

    expect((await push('web-1', 'exited')).status).toBe(202);
    await waitFor(async () => ((await (await fetch(`${gw}/api/v1/targets/instance:web-1`, { headers: auth })).json()) as { status: string }).status === 'DOWN', {
      timeoutMs: 10_000,
      description: 'the transition to DOWN',
    });
    const history = (await (await fetch(`${gw}/api/v1/targets/instance:web-1/history?minutes=5`, { headers: auth })).json()) as { events: { from: string; to: string }[] };
    expect(history.events.map((e) => `${e.from}>${e.to}`)).toEqual(expect.arrayContaining(['UP>DOWN']));
    const metrics = await (await fetch(`${gw}/metrics`)).text();
    expect(metrics).toContain('fleetwatch_target_up{target="instance:web-1",kind="instance",location="lab-1"} 0');

    const revoked = await fetch(`${gw}/api/v1/api-keys/${key.id}`, { method: 'DELETE', headers: auth });
    expect(revoked.status).toBeLessThan(300);
    const t0 = Date.now();
    await waitFor(async () => (await push('web-1', 'running')).status === 401, { timeoutMs: 5_000, intervalMs: 100, description: 'the revoked key refused at the ingest edge' });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
