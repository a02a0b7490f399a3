import { BasicVerdictCache, isMemberRead, MalformedBasicError, parseBasicAuthorization } from './basic-auth';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('parseBasicAuthorization', () => {
  it.each([
    ['none', undefined, null],
    ['bearer', 'Bearer fws_1_abc', null],
    ['plain', `Basic ${b64('leader:s3cret')}`, { username: 'leader', password: 's3cret' }],
    ['lower-case scheme', `basic ${b64('leader:s3cret')}`, { username: 'leader', password: 's3cret' }],
    ['colon in password', `Basic ${b64('leader:a:b:c')}`, { username: 'leader', password: 'a:b:c' }],
    ['utf-8', `Basic ${b64('jörg:pässwört')}`, { username: 'jörg', password: 'pässwört' }],
  ])('%s', (_name, header, expected) => {
    expect(parseBasicAuthorization(header)).toEqual(expected);
  });

  it.each([
    ['empty', 'Basic '],
    ['not base64', 'Basic !!!'],
    ['no colon', `Basic ${b64('leader')}`],
    ['empty username', `Basic ${b64(':pw')}`],
    ['empty password', `Basic ${b64('leader:')}`],
    ['too long', `Basic ${'A'.repeat(5000)}`],
    ['a NUL in the username', `Basic ${b64('a\u0000b:pw-pw-pw-pw')}`],
  ])('refuses %s without echoing it', (_name, header) => {
    expect(() => parseBasicAuthorization(header)).toThrow(MalformedBasicError);
    try {
      parseBasicAuthorization(header);
    } catch (err) {
      expect((err as Error).message).not.toContain(header.slice(6, 20) || '\u0000');
    }
  });
});

describe('isMemberRead', () => {
  it.each([
    ['GET', '/api/v1/status/report', true],
    ['GET', '/api/v1/metrics/flow', true],
    ['GET', '/api/v1/system/snapshot/current', true],
    ['HEAD', '/api/v1/status/report', false],
    ['POST', '/api/v1/status/report', false],
    ['PUT', '/api/v1/system/snapshot/current', false],
    ['GET', '/api/v1/users', false],
    ['GET', '/api/v1/status/report/', false],
    ['GET', '/api/v1/leader/members', false],
    ['GET', undefined, false],
  ])('%s %s → %s', (method, route, expected) => {
    expect(isMemberRead(method, route)).toBe(expected);
  });
});

describe('BasicVerdictCache', () => {
  it('remembers by username and password together and forgets on delete', () => {
    const cache = new BasicVerdictCache();
    cache.set({ username: 'a', password: 'p' }, { userId: 'u1', tokenVersion: 3 });
    expect(cache.get({ username: 'a', password: 'p' })).toEqual({ userId: 'u1', tokenVersion: 3 });
    expect(cache.get({ username: 'a', password: 'q' })).toBeUndefined();
    expect(cache.get({ username: 'b', password: 'p' })).toBeUndefined();
    // No ambiguity between where the username ends and the password begins.
    expect(cache.get({ username: 'a\u0000', password: 'p' })).toBeUndefined();
    cache.delete({ username: 'a', password: 'p' });
    expect(cache.get({ username: 'a', password: 'p' })).toBeUndefined();
  });

  it('is bounded and expires', () => {
    let now = 1_000_000;
    const spy = jest.spyOn(performance, 'now').mockImplementation(() => now);
    try {
      const cache = new BasicVerdictCache({ max: 2, ttlMs: 1000 });
      for (const u of ['a', 'b', 'c']) cache.set({ username: u, password: 'p' }, { userId: u, tokenVersion: 0 });
      expect(cache.size).toBe(2);
      expect(cache.get({ username: 'a', password: 'p' })).toBeUndefined();
      now += 2000;
      expect(cache.get({ username: 'c', password: 'p' })).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
  });
});
