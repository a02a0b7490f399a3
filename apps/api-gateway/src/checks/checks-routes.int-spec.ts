import {
  ConfigRpcMethod,
  QueueName,
  type ApiErrorBody,
  type CheckDefinition,
  type CreateApiKeyResponse,
} from '@fleetwatch/contracts';
import { ConflictError, ForbiddenError, InvalidError, NotFoundError, UnavailableError } from '@fleetwatch/domain';
import {
  BusConnection,
  BusConsumer,
  BusTopology,
  RpcServer,
  silentBusLogger,
  type RpcContext,
} from '@fleetwatch/messaging';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';

// The gateway's side of the configuration routes: what it sends its owner and how the
// owner's answers become HTTP. The owner here is an RpcServer on the gateway's vhost
// whose handlers answer as the contract says (and as sync-orchestrator's ConfigModule
// does: the same domain errors); the routes against the real owner are in
// config-e2e.int-spec.ts.

jest.setTimeout(60_000);

const ID = '0190f0e0-0000-7000-8000-0000000000c1';
const NOW = '2026-12-02T08:00:00.000Z';

function stored(spec: Record<string, unknown>, version: number): CheckDefinition {
  return {
    intervalSeconds: 30,
    timeoutSeconds: 10,
    retries: 0,
    locations: [],
    tags: [],
    conditions: [],
    paused: false,
    ...spec,
    id: ID,
    targetId: `check:${ID}`,
    version,
    createdAt: NOW,
    updatedAt: NOW,
  } as unknown as CheckDefinition;
}

let gw: GatewayHarness;
let ownerConnection: BusConnection;
let owner: RpcServer;
const calls: Array<{ method: string; params: Record<string, unknown>; ctx: RpcContext }> = [];
const tokens: Record<'admin' | 'operator' | 'viewer' | 'readKey' | 'writeKey', string> = {} as never;
const keyIds: Record<string, string> = {};

beforeAll(async () => {
  gw = await startGateway(testing, 'checks');
  tokens.admin = await gw.login('admin', ADMIN_PASSWORD);
  for (const role of ['viewer', 'operator'] as const) {
    await gw.request('POST', '/api/v1/users', {
      token: tokens.admin,
      body: { username: role, password: `${role}-password`, role },
    });
    tokens[role] = await gw.login(role, `${role}-password`);
  }
  for (const [name, scopes] of [
    ['readKey', ['read']],
    ['writeKey', ['write']],
  ] as const) {
    const key = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token: tokens.admin,
      body: { name: `ci-${name}`, scopes },
    });
    tokens[name] = key.body.key;
    keyIds[name] = key.body.id;
  }

  ownerConnection = new BusConnection({ url: gw.config.amqpUrl, name: 'owner', logger: silentBusLogger }).start();
  const consumer = new BusConsumer(ownerConnection, {
    topology: new BusTopology(ownerConnection, { queues: [QueueName.SyncOrchestratorCommands] }),
    logger: silentBusLogger,
  });
  owner = new RpcServer(consumer, ownerConnection, { logger: silentBusLogger });
  const record = (method: string) => async (params: unknown, ctx: RpcContext) => {
    calls.push({ method, params: params as Record<string, unknown>, ctx });
  };
  owner
    .register(ConfigRpcMethod.ChecksCreate, async (params, ctx) => {
      await record('create')(params, ctx);
      const check = (params as { check: Record<string, unknown> }).check;
      if (check.name === 'bad condition')
        throw new InvalidError('invalid check', [
          { path: 'conditions.1', message: 'line 1, column 10: Unexpected token: EOF' },
        ]);
      if (check.name === 'metadata')
        throw new ForbiddenError('url: 169.254.169.254 is in the denied network 169.254.0.0/16');
      return { check: stored(check, 4), version: 4 };
    })
    .register(ConfigRpcMethod.ChecksGet, async (params) => {
      if ((params as { id: string }).id !== ID) throw new NotFoundError('no check with that id');
      return { check: stored({ name: 'api', type: 'http', url: 'http://127.0.0.1:1/' }, 7) };
    })
    .register(ConfigRpcMethod.ChecksReplace, async (params, ctx) => {
      await record('replace')(params, ctx);
      const p = params as { expectedVersion?: number; check: Record<string, unknown> };
      if (p.expectedVersion !== undefined && p.expectedVersion !== 7)
        throw Object.assign(new ConflictError(`check changed since version ${p.expectedVersion}`), {
          currentVersion: 7,
        });
      return { check: stored(p.check, 8), version: 8 };
    })
    .register(ConfigRpcMethod.ChecksList, async (params, ctx) => {
      await record('list')(params, ctx);
      return { items: [], nextCursor: null };
    })
    .register(ConfigRpcMethod.ConfigExport, async () => ({ yaml: 'checks: []\n', version: 7, hash: 'a'.repeat(64) }))
    .register(ConfigRpcMethod.ConfigImport, async (params, ctx) => {
      await record('import')(params, ctx);
      return { dryRun: (params as { dryRun: boolean }).dryRun, plan: [], version: 7 };
    })
    .register(ConfigRpcMethod.ConfigAudit, async () => {
      throw new UnavailableError('database unreachable', 1);
    })
    .start();
  await owner.start().waitUntilActive(10_000);
});

