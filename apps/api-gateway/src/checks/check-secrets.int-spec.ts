import {
  ConfigRpcMethod,
  type ApiErrorBody,
  type AssignmentFull,
  type AuditEntry,
  type CheckView,
  type ConfigPlanItem,
  type Page,
} from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { rmSync } from 'node:fs';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';
import { ConfigOwner } from './config-owner.service';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from './owner-process.int-helpers';

// SPEC §10 (secrets never returned by the API, never forwarded to another host) for an http check's credential
// headers (Authorization, Cookie, X-Api-Key, …: contracts' isSecretHeaderName), on the real gateway and owner
// (sync-orchestrator built from today's sources). They are write-only, as a channel's secrets: stored for the
// collector (its assignment over the bus carries them), shown everywhere else as `{set: true}`.

jest.setTimeout(120_000);

let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
const tokens: Record<'admin' | 'operator' | 'viewer', string> = {} as never;

const CANARY = 'zz-check-canary';
const AUTH = `Bearer ${CANARY}-auth`;
const KEY = `${CANARY}-key`;
const COOKIE = `sid=${CANARY}-cookie`;

beforeAll(async () => {
  gw = await startGateway(testing, 'check-secrets');
  dist = await privateOwnerDist(`owner-check-secrets-${testing.testEnv().runId}`);
  owner = await startOwnerProcess(dist, {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: gw.config.amqpUrl,
    redisUrl: gw.config.redisUrl,
    redisPrefix: `${testing.testEnv().redisPrefix}owner-check-secrets:`,
  });
  tokens.admin = await gw.login('admin', ADMIN_PASSWORD);
  for (const role of ['viewer', 'operator'] as const) {
    await gw.request('POST', '/api/v1/users', {
      token: tokens.admin,
      body: { username: role, password: `${role}-password`, role },
    });
    tokens[role] = await gw.login(role, `${role}-password`);
  }
});

