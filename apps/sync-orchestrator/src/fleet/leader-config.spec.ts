import { inspect } from 'node:util';
import { ConfigError } from '@fleetwatch/config';
import { leaderConfigSchema } from '@fleetwatch/contracts';
import { loadLeaderConfig } from './leader-config';

const CANARY = 'canary-SECRET-7f3a9c';
const member = (extra: Record<string, unknown> = {}) => ({ name: 'eu-1', url: 'https://eu.example:3000', ...extra });

describe('leaderConfigSchema', () => {
  const valid: [string, unknown][] = [
    ['an object with members', { members: [member()] }],
    ['a bare list', [member()]],
    ['no members', { members: [] }],
    ['token credentials', [member({ credentials: { type: 'token', tokenEnv: 'EU_TOKEN' } })]],
    ['basic credentials', [member({ credentials: { type: 'basic', username: 'leader', passwordEnv: 'EU_PW' } })]],
    [
      'tags, overrides, failover order',
      [member({ tags: ['eu'], propertyOverrides: { region: 'eu' }, failoverOrder: 1 })],
    ],
    ['two members with distinct orders', [member({ failoverOrder: 1 }), member({ name: 'us-1', failoverOrder: 2 })]],
  ];
  it.each(valid)('accepts %s', (_n, v) => expect(leaderConfigSchema.safeParse(v).success).toBe(true));

  const invalid: [string, unknown, string][] = [
    ['a secret inline', [member({ credentials: { type: 'token', token: 'x', tokenEnv: 'A' } })], '"token"'],
    ['an env name with a dash', [member({ credentials: { type: 'token', tokenEnv: 'EU-TOKEN' } })], 'tokenEnv'],
    ['an unknown credential type', [member({ credentials: { type: 'cert', tokenEnv: 'A' } })], 'type'],
    ['credentials in the URL', [member({ url: 'https://u:p@eu.example' })], 'url'],
    ['a non-http URL', [member({ url: 'ftp://eu.example' })], 'url'],
    ['an upper-case name', [member({ name: 'EU' })], 'name'],
    ['a duplicate name', [member(), member()], 'duplicate member name'],
    ['a duplicate failover order', [member({ failoverOrder: 1 }), member({ name: 'b', failoverOrder: 1 })], 'also'],
    ['an unknown field', [member({ colour: 'red' })], 'colour'],
    [
      'a username with a colon',
      [member({ credentials: { type: 'basic', username: 'a:b', passwordEnv: 'P' } })],
      'username',
    ],
  ];
  it.each(invalid)('refuses %s', (_n, v, needle) => {
    const r = leaderConfigSchema.safeParse(v);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain(needle);
  });

  it('drops a trailing slash of the URL', () =>
    expect(leaderConfigSchema.parse([member({ url: 'http://h:3000/' })]).members[0].url).toBe('http://h:3000'));
});