afterAll(async () => {
  await owner?.stop();
  await ownerConnection?.close();
  await gw?.close();
});

const lastCall = () => calls[calls.length - 1];

describe('check routes → owner → HTTP', () => {
  it('POST /checks: 201 with id and targetId, ETag and Location; the actor is the user', async () => {
    const res = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: { name: 'api', type: 'http', url: 'http://127.0.0.1:8080/health', intervalSeconds: 30 },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: ID, targetId: `check:${ID}`, name: 'api', version: 4 });
    expect(res.headers.get('etag')).toBe('"4"');
    expect(res.headers.get('location')).toBe(`/api/v1/checks/${ID}`);
    const me = (await gw.request<{ id: string }>('GET', '/api/v1/auth/me', { token: tokens.operator })).body;
    expect(lastCall().params).toEqual({
      actor: { id: `user:${me.id}`, name: 'operator' },
      // The check travels as sent: the owner validates it (once).
      check: { name: 'api', type: 'http', url: 'http://127.0.0.1:8080/health', intervalSeconds: 30 },
    });
  });

  it('an API key with `write` creates, recorded as api-key:<id>; `read` gets 403', async () => {
    const res = await gw.request('POST', '/api/v1/checks', {
      token: tokens.writeKey,
      body: { name: 'by key', type: 'tcp', host: '127.0.0.1', port: 1 },
    });
    expect(res.status).toBe(201);
    expect(lastCall().params.actor).toEqual({ id: `api-key:${keyIds.writeKey}`, name: 'ci-writeKey' });
    const refused = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', { token: tokens.readKey, body: {} });
    expect(refused.status).toBe(403);
  });

  it("the owner's InvalidError is a 400 naming the field; a denied target a 422; an unknown id a 404", async () => {
    const bad = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: { name: 'bad condition', type: 'http', url: 'http://x/', conditions: ['true', 'status =='] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({
      code: 'validation_failed',
      issues: [{ path: 'conditions.1', message: 'line 1, column 10: Unexpected token: EOF' }],
    });
    const denied = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: { name: 'metadata', type: 'http', url: 'http://169.254.169.254/' },
    });
    expect(denied.status).toBe(422);
    expect(denied.body.error).toEqual({
      code: 'denied',
      message: 'url: 169.254.169.254 is in the denied network 169.254.0.0/16',
    });
    const missing = await gw.request<ApiErrorBody>('GET', '/api/v1/checks/0190f0e0-0000-7000-8000-00000000dead', {
      token: tokens.viewer,
    });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });

  it('GET /checks/:id carries the version as ETag; PUT with a stale If-Match is a 409 with the current version', async () => {
    const got = await gw.request<CheckDefinition>('GET', `/api/v1/checks/${ID}`, { token: tokens.viewer });
    expect(got.status).toBe(200);
    expect(got.headers.get('etag')).toBe('"7"');

    const body = { name: 'api', type: 'http', url: 'http://127.0.0.1:8081/' };
    const stale = await gw.request<ApiErrorBody>('PUT', `/api/v1/checks/${ID}`, {
      token: tokens.operator,
      body,
      headers: { 'if-match': '"5"' },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: 'conflict', currentVersion: 7 });
    expect(stale.headers.get('etag')).toBe('"7"');
    expect(lastCall().params.expectedVersion).toBe(5);

    const fresh = await gw.request<CheckDefinition>('PUT', `/api/v1/checks/${ID}`, {
      token: tokens.operator,
      body,
      headers: { 'if-match': got.headers.get('etag') as string },
    });
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('etag')).toBe('"8"');
    // Without If-Match the write is unconditional.
    await gw.request('PUT', `/api/v1/checks/${ID}`, { token: tokens.operator, body });
    expect(lastCall().params).not.toHaveProperty('expectedVersion');
  });

  it('the envelope is checked here: id, If-Match, query, body shape — each named', async () => {
    const cases: Array<[string, string, { body?: unknown; headers?: Record<string, string> }, string]> = [
      ['GET', '/api/v1/checks/not-a-uuid', {}, 'id'],
      ['PUT', `/api/v1/checks/${ID}`, { body: { name: 'x' }, headers: { 'if-match': 'W/"7"' } }, 'If-Match'],
      ['PUT', `/api/v1/checks/${ID}`, { body: [1, 2] }, '(body)'],
      ['GET', '/api/v1/checks?limit=5000', {}, 'limit'],
      ['GET', '/api/v1/checks?type=gopher', {}, 'type'],
      ['POST', '/api/v1/checks/bulk', { body: { checks: [] } }, 'checks'],
      ['GET', '/api/v1/config/versions/zero', {}, 'n'],
      [
        'POST',
        '/api/v1/config/import?prune=perhaps',
        { body: 'checks: []', headers: { 'content-type': 'application/yaml' } },
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
    const list = await gw.request('GET', '/api/v1/checks?type=http&tag=db&location=eu-west-1&limit=5', {
      token: tokens.viewer,
    });
    expect(list.status).toBe(200);
    expect(lastCall().params).toEqual({ type: 'http', tag: 'db', location: 'eu-west-1', limit: 5 });
  });

  it('export is YAML with the version as ETag; import takes YAML, dryRun and prune, If-Match', async () => {
    const exported = await gw.request('GET', '/api/v1/config/export', { token: tokens.viewer });
    expect(exported.status).toBe(200);
    expect(exported.headers.get('content-type')).toMatch(/^application\/yaml/);
    expect(exported.text).toBe('checks: []\n');
    expect(exported.headers.get('etag')).toBe('"7"');

    const yaml = 'checks:\n  - name: api\n    type: http\n    url: http://127.0.0.1:1/\n';
    const plan = await gw.request('POST', '/api/v1/config/import?dryRun=true&prune=false', {
      token: tokens.viewer, // a dry run changes nothing: viewers (read keys in CI) may plan
      body: yaml,
      headers: { 'content-type': 'application/yaml' },
    });
    expect(plan.status).toBe(200);
    expect(lastCall().params).toMatchObject({ yaml, dryRun: true, prune: false });

    const applyAsViewer = await gw.request<ApiErrorBody>('POST', '/api/v1/config/import', {
      token: tokens.readKey,
      body: yaml,
      headers: { 'content-type': 'text/yaml' },
    });
    expect(applyAsViewer.status).toBe(403);

    const applied = await gw.request('POST', '/api/v1/config/import', {
      token: tokens.writeKey,
      body: yaml,
      headers: { 'content-type': 'application/yaml', 'if-match': '"7"' },
    });
    expect(applied.status).toBe(200);
    expect(lastCall().params).toMatchObject({ yaml, dryRun: false, prune: true, expectedVersion: 7 });

    // Larger than the JSON limit (1 MiB): YAML bodies may be up to 16 MiB.
    const big = `${yaml}# ${'x'.repeat(2 * 1024 * 1024)}\n`;
    const large = await gw.request('POST', '/api/v1/config/import?dryRun=true', {
      token: tokens.operator,
      body: big,
      headers: { 'content-type': 'application/yaml' },
    });
    expect(large.status).toBe(200);
    expect((lastCall().params.yaml as string).length).toBe(big.length);
  });

  it("the owner's transient failure is a 503 with Retry-After, not a 500", async () => {
    const res = await gw.request<ApiErrorBody>('GET', '/api/v1/config/audit', { token: tokens.operator });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('unavailable');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });
});

