import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OpenAPIObject } from '@nestjs/swagger';
import type { ApiErrorBody } from '@fleetwatch/contracts';
import { GatewayHarness, startGateway } from '../int-spec.helpers';
import * as testing from '@fleetwatch/testing';

// What the gateway serves besides the API: the dashboard (with SPA fallback), the
// OpenAPI document, health and readiness; and the first start's admin.

let gw: GatewayHarness;
let dir: string;
const INDEX = '<!doctype html><title>Fleetwatch</title><div id="root"></div>';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fw-dashboard-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), INDEX);
  writeFileSync(join(dir, 'assets', 'app-1234.js'), 'console.log("fleetwatch")');
  gw = await startGateway(testing, 'web', { env: { DASHBOARD_DIR: dir } });
});
afterAll(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('dashboard', () => {
  it('serves index.html at / and its files as they are', async () => {
    const root = await gw.request('GET', '/');
    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toMatch(/text\/html/);
    expect(root.text).toBe(INDEX);
    const js = await gw.request('GET', '/assets/app-1234.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.text).toContain('fleetwatch');
  });

  it.each(['/targets', '/targets/instance:web-1', '/fleet/sync?member=eu'])(
    'falls back to index.html for the app route %s',
    async (path) => {
      const res = await gw.request('GET', path);
      expect(res.status).toBe(200);
      expect(res.text).toBe(INDEX);
    },
  );

  it.each([
    ['GET', '/api/v1/nothing-here'],
    ['GET', '/api'],
    ['POST', '/api/v1/nothing-here'],
    ['DELETE', '/api/v2/targets'],
    ['GET', '/assets/missing-9999.js'],
  ])('answers %s %s with a 404 JSON error, never HTML', async (method, path) => {
    const res = await gw.request<ApiErrorBody>(method, path);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(res.body.error.code).toBe('not_found');
  });

  it.each([
    '/..%2f..%2f..%2fetc%2fpasswd',
    '/assets/..%2f..%2f..%2f..%2fetc%2fpasswd',
    '/assets/..%5c..%5c..%5cetc%5cpasswd',
    '/%2e%2e/%2e%2e/etc/passwd',
  ])('never serves a file outside the dashboard (%s)', async (path) => {
    const res = await gw.request('GET', path);
    expect(res.text).not.toMatch(/root:/);
    expect([200, 404]).toContain(res.status);
    if (res.status === 200) expect(res.text).toBe(INDEX);
  });

  it('says so when the dashboard is not built', async () => {
    const bare = await startGateway(testing, 'web-bare', { env: { DASHBOARD_DIR: join(dir, 'does-not-exist') } });
    try {
      const res = await bare.request<ApiErrorBody>('GET', '/');
      expect(res.status).toBe(404);
      expect(res.body.error.message).toMatch(/not built/);
    } finally {
      await bare.close();
    }
  });
});

describe('OpenAPI, health and readiness', () => {
  it('serves Swagger UI at /api/docs and the document with bearer auth', async () => {
    const ui = await gw.request('GET', '/api/docs');
    expect(ui.status).toBe(200);
    expect(ui.text).toMatch(/swagger/i);
    const doc = await gw.request<OpenAPIObject>('GET', '/api/docs/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.components?.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/auth/login',
        '/api/v1/targets',
        '/api/v1/targets/{id}/history',
        '/api/v1/api-keys',
      ]),
    );
    // Health endpoints are infrastructure, not API.
    expect(Object.keys(doc.body.paths).filter((p) => !p.startsWith('/api/v1/'))).toEqual([]);
  });

  it('answers /healthz and /readyz (database, redis, bus) without a token', async () => {
    expect((await gw.request('GET', '/healthz')).status).toBe(200);
    const ready = await gw.request<{ status: string; checks: { name: string; ok: boolean }[] }>('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks.map((c) => [c.name, c.ok]).sort()).toEqual([
      ['bus', true],
      ['database', true],
      ['redis', true],
    ]);
  });
});

describe('first start', () => {
  let database: testing.IsolatedDatabase;
  beforeAll(async () => {
    database = await testing.createIsolatedDatabase();
  });
  afterAll(() => database?.dispose());

  it('creates admin with a generated password printed once to stdout, and not again on the next start', async () => {
    const printed: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      printed.push(String(chunk));
      return true;
    });
    try {
      const first = await startGateway(testing, 'web-first', {
        database,
        env: { FLEETWATCH_ADMIN_PASSWORD: undefined },
      });
      const banner = printed.join('').match(/generated password[^\n]*\n\n {5}(\S+)\n/);
      expect(banner).not.toBeNull();
      const password = (banner as RegExpMatchArray)[1];
      expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
      expect(await first.login('admin', password)).toMatch(/^fws_/);
      await first.close();

      printed.length = 0;
      const second = await startGateway(testing, 'web-second', {
        database,
        env: { FLEETWATCH_ADMIN_PASSWORD: undefined },
      });
      expect(printed.join('')).not.toContain(password);
      expect(printed.join('')).not.toMatch(/generated password/);
      expect(await second.login('admin', password)).toMatch(/^fws_/);
      await second.close();
    } finally {
      spy.mockRestore();
    }
  });
});
