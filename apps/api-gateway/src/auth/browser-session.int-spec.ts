import type { ApiErrorBody, BrowserSessionResponse, PrincipalView } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';

// Browser sessions (issue 17): the HttpOnly cookie, CSRF on cookie writes, logout, and
// security headers on every answer. Bearer clients are unaffected.

let gw: GatewayHarness;
let proxied: GatewayHarness;

beforeAll(async () => {
  [gw, proxied] = await Promise.all([
    startGateway(testing, 'browser-session', {
      env: { GATEWAY_WS_ALLOWED_ORIGINS: 'https://ops.example', LOGIN_RATE_LIMIT_PER_MINUTE: '1000' },
    }),
    startGateway(testing, 'browser-session-tls', { env: { GATEWAY_TRUST_PROXY: '127.0.0.1/32,::1/128' } }),
  ]);
});
afterAll(() => Promise.all([gw?.close(), proxied?.close()]));

interface Signed {
  cookie: string;
  csrf: string;
  setCookies: string[];
  body: BrowserSessionResponse;
}

async function signIn(on: GatewayHarness, headers: Record<string, string> = {}): Promise<Signed> {
  const res = await on.request<BrowserSessionResponse>('POST', '/api/v1/auth/session', {
    body: { username: 'admin', password: ADMIN_PASSWORD },
    headers,
  });
  expect(res.status).toBe(200);
  const setCookies = res.headers.getSetCookie();
  const cookie = setCookies.map((c) => c.split(';')[0]).join('; ');
  return { cookie, csrf: res.body.csrfToken, setCookies, body: res.body };
}

