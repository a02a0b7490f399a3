import type { ApiErrorBody } from '@fleetwatch/contracts';
import type { GatewayHarness } from '../int-spec.helpers';
import { idempotencyRig, sleep, type ListedEntry } from '../checks/idempotency.int-helpers';

// `Idempotency-Key` on the silence and status-change subscription writes (as on the checks' and alert configuration's,
// checks-idempotency.int-spec.ts): both are written by sync-orchestrator's config writer, so a write committed while
// its answer was lost (503, outcome unknown) is answered as the first on the client's keyed retry — the same silence or
// subscription, not a second one; a delete's 204, not a 404 — and the same key with another body is a 422.

jest.setTimeout(180_000);

const startsAt = new Date(Date.now() - 1000).toISOString();
const endsAt = new Date(Date.now() + 3_600_000).toISOString();
/** A silence told apart by its comment (silences have no name). */
const silence = (comment: string) => ({
  matchers: [{ name: 'severity', op: '=', value: 'critical' }],
  startsAt,
  endsAt,
  comment,
});
const subscription = (name: string) => ({ name, url: 'https://hooks.example.com/status', secret: 's'.repeat(24) });

const rig = idempotencyRig('silences-idem');
const { lostAnswer, listed, listedOnce, configVersion } = rig;
let gw: GatewayHarness;
let token: string;

beforeAll(async () => {
  ({ gw, token } = rig);
  // One call first (the gateway's request channel is opened), and one write of each kind: the owner's first write is
  // its slowest, and each write whose answer the tests hold must commit within the gateway's RPC timeout.
  expect((await gw.request('GET', '/api/v1/silences', { token })).status).toBe(200);
  expect((await gw.request('POST', '/api/v1/silences', { token, body: silence('warm-up') })).status).toBe(201);
  expect((await gw.request('POST', '/api/v1/subscriptions', { token, body: subscription('warm-up') })).status).toBe(
    201,
  );
});

type Entry = ListedEntry;

/** The entry at `path` once it answers `status` (the lost answer's write committed). */
async function once(path: string, until: (status: number, body: Entry) => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await gw.request<Entry>('GET', path, { token });
    if (until(res.status, res.body)) return;
    if (Date.now() > deadline) throw new Error(`${path}: still ${res.status} ${JSON.stringify(res.body)}`);
    await sleep(200);
  }
}

const reusedKey = (res: { status: number; body: ApiErrorBody }) => [
  res.status,
  res.body.error?.code,
  res.body.error?.issues?.[0]?.path,
];

describe('silences take Idempotency-Key', () => {
  const path = '/api/v1/silences';
  const byComment = (c: string) => (e: Entry) => e.comment === c;

  it('the keyed retry of a create whose answer was lost gets the first answer (the same silence, one silence)', async () => {
    const key = { 'idempotency-key': 'silence/create-lost' };
    await lostAnswer('POST', path, silence('lost'), key);
    const made = await listedOnce(path, byComment('lost'));
    const retry = await gw.request<Entry>('POST', path, { token, body: silence('lost'), headers: key });
    expect([retry.status, retry.body.id, retry.body.version]).toEqual([201, made.id, made.version]);
    expect(retry.headers.get('location')).toBe(`${path}/${made.id}`);
    expect(await listed(path, byComment('lost'))).toHaveLength(1);
    // Without the key the same body is another request: a second silence (nothing tells a retry from a new one).
    const plain = await gw.request<Entry>('POST', path, { token, body: silence('lost') });
    expect(plain.status).toBe(201);
    expect(plain.body.id).not.toBe(made.id);
  });

  it('the same key with another body is a 422 naming Idempotency-Key, and writes nothing', async () => {
    const key = { 'idempotency-key': 'silence/reused' };
    const first = await gw.request<Entry>('POST', path, { token, body: silence('reused-a'), headers: key });
    expect(first.status).toBe(201);
    const versions = await configVersion();
    const reused = await gw.request<ApiErrorBody>('POST', path, { token, body: silence('reused-b'), headers: key });
    expect(reusedKey(reused)).toEqual([422, 'denied', 'Idempotency-Key']);
    expect(reused.body.error?.message).toMatch(/^Idempotency-Key: already used by you for another /);
    expect(await listed(path, byComment('reused-b'))).toEqual([]);
    expect(await configVersion()).toBe(versions);
  });

  it('expire: the keyed retry is answered as applied; the same key on another silence is a 422, which stays active', async () => {
    const a = await gw.request<Entry>('POST', path, { token, body: silence('expire-a') });
    const b = await gw.request<Entry>('POST', path, { token, body: silence('expire-b') });
    expect([a.status, b.status]).toEqual([201, 201]);
    const key = { 'idempotency-key': 'silence/expire' };
    await lostAnswer('POST', `${path}/${a.body.id}/expire`, undefined, key);
    await once(`${path}/${a.body.id}`, (status, body) => status === 200 && body.state === 'expired');
    const retry = await gw.request<Entry>('POST', `${path}/${a.body.id}/expire`, { token, headers: key });
    expect([retry.status, retry.body.id, retry.body.state]).toEqual([200, a.body.id, 'expired']);
    const other = await gw.request<ApiErrorBody>('POST', `${path}/${b.body.id}/expire`, { token, headers: key });
    expect(reusedKey(other)).toEqual([422, 'denied', 'Idempotency-Key']);
    expect((await gw.request<Entry>('GET', `${path}/${b.body.id}`, { token })).body.state).toBe('active');
  });

  it('the keyed retry of a delete whose answer was lost is its 204, not a 404', async () => {
    const made = await gw.request<Entry>('POST', path, { token, body: silence('delete-me') });
    expect(made.status).toBe(201);
    const key = { 'idempotency-key': 'silence/delete' };
    await lostAnswer('DELETE', `${path}/${made.body.id}`, undefined, key);
    await once(`${path}/${made.body.id}`, (status) => status === 404);
    expect((await gw.request('DELETE', `${path}/${made.body.id}`, { token, headers: key })).status).toBe(204);
    expect((await gw.request('DELETE', `${path}/${made.body.id}`, { token })).status).toBe(404);
  });
});

