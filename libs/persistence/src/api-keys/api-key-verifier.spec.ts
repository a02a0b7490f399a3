import { UnauthorizedError, UnavailableError } from '@fleetwatch/domain';
import { createHash } from 'node:crypto';
import { withChecksum } from '../credentials/checksum';
import { generateApiKey, hashApiKey, isLegacyApiKeyPrefix } from './api-key-secret';
import { ApiKeyVerifier, type ApiKeyLookup } from './api-key-verifier';
import type { ApiKeyRecord } from './api-keys.repository';

/** ApiKeysRepository's read side over an array, counting what would be queries. */
class InMemoryApiKeys implements ApiKeyLookup {
  readonly records: ApiKeyRecord[] = [];
  queries = { byPrefix: 0, legacyPrefixes: 0 };
  down = false;

  async findActiveByPrefix(prefix: string): Promise<ApiKeyRecord[]> {
    this.queries.byPrefix++;
    if (this.down) throw new UnavailableError('database unavailable', 5);
    return this.records.filter((r) => r.prefix === prefix && !r.revokedAt);
  }

  async listActiveLegacyPrefixes(): Promise<string[]> {
    this.queries.legacyPrefixes++;
    if (this.down) throw new UnavailableError('database unavailable', 5);
    return this.records.filter((r) => !r.revokedAt && isLegacyApiKeyPrefix(r.prefix)).map((r) => r.prefix);
  }

  add(key: string, prefix: string, scopes = ['ingest']): ApiKeyRecord {
    const record: ApiKeyRecord = {
      id: `id-${this.records.length}`,
      name: 'k',
      prefix,
      keyHash: hashApiKey(key),
      scopes,
      allowedCidrs: ['10.0.0.0/8'],
      clientCertSubject: null,
      createdBy: null,
      createdByName: null,
      createdAt: new Date(),
      lastUsedAt: null,
      revokedAt: null,
    };
    this.records.push(record);
    return record;
  }

  total(): number {
    return this.queries.byPrefix + this.queries.legacyPrefixes;
  }
}

let seq = 0;
/** A key as issued before checksums: `fwk_<8 hex>_<43 base64url>`. */
function legacyKey(): { key: string; prefix: string } {
  const prefix = `fwk_${createHash('sha1').update(`p${seq++}`).digest('hex').slice(0, 8)}`;
  return { key: `${prefix}_${createHash('sha256').update(prefix).digest('base64url')}`, prefix };
}

/** A well-formed new-shape key with a valid checksum that nobody issued. */
function forgedChecksummedKey(prefix = `fwk_${'ab'.repeat(6)}`): string {
  return withChecksum(`${prefix}_${'Q'.repeat(40)}`);
}

/** The `i`th of many distinct forged keys (forgedChecksummedKey), each with a prefix of its own. */
const forgedKeyNo = (i: number): string => forgedChecksummedKey(`fwk_${i.toString(16).padStart(12, '0')}`);