describe('sign-in from a browser', () => {
  it('sets an HttpOnly SameSite=Strict session cookie and a readable CSRF cookie, not Secure over plain HTTP', async () => {
    const s = await signIn(gw);
    expect(s.body).not.toHaveProperty('token');
    expect(s.body.user.username).toBe('admin');
    const session = s.setCookies.find((c) => c.startsWith('fw_session='));
    const csrf = s.setCookies.find((c) => c.startsWith('fw_csrf='));
    expect(session).toMatch(/; HttpOnly/i);
    expect(session).toMatch(/; SameSite=Strict/i);
    expect(session).toMatch(/; Path=\//);
    expect(session).toMatch(/; Max-Age=\d+/);
    expect(session).not.toMatch(/; Secure/i);
    expect(csrf).not.toMatch(/HttpOnly/i);
    expect(csrf).toContain(`fw_csrf=${s.csrf}`);
  });

  it('marks both cookies Secure when a trusted proxy says the request came over TLS', async () => {
    const s = await signIn(proxied, { 'x-forwarded-proto': 'https' });
    for (const c of s.setCookies) expect(c).toMatch(/; Secure/i);
    // An untrusted peer cannot claim TLS.
    const plain = await signIn(gw, { 'x-forwarded-proto': 'https' });
    for (const c of plain.setCookies) expect(c).not.toMatch(/; Secure/i);
  });

  it('authenticates reads with the cookie alone, and GET /auth/session gives back the CSRF token', async () => {
    const s = await signIn(gw);
    const me = await gw.request<PrincipalView>('GET', '/api/v1/auth/me', { headers: { cookie: s.cookie } });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ kind: 'user', name: 'admin' });
    const current = await gw.request<BrowserSessionResponse>('GET', '/api/v1/auth/session', {
      headers: { cookie: s.cookie },
    });
    expect(current.status).toBe(200);
    expect(current.body.csrfToken).toBe(s.csrf);
    // A bearer client has no browser session to describe.
    const token = await gw.login('admin', ADMIN_PASSWORD);
    expect((await gw.request('GET', '/api/v1/auth/session', { token })).status).toBe(404);
  });

  it('refuses a sign-in posted from a foreign page (login CSRF), accepts one from this or an allowed origin', async () => {
    const body = { username: 'admin', password: ADMIN_PASSWORD };
    const foreign = await gw.request('POST', '/api/v1/auth/session', {
      body,
      headers: { origin: 'https://evil.example' },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.getSetCookie()).toEqual([]);
    expect((await gw.request('POST', '/api/v1/auth/session', { body, headers: { origin: gw.url } })).status).toBe(200);
    const allowed = await gw.request('POST', '/api/v1/auth/session', {
      body,
      headers: { origin: 'https://ops.example' },
    });
    expect(allowed.status).toBe(200);
  });

  it('answers 401 without a cookie or with a forged one, and 401 for a wrong password', async () => {
    expect((await gw.request('GET', '/api/v1/auth/me')).status).toBe(401);
    const forged = await gw.request('GET', '/api/v1/auth/me', {
      headers: { cookie: `fw_session=fws_0_${'x'.repeat(43)}` },
    });
    expect(forged.status).toBe(401);
    const wrong = await gw.request('POST', '/api/v1/auth/session', { body: { username: 'admin', password: 'nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.getSetCookie()).toEqual([]);
  });
});

describe('CSRF on cookie-authenticated writes', () => {
  const body = { name: 'csrf-key', scopes: ['read'] };

  it('refuses a write without the X-CSRF-Token header, or with a wrong one (403)', async () => {
    const s = await signIn(gw);
    const missing = await gw.request<ApiErrorBody>('POST', '/api/v1/api-keys', { body, headers: { cookie: s.cookie } });
    expect(missing.status).toBe(403);
    expect(missing.body.error.message).toMatch(/X-CSRF-Token/);
    const wrong = await gw.request<ApiErrorBody>('POST', '/api/v1/api-keys', {
      body,
      headers: { cookie: s.cookie, 'x-csrf-token': 'A'.repeat(43) },
    });
    expect(wrong.status).toBe(403);
    // Another session's token does not fit this one.
    const other = await signIn(gw);
    const crossed = await gw.request('POST', '/api/v1/api-keys', {
      body,
      headers: { cookie: s.cookie, 'x-csrf-token': other.csrf },
    });
    expect(crossed.status).toBe(403);
  });

  it('accepts it with the token from the same origin or an allowed one, refuses a foreign Origin', async () => {
    const s = await signIn(gw);
    const headers = { cookie: s.cookie, 'x-csrf-token': s.csrf };
    expect((await gw.request('POST', '/api/v1/api-keys', { body, headers })).status).toBe(201);
    const host = new URL(gw.url).host;
    expect(
      (await gw.request('POST', '/api/v1/api-keys', { body, headers: { ...headers, origin: `http://${host}` } }))
        .status,
    ).toBe(201);
    expect(
      (await gw.request('POST', '/api/v1/api-keys', { body, headers: { ...headers, origin: 'https://ops.example' } }))
        .status,
    ).toBe(201);
    const foreign = await gw.request<ApiErrorBody>('POST', '/api/v1/api-keys', {
      body,
      headers: { ...headers, origin: 'https://evil.example' },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.message).toMatch(/origin https:\/\/evil\.example is not allowed/);
    const viaReferer = await gw.request('POST', '/api/v1/api-keys', {
      body,
      headers: { ...headers, referer: 'https://evil.example/x' },
    });
    expect(viaReferer.status).toBe(403);
  });

  it('compares the scheme of the Origin as well as its host: https://<host> is not this http:// gateway, and back behind TLS', async () => {
    const host = new URL(gw.url).host;
    const s = await signIn(gw);
    const headers = { cookie: s.cookie, 'x-csrf-token': s.csrf };
    const otherScheme = await gw.request<ApiErrorBody>('POST', '/api/v1/api-keys', {
      body,
      headers: { ...headers, origin: `https://${host}` },
    });
    expect(otherScheme.status).toBe(403);
    expect(otherScheme.body.error.message).toMatch(/origin https:\/\/127\.0\.0\.1:\d+ is not allowed/);
    const loginFromOtherScheme = await gw.request('POST', '/api/v1/auth/session', {
      body: { username: 'admin', password: ADMIN_PASSWORD },
      headers: { origin: `https://${host}` },
    });
    expect(loginFromOtherScheme.status).toBe(403);
    // Behind a trusted TLS proxy the page's origin is https://<host>, and http://<host> is the other one.
    const tls = { 'x-forwarded-proto': 'https' };
    const proxiedHost = new URL(proxied.url).host;
    const p = await signIn(proxied, { ...tls, origin: `https://${proxiedHost}` });
    const pHeaders = { ...tls, cookie: p.cookie, 'x-csrf-token': p.csrf };
    expect(
      (
        await proxied.request('POST', '/api/v1/api-keys', {
          body,
          headers: { ...pHeaders, origin: `https://${proxiedHost}` },
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await proxied.request('POST', '/api/v1/api-keys', {
          body,
          headers: { ...pHeaders, origin: `http://${proxiedHost}` },
        })
      ).status,
    ).toBe(403);
  });

  it('leaves bearer clients alone: no CSRF token, any Origin', async () => {
    const token = await gw.login('admin', ADMIN_PASSWORD);
    const res = await gw.request('POST', '/api/v1/api-keys', {
      token,
      body,
      headers: { origin: 'https://evil.example' },
    });
    expect(res.status).toBe(201);
  });

  it('still applies roles (403) to a cookie session', async () => {
    const admin = await gw.login('admin', ADMIN_PASSWORD);
    const created = await gw.request('POST', '/api/v1/users', {
      token: admin,
      body: { username: 'cookie-viewer', password: 'viewer-password', role: 'viewer' },
    });
    expect(created.status).toBe(201);
    const res = await gw.request<BrowserSessionResponse>('POST', '/api/v1/auth/session', {
      body: { username: 'cookie-viewer', password: 'viewer-password' },
    });
    const cookie = res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const denied = await gw.request('POST', '/api/v1/api-keys', {
      body,
      headers: { cookie, 'x-csrf-token': res.body.csrfToken },
    });
    expect(denied.status).toBe(403);
  });
});

describe('sign-out and revocation', () => {
  it('DELETE /auth/session revokes the session and clears both cookies', async () => {
    const s = await signIn(gw);
    const noCsrf = await gw.request('DELETE', '/api/v1/auth/session', { headers: { cookie: s.cookie } });
    expect(noCsrf.status).toBe(403);
    const out = await gw.request('DELETE', '/api/v1/auth/session', {
      headers: { cookie: s.cookie, 'x-csrf-token': s.csrf },
    });
    expect(out.status).toBe(204);
    const cleared = out.headers.getSetCookie();
    expect(cleared.find((c) => c.startsWith('fw_session=;'))).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/i);
    expect(cleared.find((c) => c.startsWith('fw_csrf=;'))).toBeDefined();
    expect((await gw.request('GET', '/api/v1/auth/me', { headers: { cookie: s.cookie } })).status).toBe(401);
  });

  it('POST /auth/logout works with the cookie too, and a password change revokes cookie sessions', async () => {
    const s = await signIn(gw);
    const out = await gw.request('POST', '/api/v1/auth/logout', {
      headers: { cookie: s.cookie, 'x-csrf-token': s.csrf },
    });
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie().some((c) => c.startsWith('fw_session=;'))).toBe(true);
    expect((await gw.request('GET', '/api/v1/auth/me', { headers: { cookie: s.cookie } })).status).toBe(401);

    const admin = await gw.login('admin', ADMIN_PASSWORD);
    const user = await gw.request<{ id: string }>('POST', '/api/v1/users', {
      token: admin,
      body: { username: 'cookie-reset', password: 'first-password', role: 'operator' },
    });
    const signed = await gw.request('POST', '/api/v1/auth/session', {
      body: { username: 'cookie-reset', password: 'first-password' },
    });
    const cookie = signed.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    expect((await gw.request('GET', '/api/v1/auth/me', { headers: { cookie } })).status).toBe(200);
    const reset = await gw.request('PUT', `/api/v1/users/${user.body.id}/password`, {
      token: admin,
      body: { password: 'second-password' },
    });
    expect(reset.status).toBe(204);
    expect((await gw.request('GET', '/api/v1/auth/me', { headers: { cookie } })).status).toBe(401);
  });
});

describe('security headers', () => {
  it.each([
    ['GET', '/api/v1/auth/me'],
    ['GET', '/api/v1/nothing'],
    ['GET', '/'],
    ['GET', '/api/docs'],
    ['GET', '/healthz'],
    ['POST', '/api/v1/auth/login'],
  ])('%s %s carries CSP, nosniff, Referrer-Policy and frame-ancestors none', async (method, path) => {
    const res = await gw.request(method, path, method === 'POST' ? { body: {} } : {});
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    expect(csp).toContain("frame-ancestors 'none'");
    const host = new URL(gw.url).host;
    expect(csp).toContain(`connect-src 'self' ws://${host} wss://${host}`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
  });

  it('does not echo a Host header that could inject a directive', async () => {
    const { request } = await import('node:http');
    const port = new URL(gw.url).port;
    const csp = await new Promise<string>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/healthz', headers: { host: "x; script-src 'unsafe-inline'" } },
        (res) => {
          res.resume();
          resolve(String(res.headers['content-security-policy'] ?? ''));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(csp).toContain("connect-src 'self';");
    expect(csp).not.toContain('unsafe-inline');
  });
});
