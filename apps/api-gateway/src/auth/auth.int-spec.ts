import type {
  ApiErrorBody,
  ApiKeyView,
  CreateApiKeyResponse,
  LoginResponse,
  PrincipalView,
  UserView,
} from '@fleetwatch/contracts';
import { hash as argonHash, verify as argonVerify } from '@node-rs/argon2';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';
import { SessionHousekeeping } from './session-housekeeping.service';
import * as testing from '@fleetwatch/testing';

let gw: GatewayHarness;
let admin: string;

beforeAll(async () => {
  // Every login here comes from 127.0.0.1: the per-address budget is login-rate-limiter.int-spec's subject.
  gw = await startGateway(testing, 'auth', { overrides: { loginRatePerMinute: 5, loginIpRatePerMinute: 1000 } });
  admin = await gw.login('admin', ADMIN_PASSWORD);
});
afterAll(() => gw?.close());

async function createUser(
  username: string,
  role: 'admin' | 'operator' | 'viewer',
  password = `${username}-password`,
): Promise<UserView> {
  const res = await gw.request<UserView>('POST', '/api/v1/users', { token: admin, body: { username, password, role } });
  expect(res.status).toBe(201);
  return res.body;
}

describe('login', () => {
  it('creates the first admin from FLEETWATCH_ADMIN_PASSWORD and answers {token, expiresAt, user}', async () => {
    const before = Date.now();
    const res = await gw.request<LoginResponse>('POST', '/api/v1/auth/login', {
      body: { username: 'admin', password: ADMIN_PASSWORD },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      token: expect.stringMatching(/^fws_\d+_/),
      expiresAt: expect.any(String),
      user: { id: expect.any(String), username: 'admin', role: 'admin' },
    });
    const ttl = Date.parse(res.body.expiresAt) - before;
    expect(ttl).toBeGreaterThan(gw.config.sessionTtlMs - 5000);
    expect(ttl).toBeLessThanOrEqual(gw.config.sessionTtlMs + 5000);
    const me = await gw.request<PrincipalView>('GET', '/api/v1/auth/me', { token: res.body.token });
    expect(me.body).toEqual({ kind: 'user', id: res.body.user.id, name: 'admin', role: 'admin' });
  });

  it('refuses a wrong password and an unknown user alike', async () => {
    const wrong = await gw.request<ApiErrorBody>('POST', '/api/v1/auth/login', {
      body: { username: 'admin', password: 'nope-nope' },
    });
    const unknown = await gw.request<ApiErrorBody>('POST', '/api/v1/auth/login', {
      body: { username: 'nobody-at-all', password: 'nope-nope' },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    expect(wrong.body.error).toEqual({ code: 'unauthorized', message: 'invalid username or password' });
  });

  it('takes about as long for an unknown user as for a wrong password', async () => {
    const time = async (body: Record<string, unknown>, status: number) => {
      const started = performance.now();
      const res = await gw.request('POST', '/api/v1/auth/login', { body });
      const took = performance.now() - started;
      expect(res.status).toBe(status);
      return took;
    };
    // Usernames spread so the per-username limit (5 a minute here) is never what answers.
    const known: number[] = [];
    const unknown: number[] = [];
    // The same route refused before any password work (a 400): what a request costs without argon2.
    const bare: number[] = [];
    for (let u = 0; u < 4; u++) await createUser(`timing-user-${u}`, 'viewer');
    for (let i = 0; i < 8; i++) {
      unknown.push(await time({ username: `ghost-${i}`, password: 'wrong-password' }, 401));
      known.push(await time({ username: `timing-user-${i % 4}`, password: 'wrong-password' }, 401));
      bare.push(await time({ username: `ghost-${i}`, password: 42 }, 400));
    }
    // What one argon2 verification costs on this machine (the hasher's defaults), timed alone: the yardstick. (The
    // wrong-password logins' own minimum is one too, but on a loaded machine all eight may have waited for a core —
    // a CI run once measured 49 ms there against 16 ms for the unknown users, failing a test of nothing.)
    const sample = await argonHash('a password nobody has');
    const argon: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      await argonVerify(sample, 'wrong-password');
      argon.push(performance.now() - started);
    }
    const verifyMs = Math.min(...argon);
    // The fastest of several: a busy machine only ever adds time, so each minimum is that path's own cost.
    const base = Math.min(...bare);
    expect(Math.min(...known) - base).toBeGreaterThan(verifyMs * 0.5); // a wrong password costs a verification…
    // …and an unknown user must cost one too, not answer at once.
    expect(Math.min(...unknown) - base).toBeGreaterThan(verifyMs * 0.5);
  });

  it('names each bad field', async () => {
    const res = await gw.request<ApiErrorBody>('POST', '/api/v1/auth/login', { body: { username: '', extra: 1 } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    const paths = res.body.error.issues?.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['username', 'password', '(body)']));
    expect(JSON.stringify(res.body)).toContain('extra');
  });

  it('a lone surrogate in the username or password is a 400 naming the field, on both sign-in routes', async () => {
    // A password may hold U+FFFD. argon2 hashes UTF-8 bytes, where every lone surrogate is written as U+FFFD: before,
    // a sign-in with '\ud800' (or any of the 2,048 lone surrogates) in its place was a 200 — a password that is not
    // the password signed in. Lone surrogates are refused where they enter, as a new password's are.
    await createUser('rhea', 'viewer', 'rhea-\ufffd-password');
    const routes = ['/api/v1/auth/login', '/api/v1/auth/session'];
    const attempt = (path: string, username: string, password: string) =>
      gw.request<ApiErrorBody>('POST', path, { body: { username, password }, headers: { origin: gw.url } });
    for (const path of routes)
      for (const lone of ['\ud800', '\udfff', '\udbff']) {
        const res = await attempt(path, 'rhea', `rhea-${lone}-password`);
        expect({ path, lone, status: res.status }).toEqual({ path, lone, status: 400 });
        expect(res.body.error.issues).toEqual([{ path: 'password', message: expect.stringMatching(/lone surrogate/) }]);
        const user = await attempt(path, `rhea${lone}`, 'rhea-\ufffd-password');
        expect(user.status).toBe(400);
        expect(user.body.error.issues).toEqual([
          { path: 'username', message: expect.stringMatching(/lone surrogate/) },
        ]);
      }
    // The password as it is stored still signs in, on both routes.
    for (const path of routes) expect((await attempt(path, 'rhea', 'rhea-\ufffd-password')).status).toBe(200);
    // Changing your own password checks the current one the same way.
    const token = await gw.login('rhea', 'rhea-\ufffd-password');
    const own = await gw.request<ApiErrorBody>('PUT', '/api/v1/auth/password', {
      token,
      body: { currentPassword: 'rhea-\ud800-password', newPassword: 'rhea-second-password' },
    });
    expect(own.status).toBe(400);
    expect(own.body.error.issues).toEqual([
      { path: 'currentPassword', message: expect.stringMatching(/lone surrogate/) },
    ]);
    expect((await gw.request('GET', '/api/v1/auth/me', { token })).status).toBe(200);
  });

  it('rate-limits per address and username with 429 and Retry-After', async () => {
    const attempt = (username: string) =>
      gw.request<ApiErrorBody>('POST', '/api/v1/auth/login', { body: { username, password: 'wrong-password' } });
    for (let i = 0; i < 5; i++) expect((await attempt('limited-user')).status).toBe(401);
    const limited = await attempt('limited-user');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // It stays refused until the bucket refills.
    expect((await attempt('limited-user')).status).toBe(429);
    // Another username has its own budget (the address's is large here).
    expect((await attempt('other-user')).status).toBe(401);
  });
});

describe('sessions', () => {
  it('logout revokes the token in use', async () => {
    await createUser('leaving', 'viewer');
    const token = await gw.login('leaving', 'leaving-password');
    expect((await gw.request('GET', '/api/v1/auth/me', { token })).status).toBe(200);
    expect((await gw.request('POST', '/api/v1/auth/logout', { token })).status).toBe(204);
    const after = await gw.request<ApiErrorBody>('GET', '/api/v1/auth/me', { token });
    expect(after.status).toBe(401);
    expect(after.body.error.message).toMatch(/expired or revoked/);
  });

  it('an admin setting a password revokes every session of that user', async () => {
    const alice = await createUser('alice', 'viewer');
    const [t1, t2] = [await gw.login('alice', 'alice-password'), await gw.login('alice', 'alice-password')];
    expect((await gw.request('GET', '/api/v1/targets', { token: t1 })).status).toBe(200);
    expect(
      (
        await gw.request('PUT', `/api/v1/users/${alice.id}/password`, {
          token: admin,
          body: { password: 'alice-new-password' },
        })
      ).status,
    ).toBe(204);
    for (const t of [t1, t2]) expect((await gw.request('GET', '/api/v1/targets', { token: t })).status).toBe(401);
    expect(
      (await gw.request('POST', '/api/v1/auth/login', { body: { username: 'alice', password: 'alice-password' } }))
        .status,
    ).toBe(401);
    const fresh = await gw.login('alice', 'alice-new-password');
    expect((await gw.request('GET', '/api/v1/targets', { token: fresh })).status).toBe(200);
  });

  it('changing your own password (any role) checks the current one and revokes your sessions', async () => {
    await createUser('carol', 'viewer');
    const token = await gw.login('carol', 'carol-password');
    const wrong = await gw.request<ApiErrorBody>('PUT', '/api/v1/auth/password', {
      token,
      body: { currentPassword: 'not-it', newPassword: 'carol-second-password' },
    });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.issues).toEqual([{ path: 'currentPassword', message: expect.any(String) }]);
    const short = await gw.request<ApiErrorBody>('PUT', '/api/v1/auth/password', {
      token,
      body: { currentPassword: 'carol-password', newPassword: 'short' },
    });
    expect(short.status).toBe(400);
    expect(short.body.error.issues?.[0].path).toBe('newPassword');
    expect(
      (
        await gw.request('PUT', '/api/v1/auth/password', {
          token,
          body: { currentPassword: 'carol-password', newPassword: 'carol-second-password' },
        })
      ).status,
    ).toBe(204);
    expect((await gw.request('GET', '/api/v1/auth/me', { token })).status).toBe(401);
    expect(await gw.login('carol', 'carol-second-password')).toMatch(/^fws_/);
  });

  it('wrong current passwords count against the sign-in limit: a stolen session cannot guess the password', async () => {
    await createUser('erin', 'viewer');
    const token = await gw.login('erin', 'erin-password');
    const guess = (currentPassword: string) =>
      gw.request<ApiErrorBody>('PUT', '/api/v1/auth/password', {
        token,
        body: { currentPassword, newPassword: 'taken-over-password' },
      });
    // The sign-in above was given back: five attempts for erin this minute (loginRatePerMinute 5).
    for (let i = 0; i < 5; i++) expect((await guess(`guess-${i}`)).status).toBe(400);
    const limited = await guess('erin-password');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // The right password did not get through: the account is still erin's, and sign-in is limited too.
    expect((await gw.request('GET', '/api/v1/auth/me', { token })).status).toBe(200);
    expect(
      (await gw.request('POST', '/api/v1/auth/login', { body: { username: 'erin', password: 'erin-password' } }))
        .status,
    ).toBe(429);
  });

  it('a role change revokes the old token; the new one carries the new role', async () => {
    const bob = await createUser('bob', 'operator');
    const old = await gw.login('bob', 'bob-password');
    expect((await gw.request('GET', '/api/v1/api-keys', { token: old })).status).toBe(200);
    const changed = await gw.request<UserView>('PUT', `/api/v1/users/${bob.id}/role`, {
      token: admin,
      body: { role: 'viewer' },
    });
    expect(changed.status).toBe(200);
    expect(changed.body.role).toBe('viewer');
    expect((await gw.request('GET', '/api/v1/targets', { token: old })).status).toBe(401);
    const fresh = await gw.login('bob', 'bob-password');
    expect((await gw.request('GET', '/api/v1/targets', { token: fresh })).status).toBe(200);
    const denied = await gw.request<ApiErrorBody>('GET', '/api/v1/api-keys', { token: fresh });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toMatch(/needs role operator/);
  });

  it('a token expires after the session TTL; housekeeping later deletes the session', async () => {
    const short = await startGateway(testing, 'auth-ttl', { overrides: { sessionTtlMs: 1500 } });
    try {
      const token = await short.login('admin', ADMIN_PASSWORD);
      expect((await short.request('GET', '/api/v1/auth/me', { token })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1800));
      const expired = await short.request<ApiErrorBody>('GET', '/api/v1/auth/me', { token });
      expect(expired.status).toBe(401);
      expect(expired.body.error.message).toMatch(/expired or revoked/);
      const housekeeping = short.running.app.get(SessionHousekeeping);
      expect(await housekeeping.sweep()).toBe(0); // kept a day after expiry
      expect(await housekeeping.sweep(Date.now() + 25 * 3600_000)).toBe(1);
    } finally {
      await short.close();
    }
  });
});

