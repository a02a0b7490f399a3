import type { ApiErrorBody, ApiKeyView, CreateApiKeyResponse, UserAdminView } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';

// Disabling users (issue 17): sign-in refused, sessions revoked, listed as disabled; the
// last enabled admin and yourself cannot be disabled.

let gw: GatewayHarness;
let admin: string;

beforeAll(async () => {
  gw = await startGateway(testing, 'users-admin', { env: { LOGIN_RATE_LIMIT_PER_MINUTE: '1000' } });
  admin = await gw.login('admin', ADMIN_PASSWORD);
});
afterAll(() => gw?.close());

const loginStatus = async (username: string, password: string) =>
  (await gw.request('POST', '/api/v1/auth/login', { body: { username, password } })).status;

describe('PUT /api/v1/users/{id}/disabled', () => {
  it('disables: sessions revoked, sign-in refused, listed; enabling lets the user back in', async () => {
    const created = await gw.request<UserAdminView>('POST', '/api/v1/users', {
      token: admin,
      body: { username: 'dis', password: 'dis-password', role: 'operator' },
    });
    expect(created.status).toBe(201);
    const session = await gw.login('dis', 'dis-password');
    expect((await gw.request('GET', '/api/v1/auth/me', { token: session })).status).toBe(200);

    const off = await gw.request<UserAdminView>('PUT', `/api/v1/users/${created.body.id}/disabled`, {
      token: admin,
      body: { disabled: true },
    });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ username: 'dis', disabled: true });
    expect(Date.parse(off.body.disabledAt as string)).not.toBeNaN();
    expect((await gw.request('GET', '/api/v1/auth/me', { token: session })).status).toBe(401);
    expect(await loginStatus('dis', 'dis-password')).toBe(403);
    // A wrong password still answers as any wrong password does.
    expect(await loginStatus('dis', 'wrong-password')).toBe(401);

    const listed = await gw.request<UserAdminView[]>('GET', '/api/v1/users', { token: admin });
    expect(listed.body.find((u) => u.username === 'dis')).toMatchObject({ disabled: true });
    expect(listed.body.find((u) => u.username === 'admin')).toMatchObject({ disabled: false, disabledAt: null });

    const on = await gw.request<UserAdminView>('PUT', `/api/v1/users/${created.body.id}/disabled`, {
      token: admin,
      body: { disabled: false },
    });
    expect(on.body).toMatchObject({ disabled: false, disabledAt: null });
    expect(await loginStatus('dis', 'dis-password')).toBe(200);
  });

  it('refuses disabling yourself or the last enabled admin (409), and names a bad body', async () => {
    const me = await gw.request<{ id: string }>('GET', '/api/v1/auth/me', { token: admin });
    const self = await gw.request<ApiErrorBody>('PUT', `/api/v1/users/${me.body.id}/disabled`, {
      token: admin,
      body: { disabled: true },
    });
    expect(self.status).toBe(409);

    const other = await gw.request<UserAdminView>('POST', '/api/v1/users', {
      token: admin,
      body: { username: 'admin-2', password: 'admin-2-password', role: 'admin' },
    });
    const otherToken = await gw.login('admin-2', 'admin-2-password');
    // admin-2 disables admin: allowed while admin-2 stays enabled...
    const first = await gw.request('PUT', `/api/v1/users/${me.body.id}/disabled`, {
      token: otherToken,
      body: { disabled: true },
    });
    expect(first.status).toBe(200);
    // ...and admin-2 cannot then be disabled by anyone (it is the last enabled admin; admin's token is revoked).
    const last = await gw.request<ApiErrorBody>('PUT', `/api/v1/users/${other.body.id}/disabled`, {
      token: otherToken,
      body: { disabled: true },
    });
    expect(last.status).toBe(409);
    // Nor demoted, even by itself: a disabled admin does not count as one (the site would have no admin to sign in).
    const demote = await gw.request<ApiErrorBody>('PUT', `/api/v1/users/${other.body.id}/role`, {
      token: otherToken,
      body: { role: 'viewer' },
    });
    expect(demote.status).toBe(409);
    expect(demote.body.error.message).toMatch(/last admin enabled/);
    await gw.request('PUT', `/api/v1/users/${me.body.id}/disabled`, { token: otherToken, body: { disabled: false } });
    admin = await gw.login('admin', ADMIN_PASSWORD);

    const bad = await gw.request<ApiErrorBody>('PUT', `/api/v1/users/${other.body.id}/disabled`, {
      token: admin,
      body: { disabled: 'yes' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues?.map((i) => i.path)).toEqual(['disabled']);
  });
});