describe('ApiKeyVerifier', () => {
  let keys: InMemoryApiKeys;
  let now: number;
  let verifier: ApiKeyVerifier;
  beforeEach(() => {
    keys = new InMemoryApiKeys();
    now = 1_000_000;
    verifier = new ApiKeyVerifier(keys, {
      cacheTtlMs: 2000,
      legacyMaxAgeMs: 60_000,
      legacyMissRefreshMs: 10_000,
      now: () => now,
    });
  });

  /**
   * Starts `verify(key)` with its prefix lookup held once it has read the rows (later lookups run at once); resolves
   * when the lookup is under way, with the request in flight and what lets its lookup answer.
   */
  async function verifyWithLookupHeld(key: string): Promise<{ inFlight: Promise<unknown>; release: () => void }> {
    let release: (() => void) | undefined;
    const find = keys.findActiveByPrefix.bind(keys);
    keys.findActiveByPrefix = async (prefix: string) => {
      const rows = await find(prefix);
      await new Promise<void>((r) => (release = r));
      return rows;
    };
    const inFlight = verifier.verify(key);
    await new Promise((r) => setImmediate(r));
    keys.findActiveByPrefix = find;
    return { inFlight, release: () => release?.() };
  }

  it('verifies a checksummed key and returns its record without the hash (allow-list included)', async () => {
    const k = generateApiKey();
    const record = keys.add(k.key, k.prefix);
    const verified = await verifier.verify(k.key);
    const { keyHash: _hash, ...expected } = record;
    expect(verified).toEqual(expected);
    expect(verified).not.toHaveProperty('keyHash');
    expect(verified.allowedCidrs).toEqual(['10.0.0.0/8']);
  });

  it('refuses random and mistyped keys of the new shape without a query', async () => {
    const k = generateApiKey();
    keys.add(k.key, k.prefix);
    const random = () =>
      `fwk_${createHash('md5').update(String(Math.random())).digest('hex').slice(0, 12)}_${'x'.repeat(46)}`;
    for (let i = 0; i < 200; i++) await expect(verifier.verify(random())).rejects.toThrow(/checksum/);
    const typo = k.key.slice(0, 30) + (k.key[30] === 'a' ? 'b' : 'a') + k.key.slice(31);
    await expect(verifier.verify(typo)).rejects.toThrow(UnauthorizedError);
    await expect(verifier.verify('not-a-key')).rejects.toThrow(/malformed/);
    expect(keys.total()).toBe(0);
  });

  it('keeps keys issued before checksums working, and refuses random legacy-shaped keys from memory', async () => {
    const old = legacyKey();
    keys.add(old.key, old.prefix, ['ingest', 'read']);
    expect((await verifier.verify(old.key)).scopes).toEqual(['ingest', 'read']);
    expect(keys.queries).toEqual({ byPrefix: 1, legacyPrefixes: 1 });

    // A spray of random legacy-shaped keys: one reload of the prefixes at most, no lookup.
    for (let i = 0; i < 500; i++)
      await expect(verifier.verify(legacyKey().key)).rejects.toThrow('unknown or revoked API key');
    expect(keys.queries).toEqual({ byPrefix: 1, legacyPrefixes: 1 });
    // Past the miss interval, one more reload; then memory again.
    now += 10_000;
    for (let i = 0; i < 100; i++) await expect(verifier.verify(legacyKey().key)).rejects.toThrow(UnauthorizedError);
    expect(keys.queries).toEqual({ byPrefix: 1, legacyPrefixes: 2 });
  });

  it('a legacy key created elsewhere is found after the miss interval; a stale set reloads in the background', async () => {
    await expect(verifier.verify(legacyKey().key)).rejects.toThrow(UnauthorizedError);
    const late = legacyKey();
    keys.add(late.key, late.prefix);
    await expect(verifier.verify(late.key)).rejects.toThrow(UnauthorizedError);
    now += 10_000;
    await expect(verifier.verify(late.key)).resolves.toMatchObject({ prefix: late.prefix });

    const later = legacyKey();
    keys.add(later.key, later.prefix);
    now += 60_000;
    // The known key answers at once while the set reloads behind it.
    await verifier.verify(late.key);
    await new Promise((r) => setImmediate(r));
    const loads = keys.queries.legacyPrefixes;
    await expect(verifier.verify(later.key)).resolves.toMatchObject({ prefix: later.prefix });
    expect(keys.queries.legacyPrefixes).toBe(loads);
  });

  it('a key with a valid checksum but no record costs one lookup per TTL, shared by concurrent requests', async () => {
    const forged = forgedChecksummedKey();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => verifier.verify(forged)));
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof UnauthorizedError)).toBe(true);
    expect(keys.queries.byPrefix).toBe(1);
    await expect(verifier.verify(forged)).rejects.toThrow('unknown or revoked API key');
    expect(keys.queries.byPrefix).toBe(1);
    now += 2001;
    await expect(verifier.verify(forged)).rejects.toThrow(UnauthorizedError);
    expect(keys.queries.byPrefix).toBe(2);
  });

  it('forged keys with valid checksums never push a good key out of the cache (refusals kept apart)', async () => {
    const k = generateApiKey();
    keys.add(k.key, k.prefix);
    await verifier.verify(k.key);
    expect(keys.queries.byPrefix).toBe(1);
    // Anyone can compute CRC32: 20,000 distinct well-formed keys nobody issued, each refused after one lookup.
    for (let i = 0; i < 20_000; i++)
      await expect(verifier.verify(forgedKeyNo(i))).rejects.toThrow('unknown or revoked API key');
    expect(keys.queries.byPrefix).toBe(1 + 20_000);
    // The real key's verdict is still cached: no lookup for it.
    await expect(verifier.verify(k.key)).resolves.toMatchObject({ prefix: k.prefix });
    expect(keys.queries.byPrefix).toBe(1 + 20_000);
  });

  it('refusals are cached (one lookup per forged key per TTL) and bounded on their own', async () => {
    const bounded = new ApiKeyVerifier(keys, { cacheTtlMs: 2000, maxCachedRefusals: 100, now: () => now });
    const k = generateApiKey();
    keys.add(k.key, k.prefix);
    await bounded.verify(k.key);
    const forged = forgedKeyNo;
    await expect(bounded.verify(forged(0))).rejects.toThrow(UnauthorizedError);
    await expect(bounded.verify(forged(0))).rejects.toThrow(UnauthorizedError);
    expect(keys.queries.byPrefix).toBe(2);
    for (let i = 1; i <= 100; i++) await expect(bounded.verify(forged(i))).rejects.toThrow(UnauthorizedError);
    expect(keys.queries.byPrefix).toBe(102);
    // The 100 latest refusals are remembered; the oldest went first, and the good key stayed.
    await expect(bounded.verify(forged(100))).rejects.toThrow(UnauthorizedError);
    expect(keys.queries.byPrefix).toBe(102);
    await expect(bounded.verify(forged(0))).rejects.toThrow(UnauthorizedError);
    expect(keys.queries.byPrefix).toBe(103);
    await expect(bounded.verify(k.key)).resolves.toMatchObject({ prefix: k.prefix });
    expect(keys.queries.byPrefix).toBe(103);
  });

  it('a revoked key is refused after the TTL, or at once after forget(id)', async () => {
    const a = generateApiKey();
    const b = generateApiKey();
    const ra = keys.add(a.key, a.prefix);
    const rb = keys.add(b.key, b.prefix);
    await verifier.verify(a.key);
    await verifier.verify(b.key);
    ra.revokedAt = new Date();
    rb.revokedAt = new Date();
    await expect(verifier.verify(a.key)).resolves.toMatchObject({ id: ra.id });
    verifier.forget(rb.id);
    await expect(verifier.verify(b.key)).rejects.toThrow('unknown or revoked API key');
    now += 2001;
    await expect(verifier.verify(a.key)).rejects.toThrow('unknown or revoked API key');
  });

  it('a lookup in flight when the key is revoked and forgotten here does not bring it back for the TTL', async () => {
    const k = generateApiKey();
    const record = keys.add(k.key, k.prefix);
    // The lookup reads the row before the revoke commits, and answers after forget() ran.
    const { inFlight, release } = await verifyWithLookupHeld(k.key);
    record.revokedAt = new Date();
    verifier.forget(record.id);
    release();
    // The request in flight ends after the forget: it is looked up again too, and refused.
    await expect(inFlight).rejects.toThrow('unknown or revoked API key');
    await expect(verifier.verify(k.key)).rejects.toThrow('unknown or revoked API key');
    await expect(verifier.verify(k.key)).rejects.toThrow('unknown or revoked API key');
  });

  it('a lookup in flight during clear() answers its requests but caches nothing', async () => {
    const k = generateApiKey();
    keys.add(k.key, k.prefix);
    const { inFlight, release } = await verifyWithLookupHeld(k.key);
    verifier.clear();
    release();
    await expect(inFlight).resolves.toMatchObject({ prefix: k.prefix });
    expect(keys.queries.byPrefix).toBe(1);
    await expect(verifier.verify(k.key)).resolves.toMatchObject({ prefix: k.prefix });
    expect(keys.queries.byPrefix).toBe(2);
  });

  it('does not cache a database failure', async () => {
    const k = generateApiKey();
    keys.add(k.key, k.prefix);
    keys.down = true;
    await expect(verifier.verify(k.key)).rejects.toThrow(UnavailableError);
    keys.down = false;
    await expect(verifier.verify(k.key)).resolves.toMatchObject({ prefix: k.prefix });
  });

  it('answers 503-worthy errors for legacy keys while the prefixes never loaded, without hammering the database', async () => {
    keys.down = true;
    await expect(verifier.verify(legacyKey().key)).rejects.toThrow(UnavailableError);
    await expect(verifier.verify(legacyKey().key)).rejects.toThrow(UnavailableError);
    expect(keys.queries.legacyPrefixes).toBe(1);
    keys.down = false;
    now += 10_000;
    await expect(verifier.verify(legacyKey().key)).rejects.toThrow(UnauthorizedError);
    expect(keys.queries.legacyPrefixes).toBe(2);
  });
});