afterAll(async () => {
  await owner?.stop();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

/** The headers of a check as the collector at `location` is assigned it (the owner's answer over the bus). */
async function assignedHeaders(name: string): Promise<Record<string, string> | undefined> {
  const a = (await gw.running.app
    .get(ConfigOwner)
    .call(ConfigRpcMethod.AssignmentGet, { location: 'anywhere' })) as AssignmentFull;
  const c = a.checks.find((x) => x.name === name);
  return c?.type === 'http' ? c.headers : undefined;
}

const create = (name: string, headers: Record<string, string>, url = 'http://127.0.0.1:9/private/health') =>
  gw.request<CheckView>('POST', '/api/v1/checks', {
    token: tokens.operator,
    body: { name, type: 'http', url, intervalSeconds: 30, headers },
  });

describe("an http check's credential headers are write-only", () => {
  let id: string;

  it('no read shows them — checks, one check, the write answer, export, versions, audit — the collector has them', async () => {
    const created = await create('private page', {
      Authorization: AUTH,
      'X-Api-Key': KEY,
      Cookie: COOKIE,
      'X-Trace': 'visible',
    });
    expect(created.status).toBe(201);
    id = created.body.id;
    const masked = {
      Authorization: { set: true },
      'X-Api-Key': { set: true },
      Cookie: { set: true },
      'X-Trace': 'visible',
    };

    const one = await gw.request<CheckView>('GET', `/api/v1/checks/${id}`, { token: tokens.viewer });
    expect(one.status).toBe(200);
    expect(one.text).not.toContain(CANARY);
    expect(one.body).toMatchObject({ headers: masked });
    const list = await gw.request<Page<CheckView>>('GET', '/api/v1/checks', { token: tokens.viewer });
    expect(list.text).not.toContain(CANARY);
    expect(list.body.items.find((c) => c.id === id)).toMatchObject({ headers: masked });
    expect(created.text).not.toContain(CANARY);

    const exported = await gw.request('GET', '/api/v1/config/export', { token: tokens.viewer });
    expect(exported.status).toBe(200);
    expect(exported.text).not.toContain(CANARY);
    expect(exported.text).toMatch(/Authorization:\s+set: true/);

    const version = await gw.request('GET', `/api/v1/config/versions/${created.body.version}`, {
      token: tokens.viewer,
    });
    expect(version.status).toBe(200);
    expect(version.text).not.toContain(CANARY);

    const audit = await gw.request<Page<AuditEntry>>('GET', `/api/v1/config/audit?subject=${id}`, {
      token: tokens.admin,
    });
    expect(audit.status).toBe(200);
    expect(audit.text).not.toContain(CANARY);
    expect(audit.body.items[0].diff).toEqual(
      expect.arrayContaining([
        { path: 'headers', after: { 'X-Trace': 'visible' } },
        { path: 'headers.Authorization', after: '(set, new value)' },
      ]),
    );

    // The collector probes with them: its assignment (over the bus, inside the site) carries the values.
    expect(await assignedHeaders('private page')).toEqual({
      Authorization: AUTH,
      'X-Api-Key': KEY,
      Cookie: COOKIE,
      'X-Trace': 'visible',
    });
  });

  it('a form sent back whole keeps them; a header left out keeps it; a value replaces; null removes — audited without values', async () => {
    const read = (await gw.request<CheckView>('GET', `/api/v1/checks/${id}`, { token: tokens.viewer })).body;
    const { id: _i, targetId: _t, version, createdAt: _c, updatedAt: _u, ...form } = read;
    const put = await gw.request<CheckView>('PUT', `/api/v1/checks/${id}`, {
      token: tokens.operator,
      body: { ...form, tags: ['edited'] },
      headers: { 'if-match': `"${version}"` },
    });
    expect(put.status).toBe(200);
    expect(put.text).not.toContain(CANARY);
    expect((await assignedHeaders('private page'))?.Authorization).toBe(AUTH);

    // Left out of a PUT: kept (write-only, as a channel's secret left out).
    const without = await gw.request<CheckView>('PUT', `/api/v1/checks/${id}`, {
      token: tokens.operator,
      body: { ...form, headers: { 'X-Trace': 'visible' } },
    });
    expect(without.status).toBe(200);
    expect(await assignedHeaders('private page')).toMatchObject({ Authorization: AUTH, 'X-Api-Key': KEY });

    // Replaced (any spelling of the name) and removed.
    const rotated = await gw.request<CheckView>('PATCH', `/api/v1/checks/${id}`, {
      token: tokens.operator,
      body: { headers: { authorization: 'Bearer rotated-value', Cookie: null, 'X-Trace': 'visible' } },
    });
    expect(rotated.status).toBe(200);
    expect(rotated.text).not.toContain('rotated-value');
    expect(rotated.body).toMatchObject({
      headers: { authorization: { set: true }, 'X-Api-Key': { set: true }, 'X-Trace': 'visible' },
    });
    expect(await assignedHeaders('private page')).toEqual({
      authorization: 'Bearer rotated-value',
      'X-Api-Key': KEY,
      'X-Trace': 'visible',
    });
    const audit = await gw.request<Page<AuditEntry>>('GET', `/api/v1/config/audit?subject=${id}`, {
      token: tokens.admin,
    });
    expect(audit.text).not.toMatch(/rotated-value|zz-check-canary/);
    expect(audit.body.items[0].diff).toEqual(
      expect.arrayContaining([
        { path: 'headers.Authorization', before: '(set)', after: '(removed)' },
        { path: 'headers.authorization', after: '(set, new value)' },
        { path: 'headers.Cookie', before: '(set)', after: '(removed)' },
      ]),
    );
  });

  it('a new origin needs them sent again: 400 naming each, nothing written; another path of the same origin keeps them', async () => {
    const moved = await gw.request<ApiErrorBody>('PATCH', `/api/v1/checks/${id}`, {
      token: tokens.operator,
      body: { url: 'http://127.0.0.2:9/private/health' },
    });
    expect(moved.status).toBe(400);
    expect(moved.body.error.issues?.map((i) => i.path).sort()).toEqual(['headers.X-Api-Key', 'headers.authorization']);
    expect(moved.text).not.toMatch(/rotated-value|zz-check-canary/);
    expect((await gw.request<CheckView>('GET', `/api/v1/checks/${id}`, { token: tokens.viewer })).body).toMatchObject({
      url: 'http://127.0.0.1:9/private/health',
    });

    const samePlace = await gw.request<CheckView>('PATCH', `/api/v1/checks/${id}`, {
      token: tokens.operator,
      body: { url: 'http://127.0.0.1:9/other' },
    });
    expect(samePlace.status).toBe(200);
    expect((await assignedHeaders('private page'))?.authorization).toBe('Bearer rotated-value');

    const resent = await gw.request<CheckView>('PATCH', `/api/v1/checks/${id}`, {
      token: tokens.operator,
      body: {
        url: 'http://127.0.0.2:9/private/health',
        headers: { authorization: 'Bearer for-the-new-host', 'X-Api-Key': null, 'X-Trace': 'visible' },
      },
    });
    expect(resent.status).toBe(200);
    expect(await assignedHeaders('private page')).toEqual({
      authorization: 'Bearer for-the-new-host',
      'X-Trace': 'visible',
    });
  });

  it('export → import changes nothing; a marker with nothing stored is refused naming the header', async () => {
    const exported = await gw.request('GET', '/api/v1/config/export', { token: tokens.viewer });
    const yaml = exported.text;
    const applied = await gw.request<{ plan: ConfigPlanItem[] }>('POST', '/api/v1/config/import?prune=false', {
      token: tokens.operator,
      body: yaml,
      headers: { 'content-type': 'text/yaml' },
    });
    expect(applied.status).toBe(200);
    expect(applied.body.plan.find((i) => i.name === 'private page')?.action).toBe('unchanged');
    expect(await assignedHeaders('private page')).toMatchObject({ authorization: 'Bearer for-the-new-host' });

    const copy = yaml.replace(/^ {2}private page:$/m, '  copied page:');
    expect(copy).not.toBe(yaml);
    const refused = await gw.request<ApiErrorBody>('POST', '/api/v1/config/import?prune=false', {
      token: tokens.operator,
      body: copy,
      headers: { 'content-type': 'text/yaml' },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.issues?.map((i) => i.path)).toEqual(['checks.copied page.headers.authorization']);
  });

  it('a dry run does not tell whether a value it is given is the one stored', async () => {
    const exported = (await gw.request('GET', '/api/v1/config/export', { token: tokens.viewer })).text;
    const planOf = async (value: string) => {
      const yaml = exported.replace(/authorization:\n\s+set: true/, `authorization: ${value}`);
      expect(yaml).not.toBe(exported);
      const res = await gw.request<{ plan: ConfigPlanItem[] }>(
        'POST',
        '/api/v1/config/import?dryRun=true&prune=false',
        {
          token: tokens.viewer,
          body: yaml,
          headers: { 'content-type': 'text/yaml' },
        },
      );
      expect(res.status).toBe(200);
      return res.body.plan.find((i) => i.name === 'private page');
    };
    const right = await planOf('Bearer for-the-new-host');
    const wrong = await planOf('Bearer a-guess');
    expect(right).toEqual(wrong);
    expect(right?.action).toBe('change');
  });
});