describe('status-change subscriptions take Idempotency-Key', () => {
  const path = '/api/v1/subscriptions';
  const byName = (n: string) => (e: Entry) => e.name === n;

  it('the keyed retry of a create whose answer was lost gets the first answer (the same subscription, one subscription)', async () => {
    const key = { 'idempotency-key': 'subscription/create-lost' };
    await lostAnswer('POST', path, subscription('lost'), key);
    const made = await listedOnce(path, byName('lost'));
    const retry = await gw.request<Entry>('POST', path, { token, body: subscription('lost'), headers: key });
    expect([retry.status, retry.body.id, retry.body.version]).toEqual([201, made.id, made.version]);
    expect(retry.headers.get('location')).toBe(`${path}/${made.id}`);
    expect(retry.headers.get('etag')).toBe(`"${made.version}"`);
    expect(await listed(path, byName('lost'))).toHaveLength(1);
  });

  it('the same key with another body is a 422 naming Idempotency-Key, and writes nothing', async () => {
    const key = { 'idempotency-key': 'subscription/reused' };
    const first = await gw.request<Entry>('POST', path, { token, body: subscription('reused-a'), headers: key });
    expect(first.status).toBe(201);
    const versions = await configVersion();
    const reused = await gw.request<ApiErrorBody>('POST', path, {
      token,
      body: subscription('reused-b'),
      headers: key,
    });
    expect(reusedKey(reused)).toEqual([422, 'denied', 'Idempotency-Key']);
    expect(await listed(path, byName('reused-b'))).toEqual([]);
    expect(await configVersion()).toBe(versions);
  });

  it('a PUT (If-Match) whose answer was lost: the keyed retry gets its 200 and version, where a plain one is a 409', async () => {
    const made = await gw.request<Entry>('POST', path, { token, body: subscription('put-me') });
    expect(made.status).toBe(201);
    const body = { ...subscription('put-me'), enabled: false };
    const headers = { 'idempotency-key': 'subscription/put', 'if-match': `"${made.body.version}"` };
    await lostAnswer('PUT', `${path}/${made.body.id}`, body, headers);
    await once(`${path}/${made.body.id}`, (_status, got) => got.version > made.body.version);
    const retry = await gw.request<Entry>('PUT', `${path}/${made.body.id}`, { token, body, headers });
    expect(retry.status).toBe(200);
    expect(retry.body.version).toBeGreaterThan(made.body.version);
    expect((await gw.request<Entry>('GET', `${path}/${made.body.id}`, { token })).body.version).toBe(
      retry.body.version,
    );
    const plain = await gw.request('PUT', `${path}/${made.body.id}`, {
      token,
      body,
      headers: { 'if-match': `"${made.body.version}"` },
    });
    expect(plain.status).toBe(409);
  });

  it('the keyed retry of a delete whose answer was lost is its 204, not a 404', async () => {
    const made = await gw.request<Entry>('POST', path, { token, body: subscription('delete-me') });
    expect(made.status).toBe(201);
    const key = { 'idempotency-key': 'subscription/delete' };
    await lostAnswer('DELETE', `${path}/${made.body.id}`, undefined, key);
    await once(`${path}/${made.body.id}`, (status) => status === 404);
    expect((await gw.request('DELETE', `${path}/${made.body.id}`, { token, headers: key })).status).toBe(204);
    expect((await gw.request('DELETE', `${path}/${made.body.id}`, { token })).status).toBe(404);
  });
});

it('a bad key is a 400 naming Idempotency-Key on every silence and subscription write, and writes nothing', async () => {
  const versions = await configVersion();
  const id = '00000000-0000-4000-8000-000000000000';
  for (const [method, route, body] of [
    ['POST', '/api/v1/silences', silence('bad-key')],
    ['POST', `/api/v1/silences/${id}/expire`, undefined],
    ['DELETE', `/api/v1/silences/${id}`, undefined],
    ['POST', '/api/v1/subscriptions', subscription('bad-key')],
    ['PUT', `/api/v1/subscriptions/${id}`, subscription('bad-key')],
    ['DELETE', `/api/v1/subscriptions/${id}`, undefined],
  ] as const) {
    const res = await gw.request<ApiErrorBody>(method, route, { token, body, headers: { 'idempotency-key': 'a b' } });
    expect([route, res.status, res.body.error?.issues?.[0]?.path]).toEqual([route, 400, 'Idempotency-Key']);
    expect(res.body.error?.message).toMatch(/^Idempotency-Key: character 2 is a space \(U\+0020\)/);
  }
  expect(await configVersion()).toBe(versions);
});