describe('DELETE /api/v1/users/{id} while that user signs in', () => {
  it('answers the sign-in 200 or 401, never a 500 (its session insert finds the user gone)', async () => {
    const statuses = new Set<number>();
    // The delete lands while the sign-in checks the password (argon2): most rounds hit the window.
    for (let i = 0; i < 10; i++) {
      const username = `leaving-${i}`;
      const created = await gw.request<UserAdminView>('POST', '/api/v1/users', {
        token: admin,
        body: { username, password: 'leaving-password', role: 'viewer' },
      });
      expect(created.status).toBe(201);
      const signIn = gw.request('POST', '/api/v1/auth/login', { body: { username, password: 'leaving-password' } });
      await new Promise((r) => setTimeout(r, i % 5));
      const removed = gw.request('DELETE', `/api/v1/users/${created.body.id}`, { token: admin });
      const [answer, deleted] = await Promise.all([signIn, removed]);
      expect(deleted.status).toBe(204);
      statuses.add(answer.status);
    }
    expect([...statuses].filter((s) => s !== 200 && s !== 401)).toEqual([]);
  });
});

describe("a deleted user's API keys", () => {
  it('keep working (site credentials) and keep naming their creator, so they can be found and revoked', async () => {
    const created = await gw.request<UserAdminView>('POST', '/api/v1/users', {
      token: admin,
      body: { username: 'keymaker', password: 'keymaker-password', role: 'operator' },
    });
    expect(created.status).toBe(201);
    const token = await gw.login('keymaker', 'keymaker-password');
    const key = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token,
      body: { name: 'ci pusher', scopes: ['ingest'] },
    });
    expect(key.status).toBe(201);
    const listed = async () =>
      (await gw.request<ApiKeyView[]>('GET', '/api/v1/api-keys', { token: admin })).body.find(
        (k) => k.id === key.body.id,
      );
    expect(await listed()).toMatchObject({ createdBy: created.body.id, createdByName: 'keymaker' });
    expect((await gw.request('DELETE', `/api/v1/users/${created.body.id}`, { token: admin })).status).toBe(204);
    // Before: createdBy null and nothing else — whose key it was could no longer be told.
    expect(await listed()).toMatchObject({ createdBy: null, createdByName: 'keymaker' });
  });
});

describe('POST /api/v1/users: usernames that differ only in case', () => {
  it('refuses `Admin` beside `admin` (409 naming the one it clashes with), also when both are created at once', async () => {
    const lookalike = await gw.request<ApiErrorBody>('POST', '/api/v1/users', {
      token: admin,
      body: { username: 'Admin', password: 'lookalike-password', role: 'viewer' },
    });
    expect(lookalike.status).toBe(409);
    expect(lookalike.body.error.message).toMatch(/"admin" differs only in case/);

    const both = await Promise.all(
      ['Twin', 'TWIN', 'twin'].map((username) =>
        gw.request('POST', '/api/v1/users', {
          token: admin,
          body: { username, password: 'twin-password', role: 'viewer' },
        }),
      ),
    );
    expect(both.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    const listed = await gw.request<UserAdminView[]>('GET', '/api/v1/users', { token: admin });
    expect(listed.body.filter((u) => u.username.toLowerCase() === 'twin')).toHaveLength(1);
    expect(listed.body.filter((u) => u.username.toLowerCase() === 'admin')).toHaveLength(1);
  });
});