describe('users', () => {
  it('lists, creates (409 on a taken name) and deletes users; never shows a password hash', async () => {
    const dave = await createUser('dave', 'operator');
    const list = await gw.request<UserView[]>('GET', '/api/v1/users', { token: admin });
    expect(list.body.map((u) => u.username)).toEqual(expect.arrayContaining(['admin', 'dave']));
    expect(list.text).not.toMatch(/argon2|passwordHash/);
    const taken = await gw.request<ApiErrorBody>('POST', '/api/v1/users', {
      token: admin,
      body: { username: 'dave', password: 'whatever-pass', role: 'viewer' },
    });
    expect(taken.status).toBe(409);
    const daveToken = await gw.login('dave', 'dave-password');
    expect((await gw.request('DELETE', `/api/v1/users/${dave.id}`, { token: admin })).status).toBe(204);
    expect((await gw.request('GET', '/api/v1/auth/me', { token: daveToken })).status).toBe(401);
    expect((await gw.request('DELETE', `/api/v1/users/${dave.id}`, { token: admin })).status).toBe(404);
  });

  it('a new password holding a lone surrogate is a 400 naming the field: argon2 would hash it as U+FFFD, so any other lone surrogate signed in too', async () => {
    // Before: 201, and a sign-in with '\udbff' in place of '\ud800' (or with U+FFFD) succeeded.
    const lone = '\ud800-lone-password';
    const created = await gw.request<ApiErrorBody>('POST', '/api/v1/users', {
      token: admin,
      body: { username: 'lena', password: lone, role: 'viewer' },
    });
    expect(created.status).toBe(400);
    expect(created.body.error.issues).toEqual([{ path: 'password', message: expect.stringMatching(/lone surrogate/) }]);
    // Sign-in refuses a lone surrogate too (400 naming password, never compared).
    expect(
      (await gw.request('POST', '/api/v1/auth/login', { body: { username: 'lena', password: '\udbff-lone-password' } }))
        .status,
    ).toBe(400);

    const lena = await createUser('lena', 'viewer');
    const reset = await gw.request<ApiErrorBody>('PUT', `/api/v1/users/${lena.id}/password`, {
      token: admin,
      body: { password: lone },
    });
    expect(reset.status).toBe(400);
    expect(reset.body.error.issues).toEqual([{ path: 'password', message: expect.stringMatching(/lone surrogate/) }]);
    const token = await gw.login('lena', 'lena-password');
    const own = await gw.request<ApiErrorBody>('PUT', '/api/v1/auth/password', {
      token,
      body: { currentPassword: 'lena-password', newPassword: `${lone}\udc00` },
    });
    expect(own.status).toBe(400);
    expect(own.body.error.issues).toEqual([{ path: 'newPassword', message: expect.stringMatching(/lone surrogate/) }]);

    // What the hash keeps exactly is still taken (a surrogate pair, a NUL), and only that signs in.
    const kept = '😀-pair\u0000-password';
    expect(
      (await gw.request('PUT', `/api/v1/users/${lena.id}/password`, { token: admin, body: { password: kept } })).status,
    ).toBe(204);
    const attempt = async (password: string) =>
      (await gw.request('POST', '/api/v1/auth/login', { body: { username: 'lena', password } })).status;
    expect(await attempt('😀-pair-password')).toBe(401);
    expect(await attempt(kept)).toBe(200);
  });

  it('keeps the last admin: no self-delete, no demotion of the only admin', async () => {
    const me = await gw.request<PrincipalView>('GET', '/api/v1/auth/me', { token: admin });
    const demote = await gw.request<ApiErrorBody>('PUT', `/api/v1/users/${me.body.id}/role`, {
      token: admin,
      body: { role: 'viewer' },
    });
    expect(demote.status).toBe(409);
    expect(demote.body.error.message).toMatch(/last admin/);
    expect((await gw.request('DELETE', `/api/v1/users/${me.body.id}`, { token: admin })).status).toBe(409);
  });
});

