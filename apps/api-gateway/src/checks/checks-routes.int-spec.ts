import type { ApiErrorBody, AuditEntry, CheckDefinition, CreateApiKeyResponse, Page } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { rmSync } from 'node:fs';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from './owner-process.int-helpers';

// The check routes through the gateway to their owner: sync-orchestrator, built from
// today's sources and run as a process on the gateway's database and vhost. What the
// gateway checks itself (the envelope), what the owner refuses and how that reads over
// HTTP, who may do what, and 503 when the owner does not answer.

jest.setTimeout(120_000);

let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
const BULK_TIMEOUT_MS = 8_000;
const tokens: Record<'admin' | 'operator' | 'viewer' | 'readKey' | 'writeKey', string> = {} as never;
const ids: Record<'operator' | 'writeKey', string> = {} as never;

beforeAll(async () => {
  // Bulk create, import and export wait longer than one check's call (kept short here: the owner-gone test waits it out).
  gw = await startGateway(testing, 'checks', { env: { GATEWAY_RPC_BULK_TIMEOUT_MS: String(BULK_TIMEOUT_MS) } });
  dist = await privateOwnerDist(`owner-checks-${testing.testEnv().runId}`);
  owner = await startOwnerProcess(dist, {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: gw.config.amqpUrl,
    redisUrl: gw.config.redisUrl,
    redisPrefix: `${testing.testEnv().redisPrefix}owner-checks:`,
  });
  tokens.admin = await gw.login('admin', ADMIN_PASSWORD);
  for (const role of ['viewer', 'operator'] as const) {
    const user = await gw.request<{ id: string }>('POST', '/api/v1/users', {
      token: tokens.admin,
      body: { username: role, password: `${role}-password`, role },
    });
    if (role === 'operator') ids.operator = user.body.id;
    tokens[role] = await gw.login(role, `${role}-password`);
  }
  for (const [name, scope] of [
    ['readKey', 'read'],
    ['writeKey', 'write'],
  ] as const) {
    const key = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token: tokens.admin,
      body: { name: `ci-${scope}`, scopes: [scope] },
    });
    tokens[name] = key.body.key;
    if (name === 'writeKey') ids.writeKey = key.body.id;
  }
});

