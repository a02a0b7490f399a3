import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  ApiErrorBody,
  AuditEntry,
  CheckDefinition,
  ConfigPlanItem,
  ConfigVersionSummary,
  CreateApiKeyResponse,
  Page,
} from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from '../checks/owner-process.int-helpers';

// Checks and config as code through the gateway to the real owner: sync-orchestrator,
// built from today's sources and run as a process on the gateway's database and vhost.
// Then the CLI (`npm run fleetwatch -- config …`) as a CI pipeline runs it, against both.

jest.setTimeout(120_000);

const root = join(__dirname, '../../../..');

let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
let dir: string;
const tokens: Record<'admin' | 'operator' | 'viewer' | 'readKey' | 'writeKey', string> = {} as never;
let operatorId: string;

beforeAll(async () => {
  gw = await startGateway(testing, 'cac');
  dist = privateOwnerDist(`owner-cac-${testing.testEnv().runId}`);
  owner = await startOwnerProcess(dist, {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: gw.config.amqpUrl,
    redisUrl: gw.config.redisUrl,
    redisPrefix: `${testing.testEnv().redisPrefix}owner-cac:`,
  });
  tokens.admin = await gw.login('admin', ADMIN_PASSWORD);
  for (const role of ['viewer', 'operator'] as const) {
    const created = await gw.request<{ id: string }>('POST', '/api/v1/users', {
      token: tokens.admin,
      body: { username: role, password: `${role}-password`, role },
    });
    if (role === 'operator') operatorId = created.body.id;
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
  }
  dir = mkdtempSync(join(tmpdir(), 'fw-cli-'));
});

afterAll(async () => {
  await owner?.stop();
  await gw?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (dist) rmSync(dist, { recursive: true, force: true });
});

