import { randomBytes } from 'node:crypto';
import type { ApiErrorBody, CreateApiKeyResponse, UserView } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';

// HTTP Basic and `fleet` keys on the real gateway (Postgres, Redis rate limits): the credentials
// a leader holds open the read-only member endpoints as a viewer, and nothing else.

jest.setTimeout(60_000);

let gw: GatewayHarness;
let admin: string;
const FLOW = '/api/v1/metrics/flow?minutes=5';
const REPORT = '/api/v1/status/report';

const basic = (username: string, password: string) =>
  `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;

beforeAll(async () => {
  gw = await startGateway(testing, 'basic-auth', { overrides: { loginRatePerMinute: 5, loginIpRatePerMinute: 1000 } });
  admin = await gw.login('admin', ADMIN_PASSWORD);
});
afterAll(() => gw?.close());

async function createUser(
  username: string,
  role: 'admin' | 'operator' | 'viewer',
  password: string,
): Promise<UserView> {
  const res = await gw.request<UserView>('POST', '/api/v1/users', { token: admin, body: { username, password, role } });
  expect(res.status).toBe(201);
  return res.body;
}

const get = (path: string, authorization: string) =>
  gw.request<ApiErrorBody>('GET', path, { headers: { authorization } });

describe('HTTP Basic on the member endpoints', () => {
  it('works with the right password and is a 401 with a wrong one or an unknown user', async () => {
    const password = `pw-${randomBytes(9).toString('base64url')}`;
    await createUser('leader-reader', 'viewer', password);
    expect((await get(FLOW, basic('leader-reader', password))).status).toBe(200);
    expect((await get(REPORT, basic('leader-reader', password))).status).toBe(200);
    const wrong = await get(FLOW, basic('leader-reader', `${password}x`));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toEqual({ code: 'unauthorized', message: 'invalid username or password' });
    const unknown = await get(FLOW, basic('nobody-here', password));
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    // Neither the password nor its base64 comes back.
    expect(wrong.text).not.toContain(password);
    expect(wrong.text).not.toContain(Buffer.from(password).toString('base64'));
  });

  it('is never accepted for writes or other routes, not even an admin’s, and acts as a viewer', async () => {
    const password = `pw-${randomBytes(9).toString('base64url')}`;
    await createUser('basic-admin', 'admin', password);
    const auth = basic('basic-admin', password);
    expect((await get(FLOW, auth)).status).toBe(200);
    const write = await gw.request<ApiErrorBody>('POST', '/api/v1/users', {
      headers: { authorization: auth },
      body: { username: 'made-by-basic', password: 'made-by-basic-pw', role: 'admin' },
    });
    expect(write.status).toBe(401);
    expect(write.body.error.message).toMatch(/Basic is accepted only on GET/);
    const check = await gw.request<ApiErrorBody>('POST', '/api/v1/checks', {
      headers: { authorization: auth },
      body: {},
    });
    expect(check.status).toBe(401);
    // Another read route (not a member endpoint) is refused too.
    expect((await get('/api/v1/users', auth)).status).toBe(401);
    expect((await get('/api/v1/auth/me', auth)).status).toBe(401);
    // A query string or trailing slash does not turn a member route into another one or back.
    expect((await get('/api/v1/status/report?x=1', auth)).status).toBe(200);
    const users = await gw.request('GET', '/api/v1/users', { token: admin });
    expect(users.status).toBe(200);
    expect(users.text).toContain('basic-admin');
    expect(users.text).not.toContain('made-by-basic');
  });

  it('refuses malformed Basic values with a 401 naming no part of them', async () => {
    for (const value of ['Basic', 'Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`]) {
      const res = await get(FLOW, value);
      expect(res.status).toBe(401);
      expect(res.text).not.toContain('no-colon');
    }
  });

  it('credentials that are not UTF-8 are a 401: never read as U+FFFD, which a stored password may hold', async () => {
    // Before: the bytes were decoded leniently, each bad sequence as U+FFFD, so a password holding U+FFFD was matched
    // by any non-UTF-8 byte (0x80–0xFF) in its place.
    await createUser('fffd-reader', 'viewer', 'pw-\ufffd-reader');
    expect((await get(FLOW, basic('fffd-reader', 'pw-\ufffd-reader'))).status).toBe(200);
    for (const bad of [[0xff], [0x80], [0xc3], [0xed, 0xa0, 0x80]]) {
      const bytes = Buffer.concat([Buffer.from('fffd-reader:pw-'), Buffer.from(bad), Buffer.from('-reader')]);
      const res = await get(FLOW, `Basic ${bytes.toString('base64')}`);
      expect({ bad, status: res.status }).toEqual({ bad, status: 401 });
      expect(res.body.error.message).toMatch(/not UTF-8/);
    }
  });

  it('rate-limits wrong passwords like login (per username) and stops taking a changed password', async () => {
    const password = `pw-${randomBytes(9).toString('base64url')}`;
    const user = await createUser('limited-reader', 'viewer', password);
    // Verified once: later polls with the same credentials are served from the verdict cache.
    expect((await get(FLOW, basic('limited-reader', password))).status).toBe(200);
    const answers: number[] = [];
    for (let i = 0; i < 7; i++) answers.push((await get(FLOW, basic('limited-reader', `wrong-${i}`))).status);
    expect(answers.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(answers.slice(-2)).toEqual([429, 429]);
    // The leader's remembered credentials keep working while wrong guesses are refused.
    expect((await get(FLOW, basic('limited-reader', password))).status).toBe(200);

    // A password change ends the remembered credentials at once.
    const other = await createUser('pw-changer', 'viewer', password);
    expect((await get(FLOW, basic('pw-changer', password))).status).toBe(200);
    const changed = await gw.request('PUT', `/api/v1/users/${other.id}/password`, {
      token: admin,
      body: { password: `${password}-new` },
    });
    expect([200, 204]).toContain(changed.status);
    expect((await get(FLOW, basic('pw-changer', password))).status).toBe(401);
    expect((await get(FLOW, basic('pw-changer', `${password}-new`))).status).toBe(200);
    expect(user.username).toBe('limited-reader');
  });

  it('stops taking a disabled user’s remembered credentials at once, and takes them again once enabled', async () => {
    const password = `pw-${randomBytes(9).toString('base64url')}`;
    const user = await createUser('leaving-reader', 'viewer', password);
    const auth = basic('leaving-reader', password);
    // Verified once: remembered (the leader polls every few seconds with the same header).
    expect((await get(FLOW, auth)).status).toBe(200);
    const setDisabled = (disabled: boolean) =>
      gw.request('PUT', `/api/v1/users/${user.id}/disabled`, { token: admin, body: { disabled } });
    expect((await setDisabled(true)).status).toBe(200);
    const refused = await get(FLOW, auth);
    expect(refused.status).toBe(401);
    expect(refused.body.error.message).toBe('invalid username or password');
    expect((await get(REPORT, auth)).status).toBe(401);
    expect((await setDisabled(false)).status).toBe(200);
    expect((await get(FLOW, auth)).status).toBe(200);
  });
});

describe('API keys with the fleet scope', () => {
  it('read the member endpoints as a viewer and nothing else', async () => {
    const created = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token: admin,
      body: { name: 'leader-key', scopes: ['fleet'] },
    });
    expect(created.status).toBe(201);
    const bearer = `Bearer ${created.body.key}`;
    expect((await get(FLOW, bearer)).status).toBe(200);
    expect((await get(REPORT, bearer)).status).toBe(200);
    expect((await get('/api/v1/users', bearer)).status).toBe(403);
    const write = await gw.request('POST', '/api/v1/checks', { headers: { authorization: bearer }, body: {} });
    expect(write.status).toBe(403);
  });
});