describe('no owner answering', () => {
  it('every route that asks the owner answers 503 with Retry-After after the RPC timeout', async () => {
    await owner.stop(); // the queue stays; nobody consumes it
    const routes: Array<[string, string, unknown?]> = [
      ['POST', '/api/v1/checks', { name: 'x', type: 'tcp', host: '127.0.0.1', port: 1 }],
      ['POST', '/api/v1/checks/bulk', { checks: [{ name: 'x' }] }],
      ['GET', '/api/v1/checks'],
      ['GET', `/api/v1/checks/${ID}`],
      ['PUT', `/api/v1/checks/${ID}`, { name: 'x' }],
      ['PATCH', `/api/v1/checks/${ID}`, { name: 'x' }],
      ['DELETE', `/api/v1/checks/${ID}`],
      ['POST', `/api/v1/checks/${ID}/pause`],
      ['POST', `/api/v1/checks/${ID}/resume`],
      ['GET', '/api/v1/config/export'],
      ['POST', '/api/v1/config/import?dryRun=true', { yaml: 'checks: []' }],
      ['GET', '/api/v1/config/versions'],
      ['GET', '/api/v1/config/versions/3'],
      ['GET', '/api/v1/config/audit'],
    ];
    const started = Date.now();
    const answers = await Promise.all(
      routes.map(async ([method, path, body]) => {
        const res = await gw.request<ApiErrorBody>(method, path, { token: tokens.admin, body });
        return { route: `${method} ${path}`, status: res.status, retryAfter: res.headers.get('retry-after') };
      }),
    );
    const took = Date.now() - started;
    for (const a of answers) expect(a).toEqual({ route: a.route, status: 503, retryAfter: '2' });
    expect(took).toBeGreaterThanOrEqual(4_900);
    expect(took).toBeLessThan(15_000);
  });
});