const http = (name: string, port: number, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'http',
  url: `http://127.0.0.1:${port}/health`,
  intervalSeconds: 30,
  tags: ['web'],
  ...extra,
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as a pipeline runs it: a process, credentials in its environment. */
function fleetwatch(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'tools/cli/fleetwatch.mjs'), ...args, '--url', gw.url],
      { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('checks through the gateway to sync-orchestrator', () => {
  let api: CheckDefinition;

  it('create → 201 {id, targetId}; read it back with its version as ETag; list filters', async () => {
    const created = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: http('api', 8080),
    });
    expect(created.status).toBe(201);
    api = created.body;
    expect(api).toMatchObject({ name: 'api', type: 'http', targetId: `check:${api.id}`, tags: ['web'] });
    expect(created.headers.get('etag')).toBe(`"${api.version}"`);

    const got = await gw.request<CheckDefinition>('GET', `/api/v1/checks/${api.id}`, { token: tokens.viewer });
    expect(got.body).toEqual(api);
    expect(got.headers.get('etag')).toBe(`"${api.version}"`);

    await gw.request('POST', '/api/v1/checks', {
      token: tokens.writeKey,
      body: { name: 'db', type: 'tcp', host: '127.0.0.1', port: 5432, tags: ['db'] },
    });
    const web = await gw.request<Page<CheckDefinition>>('GET', '/api/v1/checks?tag=web', { token: tokens.readKey });
    expect(web.body.items.map((c) => c.name)).toEqual(['api']);
    const tcp = await gw.request<Page<CheckDefinition>>('GET', '/api/v1/checks?type=tcp', { token: tokens.viewer });
    expect(tcp.body.items.map((c) => c.name)).toEqual(['db']);
  });

  it('a bad condition is a 400 naming it with its position; a denied target a 422', async () => {
    const bad = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: http('bad', 8081, { conditions: ['status == 200', 'latency <'] }),
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_failed');
    expect(bad.body.error.issues).toEqual([
      { path: expect.stringMatching(/(^|\.)conditions\.1$/), message: expect.stringMatching(/^line 1, column \d+: /) },
    ]);
    const denied = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: http('metadata', 80, { url: 'http://169.254.169.254/latest/meta-data/' }),
    });
    expect(denied.status).toBe(422);
    expect(denied.body.error.code).toBe('denied');
    expect(denied.body.error.message).toContain('169.254.169.254');
  });

  it('writes with a stale If-Match are 409 with the current version; fresh ones move the ETag', async () => {
    const patched = await gw.request<CheckDefinition>('PATCH', `/api/v1/checks/${api.id}`, {
      token: tokens.operator,
      body: { intervalSeconds: 60 },
      headers: { 'if-match': `"${api.version}"` },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.intervalSeconds).toBe(60);
    expect(patched.body.version).toBeGreaterThan(api.version);

    const stale = await gw.request<ApiErrorBody>('PUT', `/api/v1/checks/${api.id}`, {
      token: tokens.operator,
      body: http('api', 8080),
      headers: { 'if-match': `"${api.version}"` },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({ code: 'conflict', currentVersion: patched.body.version });
    expect(stale.headers.get('etag')).toBe(`"${patched.body.version}"`);

    const paused = await gw.request<CheckDefinition>('POST', `/api/v1/checks/${api.id}/pause`, {
      token: tokens.operator,
      headers: { 'if-match': `"${patched.body.version}"` },
    });
    expect(paused.status).toBe(200);
    expect(paused.body.paused).toBe(true);
    const resumed = await gw.request<CheckDefinition>('POST', `/api/v1/checks/${api.id}/resume`, {
      token: tokens.operator,
    });
    expect(resumed.body.paused).toBe(false);
    api = resumed.body;
  });

  it('every change is a version, audited with who did it', async () => {
    const versions = await gw.request<{ items: ConfigVersionSummary[] }>('GET', '/api/v1/config/versions', {
      token: tokens.viewer,
    });
    expect(versions.status).toBe(200);
    expect(versions.body.items.length).toBeGreaterThanOrEqual(5); // api, db, patch, pause, resume
    expect(versions.body.items[0].version).toBe(api.version);
    const one = await gw.request<ConfigVersionSummary & { snapshot: unknown }>(
      'GET',
      `/api/v1/config/versions/${api.version}`,
      { token: tokens.viewer },
    );
    expect(one.status).toBe(200);
    expect(one.body.snapshot).toBeDefined();

    const audit = await gw.request<Page<AuditEntry>>('GET', `/api/v1/config/audit?subject=${api.id}`, {
      token: tokens.operator,
    });
    expect(audit.status).toBe(200);
    const patch = audit.body.items.find((e) => e.diff.some((d) => d.path.endsWith('intervalSeconds')));
    expect(patch).toBeDefined();
    expect(patch?.actor).toContain(`user:${operatorId}`);
    expect((await gw.request('GET', '/api/v1/config/audit', { token: tokens.viewer })).status).toBe(403);
  });
});

describe('config as code with the CLI', () => {
  const file = () => join(dir, 'site.yaml');

  it('export → plan is a no-op (exit 0 with --detailed-exitcode)', async () => {
    const exported = await fleetwatch(['config', 'export', '--output', file()], { FLEETWATCH_API_KEY: tokens.readKey });
    expect(exported).toMatchObject({ code: 0 });
    const yaml = readFileSync(file(), 'utf8');
    expect(yaml).toContain('api');
    const plan = await fleetwatch(['config', 'plan', file(), '--detailed-exitcode'], {
      FLEETWATCH_API_KEY: tokens.readKey,
    });
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('No changes');
    // The same through the API: every check unchanged.
    const res = await gw.request<{ plan: ConfigPlanItem[] }>('POST', '/api/v1/config/import?dryRun=true', {
      token: tokens.viewer,
      body: yaml,
      headers: { 'content-type': 'application/yaml' },
    });
    expect(res.body.plan.map((p) => p.action)).toEqual(['unchanged', 'unchanged']);
  });

  it('plan shows create / change / delete with diffs (exit 2); apply makes it one version', async () => {
    const exported = (await gw.request('GET', '/api/v1/config/export', { token: tokens.viewer })).text;
    const edited = exported
      .replace(/intervalSeconds: 60/, 'intervalSeconds: 15')
      .replace(/\n {2}db:\n(?: {4}.*\n)+/, '\n')
      .concat('  web:\n    type: tcp\n    host: 127.0.0.1\n    port: 8443\n');
    writeFileSync(file(), edited);
    const plan = await fleetwatch(['config', 'plan', file(), '--detailed-exitcode'], {
      FLEETWATCH_TOKEN: tokens.viewer,
    });
    expect(plan).toMatchObject({ code: 2, stderr: '' });
    expect(plan.stdout).toMatch(/\+ create web/);
    expect(plan.stdout).toMatch(/~ change api/);
    expect(plan.stdout).toMatch(/intervalSeconds: 60 → 15/);
    expect(plan.stdout).toMatch(/- delete db/);
    expect(plan.stdout).toContain('Plan: 1 to create, 1 to change, 1 to delete, 0 unchanged.');

    // A read key may plan, not apply.
    const refused = await fleetwatch(['config', 'apply', file()], { FLEETWATCH_API_KEY: tokens.readKey });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('403 forbidden');

    const before = (await gw.request('GET', '/api/v1/config/export', { token: tokens.viewer })).headers.get('etag');
    const stale = await fleetwatch(
      ['config', 'apply', file(), '--if-match', String(Number(before?.replace(/"/g, '')) - 1)],
      {
        FLEETWATCH_API_KEY: tokens.writeKey,
      },
    );
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('409 conflict');
    expect(stale.stderr).toContain(`the site is at config version ${before?.replace(/"/g, '')}`);

    const applied = await fleetwatch(['config', 'apply', file(), '--if-match', before?.replace(/"/g, '') ?? ''], {
      FLEETWATCH_API_KEY: tokens.writeKey,
    });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/Applied as config version \d+: 1 to create, 1 to change, 1 to delete/);
    const names = (await gw.request<Page<CheckDefinition>>('GET', '/api/v1/checks', { token: tokens.viewer })).body;
    expect(names.items.map((c) => c.name).sort()).toEqual(['api', 'web']);
    const after = (await gw.request('GET', '/api/v1/config/export', { token: tokens.viewer })).headers.get('etag');
    expect(Number(after?.replace(/"/g, ''))).toBe(Number(before?.replace(/"/g, '')) + 1); // one version for the lot

    const again = await fleetwatch(['config', 'apply', file(), '--detailed-exitcode'], {
      FLEETWATCH_API_KEY: tokens.writeKey,
    });
    expect(again).toMatchObject({ code: 0 });
    expect(again.stdout).toContain('No changes');
  });

  it("a bad file fails the pipeline with the owner's message naming the check and field", async () => {
    writeFileSync(
      file(),
      'checks:\n  broken:\n    type: http\n    url: http://127.0.0.1:1/\n    conditions: ["status =="]\n',
    );
    const run = await fleetwatch(['config', 'plan', file()], { FLEETWATCH_API_KEY: tokens.readKey });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('400 validation_failed');
    expect(run.stderr).toMatch(/checks\.broken\.conditions\.0: .*line 1, column \d+/);
  });

  it('the owner gone: 503 at the gateway after the timeout, exit 1 at the CLI', async () => {
    await owner.stop();
    const started = Date.now();
    const res = await gw.request<ApiErrorBody>('GET', '/api/v1/checks', { token: tokens.viewer });
    expect(res.status).toBe(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_900);
    const run = await fleetwatch(['config', 'export'], { FLEETWATCH_API_KEY: tokens.readKey });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('503 unavailable');
  });
});
