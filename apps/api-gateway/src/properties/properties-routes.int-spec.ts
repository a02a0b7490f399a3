import type { ApiErrorBody, CreateApiKeyResponse, PropertyDefinition } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { rmSync } from 'node:fs';
import { Client } from 'pg';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from '../checks/owner-process.int-helpers';

// Site properties through the gateway to their owner (sync-orchestrator, built from today's sources
// and run as a process): who may do what (401 / 403 per role), what is refused before any store sees
// it (NUL, lone surrogates, null, oversized, bad keys: a 400 naming the field), create / replace /
// delete with ETags and If-Match (409 carrying the current version), each write a config version
// with an audit entry, the site snapshot's `properties` area, and config as code (export → import
// changes nothing).

jest.setTimeout(150_000);

let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
let sql: Client;
const tokens: Record<'admin' | 'operator' | 'viewer' | 'readKey' | 'writeKey', string> = {} as never;

beforeAll(async () => {
  gw = await startGateway(testing, 'properties', { env: { GATEWAY_RPC_TIMEOUT_MS: '5000' } });
  dist = await privateOwnerDist(`owner-properties-${testing.testEnv().runId}`);
  owner = await startOwnerProcess(dist, {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: gw.config.amqpUrl,
    redisUrl: gw.config.redisUrl,
    redisPrefix: `${testing.testEnv().redisPrefix}owner-properties:`,
  });
  sql = new Client({ connectionString: gw.database.databaseUrl });
  await sql.connect();
  tokens.admin = await gw.login('admin', ADMIN_PASSWORD);
  for (const role of ['viewer', 'operator'] as const) {
    await gw.request('POST', '/api/v1/users', {
      token: tokens.admin,
      body: { username: role, password: `${role}-password`, role },
    });
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
});

afterAll(async () => {
  await sql?.end();
  await owner?.stop();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

const KEY = 'site.displayName';
const path = (key = KEY) => `/api/v1/properties/${key}`;

describe('property routes', () => {
  it('401 without a session; viewers and read keys read but do not write (403)', async () => {
    expect((await gw.request('GET', '/api/v1/properties')).status).toBe(401);
    expect((await gw.request('PUT', path(), { body: { value: 1 } })).status).toBe(401);
    expect((await gw.request('DELETE', path())).status).toBe(401);
    for (const token of [tokens.viewer, tokens.readKey]) {
      expect((await gw.request('GET', '/api/v1/properties', { token })).status).toBe(200);
      const put = await gw.request<ApiErrorBody>('PUT', path(), { token, body: { value: 1 } });
      expect([put.status, put.body.error.code]).toEqual([403, 'forbidden']);
      const del = await gw.request<ApiErrorBody>('DELETE', path(), { token });
      expect([del.status, del.body.error.code]).toEqual([403, 'forbidden']);
    }
  });

  it.each<[string, string, string, unknown]>([
    ['NUL in a string (jsonb refuses it)', 'value', KEY, { value: 'a\u0000b' }],
    ['NUL deep in a value', 'value.list.1', KEY, { value: { list: ['ok', 'x\u0000'] } }],
    ['a NUL key inside the value', 'value.k\u0000', KEY, { value: { 'k\u0000': 1 } }],
    ['a lone surrogate', 'value', KEY, { value: '\ud83d' }],
    ['null', 'value', KEY, { value: null }],
    ['no value', 'value', KEY, {}],
    ['an unknown field', '(body)', KEY, { value: 1, extra: true }],
    ['more than 16 KiB', 'value', KEY, { value: 'x'.repeat(17_000) }],
    ['a key with a space', 'key', 'a%20b', { value: 1 }],
    ['a key too long', 'key', 'k'.repeat(129), { value: 1 }],
    // JSON text the gateway reads as ±Infinity: the bus would carry it as null ([1e400] stored as [null]).
    ['a number beyond a double, deep', 'value.0', KEY, '{"value":[1e400]}'],
    ['a negative number beyond a double, in an object', 'value.a', KEY, '{"value":{"a":-1e400}}'],
    ['a number beyond a double', 'value', KEY, '{"value":1e400}'],
  ])('refuses %s: a 400 naming %s, nothing written', async (_, field, key, body) => {
    const before = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM config_versions');
    const res = await gw.request<ApiErrorBody>('PUT', path(key), { token: tokens.operator, body });
    expect([res.status, res.body.error.code]).toEqual([400, 'validation_failed']);
    expect(res.body.error.issues?.map((i) => i.path)).toContain(field);
    if (typeof body === 'string')
      expect(res.body.error.issues?.find((i) => i.path === field)?.message).toMatch(/out of range/);
    const after = await sql.query<{ n: number }>('SELECT count(*)::int AS n FROM config_versions');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it.each<[string, 'GET' | 'PUT' | 'DELETE', string, unknown, number]>([
    ['an unknown query parameter', 'GET', '/api/v1/properties?bogus=1', undefined, 400],
    ['an empty prefix', 'GET', '/api/v1/properties?prefix=', undefined, 400],
    ['a prefix holding a NUL', 'GET', '/api/v1/properties?prefix=a%00', undefined, 400],
    ['a key holding a NUL', 'GET', '/api/v1/properties/a%00', undefined, 400],
    ['a key holding a lone surrogate', 'GET', '/api/v1/properties/a%ED%A0%80', undefined, 400],
    ['a key badly percent-encoded', 'GET', '/api/v1/properties/a%ZZ', undefined, 400],
    ['a JSON null body', 'PUT', path(), 'null', 400],
    ['a JSON array body', 'PUT', path(), '[1]', 400],
    ['a body that is not JSON', 'PUT', path(), '{"value":', 400],
    ['a __proto__ member', 'PUT', path(), '{"value":{"__proto__":{"a":1}}}', 400],
    ['If-Match beyond a version', 'PUT', path(), '{"value":1}', 400],
    ['If-Match beyond a version (DELETE)', 'DELETE', path(), undefined, 400],
  ])('%s: a 4xx, never a 5xx', async (name, method, url, body, status) => {
    const headers = name.startsWith('If-Match') ? { 'if-match': '"999999999999999"' } : undefined;
    const res = await gw.request<ApiErrorBody>(method, url, { token: tokens.operator, body, headers });
    expect(res.status).toBe(status);
  });

  let created: PropertyDefinition;
  it('PUT creates (201, Location, ETag), replaces (200), the same value is no new version; GET and list', async () => {
    const res = await gw.request<PropertyDefinition>('PUT', path(), {
      token: tokens.writeKey,
      headers: { 'if-match': '"0"' },
      body: { value: 'Berlin lab' },
    });
    expect(res.status).toBe(201);
    created = res.body;
    expect(res.headers.get('location')).toBe(path());
    expect(res.headers.get('etag')).toBe(`"${created.version}"`);
    expect(created).toMatchObject({ key: KEY, value: 'Berlin lab' });

    const replaced = await gw.request<PropertyDefinition>('PUT', path(), {
      token: tokens.operator,
      headers: { 'if-match': `"${created.version}"` },
      body: { value: { name: 'Berlin', floor: 2 } },
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body.version).toBe(created.version + 1);
    const same = await gw.request<PropertyDefinition>('PUT', path(), {
      token: tokens.operator,
      body: { value: { floor: 2, name: 'Berlin' } },
    });
    expect([same.status, same.body.version]).toEqual([200, replaced.body.version]);

    const one = await gw.request<PropertyDefinition>('GET', path(), { token: tokens.viewer });
    expect([one.status, one.headers.get('etag'), one.body.value]).toEqual([
      200,
      `"${replaced.body.version}"`,
      { name: 'Berlin', floor: 2 },
    ]);
    await gw.request('PUT', path('retention.days'), { token: tokens.admin, body: { value: 30 } });
    const list = await gw.request<{ items: PropertyDefinition[] }>('GET', '/api/v1/properties', {
      token: tokens.viewer,
    });
    expect(list.body.items.map((p) => [p.key, p.value])).toEqual([
      ['retention.days', 30],
      [KEY, { name: 'Berlin', floor: 2 }],
    ]);
    const some = await gw.request<{ items: PropertyDefinition[] }>('GET', '/api/v1/properties?prefix=site.', {
      token: tokens.viewer,
    });
    expect(some.body.items.map((p) => p.key)).toEqual([KEY]);
    created = replaced.body;
  });

  it('a write is a config version with an audit entry (who, diff); a stale If-Match is a 409', async () => {
    const stale = await gw.request<ApiErrorBody>('PUT', path(), {
      token: tokens.operator,
      headers: { 'if-match': `"${created.version - 1}"` },
      body: { value: 'x' },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error.currentVersion).toBe(created.version);
    expect(stale.headers.get('etag')).toBe(`"${created.version}"`);
    const exists = await gw.request<ApiErrorBody>('PUT', path(), {
      token: tokens.operator,
      headers: { 'if-match': '"0"' },
      body: { value: 'x' },
    });
    expect(exists.status).toBe(409);

    const audit = await sql.query<{ action: string; actor: string; diff: unknown }>(
      'SELECT action, actor, diff FROM audit_log WHERE subject = $1 ORDER BY at',
      [KEY],
    );
    expect(audit.rows.map((r) => [r.action, r.actor.split(' ')[0]])).toEqual([
      ['property.create', 'ci-write'],
      ['property.replace', 'operator'],
    ]);
    expect(audit.rows[1].diff).toEqual([{ path: 'value', before: 'Berlin lab', after: { name: 'Berlin', floor: 2 } }]);
    const versions = await sql.query<{ summary: string; hash: string }>(
      'SELECT summary, hash FROM config_versions ORDER BY version',
    );
    expect(versions.rows.map((r) => r.summary)).toEqual(
      expect.arrayContaining([`create property ${KEY}`, `change property ${KEY}`]),
    );
    // The hash follows the content: the two versions of the property hash differently.
    const hashes = versions.rows.filter((r) => r.summary.endsWith(KEY)).map((r) => r.hash);
    expect(new Set(hashes).size).toBe(hashes.length);
  });

  it("the site snapshot's properties area lists them by key", async () => {
    type Snapshot = { areas: { properties: Array<{ key: string; value: unknown }> } };
    let found: Snapshot['areas']['properties'] = [];
    for (let i = 0; i < 30 && found.length < 2; i++) {
      const res = await gw.request<Snapshot>('GET', '/api/v1/system/snapshot/current', { token: tokens.viewer });
      expect(res.status).toBe(200);
      found = res.body.areas.properties;
      if (found.length < 2) await new Promise((r) => setTimeout(r, 500));
    }
    expect(found).toEqual([
      { key: 'retention.days', value: 30 },
      { key: KEY, value: { name: 'Berlin', floor: 2 } },
    ]);
  });

  it('numbers at the edges of a double read back equal through the API and the site snapshot', async () => {
    const value = [1e21, 5e-324, 1.7976931348623157e308, -1e-7, 0.1, 123456789012345680000, 2 ** 53 + 2, -0];
    const expected = JSON.parse(JSON.stringify(value)) as unknown;
    const put = await gw.request<PropertyDefinition>('PUT', path('edge.numbers'), {
      token: tokens.operator,
      body: { value },
    });
    expect([put.status, put.body.value]).toEqual([201, expected]);
    const one = await gw.request<PropertyDefinition>('GET', path('edge.numbers'), { token: tokens.viewer });
    expect(one.body.value).toEqual(expected);
    type Snapshot = { areas: { properties: Array<{ key: string; value: unknown }> } };
    let found: unknown;
    for (let i = 0; i < 30 && found === undefined; i++) {
      const res = await gw.request<Snapshot>('GET', '/api/v1/system/snapshot/current', { token: tokens.viewer });
      found = res.body.areas.properties.find((p) => p.key === 'edge.numbers')?.value;
      if (found === undefined) await new Promise((r) => setTimeout(r, 500));
    }
    expect(found).toEqual(expected);
    await gw.request('DELETE', path('edge.numbers'), { token: tokens.operator });
  });

  it('config as code: exported by key; the export re-imported changes nothing; an edited one changes the property', async () => {
    const exported = await gw.request<string>('GET', '/api/v1/config/export', { token: tokens.viewer });
    expect(exported.status).toBe(200);
    // Keys inside a value in code-unit order, whatever order the store keeps them in.
    expect(exported.text).toMatch(
      /^properties:\n {2}retention\.days: 30\n {2}site\.displayName:\n {4}floor: 2\n {4}name: Berlin\n/m,
    );
    type Plan = { plan: Array<{ action: string; name: string }>; version: number };
    const head = await sql.query<{ version: number }>('SELECT version FROM config_head');
    const again = await gw.request<Plan>('POST', '/api/v1/config/import', {
      token: tokens.operator,
      body: { yaml: exported.text },
    });
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(head.rows[0].version);
    expect(again.body.plan.filter((i) => i.name.startsWith('properties/'))).toEqual([
      expect.objectContaining({ action: 'unchanged', name: 'properties/retention.days' }),
      expect.objectContaining({ action: 'unchanged', name: `properties/${KEY}` }),
    ]);
    const bad = await gw.request<ApiErrorBody>('POST', '/api/v1/config/import?dryRun=true', {
      token: tokens.viewer,
      body: { yaml: exported.text.replace('retention.days: 30', 'retention.days: "a\\0b"') },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues?.map((i) => i.path)).toContain('properties.retention.days');
    const edited = await gw.request<Plan>('POST', '/api/v1/config/import', {
      token: tokens.operator,
      body: { yaml: exported.text.replace('retention.days: 30', 'retention.days: 31') },
    });
    expect(edited.status).toBe(200);
    expect(edited.body.version).toBe(head.rows[0].version + 1);
    const one = await gw.request<PropertyDefinition>('GET', path('retention.days'), { token: tokens.viewer });
    expect(one.body).toMatchObject({ value: 31, version: edited.body.version });
  });

  it('DELETE (admins write too): 204, then 404; a stale If-Match is a 409', async () => {
    const stale = await gw.request('DELETE', path(), { token: tokens.admin, headers: { 'if-match': '"1"' } });
    expect(stale.status).toBe(409);
    const del = await gw.request('DELETE', path(), { token: tokens.admin });
    expect(del.status).toBe(204);
    expect((await gw.request('GET', path(), { token: tokens.admin })).status).toBe(404);
    expect((await gw.request('DELETE', path(), { token: tokens.admin })).status).toBe(404);
  });
});
