import { ConfigError, env, maskUrl, parseEnv, parseServiceEnv } from './index';

describe('parseEnv', () => {
  const shape = {
    DATABASE_URL: env.databaseUrl(),
    AMQP_URL: env.amqpUrl(),
    REDIS_URL: env.redisUrl(),
    N: env.int(5, 1, 10),
    B: env.bool(false),
  };

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
    expect(() => parseEnv(shape, { AMQP_URL: 'x', DATABASE_URL: 'y' })).toThrow(
      /AMQP_URL[\s\S]*DATABASE_URL|DATABASE_URL[\s\S]*AMQP_URL/,
    );
  });
});

describe('parseServiceEnv', () => {
  it('reads the service port variable and common values', () => {
    const { common } = parseServiceEnv('status-ingest', {}, { STATUS_INGEST_PORT: '4001', FLEETWATCH_SITE: 'eu' });
    expect(common).toMatchObject({
      port: 4001,
      site: 'eu',
      role: 'standalone',
      location: 'local',
      service: 'status-ingest',
    });
  });
  it('refuses FLEETWATCH_LOCATION "all": /metrics keeps it for the consensus series', () => {
    expect(() => parseServiceEnv('collector', {}, { FLEETWATCH_LOCATION: 'all' })).toThrow(
      /FLEETWATCH_LOCATION: "all" is reserved/,
    );
    expect(parseServiceEnv('collector', {}, { FLEETWATCH_LOCATION: 'All' }).common.location).toBe('All');
  });
  it('rejects a bad role', () => {
    expect(() => parseServiceEnv('aggregator', {}, { FLEETWATCH_ROLE: 'king' })).toThrow(
      /FLEETWATCH_ROLE: must be standalone, leader or member/,
    );
  });
});

describe('helpers', () => {
  it('masks passwords', () => expect(maskUrl('amqp://u:secret@h:5672/v')).toBe('amqp://u:***@h:5672/v'));
  it.each<[string, string[] | RegExp]>([
    ['169.254.0.0/16,fe80::/10', ['169.254.0.0/16', 'fe80::/10']],
    [' 10.0.0.1 , ', ['10.0.0.1']],
    ['300.1.1.1/8', /"300.1.1.1\/8" is not a CIDR/],
    ['1.2.3.4/33', /"1.2.3.4\/33" is not a CIDR/],
    // Naming nothing is not "deny nothing": the default stays (a stray space switched the protection off).
    [' ', ['169.254.0.0/16']],
    [' , ,', ['169.254.0.0/16']],
    ['none', []],
    [' None ', []],
  ])('cidrList(%s)', (value, expected) => {
    const parse = () => parseEnv({ NETS: env.cidrList('169.254.0.0/16') }, { NETS: value }).NETS;
    if (expected instanceof RegExp) expect(parse).toThrow(expected);
    else expect(parse()).toEqual(expected);
  });
});

describe('trustedProxies', () => {
  const parse = (value: string | undefined) =>
    parseEnv({ X_TRUST_PROXY: env.trustedProxies() }, { X_TRUST_PROXY: value }).X_TRUST_PROXY;

  it.each<[string | undefined, string[]]>([
    [undefined, []],
    ['', []],
    ['false', []],
    ['FALSE', []],
    ['0', []],
    ['127.0.0.1/32', ['127.0.0.1/32']],
    ['10.0.0.0/8, ::1 ,fd00::/8', ['10.0.0.0/8', '::1', 'fd00::/8']],
  ])('%s → %j', (value, expected) => expect(parse(value)).toEqual(expected));

  it.each(['true', 'TRUE', '1', 'yes'])('refuses %s, saying to list the proxies', (value) => {
    expect(() => parse(value)).toThrow(ConfigError);
    expect(() => parse(value)).toThrow(
      /X_TRUST_PROXY: "\w+" would believe any client's X-Forwarded-For: list the proxies' CIDRs/,
    );
  });

  it('names a bad entry', () =>
    expect(() => parse('10.0.0.0/8,proxy.local')).toThrow(/X_TRUST_PROXY: "proxy.local" is not a proxy CIDR/));

  it.each(['0.0.0.0/0', '10.0.0.0/8, ::/0', '::ffff:0:0/96', '1.2.3.4/0'])(
    'refuses %s: a /0 believes any client as `true` would',
    (value) => {
      expect(() => parse(value)).toThrow(ConfigError);
      expect(() => parse(value)).toThrow(/X_TRUST_PROXY: "[^"]+\/\d+" would believe any client's X-Forwarded-For/);
    },
  );

  it('keeps a short prefix that is not /0', () => expect(parse('0.0.0.0/1')).toEqual(['0.0.0.0/1']));

  it.each([
    ['0.0.0.0/1,128.0.0.0/1', 4],
    ['10.0.0.0/8, 128.0.0.0/1, 0.0.0.0/2, 64.0.0.0/2', 4],
    ['::ffff:0:0/97, ::ffff:128.0.0.0/97', 4],
    ['::/1, 8000::/1', 6],
  ])('refuses %s: entries that together cover every IPv%d address believe any client', (value, version) => {
    expect(() => parse(value)).toThrow(ConfigError);
    expect(() => parse(value)).toThrow(
      new RegExp(`X_TRUST_PROXY: .*together cover every IPv${version} address, so would believe any client's`),
    );
  });

  it('keeps entries that leave addresses out', () =>
    expect(parse('0.0.0.0/1,128.0.0.0/2,::/1')).toEqual(['0.0.0.0/1', '128.0.0.0/2', '::/1']));
});
