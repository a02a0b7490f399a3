import type { ApiErrorBody, CheckDefinition, Page } from '@fleetwatch/contracts';
import { request as httpRequest } from 'node:http';
import type { GatewayHarness } from '../int-spec.helpers';
import { idempotencyRig, sleep, type ListedEntry } from './idempotency.int-helpers';

// A write the owner commits while its answer does not reach the gateway in time (the broker's bytes to
// the gateway held back, as on a congested or flapping link): the client is told 503 "outcome unknown",
// yet the check exists. A plain retry of the create is a 409 (no duplicate, but the script cannot tell
// its own check from someone else's, and a push check's ping token is lost). With an `Idempotency-Key`
// the retry is answered as the first request was: the same check (and token), nothing written twice.

jest.setTimeout(180_000);

const rig = idempotencyRig('checks-idem');
const { lostAnswer, listed, listedOnce, configVersion } = rig;
let gw: GatewayHarness;
let token: string;

beforeAll(async () => {
  ({ gw, token } = rig);
  // One call first: the gateway's request channel is opened (a channel opened while the broker is held never is).
  expect(await named('warm-up')).toEqual([]);
  // And one write: the owner's first write is its slowest (first transaction, statements prepared), and each write
  // whose answer the tests hold must commit within the gateway's RPC timeout.
  const warm = await gw.request('POST', '/api/v1/checks', { token, body: tcp('warm-up-write') });
  expect(warm.status).toBe(201);
});

async function named(name: string): Promise<CheckDefinition[]> {
  const res = await gw.request<Page<CheckDefinition>>('GET', '/api/v1/checks?limit=1000', { token });
  expect(res.status).toBe(200);
  return res.body.items.filter((c) => c.name === name);
}

/** The checks named so, once there is one (the first request committed; its answer was what got lost). */
async function madeOnce(name: string): Promise<CheckDefinition> {
  const until = Date.now() + 20_000;
  for (;;) {
    const found = await named(name);
    if (found.length > 0 || Date.now() > until) {
      expect(found).toHaveLength(1);
      return found[0];
    }
    await sleep(200);
  }
}