afterAll(async () => {
  await owner?.stop();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

const tcp = (name: string, port: number, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'tcp',
  host: '127.0.0.1',
  port,
  intervalSeconds: 30,
  ...extra,
});

async function auditOf(id: string): Promise<AuditEntry[]> {
  const res = await gw.request<Page<AuditEntry>>('GET', `/api/v1/config/audit?subject=${id}`, { token: tokens.admin });
  expect(res.status).toBe(200);
  return res.body.items;
}

describe('check routes → sync-orchestrator → HTTP', () => {
  let check: CheckDefinition;

  it('POST: 201 with id and targetId, ETag and Location; audited as the user', async () => {
    const res = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: { name: 'api', type: 'http', url: 'http://127.0.0.1:8080/health', intervalSeconds: 30, tags: ['web'] },
    });
    expect(res.status).toBe(201);
    check = res.body;
    expect(check).toMatchObject({ name: 'api', targetId: `check:${check.id}`, tags: ['web'] });
    expect(res.headers.get('etag')).toBe(`"${check.version}"`);
    expect(res.headers.get('location')).toBe(`/api/v1/checks/${check.id}`);
    const [created] = await auditOf(check.id);
    expect(created.actor).toContain(`user:${ids.operator}`);
    expect(created.actor).toContain('operator');
  });

  it('API keys: `write` creates (audited as the key), `read` reads but may not write', async () => {
    const res = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token: tokens.writeKey,
      body: tcp('db', 5432, { tags: ['db'] }),
    });
    expect(res.status).toBe(201);
    expect((await auditOf(res.body.id))[0].actor).toContain(`api-key:${ids.writeKey}`);
    expect((await gw.request('POST', '/api/v1/checks', { token: tokens.readKey, body: tcp('x', 1) })).status).toBe(403);
    const list = await gw.request<Page<CheckDefinition>>('GET', '/api/v1/checks?tag=db', { token: tokens.readKey });
    expect(list.status).toBe(200);
    expect(list.body.items.map((c) => c.name)).toEqual(['db']);
    const byType = await gw.request<Page<CheckDefinition>>('GET', '/api/v1/checks?type=http', { token: tokens.viewer });
    expect(byType.body.items.map((c) => c.name)).toEqual(['api']);
  });

  it("the owner's refusals: a bad condition 400 naming it with its position, a denied target 422, no such check 404", async () => {
    const bad = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: tcp('bad', 1, { conditions: ['ok', 'latency <'] }),
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_failed');
    expect(bad.body.error.issues).toEqual([
      { path: expect.stringMatching(/(^|\.)conditions\.1$/), message: expect.stringMatching(/^line 1, column \d+: /) },
    ]);
    const missingField = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: { name: 'no port', type: 'tcp', host: '127.0.0.1' },
    });
    expect(missingField.status).toBe(400);
    expect(missingField.body.error.issues?.map((i) => i.path)).toEqual([expect.stringMatching(/(^|\.)port$/)]);

    const denied = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: { name: 'metadata', type: 'http', url: 'http://169.254.169.254/latest/meta-data/' },
    });
    expect(denied.status).toBe(422);
    expect(denied.body.error.code).toBe('denied');
    expect(denied.body.error.message).toContain('169.254.169.254');

    const missing = await gw.request<ApiErrorBody>('GET', '/api/v1/checks/0190f0e0-0000-7000-8000-00000000dead', {
      token: tokens.viewer,
    });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  it('If-Match: a stale version is a 409 with the current one (body and ETag); a fresh one writes', async () => {
    const got = await gw.request<CheckDefinition>('GET', `/api/v1/checks/${check.id}`, { token: tokens.viewer });
    expect(got.body).toEqual(check);
    expect(got.headers.get('etag')).toBe(`"${check.version}"`);

    const patched = await gw.request<CheckDefinition>('PATCH', `/api/v1/checks/${check.id}`, {
      token: tokens.operator,
      body: { intervalSeconds: 60 },
      headers: { 'if-match': got.headers.get('etag') as string },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ intervalSeconds: 60, url: 'http://127.0.0.1:8080/health' });
    expect(patched.headers.get('etag')).toBe(`"${patched.body.version}"`);
    // JSON text that reads as Infinity: the bus would carry it as null, which a merge patch takes as
    // "reset to the default" (it was a 200 setting intervalSeconds back to its default).
    const huge = await gw.request<ApiErrorBody>('PATCH', `/api/v1/checks/${check.id}`, {
      token: tokens.operator,
      body: '{"intervalSeconds":1e400}',
    });
    expect([huge.status, huge.body.error?.issues?.map((i) => i.path)]).toEqual([400, ['intervalSeconds']]);
    const after = await gw.request<CheckDefinition>('GET', `/api/v1/checks/${check.id}`, { token: tokens.viewer });
    expect([after.body.intervalSeconds, after.body.version]).toEqual([60, patched.body.version]);

    for (const [method, path, body] of [
      ['PUT', `/api/v1/checks/${check.id}`, { name: 'api', type: 'http', url: 'http://127.0.0.1:8081/' }],
      ['PATCH', `/api/v1/checks/${check.id}`, { tags: [] }],
      ['POST', `/api/v1/checks/${check.id}/pause`, undefined],
      ['DELETE', `/api/v1/checks/${check.id}`, undefined],
    ] as const) {
      const stale = await gw.request<ApiErrorBody>(method, path, {
        token: tokens.operator,
        body,
        headers: { 'if-match': `"${check.version}"` },
      });
      expect({ method, status: stale.status, error: stale.body.error }).toEqual({
        method,
        status: 409,
        error: expect.objectContaining({ code: 'conflict', currentVersion: patched.body.version }),
      });
      expect(stale.headers.get('etag')).toBe(`"${patched.body.version}"`);
    }

    const replaced = await gw.request<CheckDefinition>('PUT', `/api/v1/checks/${check.id}`, {
      token: tokens.operator,
      body: { name: 'api', type: 'http', url: 'http://127.0.0.1:8081/' },
      headers: { 'if-match': `${patched.body.version}` }, // a bare number, as scripts send it
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ url: 'http://127.0.0.1:8081/', intervalSeconds: 30, tags: [] });
    check = replaced.body;
  });

  it('pause and resume; delete with and without If-Match', async () => {
    const paused = await gw.request<CheckDefinition>('POST', `/api/v1/checks/${check.id}/pause`, {
      token: tokens.operator,
    });
    expect(paused.status).toBe(200);
    expect(paused.body.paused).toBe(true);
    const resumed = await gw.request<CheckDefinition>('POST', `/api/v1/checks/${check.id}/resume`, {
      token: tokens.writeKey,
      headers: { 'if-match': `"${paused.body.version}"` },
    });
    expect(resumed.body.paused).toBe(false);
    expect((await gw.request('POST', `/api/v1/checks/${check.id}/pause`, { token: tokens.viewer })).status).toBe(403);

    const deleted = await gw.request('DELETE', `/api/v1/checks/${check.id}`, {
      token: tokens.operator,
      headers: { 'if-match': `"${resumed.body.version}"` },
    });
    expect(deleted.status).toBe(204);
    expect((await gw.request('GET', `/api/v1/checks/${check.id}`, { token: tokens.viewer })).status).toBe(404);
  });

  it('bulk: up to 1000 in one version, all or nothing with the bad one named by index', async () => {
    const checks = Array.from({ length: 250 }, (_, i) => tcp(`bulk-${String(i).padStart(3, '0')}`, 10_000 + i));
    const bad = await gw.request<ApiErrorBody>('POST', '/api/v1/checks/bulk', {
      token: tokens.operator,
      body: { checks: [...checks.slice(0, 3), tcp('bulk-bad', 0)] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues?.map((i) => i.path)).toEqual(['checks.3.port']);
    expect(
      (await gw.request<Page<CheckDefinition>>('GET', '/api/v1/checks?limit=1000', { token: tokens.viewer })).body.items
        .length,
    ).toBe(1); // nothing of the refused batch: only `db` from before

    const created = await gw.request<{ checks: CheckDefinition[]; version: number }>('POST', '/api/v1/checks/bulk', {
      token: tokens.operator,
      body: { checks },
    });
    expect(created.status).toBe(201);
    expect(created.body.checks).toHaveLength(250);
    expect(new Set(created.body.checks.map((c) => c.version))).toEqual(new Set([created.body.version]));
    const tooMany = await gw.request<ApiErrorBody>('POST', '/api/v1/checks/bulk', {
      token: tokens.operator,
      body: { checks: Array.from({ length: 1001 }, (_, i) => tcp(`x${i}`, 1)) },
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.issues?.map((i) => i.path)).toEqual(['checks']);
    // Paging: 251 checks, 100 a page, in name order.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await gw.request<Page<CheckDefinition>>('GET', `/api/v1/checks?limit=100${q}`, {
        token: tokens.viewer,
      });
      seen.push(...page.body.items.map((c) => c.name));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(251);
    expect(seen).toEqual([...seen].sort());
  });

  it('a push check (heartbeat monitor): its ping token and URL in the 201 and bulk answers only, never read back', async () => {
    const res = await gw.request<CheckDefinition & { pingToken?: string; pingUrl?: string }>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: { name: 'nightly backup', type: 'push', periodSeconds: 86_400, graceSeconds: 600 },
    });
    expect(res.status).toBe(201);
    expect(res.body.pingToken).toMatch(/^fwp_/);
    expect(res.body.pingUrl).toBe(`${gw.config.ingestPublicUrl}/ping/${res.body.pingToken}`);
    const got = await gw.request<Record<string, unknown>>('GET', `/api/v1/checks/${res.body.id}`, {
      token: tokens.viewer,
    });
    expect(got.body).not.toHaveProperty('pingToken');
    expect(JSON.stringify(got.body)).not.toContain(res.body.pingToken as string);
    const bulk = await gw.request<{ checks: CheckDefinition[]; pingUrls?: Record<string, string> }>(
      'POST',
      '/api/v1/checks/bulk',
      {
        token: tokens.operator,
        body: { checks: [{ name: 'hourly job', type: 'push', periodSeconds: 3600, graceSeconds: 60 }] },
      },
    );
    expect(bulk.status).toBe(201);
    expect(bulk.body.pingUrls?.[bulk.body.checks[0].id]).toMatch(/\/ping\/fwp_/);
    await gw.request('DELETE', `/api/v1/checks/${res.body.id}`, { token: tokens.operator });
    await gw.request('DELETE', `/api/v1/checks/${bulk.body.checks[0].id}`, { token: tokens.operator });
  });

  it('the envelope is checked here, before the owner: id, If-Match, query, body shape — each named', async () => {
    const ID = '0190f0e0-0000-7000-8000-0000000000c1';
    const cases: Array<[string, string, { body?: unknown; headers?: Record<string, string> }, string]> = [
      ['GET', '/api/v1/checks/not-a-uuid', {}, 'id'],
      ['PUT', `/api/v1/checks/${ID}`, { body: { name: 'x' }, headers: { 'if-match': 'W/"7"' } }, 'If-Match'],
      ['PATCH', `/api/v1/checks/${ID}`, { body: [1, 2] }, '(body)'],
      ['GET', '/api/v1/checks?limit=5000', {}, 'limit'],
      ['GET', '/api/v1/checks?type=gopher', {}, 'type'],
      ['GET', '/api/v1/checks?location=bad%20place', {}, 'location'],
      ['POST', '/api/v1/checks/bulk', { body: { checks: [] } }, 'checks'],
      ['GET', '/api/v1/config/versions/zero', {}, 'n'],
      [
        'POST',
        '/api/v1/config/import?prune=perhaps',
        { body: 'checks: {}', headers: { 'content-type': 'text/yaml' } },
        'prune',
      ],
      ['POST', '/api/v1/config/import', { body: { notYaml: true } }, '(body)'],
    ];
    for (const [method, path, opts, field] of cases) {
      const res = await gw.request<ApiErrorBody>(method, path, { token: tokens.admin, ...opts });
      expect({ method, path, status: res.status, paths: res.body.error?.issues?.map((i) => i.path) }).toEqual({
        method,
        path,
        status: 400,
        paths: expect.arrayContaining([field]),
      });
    }
  });
});

