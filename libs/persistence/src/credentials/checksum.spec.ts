import { checksumOf, hasValidChecksum, withChecksum } from './checksum';

describe('checksum', () => {
  it.each([
    ['', '000000'],
    ['abc', '0yKviM'], // CRC32("abc") = 0x352441C2
  ])('of %j is the 6-character base62 CRC32', (body, expected) => {
    expect(checksumOf(body)).toBe(expected);
  });

  it('round-trips and fails on any change', () => {
    const c = withChecksum('fwp_hello');
    expect(hasValidChecksum(c)).toBe(true);
    expect(hasValidChecksum(`x${c.slice(1)}`)).toBe(false);
    expect(hasValidChecksum(c.slice(0, -1) + (c.endsWith('0') ? '1' : '0'))).toBe(false);
    expect(hasValidChecksum('short')).toBe(false);
  });
});
