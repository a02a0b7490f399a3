import { ConfigError, env, isCidr, maskUrl, parseEnv, parseServiceEnv } from './index';

describe('parseEnv', () => {
  const shape = { DATABASE_URL: env.databaseUrl(), AMQP_URL: env.amqpUrl(), REDIS_URL: env.redisUrl(), N: env.int(5, 1, 10), B: env.bool(false) };

  it('defaults to the local servers', () => {
    expect(parseEnv(shape, {})).toEqual({
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/fleetwatch',
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
      REDIS_URL: 'redis://127.0.0.1:6379',
      N: 5,
      B: false,
    });
  });

  it.each([
    ['AMQP_URL', 'not a url', 'not a valid URL'],
    ['AMQP_URL', 'http://rabbit:5672', 'scheme "http:"'],
    ['DATABASE_URL', 'mysql://x/y', 'scheme "mysql:"'],
    ['DATABASE_URL', 'postgresql://127.0.0.1:5432', 'names no database'],
    ['REDIS_URL', '::', 'not a valid URL'],
    ['N', 'eleven', 'must be a number'],
    ['N', '11', 'must be ≤ 10'],
    ['B', 'maybe', 'true or false'],
  ])('names %s=%s', (variable, value, message) => {
    try {
      parseEnv(shape, { [variable]: value });
      throw new Error('expected a ConfigError');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const err = e as ConfigError;
      expect(err.problems).toEqual([{ variable, message: expect.stringContaining(message) }]);
      expect(err.message).toContain(variable);
    }
  });

  it('reports every bad variable at once', () => {
    expect(() => parseEnv(shape, { AMQP_URL: 'x', DATABASE_URL: 'y' })).toThrow(/AMQP_URL[\s\S]*DATABASE_URL|DATABASE_URL[\s\S]*AMQP_URL/);
  });
});

describe('parseServiceEnv', () => {
  it('reads the service port variable and common values', () => {
    const { common } = parseServiceEnv('status-ingest', {}, { STATUS_INGEST_PORT: '4001', FLEETWATCH_SITE: 'eu' });
    expect(common).toMatchObject({ port: 4001, site: 'eu', role: 'standalone', location: 'local', service: 'status-ingest' });
  });
  it('rejects a bad role', () => {
    expect(() => parseServiceEnv('aggregator', {}, { FLEETWATCH_ROLE: 'king' })).toThrow(/FLEETWATCH_ROLE: must be standalone, leader or member/);
  });
});

describe('helpers', () => {
  it('masks passwords', () => expect(maskUrl('amqp://u:secret@h:5672/v')).toBe('amqp://u:***@h:5672/v'));
  it.each([['169.254.0.0/16', true], ['fe80::/10', true], ['10.0.0.1', false], ['300.1.1.1/8', false], ['1.2.3.4/33', false]])('isCidr(%s)=%s', (v, ok) =>
    expect(isCidr(v)).toBe(ok),
  );
});
