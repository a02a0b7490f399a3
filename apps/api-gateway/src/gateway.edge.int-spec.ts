import type { ApiErrorBody, ApiKeyView, CreateApiKeyResponse } from '@fleetwatch/contracts';
import { ApiKeysRepository, generateApiKey } from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from './int-spec.helpers';

// The gateway's network edge: GATEWAY_TRUST_PROXY is a list of proxy CIDRs, so a
// client's own X-Forwarded-For never moves it inside a key's allow-list; and the
// key form takes the certificate subject status-ingest's mutual TLS checks.

let direct: GatewayHarness;
let proxied: GatewayHarness;
let adminDirect: string;
let adminProxied: string;

beforeAll(async () => {
  [direct, proxied] = await Promise.all([
    startGateway(testing, 'edge-direct'),
    startGateway(testing, 'edge-proxied', { env: { GATEWAY_TRUST_PROXY: '127.0.0.1/32,::1/128' } }),
  ]);
  [adminDirect, adminProxied] = await Promise.all([
    direct.login('admin', ADMIN_PASSWORD),
    proxied.login('admin', ADMIN_PASSWORD),
  ]);
});
afterAll(() => Promise.all([direct?.close(), proxied?.close()]));

async function keyFrom(gw: GatewayHarness, admin: string, allowedCidrs: string[]): Promise<string> {
  const res = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
    token: admin,
    body: { name: 'edge', scopes: ['read'], allowedCidrs },
  });
  expect(res.status).toBe(201);
  return res.body.key;
}

describe('client address behind proxies', () => {
  it('a spoofed X-Forwarded-For from an untrusted peer does not bypass a key allow-list', async () => {
    const key = await keyFrom(direct, adminDirect, ['10.9.0.0/16']);
    const res = await direct.request<ApiErrorBody>('GET', '/api/v1/targets', {
      token: key,
      headers: { 'x-forwarded-for': '10.9.1.1' },
    });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toMatch(/not allowed from (::ffff:)?127\.0\.0\.1/);
  });

  it('through a trusted proxy the forwarded address is used, and only the right-most untrusted one', async () => {
    const key = await keyFrom(proxied, adminProxied, ['10.9.0.0/16']);
    expect(
      (await proxied.request('GET', '/api/v1/targets', { token: key, headers: { 'x-forwarded-for': '10.9.1.1' } }))
        .status,
    ).toBe(200);
    const spoofed = await proxied.request<ApiErrorBody>('GET', '/api/v1/targets', {
      token: key,
      headers: { 'x-forwarded-for': '10.9.1.1, 198.51.100.7' },
    });
    expect(spoofed.status).toBe(403);
    expect(spoofed.body.error.message).toMatch(/not allowed from 198\.51\.100\.7/);
  });
});

describe('client certificate subject on a key', () => {
  it('is stored, listed, and validated', async () => {
    const created = await direct.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token: adminDirect,
      body: { name: 'daemon', scopes: ['ingest'], clientCertSubject: 'daemon-7.example' },
    });
    expect(created.status).toBe(201);
    const listed = (await direct.request<ApiKeyView[]>('GET', '/api/v1/api-keys', { token: adminDirect })).body.find(
      (k) => k.id === created.body.id,
    );
    expect(listed?.clientCertSubject).toBe('daemon-7.example');

    const plain = await direct.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token: adminDirect,
      body: { name: 'plain', scopes: ['ingest'] },
    });
    const listedPlain = (
      await direct.request<ApiKeyView[]>('GET', '/api/v1/api-keys', { token: adminDirect })
    ).body.find((k) => k.id === plain.body.id);
    expect(listedPlain?.clientCertSubject).toBeNull();

    const bad = await direct.request<ApiErrorBody>('POST', '/api/v1/api-keys', {
      token: adminDirect,
      body: { name: 'bad', scopes: ['ingest'], clientCertSubject: 'a\u0000b' },
    });
    expect(bad.status).toBe(400);
    expect([...new Set(bad.body.error.issues?.map((i) => i.path))]).toEqual(['clientCertSubject']);
  });

  it('is refused with scopes only the gateway honours (it has no mutual TLS to check the certificate)', async () => {
    for (const scopes of [['read'], ['ingest', 'write'], ['fleet']]) {
      const res = await direct.request<ApiErrorBody>('POST', '/api/v1/api-keys', {
        token: adminDirect,
        body: { name: 'bound', scopes, clientCertSubject: 'daemon-8.example' },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.message).toMatch(/^clientCertSubject: .*only at the ingest port/);
      expect(res.body.error.issues?.map((i) => i.path)).toEqual(['clientCertSubject']);
    }
  });

  it('binds a key to the ingest port: the gateway refuses it, whatever its scopes, with no certificate to check', async () => {
    // As a key made before creation refused the combination: a gateway scope and a certificate subject.
    const generated = generateApiKey();
    await direct.running.app.get(ApiKeysRepository, { strict: false }).create({
      name: 'bound, old',
      prefix: generated.prefix,
      keyHash: generated.keyHash,
      scopes: ['read'],
      clientCertSubject: 'daemon-9.example',
    });
    const ingestOnly = await direct.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token: adminDirect,
      body: { name: 'bound', scopes: ['ingest'], clientCertSubject: 'daemon-9.example' },
    });
    expect(ingestOnly.status).toBe(201);
    for (const key of [generated.key, ingestOnly.body.key]) {
      const res = await direct.request<ApiErrorBody>('GET', '/api/v1/targets', { token: key });
      expect(res.status).toBe(403);
      expect(res.body).toEqual({
        error: {
          code: 'forbidden',
          message: expect.stringMatching(/bound to a client certificate.*only at the ingest port/),
        },
      });
    }
  });
});

