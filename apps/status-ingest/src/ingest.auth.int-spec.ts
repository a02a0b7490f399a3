import { createHash, randomBytes } from 'node:crypto';
import { InstanceKind } from '@fleetwatch/contracts';
import { ApiKeysRepository, hashApiKey, withChecksum } from '@fleetwatch/persistence';
import { ingestRefusalOf, StatusPusher } from '@fleetwatch/pusher';
import { createIsolatedVhost, testEnv, waitFor } from '@fleetwatch/testing';
import { ApiKeyAuthService } from './auth/api-key-auth.service';
import { errorOf, IngestHarness, update } from './int-spec.helpers';

// API keys at the edge: 401 for missing, malformed, unknown and revoked keys (a
// revocation bites within 5 s), 403 for a key without the ingest scope or from an
// address outside its allow-list; verdicts are cached (no query per request, one
// query for a burst of the same unknown key); random keys of either shape cost no
// query, and keys issued before checksums keep working; per-key rate limit → 429 +
// Retry-After.

/** A key as issued before checksums (`fwk_<8 hex>_<43 base64url>`), stored as such. */
async function createLegacyKey(scopes: string[] = ['ingest']): Promise<{ key: string; id: string }> {
  const prefix = `fwk_${randomBytes(4).toString('hex')}`;
  const key = `${prefix}_${randomBytes(32).toString('base64url')}`;
  const record = await h.keys.create({ name: `legacy ${prefix}`, prefix, keyHash: hashApiKey(key), scopes });
  return { key, id: record.id };
}

const randomLegacyKey = () => `fwk_${randomBytes(4).toString('hex')}_${randomBytes(32).toString('base64url')}`;
const randomNewKey = () =>
  `fwk_${randomBytes(6).toString('hex')}_${createHash('sha256').update(randomBytes(8)).digest('hex').slice(0, 46)}`;

let h: IngestHarness;

beforeAll(async () => {
  h = await IngestHarness.start(
    { vhost: await createIsolatedVhost('ingest-auth'), databaseUrl: testEnv().databaseUrl },
    // Hundreds of refused keys from one address: not the budget of refused keys under test here.
    {
      INGEST_RATE_LIMIT_PER_SECOND: '50',
      INGEST_RATE_LIMIT_BURST: '100',
      INGEST_AUTH_FAILURES_PER_IP_PER_MINUTE: '100000',
    },
  );
});
afterAll(() => h?.stop());
afterEach(async () => {
  jest.restoreAllMocks();
  await h.drain();
});

describe('401', () => {
  it.each([
    ['no Authorization header', {}, /missing API key/],
    ['a Basic header', { authorization: 'Basic dXNlcjpwYXNz' }, /expected "Bearer <key>"/],
    ['an empty bearer', { authorization: 'Bearer ' }, /expected "Bearer <key>"/],
    ['a malformed key', { authorization: 'Bearer not-a-key' }, /malformed API key/],
    ['an unknown key', { authorization: `Bearer fwk_00000000_${'A'.repeat(43)}` }, /unknown or revoked API key/],
    [
      'a key whose checksum fails',
      { authorization: `Bearer fwk_${'0'.repeat(12)}_${'A'.repeat(46)}` },
      /checksum mismatch/,
    ],
  ])('for %s, with a JSON body, before the body is parsed', async (_name, headers, message) => {
    const res = await h.post('{"this is": not json', { key: null, headers });
    expect(res.status).toBe(401);
    expect(errorOf(res)).toMatchObject({ code: 'unauthorized', message: expect.stringMatching(message) });
  });

  it('for a key with the right prefix but the wrong secret', async () => {
    const { key } = await h.createKey(['ingest']);
    // Checksum valid (anyone can compute CRC32), secret wrong.
    const forged = withChecksum(`${key.slice(0, 17)}${'B'.repeat(40)}`);
    const res = await h.post(update(1), { key: forged });
    expect(res.status).toBe(401);
    expect(errorOf(res).message).toMatch(/unknown or revoked/);
  });

  it('for a revoked key within 5 s of the revocation', async () => {
    const { key, id } = await h.createKey(['ingest']);
    expect((await h.post(update(1), { key })).status).toBe(202);
    const revokedAt = Date.now();
    expect(await h.keys.revoke(id)).toBe(true);
    const refused = await waitFor(
      async () => {
        const res = await h.post(update(1), { key });
        return res.status === 401 ? res : null;
      },
      { timeoutMs: 6_000, intervalMs: 100, description: 'the revoked key to be refused' },
    );
    expect(Date.now() - revokedAt).toBeLessThan(5_000);
    expect(errorOf(refused).message).toMatch(/unknown or revoked/);
    // …and it stays refused.
    expect((await h.post(update(1), { key })).status).toBe(401);
  });
});

