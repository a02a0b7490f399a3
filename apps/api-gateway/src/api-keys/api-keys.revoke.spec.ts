import { UserRole } from '@fleetwatch/contracts';
import { UnavailableError } from '@fleetwatch/domain';
import {
  ApiKeyVerifier,
  generateApiKey,
  hashApiKey,
  type ApiKeyRecord,
  type ApiKeysRepository,
} from '@fleetwatch/persistence';
import type { Principal } from '../auth/principal';
import { CredentialLookups } from '../auth/credential-lookups';
import { ApiKeysService } from './api-keys.service';

// A key revoked on this replica is refused here at once (ApiKeyVerifier.forget), also while the database is slower
// than GATEWAY_CREDENTIAL_LOOKUP_TIMEOUT_MS: the bounded lookups under the verifier (CredentialLookups) share a query
// under way and keep the answer of one a request gave up on for its retry — an answer read before the revoke, which
// must not come back after it.

const TIMEOUT_MS = 1000;

const admin: Principal = { kind: 'user', id: 'u1', name: 'admin', role: UserRole.Admin, sessionId: 's1' };

function setup() {
  const issued = generateApiKey();
  const rec: ApiKeyRecord = {
    id: 'k1',
    name: 'k',
    prefix: issued.prefix,
    keyHash: hashApiKey(issued.key),
    scopes: ['read'],
    allowedCidrs: [],
    clientCertSubject: null,
    createdBy: 'u1',
    createdByName: 'admin',
    createdAt: new Date(0),
    lastUsedAt: null,
    revokedAt: null,
  };
  let revoked = false;
  // Each query reads the row when it starts and answers when the test says so (a slow database).
  const answers: Array<() => void> = [];
  const repo = {
    findActiveByPrefix: jest.fn((prefix: string) => {
      const rows = prefix === rec.prefix && !revoked ? [rec] : [];
      return new Promise<ApiKeyRecord[]>((resolve) => answers.push(() => resolve(rows)));
    }),
    listActiveLegacyPrefixes: jest.fn(async () => []),
    findById: jest.fn(async () => (revoked ? { ...rec, revokedAt: new Date() } : rec)),
    revoke: jest.fn(async () => {
      revoked = true;
      return true;
    }),
  };
  const lookups = new CredentialLookups({ timeoutMs: TIMEOUT_MS, maxConcurrent: 8, retryAfterSeconds: 2 });
  const verifier = new ApiKeyVerifier(lookups.apiKeys(repo), { cacheTtlMs: 2000, now: () => Date.now() });
  const service = new ApiKeysService(repo as unknown as ApiKeysRepository, verifier, lookups);
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 'accepted',
      (e: unknown) => (e instanceof UnavailableError ? 'unavailable' : 'refused'),
    );
  return { key: issued.key, repo, answers, verifier, service, outcome };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

it('a request joined to a query read before the revoke is refused, not accepted (and cached) after it', async () => {
  const { key, repo, answers, verifier, service, outcome } = setup();
  // The first request gives up on its query (503); the query runs on, its answer kept for the retry.
  const first = outcome(verifier.verify(key));
  await jest.advanceTimersByTimeAsync(TIMEOUT_MS + 1);
  expect(await first).toBe('unavailable');
  // The retry joins the query still under way; meanwhile the key is revoked here.
  const retry = outcome(verifier.verify(key));
  await jest.advanceTimersByTimeAsync(1);
  await service.revoke(admin, 'k1');
  // The query read the row before the revoke: it answers "active".
  answers.splice(0).forEach((a) => a());
  await jest.advanceTimersByTimeAsync(1);
  // The verifier looks again (its forget() contract) and must read the row after the revoke.
  answers.splice(0).forEach((a) => a());
  await jest.advanceTimersByTimeAsync(1);
  expect(await retry).toBe('refused');
  expect(repo.findActiveByPrefix).toHaveBeenCalledTimes(2);
  // Nothing cached it as good: a later request is refused too.
  const later = outcome(verifier.verify(key));
  await jest.advanceTimersByTimeAsync(1);
  answers.splice(0).forEach((a) => a());
  expect(await later).toBe('refused');
});

it('the answer kept for a retry, read before the revoke, is not handed to a request after it', async () => {
  const { key, answers, verifier, service, outcome } = setup();
  const first = outcome(verifier.verify(key));
  await jest.advanceTimersByTimeAsync(TIMEOUT_MS + 1);
  expect(await first).toBe('unavailable');
  // The query answers (active, read before the revoke) and is kept for the retry; then the key is revoked here.
  answers.splice(0).forEach((a) => a());
  await jest.advanceTimersByTimeAsync(1);
  await service.revoke(admin, 'k1');
  const after = outcome(verifier.verify(key));
  await jest.advanceTimersByTimeAsync(1);
  answers.splice(0).forEach((a) => a());
  expect(await after).toBe('refused');
});