describe('text a store cannot hold is a 400, never a 5xx', () => {
  it.each([
    ['a key name with NUL', '/api/v1/api-keys', { name: 'k\u0000', scopes: ['ingest'] }, 'name'],
    [
      'a lone surrogate in a certificate subject',
      '/api/v1/api-keys',
      { name: 'k', scopes: ['ingest'], clientCertSubject: 'cn-\ud800' },
      'clientCertSubject',
    ],
    [
      'a username with NUL at login',
      '/api/v1/auth/login',
      { username: 'admin\u0000', password: 'whatever-123' },
      'username',
    ],
  ])('%s', async (_name, path, body, field) => {
    const res = await direct.request<ApiErrorBody>('POST', path, { token: adminDirect, body });
    expect(res.status).toBe(400);
    expect(res.body.error.issues?.map((i) => i.path)).toContain(field);
  });
});

describe('a target id no store can hold', () => {
  it.each(['/api/v1/targets/abc%00def', '/api/v1/targets/abc%00def/history?minutes=5'])(
    '%s is a 400 naming id, not a 5xx',
    async (path) => {
      const res = await direct.request<ApiErrorBody>('GET', path, { token: adminDirect });
      expect(res.status).toBe(400);
      expect(res.body.error.issues?.map((i) => i.path)).toContain('id');
    },
  );
});

describe('a body over the limit at the gateway', () => {
  it('gets a 413 the client receives, not a reset (every service answers after reading the body)', async () => {
    for (const size of [5 * 1024 * 1024, 12 * 1024 * 1024]) {
      const res = await testing.streamPost(`${direct.url}/api/v1/auth/login`, size);
      expect(res.status).toBe(413);
    }
  });
});

describe('a JSON body nested past any schema', () => {
  const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

  it.each([
    ['POST', '/api/v1/checks'],
    ['POST', '/api/v1/alert-rules'],
    ['PUT', '/api/v1/properties/app.deep'],
    ['POST', '/api/v1/checks/bulk'],
  ])(
    '%s %s: 100,000 levels are a 400 naming the body (the walks over it overflowed the stack: a 500)',
    async (m, path) => {
      const res = await direct.request<ApiErrorBody>(m, path, {
        token: adminDirect,
        body: `{"checks":[${nested(100_000)}]}`,
      });
      expect(res.status).toBe(400);
      expect(res.body.error.issues).toEqual([
        { path: '(body)', message: 'nested deeper than 64 levels of arrays and objects (at offset 73)' },
      ]);
    },
  );

  it('64 levels are read (and refused by the schema, naming the field)', async () => {
    const res = await direct.request<ApiErrorBody>('POST', '/api/v1/users', {
      token: adminDirect,
      body: `{"username":${nested(63)}}`,
    });
    expect(res.status).toBe(400);
    expect(res.body.error.issues?.map((i) => i.path)).toEqual(['username', 'password', 'role']);
  });
});

describe('a JSON body that is not UTF-8', () => {
  it('is a 400 naming the body and where, not a "size did not match Content-Length"', async () => {
    const body = Buffer.concat([Buffer.from('{"value":"a'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]);
    const res = await fetch(`${direct.url}/api/v1/properties/app.utf8`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${adminDirect}`, 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ApiErrorBody).error.issues).toEqual([
      { path: '(body)', message: 'not valid UTF-8 (at byte 11)' },
    ]);
  });
});

describe('a JSON body with a key Fastify refuses (__proto__, constructor.prototype)', () => {
  it.each([
    ['POST', '/api/v1/alert-rules', '{"name":"p","labels":{"__proto__":"x"}}', 'labels.__proto__'],
    ['PUT', '/api/v1/properties/app.proto', '{"value":{"a":[{"__proto__":{"polluted":1}}]}}', 'value.a.0.__proto__'],
    ['POST', '/api/v1/config/import?dryRun=true', '{"yaml":"checks: {}\\n","__proto__":{}}', '__proto__'],
    ['POST', '/api/v1/checks', '{"name":"c","constructor":{"prototype":{}}}', 'constructor'],
  ])('%s %s: a 400 naming the key by its path, not "Body is not valid JSON"', async (m, path, body, field) => {
    const res = await direct.request<ApiErrorBody>(m as 'POST' | 'PUT', path, { token: adminDirect, body });
    expect(res.status).toBe(400);
    expect(res.body.error.issues?.map((i) => i.path)).toEqual([field]);
    expect(res.body.error.message).toMatch(
      new RegExp(`^${field.replaceAll('.', '\\.')}: the key "(__proto__|constructor)`),
    );
  });
});

describe('a form body (application/x-www-form-urlencoded)', () => {
  it('is a 415 with a JSON error: no route reads forms, and none gets one past the JSON checks', async () => {
    const res = await fetch(`${direct.url}/api/v1/properties/app.form`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${adminDirect}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'value=a&value=b',
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as ApiErrorBody).error).toBeDefined();
  });

  it("an empty one is no body: a body-less POST as curl -d '' sends it is answered as without one", async () => {
    const own = await direct.login('admin', ADMIN_PASSWORD); // a session of its own to end
    const withForm = await fetch(`${direct.url}/api/v1/auth/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${own}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    expect(withForm.status).toBeGreaterThanOrEqual(200);
    expect(withForm.status).toBeLessThan(300);
  });
});
