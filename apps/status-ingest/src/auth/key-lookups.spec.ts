import { loadIngestConfig } from '../config';

// INGEST_KEY_LOOKUP_*: the bounds of KeyLookups (BoundedLookups, @fleetwatch/persistence).

describe('config', () => {
  const base = {
    DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/fleetwatch',
    AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
    REDIS_URL: 'redis://127.0.0.1:6379',
  };

  it('defaults to a 2 s wait and 64 lookups at once', () => {
    const config = loadIngestConfig(base);
    expect(config.keyLookupTimeoutMs).toBe(2000);
    expect(config.keyLookupMaxConcurrent).toBe(64);
  });

  it.each([
    ['INGEST_KEY_LOOKUP_TIMEOUT_MS', '50'],
    ['INGEST_KEY_LOOKUP_TIMEOUT_MS', 'soon'],
    ['INGEST_KEY_LOOKUP_MAX_CONCURRENT', '0'],
    ['INGEST_KEY_LOOKUP_MAX_CONCURRENT', '1.5'],
  ])('refuses %s=%s, naming it', (name, value) => {
    expect(() => loadIngestConfig({ ...base, [name]: value })).toThrow(name);
  });
});