describe('loadLeaderConfig', () => {
  const env = { EU_TOKEN: CANARY, EU_PW: CANARY };

  it('is empty when unset', () => expect(loadLeaderConfig(undefined, env)).toEqual([]));

  it('reads a file when the value is a path', () => {
    const members = loadLeaderConfig('/etc/fw/leader.json', env, (p) =>
      p === '/etc/fw/leader.json' ? JSON.stringify([member()]) : '',
    );
    expect(members.map((m) => m.name)).toEqual(['eu-1']);
  });

  it('reads a file that begins with a byte order mark (as some editors save UTF-8)', () => {
    const members = loadLeaderConfig('/etc/fw/leader.json', env, () => `\uFEFF${JSON.stringify([member()])}\n`);
    expect(members.map((m) => m.name)).toEqual(['eu-1']);
  });

  it('a file that is not JSON: the message names the file', () => {
    expect(() => loadLeaderConfig('/etc/fw/leader.json', env, () => '{"members": [')).toThrow(
      /FLEETWATCH_LEADER_CONFIG: file "\/etc\/fw\/leader\.json" is not valid JSON: /,
    );
  });

  const headers: [string, Record<string, unknown> | undefined, string | undefined][] = [
    ['token', { type: 'token', tokenEnv: 'EU_TOKEN' }, `Bearer ${CANARY}`],
    [
      'basic',
      { type: 'basic', username: 'leader', passwordEnv: 'EU_PW' },
      `Basic ${Buffer.from(`leader:${CANARY}`).toString('base64')}`,
    ],
    ['none', undefined, undefined],
  ];
  it.each(headers)('%s credentials build the header from the named variable', (_n, credentials, header) => {
    const [m] = loadLeaderConfig(JSON.stringify([member(credentials ? { credentials } : {})]), env);
    expect(m.authorization()).toBe(header);
  });

  it.each([
    ['token', { type: 'token', tokenEnv: 'EU_TOKEN' }, `Bearer ${CANARY}`],
    [
      'basic',
      { type: 'basic', username: 'leader', passwordEnv: 'EU_TOKEN' },
      `Basic ${Buffer.from(`leader:${CANARY}`).toString('base64')}`,
    ],
  ])('%s: the line break a secret file leaves at the end is not part of the secret', (_n, credentials, header) => {
    for (const end of ['\n', '\r\n']) {
      const [m] = loadLeaderConfig(JSON.stringify([member({ credentials })]), { EU_TOKEN: CANARY + end });
      expect(m.authorization()).toBe(header);
    }
  });

  it('never shows the secret when the member is logged, stringified or inspected', () => {
    const [m] = loadLeaderConfig(
      JSON.stringify([member({ credentials: { type: 'token', tokenEnv: 'EU_TOKEN' } })]),
      env,
    );
    expect(JSON.stringify(m)).not.toContain(CANARY);
    expect(JSON.stringify(m)).toContain('"auth":"token"');
    expect(inspect(m, { depth: 10, showHidden: true })).not.toContain(CANARY);
  });

  const failures: [string, string, Record<string, string | undefined>, string][] = [
    ['bad JSON', '{"members": [', {}, 'not valid JSON'],
    ['an unreadable file', 'missing.json', {}, 'neither JSON nor a readable file'],
    ['a contract issue with its path', JSON.stringify([member({ url: 'nope' })]), {}, '0.url'],
    [
      'a missing secret variable, by name',
      JSON.stringify([member({ credentials: { type: 'token', tokenEnv: 'NOPE' } })]),
      {},
      'variable NOPE is not set',
    ],
    ...['has space', 'two\nlines', 'tab\there', 'nön-ascii'].map(
      (secret): [string, string, Record<string, string>, string] => [
        `a token no header can carry (${JSON.stringify(secret)}), by name, not value`,
        JSON.stringify([member({ credentials: { type: 'token', tokenEnv: 'EU_TOKEN' } })]),
        { EU_TOKEN: secret },
        'variable EU_TOKEN holds a character a bearer token cannot carry',
      ],
    ),
    // Values fleet_sites (text[], jsonb) refuses: the boot names them, not every poll tick's failed write.
    ['a NUL in a tag', JSON.stringify([member({ tags: ['eu\u0000'] })]), {}, 'members.0.tags.0: contains a NUL'],
    [
      'a lone surrogate in an override value',
      '[{"name":"eu-1","url":"https://eu.example:3000","propertyOverrides":{"region":{"v":"\\ud800"}}}]',
      {},
      'members.0.propertyOverrides.region.v: contains a lone surrogate',
    ],
    [
      'a NUL in an override key',
      JSON.stringify([member({ propertyOverrides: { 'a\u0000': 1 } })]),
      {},
      'members.0.propertyOverrides.a\u0000: key contains a NUL',
    ],
    [
      'a number JSON cannot hold',
      '[{"name":"eu-1","url":"https://eu.example:3000","propertyOverrides":{"n":1e400}}]',
      {},
      'members.0.propertyOverrides.n: number out of range',
    ],
  ];
  it.each(failures)('refuses %s', (_n, raw, e, needle) => {
    const read = () => {
      throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
    };
    let error: unknown;
    try {
      loadLeaderConfig(raw, e, read);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(needle);
    expect((error as Error).message).toContain('FLEETWATCH_LEADER_CONFIG');
  });
});
