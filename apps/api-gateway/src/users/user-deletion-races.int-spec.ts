import { Client } from 'pg';
import type { ApiErrorBody, CreateApiKeyResponse, UserAdminView } from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, HttpAnswer, startGateway } from '../int-spec.helpers';

// "No 5xx for anything a client sends" (SPEC §11): a request that writes (or reads) a row of a user while that user is
// being deleted. Each race is made deterministic: the test deletes the user in a transaction of its own and holds it
// open until the gateway's request is seen waiting on its lock in Postgres, then commits — the request goes on against
// a user that is gone, at the worst moment (after the gateway read it, before its own statement saw it deleted).

let gw: GatewayHarness;
let admin: string;
let pg: Client;

beforeAll(async () => {
  gw = await startGateway(testing, 'user-deletion-races', { env: { LOGIN_RATE_LIMIT_PER_MINUTE: '1000' } });
  admin = await gw.login('admin', ADMIN_PASSWORD);
  pg = new Client({ connectionString: gw.database.databaseUrl });
  await pg.connect();
});
afterAll(async () => {
  await pg?.end();
  await gw?.close();
});

let serial = 0;
async function newUser(role: 'viewer' | 'operator' | 'admin' = 'operator'): Promise<{ id: string; token: string }> {
  const username = `leaving-${++serial}`;
  const created = await gw.request<UserAdminView>('POST', '/api/v1/users', {
    token: admin,
    body: { username, password: 'leaving-password', role },
  });
  expect(created.status).toBe(201);
  return { id: created.body.id, token: await gw.login(username, 'leaving-password') };
}

/** Waits until another backend of this database waits for a lock (the gateway's statement, behind the test's). */
async function untilBlocked(): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { rows } = await pg.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`,
    );
    if (rows[0].n > 0) return;
    if (Date.now() > deadline) throw new Error('the request never waited on the deletion');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Deletes `userId` (its sessions go with it) while `send` is under way: the deletion holds the user's row until the
 * request waits on it, then commits. `lockTable` takes the whole users table first instead (a read that would not wait
 * on a row lock waits on that), so the deletion lands between the request's statements.
 */
async function whileDeleting<T>(
  userId: string,
  send: () => Promise<HttpAnswer<T>>,
  options: { lockTable?: boolean } = {},
): Promise<HttpAnswer<T>> {
  await pg.query('BEGIN');
  try {
    if (options.lockTable) await pg.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
    else expect((await pg.query('DELETE FROM users WHERE id = $1', [userId])).rowCount).toBe(1);
    const answer = send();
    await untilBlocked();
    if (options.lockTable) expect((await pg.query('DELETE FROM users WHERE id = $1', [userId])).rowCount).toBe(1);
    await pg.query('COMMIT');
    return await answer;
  } catch (err) {
    await pg.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

describe('requests racing the deletion of their user', () => {
  it('POST /api/v1/api-keys by the user being deleted: 401 "this account no longer exists", no key left behind', async () => {
    const user = await newUser('operator');
    const answer = await whileDeleting<ApiErrorBody | CreateApiKeyResponse>(user.id, () =>
      gw.request('POST', '/api/v1/api-keys', { token: user.token, body: { name: 'racing', scopes: ['read'] } }),
    );
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 401,
      body: { error: expect.objectContaining({ code: 'unauthorized', message: 'this account no longer exists' }) },
    });
    const { rows } = await pg.query(`SELECT 1 FROM api_keys WHERE name = 'racing'`);
    expect(rows).toEqual([]);
  });

  it('POST /api/v1/auth/login of the user being deleted: 401 as a wrong password', async () => {
    const user = await newUser('viewer');
    const answer = await whileDeleting<ApiErrorBody>(user.id, () =>
      gw.request('POST', '/api/v1/auth/login', {
        body: { username: `leaving-${serial}`, password: 'leaving-password' },
      }),
    );
    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('unauthorized');
  });

  it('PUT /api/v1/auth/password (their own) by the user being deleted: 401 "this account no longer exists"', async () => {
    const user = await newUser('viewer');
    const answer = await whileDeleting<ApiErrorBody>(user.id, () =>
      gw.request('PUT', '/api/v1/auth/password', {
        token: user.token,
        body: { currentPassword: 'leaving-password', newPassword: 'another-password' },
      }),
    );
    expect(answer.status).toBe(401);
    expect(answer.body.error).toMatchObject({ code: 'unauthorized', message: 'this account no longer exists' });
  });

  it('POST /api/v1/auth/logout by the user being deleted: 204 (the session is gone either way)', async () => {
    const user = await newUser('viewer');
    // The revoke's UPDATE of the session waits on the deletion's cascade (its row lock is on `sessions`), then finds
    // nothing to revoke.
    const answer = await whileDeleting(user.id, () => gw.request('POST', '/api/v1/auth/logout', { token: user.token }));
    expect(answer.status).toBe(204);
  });

  it('a request authenticated while its user is deleted between reading the session and its user: 401', async () => {
    const user = await newUser('viewer');
    const answer = await whileDeleting<ApiErrorBody>(
      user.id,
      () => gw.request('GET', '/api/v1/auth/me', { token: user.token }),
      { lockTable: true },
    );
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 401,
      body: {
        error: expect.objectContaining({ code: 'unauthorized', message: 'session expired or revoked: log in again' }),
      },
    });
  });

  for (const [what, method, path, body] of [
    ['PUT /api/v1/users/{id}/password', 'PUT', 'password', { password: 'set-by-admin' }],
    ['PUT /api/v1/users/{id}/role', 'PUT', 'role', { role: 'viewer' }],
    ['PUT /api/v1/users/{id}/disabled', 'PUT', 'disabled', { disabled: true }],
    ['DELETE /api/v1/users/{id}', 'DELETE', '', undefined],
  ] as const) {
    it(`${what} by an admin while another deletes that user: 404 naming the user`, async () => {
      const user = await newUser('operator');
      const answer = await whileDeleting<ApiErrorBody>(user.id, () =>
        gw.request(method, `/api/v1/users/${user.id}${path ? `/${path}` : ''}`, { token: admin, body }),
      );
      expect(answer.status).toBe(404);
      expect(answer.body.error).toMatchObject({ code: 'not_found', message: `user ${user.id} not found` });
    });
  }
});
