import { ConfigError, databaseLockShape, databaseLockUrl, databaseSettings, databaseShape, parseEnv } from './index';

const settings = (source: Record<string, string>) => databaseSettings(parseEnv(databaseShape, source));

describe('databaseShape / databaseSettings', () => {
  it('defaults: the local database, 5 s to connect, 30 s per statement, 35 s per query, keep-alive after 10 s, 60 s idle in a transaction', () => {
    expect(settings({})).toEqual({
      databaseUrl: 'postgresql://postgres@127.0.0.1:5432/fleetwatch',
      connectionTimeoutMs: 5000,
      statementTimeoutMs: 30_000,
      queryTimeoutMs: 35_000,
      keepAliveInitialDelayMs: 10_000,
      idleInTransactionTimeoutMs: 60_000,
    });
    expect(settings({ DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '5000' }).idleInTransactionTimeoutMs).toBe(5000);
  });

  it('the query timeout follows the statement timeout unless set', () => {
    expect(settings({ DATABASE_STATEMENT_TIMEOUT_MS: '2000' }).queryTimeoutMs).toBe(7000);
    expect(settings({ DATABASE_STATEMENT_TIMEOUT_MS: '2000', DATABASE_QUERY_TIMEOUT_MS: '2500' }).queryTimeoutMs).toBe(
      2500,
    );
  });

  it.each([
    [
      { DATABASE_STATEMENT_TIMEOUT_MS: '5000', DATABASE_QUERY_TIMEOUT_MS: '5000' },
      'must be above DATABASE_STATEMENT_TIMEOUT_MS',
    ],
    [{ DATABASE_QUERY_TIMEOUT_MS: '1000' }, 'must be above DATABASE_STATEMENT_TIMEOUT_MS (30000)'],
  ])('refuses a query timeout not above the statement timeout (%o)', (source, message) => {
    try {
      settings(source);
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems).toEqual([
        { variable: 'DATABASE_QUERY_TIMEOUT_MS', message: expect.stringContaining(message) },
      ]);
    }
  });

  it.each([
    ['DATABASE_CONNECT_TIMEOUT_MS', '50', 'must be ≥ 100'],
    ['DATABASE_STATEMENT_TIMEOUT_MS', 'soon', 'must be a number'],
    ['DATABASE_QUERY_TIMEOUT_MS', '1.5', 'whole number'],
    ['DATABASE_KEEPALIVE_DELAY_MS', '0', 'must be ≥ 1000'],
  ])('names %s=%s', (variable, value, message) => {
    try {
      settings({ [variable]: value });
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems).toEqual([{ variable, message: expect.stringContaining(message) }]);
    }
  });
});

describe('databaseLockShape / databaseLockUrl (advisory-lock sessions)', () => {
  const shape = { ...databaseShape, ...databaseLockShape };
  const lockUrl = (source: Record<string, string>) => databaseLockUrl(parseEnv(shape, source));

  it('is DATABASE_URL unless DATABASE_LOCK_URL is set (or empty)', () => {
    expect(lockUrl({})).toBe('postgresql://postgres@127.0.0.1:5432/fleetwatch');
    expect(lockUrl({ DATABASE_URL: 'postgresql://fw@pgbouncer:6432/fw' })).toBe('postgresql://fw@pgbouncer:6432/fw');
    expect(lockUrl({ DATABASE_URL: 'postgresql://fw@pgbouncer:6432/fw', DATABASE_LOCK_URL: ' ' })).toBe(
      'postgresql://fw@pgbouncer:6432/fw',
    );
    expect(
      lockUrl({ DATABASE_URL: 'postgresql://fw@pgbouncer:6432/fw', DATABASE_LOCK_URL: 'postgres://fw@db:5432/fw' }),
    ).toBe('postgres://fw@db:5432/fw');
  });

  it.each([
    ['mysql://db/fw', 'scheme'],
    ['not a url', 'not a valid URL'],
    ['postgresql://db:5432', 'names no database'],
  ])('refuses DATABASE_LOCK_URL=%s, naming it', (value, message) => {
    try {
      lockUrl({ DATABASE_LOCK_URL: value });
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems).toEqual([
        { variable: 'DATABASE_LOCK_URL', message: expect.stringContaining(message) },
      ]);
    }
  });
});