/** A request with headers as given, each array value sent as that many header lines (fetch joins them into one). */
function rawRequest(
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string | string[]>,
): Promise<{ status: number; body: ApiErrorBody }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = httpRequest(
      `${gw.url}${path}`,
      {
        method,
        headers: { ...headers, authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (data += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) as ApiErrorBody }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

const tcp = (name: string) => ({ name, type: 'tcp', host: '127.0.0.1', port: 5999, intervalSeconds: 30 });

describe('a write committed while its answer was lost (503)', () => {
  it('without Idempotency-Key: the retry of a create is a 409 (the check exists, made by the first request)', async () => {
    await lostAnswer('POST', '/api/v1/checks', tcp('plain'));
    await madeOnce('plain');
    const retry = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', { token, body: tcp('plain') });
    expect([retry.status, retry.body.error?.code]).toEqual([409, 'conflict']);
  });

  it('with Idempotency-Key: the retry gets the first answer — the same check, 201, one check, one version', async () => {
    const key = { 'idempotency-key': 'deploy-42/create-keyed' };
    await lostAnswer('POST', '/api/v1/checks', tcp('keyed'), key);
    const made = await madeOnce('keyed');
    const retry = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token,
      body: tcp('keyed'),
      headers: key,
    });
    expect(retry.status).toBe(201);
    expect(retry.body).toMatchObject({ id: made.id, version: made.version });
    expect(retry.headers.get('etag')).toBe(`"${made.version}"`);
    expect(await named('keyed')).toHaveLength(1);
    // Another key is another request: the name is taken.
    const other = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      token,
      body: tcp('keyed'),
      headers: { 'idempotency-key': 'deploy-43/create-keyed' },
    });
    expect(other.status).toBe(409);
  });

  it('a heartbeat (push check): the retry with the key gets the ping token the lost answer carried', async () => {
    const key = { 'idempotency-key': 'hb-1' };
    const body = { name: 'nightly', periodSeconds: 3600, graceSeconds: 600 };
    await lostAnswer('POST', '/api/v1/heartbeats', body, key);
    const made = await madeOnce('nightly');
    const retry = await gw.request<{ id: string; token: string; pingUrl: string }>('POST', '/api/v1/heartbeats', {
      token,
      body,
      headers: key,
    });
    expect(retry.status).toBe(201);
    expect(retry.body.token).toEqual(expect.any(String));
    expect(retry.body.pingUrl).toContain(retry.body.token);
    expect(retry.body.id).toBe(made.id);
    expect((await named('nightly')).map((c) => c.id)).toEqual([made.id]);
  });

  it('the key names one request: the same key with another body is a 422 that writes nothing; another route is another request', async () => {
    const key = { 'idempotency-key': 'reused' };
    const a = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token,
      body: tcp('reused-a'),
      headers: key,
    });
    expect(a.status).toBe(201);
    // The same body with its fields in another order (a client that builds it again) is the same request.
    const { name, type, ...rest } = tcp('reused-a');
    const again = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token,
      body: { ...rest, type, name },
      headers: key,
    });
    expect([again.status, again.body.id]).toEqual([201, a.body.id]);
    // The same key, route and caller with another body: refused (draft-ietf-httpapi-idempotency-key-header), not made.
    const versions = await configVersion();
    const reused = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      token,
      body: tcp('reused-b'),
      headers: key,
    });
    expect([reused.status, reused.body.error?.code, reused.body.error?.issues?.[0]?.path]).toEqual([
      422,
      'denied',
      'Idempotency-Key',
    ]);
    expect(reused.body.error?.message).toMatch(
      new RegExp(
        `^Idempotency-Key: already used by you for another checks\\.create request .*config version ${a.body.version}`,
      ),
    );
    expect(await named('reused-b')).toEqual([]);
    expect(await configVersion()).toBe(versions);
    // A heartbeat is a check's create too: the same key there with its own body is the same refusal.
    const hb = await gw.request<ApiErrorBody>('POST', '/api/v1/heartbeats', {
      token,
      body: { name: 'reused-hb', periodSeconds: 3600, graceSeconds: 600 },
      headers: key,
    });
    expect([hb.status, hb.body.error?.issues?.[0]?.path]).toEqual([422, 'Idempotency-Key']);
    const b = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token,
      body: tcp('reused-b'),
      headers: { 'idempotency-key': 'reused-2' },
    });
    expect(b.status).toBe(201);
    // The same key on a PATCH of the first: applied, then answered again as applied.
    const patch = () =>
      gw.request<CheckDefinition>('PATCH', `/api/v1/checks/${a.body.id}`, {
        token,
        body: { intervalSeconds: 45 },
        headers: key,
      });
    const p1 = await patch();
    const p2 = await patch();
    expect([p1.status, p2.status, p2.body.version]).toEqual([200, 200, p1.body.version]);
    // A delete repeated with its key: 204 both times, not 404.
    const del = () =>
      gw.request('DELETE', `/api/v1/checks/${b.body.id}`, { token, headers: { 'idempotency-key': 'del-b' } });
    expect([(await del()).status, (await del()).status]).toEqual([204, 204]);
  });

  it('a key that is not 1–255 visible ASCII characters is a 400 saying what is wrong and the limits', async () => {
    const cases: Array<[string, RegExp]> = [
      // '' too: fetch sends an empty header, and it is no key (not "no header"); ' ' arrives empty (trimmed).
      ['', /^Idempotency-Key: empty: send 1 to 255 visible ASCII characters .*or leave the header out$/],
      [' ', /^Idempotency-Key: empty: /],
      ['x'.repeat(256), /^Idempotency-Key: 256 characters, more than 255: send 1 to 255 visible ASCII characters/],
      ['a b', /^Idempotency-Key: character 2 is a space \(U\+0020\): send 1 to 255 visible ASCII characters/],
      ['naïve', /^Idempotency-Key: character 3 is not ASCII \(U\+00EF\): /],
    ];
    for (const [bad, message] of cases) {
      const res = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
        token,
        body: tcp('bad-key'),
        headers: { 'idempotency-key': bad },
      });
      expect([bad, res.status, res.body.error?.issues?.[0]?.path]).toEqual([bad, 400, 'Idempotency-Key']);
      expect(res.body.error?.message).toMatch(message);
    }
    expect(await named('bad-key')).toEqual([]);
  });

  it('the header sent twice (two lines, even with one key) is a 400 saying so, on every keyed route', async () => {
    for (const [method, path, body] of [
      ['POST', '/api/v1/checks', tcp('twice')],
      ['POST', '/api/v1/alert-rules', rule('twice')],
      ['PUT', '/api/v1/properties/site.twice', { value: 1 }],
    ] as const) {
      const res = await rawRequest(method, path, body, { 'idempotency-key': ['k-twice', 'k-twice'] });
      expect([path, res.status, res.body.error?.issues?.[0]?.path]).toEqual([path, 400, 'Idempotency-Key']);
      expect(res.body.error?.message).toBe(
        'Idempotency-Key: sent 2 times: send the header once, with one key (1 to 255 visible ASCII characters (! to ~: no spaces, control or non-ASCII characters))',
      );
    }
    expect(await named('twice')).toEqual([]);
  });
});

const rule = (name: string) => ({
  name,
  condition: { type: 'metric', metric: { kind: 'latency_p95_ms' }, op: 'above', threshold: 300 },
  for: '5m',
});

type Entry = ListedEntry;