describe('no owner answering', () => {
  it('every route that asks the owner answers 503 with Retry-After after its RPC timeout (5 s, bulk ones longer)', async () => {
    await owner.stop(); // its queue stays; nobody consumes it
    const ID = '0190f0e0-0000-7000-8000-0000000000c1';
    const routes: Array<[string, string, unknown?]> = [
      ['POST', '/api/v1/checks', tcp('x', 1)],
      ['POST', '/api/v1/checks/bulk', { checks: [tcp('x', 1)] }],
      ['GET', '/api/v1/checks'],
      ['GET', `/api/v1/checks/${ID}`],
      ['PUT', `/api/v1/checks/${ID}`, tcp('x', 1)],
      ['PATCH', `/api/v1/checks/${ID}`, { port: 2 }],
      ['DELETE', `/api/v1/checks/${ID}`],
      ['POST', `/api/v1/checks/${ID}/pause`],
      ['POST', `/api/v1/checks/${ID}/resume`],
      ['GET', '/api/v1/config/export'],
      ['POST', '/api/v1/config/import?dryRun=true', { yaml: 'checks: {}' }],
      ['GET', '/api/v1/config/versions'],
      ['GET', '/api/v1/config/versions/3'],
      ['GET', '/api/v1/config/audit'],
    ];
    const bulk = new Set([
      'POST /api/v1/checks/bulk',
      'GET /api/v1/config/export',
      'POST /api/v1/config/import?dryRun=true',
    ]);
    const answers = await Promise.all(
      routes.map(async ([method, path, body]) => {
        const started = Date.now();
        const res = await gw.request<ApiErrorBody>(method, path, { token: tokens.admin, body });
        return {
          route: `${method} ${path}`,
          status: res.status,
          code: res.body.error?.code,
          retryAfter: res.headers.get('retry-after'),
          took: Date.now() - started,
        };
      }),
    );
    for (const { took, ...a } of answers) {
      expect(a).toEqual({ route: a.route, status: 503, code: 'unavailable', retryAfter: '2' });
      // GATEWAY_RPC_TIMEOUT_MS (5 s) for one check or a read, GATEWAY_RPC_BULK_TIMEOUT_MS for the bulk ones.
      if (bulk.has(a.route)) expect(took).toBeGreaterThanOrEqual(BULK_TIMEOUT_MS - 100);
      else expect([a.route, took >= 4_900 && took < BULK_TIMEOUT_MS - 500]).toEqual([a.route, true]);
    }
    expect(Math.max(...answers.map((a) => a.took))).toBeLessThan(BULK_TIMEOUT_MS + 10_000);
  });
});