describe('API keys', () => {
  it('create → listed without the secret → revoke', async () => {
    const created = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token: admin,
      body: { name: 'docker watcher', scopes: ['ingest'] },
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(String),
      key: expect.stringMatching(/^fwk_[0-9a-f]{12}_[0-9A-Za-z]{46}$/),
      name: 'docker watcher',
      scopes: ['ingest'],
      prefix: created.body.key.slice(0, 16),
    });

    const list = await gw.request<ApiKeyView[]>('GET', '/api/v1/api-keys', { token: admin });
    const listed = list.body.find((k) => k.id === created.body.id);
    expect(listed).toEqual({
      id: created.body.id,
      name: 'docker watcher',
      prefix: created.body.prefix,
      scopes: ['ingest'],
      allowedCidrs: [],
      clientCertSubject: null,
      createdBy: expect.any(String),
      createdByName: 'admin',
      createdAt: expect.any(String),
      lastUsedAt: null,
    });
    expect(list.text).not.toContain(created.body.key);
    expect(list.text).not.toContain(created.body.key.slice(17));
    expect(list.text).not.toMatch(/keyHash|sha256/);

    expect((await gw.request('DELETE', `/api/v1/api-keys/${created.body.id}`, { token: admin })).status).toBe(204);
    const after = await gw.request<ApiKeyView[]>('GET', '/api/v1/api-keys', { token: admin });
    expect(after.body.map((k) => k.id)).not.toContain(created.body.id);
    expect((await gw.request('DELETE', `/api/v1/api-keys/${created.body.id}`, { token: admin })).status).toBe(404);
  });

  it('authenticates gateway calls as Bearer <key> with the role of its scopes', async () => {
    const make = async (scopes: string[]) =>
      (
        await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
          token: admin,
          body: { name: scopes.join('+'), scopes },
        })
      ).body;
    const read = await make(['read']);
    const write = await make(['write', 'ingest']);
    const adminKey = await make(['admin']);
    const ingest = await make(['ingest']);

    const me = await gw.request<PrincipalView>('GET', '/api/v1/auth/me', { token: read.key });
    expect(me.body).toEqual({ kind: 'api-key', id: read.id, name: 'read', role: 'viewer', scopes: ['read'] });
    expect((await gw.request('GET', '/api/v1/targets', { token: read.key })).status).toBe(200);
    expect((await gw.request('GET', '/api/v1/heartbeats', { token: read.key })).status).toBe(403);

    await testing.waitFor(
      async () =>
        (await gw.request<ApiKeyView[]>('GET', '/api/v1/api-keys', { token: admin })).body.find((k) => k.id === read.id)
          ?.lastUsedAt ?? null,
      { description: 'lastUsedAt of the read key' },
    );
    expect((await gw.request<PrincipalView>('GET', '/api/v1/auth/me', { token: write.key })).body.role).toBe(
      'operator',
    );
    expect((await gw.request('GET', '/api/v1/heartbeats', { token: write.key })).status).toBe(200);
    expect((await gw.request('GET', '/api/v1/users', { token: write.key })).status).toBe(403);

    expect((await gw.request('GET', '/api/v1/users', { token: adminKey.key })).status).toBe(200);

    const ingestOnly = await gw.request<ApiErrorBody>('GET', '/api/v1/targets', { token: ingest.key });
    expect(ingestOnly.status).toBe(403);
    expect(ingestOnly.body.error.message).toMatch(/read, write or admin/);

    // Tampered and revoked keys are unknown.
    expect(
      (
        await gw.request('GET', '/api/v1/targets', {
          token: read.key.slice(0, -1) + (read.key.endsWith('A') ? 'B' : 'A'),
        })
      ).status,
    ).toBe(401);
    await gw.request('DELETE', `/api/v1/api-keys/${read.id}`, { token: admin });
    expect((await gw.request('GET', '/api/v1/targets', { token: read.key })).status).toBe(401);

    // An API key has no session or password.
    expect((await gw.request('POST', '/api/v1/auth/logout', { token: adminKey.key })).status).toBe(403);
    expect(
      (
        await gw.request('PUT', '/api/v1/auth/password', {
          token: adminKey.key,
          body: { currentPassword: 'x', newPassword: 'yyyyyyyy' },
        })
      ).status,
    ).toBe(403);
  });

  it('honours a key IP allow-list', async () => {
    const elsewhere = (
      await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
        token: admin,
        body: { name: 'remote', scopes: ['read'], allowedCidrs: ['10.9.0.0/16'] },
      })
    ).body;
    const local = (
      await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
        token: admin,
        body: { name: 'local', scopes: ['read'], allowedCidrs: ['127.0.0.0/8'] },
      })
    ).body;
    expect((await gw.request('GET', '/api/v1/targets', { token: elsewhere.key })).status).toBe(403);
    expect((await gw.request('GET', '/api/v1/targets', { token: local.key })).status).toBe(200);
    const bad = await gw.request<ApiErrorBody>('POST', '/api/v1/api-keys', {
      token: admin,
      body: { name: 'bad', scopes: ['read'], allowedCidrs: ['10.0.0.0/99', 'nope'] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues?.map((i) => i.path)).toEqual(['allowedCidrs.0', 'allowedCidrs.1']);
  });

  it('nobody mints a key stronger than themselves', async () => {
    await createUser('olga', 'operator');
    const olga = await gw.login('olga', 'olga-password');
    expect(
      (await gw.request('POST', '/api/v1/api-keys', { token: olga, body: { name: 'pusher', scopes: ['ingest'] } }))
        .status,
    ).toBe(201);
    const escalate = await gw.request<ApiErrorBody>('POST', '/api/v1/api-keys', {
      token: olga,
      body: { name: 'root', scopes: ['admin'] },
    });
    expect(escalate.status).toBe(403);
    const adminKey = (
      await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
        token: admin,
        body: { name: 'root', scopes: ['admin'] },
      })
    ).body;
    expect((await gw.request('DELETE', `/api/v1/api-keys/${adminKey.id}`, { token: olga })).status).toBe(403);
  });

  it('a key cannot mint keys (they would outlive its revocation and belong to nobody); it may revoke one', async () => {
    const write = (
      await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
        token: admin,
        body: { name: 'automation', scopes: ['write'] },
      })
    ).body;
    const child = await gw.request<ApiErrorBody>('POST', '/api/v1/api-keys', {
      token: write.key,
      body: { name: 'child', scopes: ['ingest'] },
    });
    expect(child.status).toBe(403);
    expect(child.body.error.message).toMatch(/signed-in user/);
    expect(
      (await gw.request<ApiKeyView[]>('GET', '/api/v1/api-keys', { token: admin })).body.map((k) => k.name),
    ).not.toContain('child');
    const pusher = (
      await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
        token: admin,
        body: { name: 'pusher', scopes: ['ingest'] },
      })
    ).body;
    expect((await gw.request('DELETE', `/api/v1/api-keys/${pusher.id}`, { token: write.key })).status).toBe(204);
    expect((await gw.request('DELETE', `/api/v1/api-keys/${write.id}`, { token: admin })).status).toBe(204);
  });
});
