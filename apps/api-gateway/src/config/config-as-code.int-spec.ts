import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CONFIG_YAML_MAX_BYTES,
  type ApiErrorBody,
  type AuditEntry,
  type CheckDefinition,
  type ConfigPlanItem,
  type ConfigVersionSummary,
  type CreateApiKeyResponse,
  type Page,
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
  // Import and export wait GATEWAY_RPC_BULK_TIMEOUT_MS: kept short here (the owner-gone test waits it out).
  gw = await startGateway(testing, 'cac', { env: { GATEWAY_RPC_BULK_TIMEOUT_MS: '8000' } });
  dist = await privateOwnerDist(`owner-cac-${testing.testEnv().runId}`);
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

describe('versions and audit', () => {
  it('every change is a version (newest first, with its snapshot), audited with who did it and the diff', async () => {
    const created = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token: tokens.operator,
      body: http('api', 8080),
    });
    expect(created.status).toBe(201);
    await gw.request('POST', '/api/v1/checks', {
      token: tokens.writeKey,
      body: { name: 'db', type: 'tcp', host: '127.0.0.1', port: 5432, tags: ['db'] },
    });
    const patched = await gw.request<CheckDefinition>('PATCH', `/api/v1/checks/${created.body.id}`, {
      token: tokens.operator,
      body: { intervalSeconds: 60 },
    });
    expect(patched.status).toBe(200);

    const versions = await gw.request<{ items: ConfigVersionSummary[] }>('GET', '/api/v1/config/versions', {
      token: tokens.viewer,
    });
    expect(versions.status).toBe(200);
    expect(versions.body.items.map((v) => v.version)).toEqual([3, 2, 1]);
    expect(versions.body.items[0]).toMatchObject({
      version: patched.body.version,
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const older = await gw.request<{ items: ConfigVersionSummary[] }>(
      'GET',
      '/api/v1/config/versions?before=3&limit=1',
      {
        token: tokens.viewer,
      },
    );
    expect(older.body.items.map((v) => v.version)).toEqual([2]);
    const one = await gw.request<ConfigVersionSummary & { snapshot: unknown }>('GET', '/api/v1/config/versions/2', {
      token: tokens.viewer,
    });
    expect(one.status).toBe(200);
    expect(JSON.stringify(one.body.snapshot)).toContain('db');
    expect((await gw.request('GET', '/api/v1/config/versions/99', { token: tokens.viewer })).status).toBe(404);

    const audit = await gw.request<Page<AuditEntry>>('GET', `/api/v1/config/audit?subject=${created.body.id}`, {
      token: tokens.operator,
    });
    expect(audit.status).toBe(200);
    const patch = audit.body.items.find((e) => e.diff.some((d) => d.path.endsWith('intervalSeconds')));
    expect(patch).toMatchObject({ version: 3, actor: expect.stringContaining(`user:${operatorId}`) });
    // The config form leaves defaults out: 30 s was the default, so the diff has no `before`.
    expect(patch?.diff).toContainEqual(expect.objectContaining({ path: 'intervalSeconds', after: 60 }));
    expect((await gw.request('GET', '/api/v1/config/audit', { token: tokens.viewer })).status).toBe(403);
  });
});

describe('query values the database cannot hold are 400s naming them, never 500s', () => {
  it.each([
    '/api/v1/config/versions/3000000000',
    '/api/v1/config/versions?before=3000000000',
    '/api/v1/checks?tag=%00',
    '/api/v1/config/audit?subject=a%00b',
    `/api/v1/checks?cursor=${Buffer.from(JSON.stringify({ n: 'a\u0000' })).toString('base64url')}`,
  ])('%s', async (path) => {
    const r = await gw.request<{ error: { code: string } }>('GET', path, { token: tokens.operator });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('validation_failed');
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

  it('a YAML document over 4 MiB is a 413 before it reaches the owner; one just under it is parsed there', async () => {
    const over = `checks: {}\n#${'x'.repeat(CONFIG_YAML_MAX_BYTES)}\n`;
    const big = await gw.request<ApiErrorBody>('POST', '/api/v1/config/import?dryRun=true', {
      token: tokens.viewer,
      body: over,
      headers: { 'content-type': 'application/yaml' },
    });
    expect(big.status).toBe(413);
    // A comment fills it: parsed and planned (nothing in it), so the limit is the gateway's and the owner's alike.
    const under = `checks: {}\n#${'x'.repeat(CONFIG_YAML_MAX_BYTES - 20)}\n`;
    const ok = await gw.request<{ plan: ConfigPlanItem[] }>('POST', '/api/v1/config/import?dryRun=true&prune=false', {
      token: tokens.viewer,
      body: under,
      headers: { 'content-type': 'application/yaml' },
    });
    expect([ok.status, ok.body.plan.filter((p) => p.action !== 'unchanged')]).toEqual([200, []]);
  });

  it('plan shows create / change / delete with diffs (exit 2); apply makes it one version', async () => {
    const exported = (await gw.request('GET', '/api/v1/config/export', { token: tokens.viewer })).text;
    const edited = exported
      .replace(/intervalSeconds: 60/, 'intervalSeconds: 15')
      .replace(/\n {2}db:\n(?: {4}.*\n)+/, '\n')
      // Under `checks:` (the export writes every section after it, empty ones as `{}`).
      .replace(/^checks:\n/m, 'checks:\n  web:\n    type: tcp\n    host: 127.0.0.1\n    port: 8443\n');
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
