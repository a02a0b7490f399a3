import { request as httpRequest } from 'node:http';
import type { ApiErrorBody } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { RateBuckets } from '@fleetwatch/live-state';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';
import { RedisLoginRateLimiter } from './login-rate-limiter';

// Login is limited per client address AND per username (both must allow an attempt):
// rotating usernames from one address and spreading one username over many
// addresses each end in 429 + Retry-After before any more argon2 work. Addresses are
// real: requests leave from different loopback addresses (127.0.0.0/8 is all local).

let gw: GatewayHarness;

beforeAll(async () => {
  gw = await startGateway(testing, 'login-limits', { overrides: { loginRatePerMinute: 3, loginIpRatePerMinute: 6 } });
});
afterAll(() => gw?.close());

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: ApiErrorBody & { token?: string };
}

function login(username: string, password: string, from: string): Promise<Answer> {
  const payload = JSON.stringify({ username, password });
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: new URL(gw.url).port,
        path: '/api/v1/auth/login',
        method: 'POST',
        localAddress: from,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'] as string | undefined,
            body: JSON.parse(text),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

it('rotating usernames from one address: 429 once the address budget is spent; another address is unaffected', async () => {
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push((await login(`rotating-${i}`, 'wrong-password', '127.0.5.1')).status);
  expect(statuses).toEqual([401, 401, 401, 401, 401, 401]);
  const limited = await login('rotating-6', 'wrong-password', '127.0.5.1');
  expect(limited.status).toBe(429);
  expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1);
  expect(limited.body.error).toEqual({ code: 'rate_limited', message: expect.stringMatching(/from this address/) });
  // Even the right password waits: the limit comes before any verification.
  expect((await login('admin', ADMIN_PASSWORD, '127.0.5.1')).status).toBe(429);
  expect((await login('rotating-7', 'wrong-password', '127.0.5.2')).status).toBe(401);
});

it('one username from many addresses: 429 once the username budget is spent; other usernames are unaffected', async () => {
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await login('target-user', 'wrong-password', `127.0.6.${i + 1}`)).status);
  expect(statuses).toEqual([401, 401, 401]);
  const limited = await login('TARGET-USER', 'wrong-password', '127.0.6.9');
  expect(limited.status).toBe(429);
  expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1);
  expect(limited.body.error).toEqual({ code: 'rate_limited', message: expect.stringMatching(/for this user/) });
  const ok = await login('admin', ADMIN_PASSWORD, '127.0.6.9');
  expect(ok.status).toBe(200);
  expect(ok.body.token).toMatch(/^fws_/);
});

describe('limits hold across gateway replicas (Redis)', () => {
  it('attempts at one replica count at another: an address spent here is refused there, and a username spent there is refused here', async () => {
    // Another replica: the same limits on the same Redis (the site's prefix).
    const other = new RedisLoginRateLimiter(new RateBuckets(gw.redis), {
      perUsernamePerMinute: 3,
      perAddressPerMinute: 6,
    });
    for (let i = 0; i < 6; i++) expect((await login(`replica-${i}`, 'wrong-password', '127.0.0.71')).status).toBe(401);
    expect(await other.take('127.0.0.71', 'someone-new')).toMatchObject({ allowed: false, limitedBy: 'address' });

    for (let i = 0; i < 3; i++) expect(await other.take(`127.0.0.${80 + i}`, 'shared-user')).toEqual({ allowed: true });
    const refused = await login('shared-user', 'wrong-password', '127.0.0.90');
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
  });
});

it('a sign-in with the right password gives its attempt back: a script signs in as often as it needs, failures stay limited', async () => {
  // SPEC §11: POST /api/v1/auth/login {username, password} → {token}. The limits are there against guessing; a client
  // that knows the password (a test suite signing in per case) must not be answered 429 after three sign-ins here.
  const statuses = [];
  for (let i = 0; i < 8; i++) statuses.push((await login('admin', ADMIN_PASSWORD, '127.0.8.1')).status);
  expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200]);
  const wrong = [];
  for (let i = 0; i < 4; i++) wrong.push((await login('admin', 'wrong-password', `127.0.8.${i + 2}`)).status);
  expect(wrong).toEqual([401, 401, 401, 429]);
});
