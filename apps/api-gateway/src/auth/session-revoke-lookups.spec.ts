import { Logger } from '@nestjs/common';
import { UserRole } from '@fleetwatch/contracts';
import { UnavailableError } from '@fleetwatch/domain';
import type { ActiveSession } from '@fleetwatch/persistence';
import { UsersService } from '../users/users.service';
import { AuthService } from './auth.service';
import { CredentialLookups } from './credential-lookups';
import type { Principal } from './principal';
import { newSessionToken } from './session-token';

// A session ended on this replica (logout, a password or role change, the user disabled or deleted) is refused here by
// the next request, also while the database is slower than GATEWAY_CREDENTIAL_LOOKUP_TIMEOUT_MS: the bounded session
// lookups (CredentialLookups) share a query under way and keep the answer of one a request gave up on for its retry —
// a query begun before the session ended (it may have read the row before, and answer for as long as the query
// timeout) must not answer a request sent after it.

const TIMEOUT_MS = 1000;

function setup() {
  const { token } = newSessionToken(1);
  let ended = false;
  const active = {
    session: { id: '00000000-0000-4000-8000-000000000001', expiresAt: new Date(Date.now() + 3_600_000) },
    user: { id: '00000000-0000-4000-8000-0000000000aa', username: 'alice', role: UserRole.Operator, tokenVersion: 1 },
  } as unknown as ActiveSession;
  // Each query reads the row when it starts and answers when the test says so (a slow database).
  const answers: Array<() => void> = [];
  const sessions = {
    findActiveByTokenHash: jest.fn(() => {
      const row = ended ? null : active;
      return new Promise<ActiveSession | null>((resolve) => answers.push(() => resolve(row)));
    }),
    revoke: jest.fn(async () => {
      ended = true;
      return true;
    }),
    revokeAllForUser: jest.fn(async () => {
      ended = true;
      return 1;
    }),
  };
  const user = {
    id: active.user.id,
    username: 'alice',
    role: UserRole.Operator,
    passwordHash: 'h',
    tokenVersion: 1,
    createdAt: new Date(0),
    updatedAt: new Date(0),
  };
  const users = {
    findById: jest.fn(async () => user),
    setPassword: jest.fn(async () => undefined),
    setRole: jest.fn(async () => ({ ...user, role: UserRole.Viewer })),
    delete: jest.fn(async () => {
      ended = true;
      return true;
    }),
    countEnabledAdmins: jest.fn(async () => 2),
  };
  const lookups = new CredentialLookups({ timeoutMs: TIMEOUT_MS, maxConcurrent: 8, retryAfterSeconds: 2 });
  const auth = new AuthService(
    { sessionTtlMs: 60_000, allowedOrigins: [] } as never,
    users as never,
    sessions as never,
    {} as never,
    {} as never,
    {} as never,
    {} as never,
    {} as never,
    lookups,
  );
  const db = { $transaction: async (fn: (tx: unknown) => Promise<unknown>) => fn({}) };
  const hasher = { hash: async () => 'h2', verify: async () => true };
  const disabled = { setDisabled: jest.fn(async () => undefined), disabledAt: jest.fn(async () => null) };
  const usersService = new UsersService(
    users as never,
    sessions as never,
    hasher as never,
    db as never,
    disabled as never,
    lookups,
  );
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 'accepted',
      (e: unknown) => (e instanceof UnavailableError ? 'unavailable' : 'refused'),
    );
  const request = () => outcome(auth.authenticateSessionToken(token));
  const principal: Principal = {
    kind: 'user',
    id: active.user.id,
    name: 'alice',
    role: UserRole.Operator,
    sessionId: active.session.id,
  };
  return { answers, auth, usersService, request, principal };
}

const admin: Principal = { kind: 'user', id: 'admin-1', name: 'admin', role: UserRole.Admin, sessionId: 's-admin' };

const ends: Array<[string, (s: ReturnType<typeof setup>) => Promise<unknown>]> = [
  ['logout', (s) => s.auth.logout(s.principal)],
  ['a password set by an admin', (s) => s.usersService.setPassword(s.principal.id, 'another-password')],
  ['a role change', (s) => s.usersService.changeRole(s.principal.id, UserRole.Viewer)],
  ['the user disabled', (s) => s.usersService.setDisabled(admin, s.principal.id, true)],
  ['the user deleted', (s) => s.usersService.delete(admin, s.principal.id)],
];

beforeEach(() => {
  jest.useFakeTimers();
  jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
});
afterEach(() => {
  jest.useRealTimers();
  jest.restoreAllMocks();
});

describe.each(ends)('a session ended by %s', (_what, end) => {
  it('a request after it does not join a query begun before it', async () => {
    const s = setup();
    // A request gives up on its query (503); the query runs on.
    const first = s.request();
    await jest.advanceTimersByTimeAsync(TIMEOUT_MS + 1);
    expect(await first).toBe('unavailable');
    await end(s);
    const after = s.request();
    await jest.advanceTimersByTimeAsync(1);
    // The query begun before the end answers now, with the row it read then.
    s.answers.splice(0).forEach((a) => a());
    await jest.advanceTimersByTimeAsync(1);
    s.answers.splice(0).forEach((a) => a());
    await jest.advanceTimersByTimeAsync(1);
    expect(await after).toBe('refused');
  });

  it('a request after it is not handed the answer kept for a retry, read before it', async () => {
    const s = setup();
    const first = s.request();
    await jest.advanceTimersByTimeAsync(TIMEOUT_MS + 1);
    expect(await first).toBe('unavailable');
    // The query answers (the session active) and is kept for the retry; then the session ends here.
    s.answers.splice(0).forEach((a) => a());
    await jest.advanceTimersByTimeAsync(1);
    await end(s);
    const after = s.request();
    await jest.advanceTimersByTimeAsync(1);
    s.answers.splice(0).forEach((a) => a());
    await jest.advanceTimersByTimeAsync(1);
    expect(await after).toBe('refused');
  });
});