describe('403', () => {
  it('for a key without the ingest scope', async () => {
    const { key } = await h.createKey(['read', 'write']);
    const res = await h.post(update(1), { key });
    expect(res.status).toBe(403);
    expect(errorOf(res)).toMatchObject({
      code: 'forbidden',
      message: expect.stringMatching(/lacks the "ingest" scope/),
    });
  });

  it('for a key used from outside its IP allow-list; inside it works', async () => {
    const outside = await h.createKey(['ingest'], ['10.0.0.0/8', 'fd00::/8']);
    const res = await h.post(update(1), { key: outside.key });
    expect(res.status).toBe(403);
    expect(errorOf(res).message).toMatch(/may not be used from/);
    const inside = await h.createKey(['ingest'], ['10.0.0.0/8', '127.0.0.0/8', '::1/128']);
    expect((await h.post(update(1), { key: inside.key })).status).toBe(202);
  });

  it('is told from a filter`s 403 by the reference pusher (its error code): the batch held whole, nothing set aside', async () => {
    const { key } = await h.createKey(['read', 'write']);
    const res = await h.post(update(1), { key });
    expect(ingestRefusalOf(403, res.text)).toMatch(/lacks the "ingest" scope/);
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    // The timing guard off: the body alone keeps the pusher from taking this 403 for a filter's judgement of a payload.
    const p = new StatusPusher({
      url: h.url,
      apiKey: key,
      log: quiet,
      forbiddenFlickerMs: 0,
      baseDelayMs: 10,
      maxDelayMs: 40,
    });
    const dropped: unknown[] = [];
    p.onDropped((us) => dropped.push(...us));
    for (let i = 1; i <= 4; i++)
      p.enqueue({ updateId: `held-${i}`, instanceId: `web-${i}`, kind: InstanceKind.Container, status: 'running' });
    p.start();
    try {
      await waitFor(() => p.stats.authRefused >= 3, { timeoutMs: 5_000, intervalMs: 10, description: '3 refusals' });
      expect(dropped).toEqual([]);
      expect(p.pending).toBe(4);
      // Never halved: one request per try, each the whole batch.
      expect(p.stats.requests).toBeLessThanOrEqual(p.stats.authRefused + 1);
    } finally {
      await p.stop(0);
    }
  });
});

describe('verdict cache', () => {
  it('a hot key costs no query per request; a burst with the same unknown key costs one', async () => {
    const repo = h.service.app.get(ApiKeysRepository);
    const spy = jest.spyOn(repo, 'findActiveByPrefix');
    const { key } = await h.createKey(['ingest']);
    const results = await Promise.all(Array.from({ length: 40 }, () => h.post(update(1), { key })));
    expect(results.every((r) => r.status === 202)).toBe(true);
    expect(spy).toHaveBeenCalledTimes(1);

    spy.mockClear();
    const unknown = withChecksum(`fwk_ffffffffffff_${'C'.repeat(40)}`);
    const refused = await Promise.all(Array.from({ length: 40 }, () => h.post(update(1), { key: unknown })));
    expect(refused.every((r) => r.status === 401)).toBe(true);
    expect(spy).toHaveBeenCalledTimes(1);

    spy.mockClear();
    await Promise.all(Array.from({ length: 20 }, (_, i) => h.post(update(1), { key: `garbage-${i}` })));
    expect(spy).not.toHaveBeenCalled();
  });
});

