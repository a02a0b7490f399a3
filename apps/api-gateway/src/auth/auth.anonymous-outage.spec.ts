import { Logger } from '@nestjs/common';
import { UnavailableError } from '@fleetwatch/domain';
import { mapError } from '@fleetwatch/observability';
import { AuthService } from './auth.service';
import { CredentialLookups } from './credential-lookups';
import { newSessionToken } from './session-token';

// Sign-in and authentication answer callers not yet known: a database outage on the way must not tell them the
// database's words (a relation, a role or database name) — as the public status page does not.

const DB_WORDS = /relation|public\.users|public\.sessions|42P01|database/;
const outage = (table: string) => async () => {
  throw new UnavailableError(`database unavailable: relation "public.${table}" does not exist (42P01)`, 5, '42P01');
};

function authOver(users: object, sessions: object): AuthService {
  const limiter = { take: async () => ({ allowed: true }), refund: async () => undefined };
  return new AuthService(
    { sessionTtlMs: 60_000, allowedOrigins: [] } as never,
    users as never,
    sessions as never,
    {} as never,
    {} as never,
    limiter as never,
    {} as never,
    {} as never,
    new CredentialLookups({ timeoutMs: 1000, maxConcurrent: 4, retryAfterSeconds: 2 }),
  );
}

let warn: jest.SpyInstance;
beforeEach(() => (warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined)));
afterEach(() => jest.restoreAllMocks());

it.each([
  ['a sign-in', (a: AuthService) => a.login({ username: 'nobody', password: 'whatever-pw' }, '192.0.2.1')],
  ['any well-formed session token', (a: AuthService) => a.authenticate(`Bearer ${newSessionToken(1).token}`, '::1')],
  ['a session cookie', (a: AuthService) => a.authenticateSessionToken(newSessionToken(1).token, 'cookie')],
  [
    'a request with a session cookie',
    (a: AuthService) =>
      a.authenticateRequest({
        method: 'GET',
        ip: '192.0.2.1',
        host: 'localhost',
        protocol: 'http',
        authorization: undefined,
        sessionCookie: newSessionToken(1).token,
      } as never),
  ],
])('a database outage during %s: a 503 with Retry-After, its words in the log only', async (_, run) => {
  const auth = authOver({ findByUsername: outage('users') }, { findActiveByTokenHash: outage('sessions') });
  const error = await run(auth).catch((e: unknown) => e);
  const mapped = mapError(error);
  expect(mapped.status).toBe(503);
  expect(mapped.headers).toEqual({ 'retry-after': '5' });
  expect(JSON.stringify(mapped.body)).not.toMatch(DB_WORDS);
  expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([
    expect.stringMatching(/relation "public\.(users|sessions)"/),
  ]);
});
