import { UnavailableError } from '@fleetwatch/domain';
import { generateApiKey, hashApiKey } from '../api-keys/api-key-secret';
import { ApiKeyVerifier } from '../api-keys/api-key-verifier';
import type { ApiKeyRecord } from '../api-keys/api-keys.repository';
import type { HeartbeatMonitorRecord } from '../heartbeat-monitors/heartbeat-monitors.repository';
import { generatePingToken } from '../heartbeat-monitors/ping-token';
import { PingTokenResolver } from '../heartbeat-monitors/ping-token-resolver';
import { BoundedLookups } from './bounded-lookups';

// BoundedLookups in front of the real ApiKeyVerifier and PingTokenResolver: a database slower than the timeout, the
// legacy-form lists, a resolver's reset.

const limits = { timeoutMs: 1000, maxConcurrent: 2, retryAfterSeconds: 5 };

function record(key: string, prefix: string): ApiKeyRecord {
  return {
    id: 'k1',
    name: 'k',
    prefix,
    keyHash: hashApiKey(key),
    scopes: ['ingest'],
    allowedCidrs: [],
    clientCertSubject: null,
    createdBy: null,
    createdByName: null,
    createdAt: new Date(0),
    lastUsedAt: null,
    revokedAt: null,
  };
}

/** A database that answers every query after `delayMs`. */
function slowDb(delayMs: number, legacyPrefix: string, rec: ApiKeyRecord) {
  const later = <T>(v: T) => new Promise<T>((resolve) => setTimeout(() => resolve(v), delayMs));
  return {
    findActiveByPrefix: jest.fn((prefix: string) => later(prefix === rec.prefix ? [rec] : [])),
    listActiveLegacyPrefixes: jest.fn(() => later([legacyPrefix])),
  };
}

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

/** A client that retries after each 503's Retry-After; how many tries until it is accepted (or `max`). */
async function triesUntilAccepted(verifier: ApiKeyVerifier, key: string, max: number): Promise<number> {
  for (let i = 1; i <= max; i++) {
    const outcome = verifier.verify(key).then(
      () => 'ok' as const,
      (e: unknown) => e,
    );
    await jest.advanceTimersByTimeAsync(limits.timeoutMs + 10);
    const result = await outcome;
    if (result === 'ok') return i;
    expect(result).toBeInstanceOf(UnavailableError);
    await jest.advanceTimersByTimeAsync((result as UnavailableError).retryAfterSeconds * 1000);
  }
  return max + 1;
}

it('a checksummed key with a database slower than the timeout: the retry gets the kept answer', async () => {
  const issued = generateApiKey();
  const db = slowDb(3000, 'fwk_1a2b3c4d', record(issued.key, issued.prefix));
  const bounded = new BoundedLookups(limits);
  const verifier = new ApiKeyVerifier(bounded.apiKeys(db), { cacheTtlMs: 2000, now: () => Date.now() });
  expect(await triesUntilAccepted(verifier, issued.key, 5)).toBeLessThanOrEqual(2);
});

it('a legacy key with the same slow database is accepted after a retry too (the legacy-prefix list is kept)', async () => {
  const legacyKey = `fwk_1a2b3c4d_${'A'.repeat(43)}`;
  const db = slowDb(3000, 'fwk_1a2b3c4d', record(legacyKey, 'fwk_1a2b3c4d'));
  const bounded = new BoundedLookups(limits);
  const verifier = new ApiKeyVerifier(bounded.apiKeys(db), { cacheTtlMs: 2000, now: () => Date.now() });
  // The legacy-prefix list is read unbounded (as before): its holder replays a failed load for 10 s, so a load cut by
  // the timeout refused every legacy-form key again and again. The key's own lookup is bounded and kept for the retry.
  let tries = 0;
  for (; tries < 8; tries++) {
    const outcome = verifier.verify(legacyKey).then(
      () => 'ok' as const,
      (e: unknown) => e,
    );
    let settled: unknown;
    void outcome.then((r) => (settled = r));
    while (settled === undefined) await jest.advanceTimersByTimeAsync(100);
    if (settled === 'ok') break;
    expect(settled).toBeInstanceOf(UnavailableError);
    await jest.advanceTimersByTimeAsync(limits.retryAfterSeconds * 1000);
  }
  expect(tries).toBeLessThanOrEqual(2);
});

it('a legacy key is not refused 503 once the lookups that filled maxConcurrent have finished', async () => {
  const legacyKey = `fwk_1a2b3c4d_${'A'.repeat(43)}`;
  const rec = record(legacyKey, 'fwk_1a2b3c4d');
  const db = {
    findActiveByPrefix: jest.fn(async (prefix: string) => (prefix === rec.prefix ? [rec] : [])),
    listActiveLegacyPrefixes: jest.fn(async () => ['fwk_1a2b3c4d']),
  };
  const bounded = new BoundedLookups(limits);
  const verifier = new ApiKeyVerifier(bounded.apiKeys(db), { cacheTtlMs: 2000, now: () => Date.now() });
  // Two forged keys' lookups under way (a storm; the database momentarily slow): the places are full.
  const release: Array<() => void> = [];
  const busy = ['x', 'y'].map((k) =>
    bounded.run(k, () => new Promise<void>((resolve) => release.push(resolve))).catch(() => undefined),
  );
  await expect(verifier.verify(legacyKey)).rejects.toBeInstanceOf(UnavailableError);
  // The storm passes at once; the client retries after Retry-After (5 s).
  release.forEach((r) => r());
  await Promise.all(busy);
  await jest.advanceTimersByTimeAsync(limits.retryAfterSeconds * 1000);
  await expect(verifier.verify(legacyKey)).resolves.toMatchObject({ id: 'k1' });
});

it('PingTokenResolver.clear() (checks changed: a monitor deleted) is not undone by a query begun before it', async () => {
  const token = generatePingToken();
  const monitor = { id: 'm1' } as HeartbeatMonitorRecord;
  let rows: HeartbeatMonitorRecord | null = monitor;
  const answers: Array<() => void> = [];
  const db = {
    // Reads the row now, answers when told.
    findByTokenHash: jest.fn((_hash: string) => {
      const read = rows;
      return new Promise<HeartbeatMonitorRecord | null>((resolve) => answers.push(() => resolve(read)));
    }),
    listTokenHashes: jest.fn(async () => []),
  };
  const bounded = new BoundedLookups(limits);
  const resolver = new PingTokenResolver(bounded.pingTokens(db), { cacheTtlMs: 5000, now: () => Date.now() });
  const before = resolver.resolve(token);
  // The monitor is deleted; config.changed arrives: PingsService.forgetMonitors() → resolver.clear().
  rows = null;
  resolver.clear();
  bounded.forget('ping:'); // as PingsService.forgetMonitors does
  const after = resolver.resolve(token);
  await jest.advanceTimersByTimeAsync(0);
  answers.forEach((a) => a());
  await expect(before).resolves.toBe(monitor);
  // A ping after the change must read the monitor again (the resolver's contract: "dropped at once").
  await expect(after).resolves.toBeNull();
});
