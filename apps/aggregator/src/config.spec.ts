import { ConfigError } from '@fleetwatch/config';
import { DEFAULT_DENY_NETWORKS } from '@fleetwatch/domain';
import { loadAggregatorConfig } from './config';

describe('loadAggregatorConfig', () => {
  it('has working defaults', () => {
    const c = loadAggregatorConfig({});
    expect(c).toMatchObject({
      port: 3003,
      prefetch: 1000,
      batch: { maxSize: 500, maxWaitMs: 25, leading: true },
      downQuorumPct: 100,
      staleAfterSeconds: 300,
      redisPrefix: '',
      retention: { rawDays: 7, rollupDays: 90 },
      alertDelivery: {
        encryptionKey: undefined,
        previousEncryptionKeys: [],
        externalURL: 'http://localhost:3000',
        timeoutMs: 10_000,
        maxAttempts: 50,
        subscriptionMaxAttempts: 10,
        denyNetworks: [...DEFAULT_DENY_NETWORKS],
      },
    });
    // The notifications' target policy is the checks' own default: link-local and cloud metadata denied.
    expect(c.alertDelivery.denyNetworks).toContain('169.254.0.0/16');
  });
  it('carries the Postgres connection limits (DATABASE_*) for its pool', () => {
    expect(loadAggregatorConfig({}).database).toEqual({
      databaseUrl: 'postgresql://postgres@127.0.0.1:5432/fleetwatch',
      connectionTimeoutMs: 5000,
      statementTimeoutMs: 30_000,
      queryTimeoutMs: 35_000,
      keepAliveInitialDelayMs: 10_000,
      idleInTransactionTimeoutMs: 60_000,
    });
    const c = loadAggregatorConfig({ DATABASE_STATEMENT_TIMEOUT_MS: '2000', DATABASE_QUERY_TIMEOUT_MS: '3000' });
    expect(c.database).toMatchObject({ statementTimeoutMs: 2000, queryTimeoutMs: 3000 });
    expect(() => loadAggregatorConfig({ DATABASE_QUERY_TIMEOUT_MS: '30000' })).toThrow(ConfigError);
  });
  it('replaces the notifications deny list with FLEETWATCH_CHECK_DENY_NETWORKS', () => {
    const c = loadAggregatorConfig({ FLEETWATCH_CHECK_DENY_NETWORKS: ' 127.0.0.2/32, fd00::/8 ' });
    expect(c.alertDelivery.denyNetworks).toEqual(['127.0.0.2/32', 'fd00::/8']);
  });
  it('reads the channel-secret keys and the external URL', () => {
    const key = 'a'.repeat(64);
    const c = loadAggregatorConfig({
      FLEETWATCH_ENCRYPTION_KEY: key,
      FLEETWATCH_ENCRYPTION_KEY_PREVIOUS: ` ${'b'.repeat(64)}, ${'c'.repeat(64)}`,
      FLEETWATCH_EXTERNAL_URL: 'https://fleet.example.com/',
    });
    expect(c.alertDelivery).toMatchObject({
      encryptionKey: key,
      previousEncryptionKeys: ['b'.repeat(64), 'c'.repeat(64)],
      externalURL: 'https://fleet.example.com',
    });
  });
  it('takes a rollup window as long as the raw one', () => {
    const env = { HISTORY_RAW_RETENTION_DAYS: '30', HISTORY_ROLLUP_RETENTION_DAYS: '30' };
    expect(loadAggregatorConfig(env).retention).toEqual({ rawDays: 30, rollupDays: 30 });
  });
  it.each([
    [{ AGGREGATOR_BATCH_SIZE: '600', AGGREGATOR_PREFETCH: '500' }, 'AGGREGATOR_BATCH_SIZE'],
    [{ AGGREGATOR_PREFETCH: '5000' }, 'AGGREGATOR_PREFETCH'],
    [{ CONSENSUS_DOWN_QUORUM_PCT: '0' }, 'CONSENSUS_DOWN_QUORUM_PCT'],
    [{ FLEETWATCH_REDIS_PREFIX: 'a b' }, 'FLEETWATCH_REDIS_PREFIX'],
    [{ FLEETWATCH_ENCRYPTION_KEY: 'short' }, 'FLEETWATCH_ENCRYPTION_KEY'],
    [{ FLEETWATCH_ENCRYPTION_KEY_PREVIOUS: `${'a'.repeat(64)},nope` }, 'FLEETWATCH_ENCRYPTION_KEY_PREVIOUS'],
    [{ FLEETWATCH_EXTERNAL_URL: 'ftp://x' }, 'FLEETWATCH_EXTERNAL_URL'],
    [{ ALERT_DELIVERY_MAX_ATTEMPTS: '0' }, 'ALERT_DELIVERY_MAX_ATTEMPTS'],
    [{ FLEETWATCH_CHECK_DENY_NETWORKS: '10.0.0.0/8,not-a-network' }, 'FLEETWATCH_CHECK_DENY_NETWORKS'],
    [{ HISTORY_RAW_RETENTION_DAYS: '30', HISTORY_ROLLUP_RETENTION_DAYS: '14' }, 'HISTORY_ROLLUP_RETENTION_DAYS'],
    [{ HISTORY_ROLLUP_RETENTION_DAYS: '6' }, 'must not be less than HISTORY_RAW_RETENTION_DAYS (7)'],
  ])('refuses %j naming %s', (env, variable) => {
    expect(() => loadAggregatorConfig(env)).toThrow(ConfigError);
    expect(() => loadAggregatorConfig(env)).toThrow(variable);
  });
});
