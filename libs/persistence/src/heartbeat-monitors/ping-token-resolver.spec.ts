import { randomBytes } from 'node:crypto';
import type { HeartbeatMonitorRecord } from './heartbeat-monitors.repository';
import { generatePingToken, hashPingToken, PING_TOKEN_PATTERN, pingTokenShapeOf } from './ping-token';
import { PingTokenResolver, type PingTokenLookup } from './ping-token-resolver';

/** HeartbeatMonitorsRepository's read side over a map, counting what would be queries. */
class InMemoryMonitors implements PingTokenLookup {
  readonly byHash = new Map<string, HeartbeatMonitorRecord>();
  queries = { byHash: 0, hashes: 0 };

  async findByTokenHash(tokenHash: string): Promise<HeartbeatMonitorRecord | null> {
    this.queries.byHash++;
    return this.byHash.get(tokenHash) ?? null;
  }

  async listTokenHashes(): Promise<string[]> {
    this.queries.hashes++;
    return [...this.byHash.keys()];
  }

  add(token: string): HeartbeatMonitorRecord {
    const record: HeartbeatMonitorRecord = {
      id: `m-${this.byHash.size}`,
      targetId: `check:m-${this.byHash.size}`,
      name: 'backup',
      periodSeconds: 60,
      graceSeconds: 30,
      maxRuntimeSeconds: null,
      lastPingAt: null,
      lastStartAt: null,
      createdAt: new Date(),
    };
    this.byHash.set(hashPingToken(token), record);
    return record;
  }
}

/** A token as issued before checksums: 32 random bytes, base64url. */
const legacyToken = () => randomBytes(32).toString('base64url');

describe('ping tokens', () => {
  it('are checksummed, URL-safe and told apart from legacy ones by shape', () => {
    const t = generatePingToken();
    expect(t).toMatch(/^fwp_[0-9A-Za-z]{46}$/);
    expect(t).toMatch(PING_TOKEN_PATTERN);
    expect(pingTokenShapeOf(t)).toBe('checksummed');
    expect(pingTokenShapeOf(t.slice(0, -1) + (t.endsWith('A') ? 'B' : 'A'))).toBe('bad-checksum');
    expect(pingTokenShapeOf(legacyToken())).toBe('legacy');
    expect(pingTokenShapeOf('short')).toBe('malformed');
    expect(pingTokenShapeOf('%00bad-token-xxxxxxxxxxx')).toBe('malformed');
  });
});

describe('PingTokenResolver', () => {
  let monitors: InMemoryMonitors;
  let now: number;
  let resolver: PingTokenResolver;
  beforeEach(() => {
    monitors = new InMemoryMonitors();
    now = 1_000_000; // lru-cache reads a start time of 0 as "never expires"
    resolver = new PingTokenResolver(monitors, {
      cacheTtlMs: 5000,
      legacyMaxAgeMs: 60_000,
      legacyMissRefreshMs: 10_000,
      now: () => now,
    });
  });

  it('finds the monitor of a new token and caches it', async () => {
    const token = generatePingToken();
    const m = monitors.add(token);
    expect(await resolver.resolve(token)).toEqual(m);
    expect(await resolver.resolve(token)).toEqual(m);
    expect(monitors.queries).toEqual({ byHash: 1, hashes: 0 });
  });

  it('refuses random and mistyped tokens without a query', async () => {
    const token = generatePingToken();
    monitors.add(token);
    for (let i = 0; i < 100; i++)
      expect(await resolver.resolve(`fwp_${randomBytes(40).toString('hex').slice(0, 46)}`)).toBeNull();
    expect(await resolver.resolve(token.slice(0, 10) + (token[10] === 'x' ? 'y' : 'x') + token.slice(11))).toBeNull();
    expect(await resolver.resolve('../etc/passwd')).toBeNull();
    expect(monitors.queries).toEqual({ byHash: 0, hashes: 0 });
  });

  it('keeps legacy tokens working; random legacy-shaped ones cost at most one reload per interval', async () => {
    const old = legacyToken();
    const m = monitors.add(old);
    expect(await resolver.resolve(old)).toEqual(m);
    expect(monitors.queries).toEqual({ byHash: 1, hashes: 1 });
    for (let i = 0; i < 300; i++) expect(await resolver.resolve(legacyToken())).toBeNull();
    expect(monitors.queries).toEqual({ byHash: 1, hashes: 1 });
    now += 10_000;
    for (let i = 0; i < 300; i++) expect(await resolver.resolve(legacyToken())).toBeNull();
    expect(monitors.queries).toEqual({ byHash: 1, hashes: 2 });
  });

  it('remembers an unknown token with a valid checksum for the TTL; a deleted monitor stops within it', async () => {
    const stranger = generatePingToken();
    expect(await Promise.all([resolver.resolve(stranger), resolver.resolve(stranger)])).toEqual([null, null]);
    expect(monitors.queries.byHash).toBe(1);
    const token = generatePingToken();
    monitors.add(token);
    expect(await resolver.resolve(token)).not.toBeNull();
    monitors.byHash.delete(hashPingToken(token));
    expect(await resolver.resolve(token)).not.toBeNull();
    now += 5001;
    expect(await resolver.resolve(token)).toBeNull();
  });
});

describe('PingTokenResolver.clear', () => {
  it('a lookup in flight when the cache is cleared still answers (it failed with "deleted": a 500)', async () => {
    const monitors = new InMemoryMonitors();
    const token = generatePingToken();
    const record = monitors.add(token);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const slow: PingTokenLookup = {
      findByTokenHash: async (h) => {
        await gate;
        return monitors.findByTokenHash(h);
      },
      listTokenHashes: () => monitors.listTokenHashes(),
    };
    const resolver = new PingTokenResolver(slow, { cacheTtlMs: 5000 });
    const inFlight = resolver.resolve(token);
    await new Promise((r) => setImmediate(r));
    resolver.clear();
    release();
    await expect(inFlight).resolves.toEqual(record);
    // And the next lookup reads again (the cleared cache holds nothing).
    monitors.byHash.clear();
    await expect(resolver.resolve(token)).resolves.toBeNull();
  });
});
