import { loadSyncConfig } from './config';

const base = {
  DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/fw',
  REDIS_URL: 'redis://127.0.0.1:6379',
  AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
};

describe('sync-orchestrator config: SYNC_REDIS_TIMEOUT_MS', () => {
  it('5 s unless set', () => {
    expect(loadSyncConfig(base).redisTimeoutMs).toBe(5_000);
    expect(loadSyncConfig({ ...base, SYNC_REDIS_TIMEOUT_MS: '1500' }).redisTimeoutMs).toBe(1_500);
  });

  it.each(['999', '60001', 'soon', '0'])('refuses %j, naming the variable', (value) => {
    expect(() => loadSyncConfig({ ...base, SYNC_REDIS_TIMEOUT_MS: value })).toThrow(/SYNC_REDIS_TIMEOUT_MS/);
  });
});