describe('random keys cost no query', () => {
  it('keys issued before checksums keep working; random keys of either shape are refused from memory', async () => {
    const repo = h.service.app.get(ApiKeysRepository);
    const byPrefix = jest.spyOn(repo, 'findActiveByPrefix');
    const legacyPrefixes = jest.spyOn(repo, 'listActiveLegacyPrefixes');
    const old = await createLegacyKey();
    // The legacy prefixes were loaded before this key existed; rather than wait out the miss interval (10 s), reload them.
    h.service.app.get(ApiKeyAuthService).clear();
    expect((await h.post(update(1), { key: old.key })).status).toBe(202);
    const fresh = await h.createKey(['ingest']);
    expect((await h.post(update(1), { key: fresh.key })).status).toBe(202);
    await h.drain();

    byPrefix.mockClear();
    legacyPrefixes.mockClear();
    const keys = [...Array.from({ length: 100 }, randomLegacyKey), ...Array.from({ length: 100 }, randomNewKey)];
    const answers = [];
    for (let i = 0; i < keys.length; i += 20)
      answers.push(...(await Promise.all(keys.slice(i, i + 20).map((key) => h.post(update(1), { key })))));
    expect(answers.every((r) => r.status === 401)).toBe(true);
    expect(errorOf(answers[0]).message).toMatch(/unknown or revoked/);
    expect(errorOf(answers[150]).message).toMatch(/checksum/);
    expect(byPrefix).not.toHaveBeenCalled();
    // At most one reload of the legacy prefixes for the whole spray.
    expect(legacyPrefixes.mock.calls.length).toBeLessThanOrEqual(1);
    expect(await h.count()).toBe(0);

    // …and the real keys still work.
    expect((await h.post(update(1), { key: old.key })).status).toBe(202);
    expect((await h.post(update(1), { key: fresh.key })).status).toBe(202);
  });

  it('a revoked legacy key is refused within 5 s', async () => {
    const old = await createLegacyKey();
    h.service.app.get(ApiKeyAuthService).clear();
    expect((await h.post(update(1), { key: old.key })).status).toBe(202);
    const revokedAt = Date.now();
    expect(await h.keys.revoke(old.id)).toBe(true);
    await waitFor(async () => (await h.post(update(1), { key: old.key })).status === 401, {
      timeoutMs: 6_000,
      intervalMs: 100,
      description: 'the revoked legacy key refused',
    });
    expect(Date.now() - revokedAt).toBeLessThan(5_000);
  });
});

describe('429', () => {
  it('refuses over the per-key rate with Retry-After; a batch costs its size; other keys are unaffected', async () => {
    const { key } = await h.createKey(['ingest']);
    // A batch that costs more than the whole bucket can never be taken, however long the client waits: not a 429
    // with a Retry-After (a retry that would be refused for ever), but a 413 saying how many a request may carry
    // (a pusher halves a batch answered 413).
    const tooBig = await h.post({ updates: Array.from({ length: 101 }, (_, i) => update(i)) }, { key });
    expect(tooBig.status).toBe(413);
    expect(tooBig.headers.get('retry-after')).toBeNull();
    expect(errorOf(tooBig)).toMatchObject({
      code: 'payload_too_large',
      message: expect.stringMatching(/^updates: .*101 updates.*burst of 100.*at most 100/),
    });

    const emptied = performance.now(); // at the latest, the full batch below empties the bucket
    expect((await h.post({ updates: Array.from({ length: 100 }, (_, i) => update(i)) }, { key })).status).toBe(202);
    // The bucket is empty; it refills at 50/s, so a quick burst of singles gets at most what refilled meanwhile.
    const burst = await Promise.all(Array.from({ length: 40 }, () => h.post(update(1), { key })));
    const refilled = Math.floor((50 * (performance.now() - emptied)) / 1000) + 1;
    const limited = burst.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(burst.length - limited.length).toBeLessThanOrEqual(refilled);
    expect(burst.every((r) => r.status === 429 || r.status === 202)).toBe(true);
    expect(Number(limited[0].headers.get('retry-after'))).toBe(1);

    const other = await h.createKey(['ingest']);
    expect((await h.post(update(1), { key: other.key })).status).toBe(202);

    await new Promise((r) => setTimeout(r, 1_100));
    expect((await h.post(update(1), { key })).status).toBe(202);
    const metrics = await h.request('GET', '/metrics');
    expect(metrics.text).toMatch(
      /fleetwatch_ingest_requests_refused_total\{route="updates",reason="rate_limited"\} [1-9]/,
    );
    expect(metrics.text).toMatch(
      /fleetwatch_ingest_requests_refused_total\{route="updates",reason="unauthorized"\} [1-9]/,
    );
  });
});
