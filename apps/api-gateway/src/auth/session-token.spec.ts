import { hashSessionToken, newSessionToken, sessionTokenVersion } from './session-token';

describe('session tokens', () => {
  it('carry the token version and hash to what is stored', () => {
    const { token, tokenHash } = newSessionToken(7);
    expect(token).toMatch(/^fws_7_[A-Za-z0-9_-]{43}$/);
    expect(sessionTokenVersion(token)).toBe(7);
    expect(tokenHash).toBe(hashSessionToken(token));
    expect(tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(newSessionToken(7).token).not.toBe(token);
  });

  it.each([
    ['', null],
    ['fws_', null],
    ['fws_x_' + 'a'.repeat(43), null],
    ['fws_1_' + 'a'.repeat(42), null],
    ['fwk_abcdefgh_' + 'a'.repeat(43), null],
    ['fws_12_' + 'a'.repeat(43), 12],
  ])('sessionTokenVersion(%j) → %j', (candidate, expected) => {
    expect(sessionTokenVersion(candidate)).toBe(expected);
  });
});