describe('ApiKeyVerifier and forget() racing a lookup', () => {
  /** Lookups that answer only when the test says so, with the rows it says. */
  class HeldApiKeys implements ApiKeyLookup {
    readonly held: Array<(rows: ApiKeyRecord[]) => void> = [];
    findActiveByPrefix(): Promise<ApiKeyRecord[]> {
      return new Promise((resolve) => this.held.push(resolve));
    }
    async listActiveLegacyPrefixes(): Promise<string[]> {
      return [];
    }
  }
  const settled = () => new Promise((r) => setImmediate(r));

  it('a key read before the revoke is not cached, nor handed out, when forget() ran during its lookup', async () => {
    const keys = new HeldApiKeys();
    let now = 0;
    const verifier = new ApiKeyVerifier(keys, { cacheTtlMs: 2000, now: () => now });
    const k = generateApiKey();
    const row = new InMemoryApiKeys().add(k.key, k.prefix);
    const begunBefore = verifier.verify(k.key);
    await settled();
    expect(keys.held).toHaveLength(1);
    verifier.forget(row.id);
    // A request after the forget, on the lookup begun before it.
    const joinedAfter = verifier.verify(k.key);
    await settled();
    // The lookup is slow: it answers, with the row as it was before the revoke, longer than a TTL after the forget.
    now += 2500;
    keys.held[0]([row]);
    await settled();
    // Looked up again, after the forget: revoked.
    expect(keys.held).toHaveLength(2);
    keys.held[1]([]);
    await expect(joinedAfter).rejects.toThrow('unknown or revoked API key');
    await expect(begunBefore).rejects.toThrow('unknown or revoked API key');
    await expect(verifier.verify(k.key)).rejects.toThrow('unknown or revoked API key');
    expect(keys.held).toHaveLength(2);
  });

  it.each([
    ['a revoke of another key during a lookup neither repeats it nor keeps it out of the cache', 'another-key-id'],
    ['a lookup that overlapped no forget() is cached as before', undefined],
  ])('%s', async (_title, forgotten) => {
    const keys = new HeldApiKeys();
    const verifier = new ApiKeyVerifier(keys, { cacheTtlMs: 2000, now: () => 0 });
    const k = generateApiKey();
    const row = new InMemoryApiKeys().add(k.key, k.prefix);
    const first = verifier.verify(k.key);
    await settled();
    if (forgotten !== undefined) verifier.forget(forgotten);
    keys.held[0]([row]);
    await expect(first).resolves.toMatchObject({ id: row.id });
    await expect(verifier.verify(k.key)).resolves.toMatchObject({ id: row.id });
    expect(keys.held).toHaveLength(1);
  });
});
