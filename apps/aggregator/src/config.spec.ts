import { ConfigError } from '@fleetwatch/config';
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
    });
  });
  it.each([
    [{ AGGREGATOR_BATCH_SIZE: '600', AGGREGATOR_PREFETCH: '500' }, 'AGGREGATOR_BATCH_SIZE'],
    [{ AGGREGATOR_PREFETCH: '5000' }, 'AGGREGATOR_PREFETCH'],
    [{ CONSENSUS_DOWN_QUORUM_PCT: '0' }, 'CONSENSUS_DOWN_QUORUM_PCT'],
    [{ FLEETWATCH_REDIS_PREFIX: 'a b' }, 'FLEETWATCH_REDIS_PREFIX'],
  ])('refuses %j naming %s', (env, variable) => {
    expect(() => loadAggregatorConfig(env)).toThrow(ConfigError);
    expect(() => loadAggregatorConfig(env)).toThrow(variable);
  });
});