describe('alert rules, channels, status pages and properties take the key too', () => {
  const kinds = [
    {
      kind: 'an alert rule',
      path: '/api/v1/alert-rules',
      body: (n: string) => rule(n),
      match: (n: string) => (e: Entry) => e.name === n,
      patch: { severity: 'critical' },
    },
    {
      kind: 'a channel',
      path: '/api/v1/channels',
      body: (n: string) => ({ type: 'webhook', name: n, url: 'https://hooks.example.com/in' }),
      match: (n: string) => (e: Entry) => e.name === n,
      patch: { url: 'https://hooks.example.com/other' },
    },
    {
      kind: 'a status page',
      path: '/api/v1/status-pages',
      body: (n: string) => ({ slug: n, title: `Page ${n}`, components: [{ name: 'Website', tags: ['web'] }] }),
      match: (n: string) => (e: Entry) => e.slug === n,
      patch: { title: 'Renamed' },
    },
  ];

  it.each(kinds)(
    '$kind: the retry of a create whose answer was lost gets the first answer (one entry); another body with the key is a 422',
    async ({ path, body, match, patch }) => {
      const name = `lost-${path.split('/').pop()}`;
      const key = { 'idempotency-key': `create-${name}` };
      await lostAnswer('POST', path, body(name), key);
      const made = await listedOnce(path, match(name));
      const retry = await gw.request<Entry>('POST', path, { token, body: body(name), headers: key });
      expect([retry.status, retry.body.id, retry.body.version]).toEqual([201, made.id, made.version]);
      expect(retry.headers.get('location')).toBe(`${path}/${encodeURIComponent(made.id)}`);
      expect(retry.headers.get('etag')).toBe(`"${made.version}"`);
      expect(await listed(path, match(name))).toHaveLength(1);
      // The same key with another body: refused, nothing made.
      const other = await gw.request<ApiErrorBody>('POST', path, { token, body: body(`${name}-2`), headers: key });
      expect([other.status, other.body.error?.issues?.[0]?.path]).toEqual([422, 'Idempotency-Key']);
      expect(await listed(path, match(`${name}-2`))).toEqual([]);
      // A PATCH (If-Match: the version read) whose answer was lost: its keyed retry is answered as applied, with the
      // version it made, where a plain retry is a 409 (the version moved on — by itself).
      const patchKey = { 'idempotency-key': `patch-${name}`, 'if-match': `"${made.version}"` };
      await lostAnswer('PATCH', `${path}/${made.id}`, patch, patchKey);
      const patched = await gw.request<Entry>('PATCH', `${path}/${made.id}`, { token, body: patch, headers: patchKey });
      expect(patched.status).toBe(200);
      expect(patched.body.version).toBeGreaterThan(made.version);
      const now = await gw.request<Entry>('GET', `${path}/${made.id}`, { token });
      expect(now.body.version).toBe(patched.body.version);
      const plain = await gw.request('PATCH', `${path}/${made.id}`, {
        token,
        body: patch,
        headers: { 'if-match': `"${made.version}"` },
      });
      expect(plain.status).toBe(409);
      // A delete whose answer was lost: its keyed retry is a 204, not a 404.
      const delKey = { 'idempotency-key': `delete-${name}` };
      await lostAnswer('DELETE', `${path}/${made.id}`, undefined, delKey);
      expect((await gw.request('DELETE', `${path}/${made.id}`, { token, headers: delKey })).status).toBe(204);
      expect((await gw.request('DELETE', `${path}/${made.id}`, { token })).status).toBe(404);
    },
  );

  it('a property: the retry of a create-only PUT (If-Match "0") whose answer was lost gets the 201, not a 409', async () => {
    const path = '/api/v1/properties/site.lost';
    const headers = { 'idempotency-key': 'put-site.lost', 'if-match': '"0"' };
    await lostAnswer('PUT', path, { value: 'first' }, headers);
    let made: { key: string; version: number; value: unknown } | undefined;
    const until = Date.now() + 20_000;
    while (!made && Date.now() < until) {
      const got = await gw.request<{ key: string; version: number; value: unknown }>('GET', path, { token });
      if (got.status === 200) made = got.body;
      else await sleep(200);
    }
    expect(made).toMatchObject({ key: 'site.lost', value: 'first' });
    const retry = await gw.request<{ key: string; version: number }>('PUT', path, {
      token,
      body: { value: 'first' },
      headers,
    });
    expect([retry.status, retry.body.version]).toEqual([201, made?.version]);
    // Without the key the same PUT is the 409 the client could not tell from someone else's property.
    const plain = await gw.request('PUT', path, { token, body: { value: 'first' }, headers: { 'if-match': '"0"' } });
    expect(plain.status).toBe(409);
    const other = await gw.request<ApiErrorBody>('PUT', path, { token, body: { value: 'second' }, headers });
    expect([other.status, other.body.error?.issues?.[0]?.path]).toEqual([422, 'Idempotency-Key']);
    const delKey = { 'idempotency-key': 'delete-site.lost' };
    await lostAnswer('DELETE', path, undefined, delKey);
    expect((await gw.request('DELETE', path, { token, headers: delKey })).status).toBe(204);
    expect((await gw.request('GET', path, { token })).status).toBe(404);
  });
});
