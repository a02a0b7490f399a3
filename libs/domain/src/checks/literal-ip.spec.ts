import fc from 'fast-check';
import { parseIp } from '@fleetwatch/contracts';
import { embeddedIpv4, formatIp, literalIpOf } from './literal-ip';

const text = (host: string): string | null => {
  const ip = literalIpOf(host);
  return ip ? formatIp(ip) : null;
};

describe('literalIpOf', () => {
  it.each<[string, string | null]>([
    ['169.254.169.254', '169.254.169.254'],
    ['2852039166', '169.254.169.254'],
    ['0xA9FEA9FE', '169.254.169.254'],
    ['0xa9fea9fe', '169.254.169.254'],
    ['0xa9.0xfe.0xa9.0xfe', '169.254.169.254'],
    ['0251.0376.0251.0376', '169.254.169.254'],
    ['0251.254.169.254', '169.254.169.254'],
    ['025177524776', '169.254.169.254'],
    ['169.254.43518', '169.254.169.254'],
    ['169.16689662', '169.254.169.254'],
    ['0xa9.0xfea9fe', '169.254.169.254'],
    ['169.254.169.254.', '169.254.169.254'],
    ['00000251.0x00fe.169.254', '169.254.169.254'],
    ['127.1', '127.0.0.1'],
    ['10.1', '10.0.0.1'],
    ['0', '0.0.0.0'],
    ['0x', '0.0.0.0'],
    ['0x.0x.0x.0x', '0.0.0.0'],
    ['4294967295', '255.255.255.255'],
    ['::ffff:169.254.169.254', '169.254.169.254'],
    ['::ffff:a9fe:a9fe', '169.254.169.254'],
    ['::FFFF:A9FE:A9FE', '169.254.169.254'],
    ['[::ffff:169.254.169.254]', '169.254.169.254'],
    ['0:0:0:0:0:ffff:a9fe:a9fe', '169.254.169.254'],
    ['::169.254.169.254', '::a9fe:a9fe'],
    ['fe80::1%eth0', 'fe80::1'],
    ['[fe80::1%25eth0]', 'fe80::1'],
    ['FD00:EC2::254', 'fd00:ec2::254'],
    ['[::1]', '::1'],
    ['::', '::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    // Not addresses: names, out-of-range parts, bad digits, too many parts.
    ['example.com', null],
    ['metadata.google.internal', null],
    ['localhost', null],
    ['4294967296', null],
    ['256.1.1.1', null],
    ['1.2.3.256', null],
    ['1.2.65536', null],
    ['1.16777216', null],
    ['08.1.1.1', null],
    ['09', null],
    ['0x1g', null],
    ['1.2.3.4.5', null],
    ['1..2.3', null],
    ['1.2.3.4..', null],
    ['.1.2.3', null],
    ['', null],
    ['[169.254.169.254]', null],
    ['[::1', null],
    ['1.2.3.example', null],
    ['::ffff:0251.254.169.254', null],
    ['12345678901234567890123', null],
  ])('%s → %s', (host, expected) => expect(text(host)).toBe(expected));

  const quad = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
  /** One number in the base inet_aton reads from its prefix, with optional extra leading zeros. */
  const encode = (n: number, base: 'dec' | 'hex' | 'HEX' | 'oct', pad: number): string => {
    if (base === 'dec') return String(n);
    if (base === 'oct') return '0' + '0'.repeat(pad) + n.toString(8);
    const digits = '0'.repeat(pad) + n.toString(16);
    return base === 'hex' ? `0x${digits}` : `0X${digits.toUpperCase()}`;
  };
  const base = fc.constantFrom<'dec' | 'hex' | 'HEX' | 'oct'>('dec', 'hex', 'HEX', 'oct');
  const pad = fc.nat(3);

  it('every encoding of an IPv4 address reads as that address', () => {
    fc.assert(
      fc.property(
        quad,
        fc.array(fc.tuple(base, pad), { minLength: 4, maxLength: 4 }),
        fc.constantFrom(1, 2, 3, 4),
        fc.boolean(),
        ([a, b, c, d], enc, parts, trailingDot) => {
          const expected = `${a}.${b}.${c}.${d}`;
          const whole = ((a * 256 + b) * 256 + c) * 256 + d;
          const values =
            parts === 4
              ? [a, b, c, d]
              : parts === 3
                ? [a, b, c * 256 + d]
                : parts === 2
                  ? [a, whole % 2 ** 24]
                  : [whole];
          const host = values.map((v, i) => encode(v, enc[i][0], enc[i][1])).join('.') + (trailingDot ? '.' : '');
          expect(text(host)).toBe(expected);
          expect(text(`::ffff:${expected}`)).toBe(expected);
          const hex = (x: number, y: number): string => (x * 256 + y).toString(16);
          expect(text(`[::ffff:${hex(a, b)}:${hex(c, d)}]`)).toBe(expected);
        },
      ),
    );
  });

  it('agrees with the WHATWG URL host parser on IPv4-looking text', () => {
    // The URL parser is one of the two readers a check's host meets; where it yields an
    // IPv4 address, literalIpOf must yield the same one, and nothing where it does not.
    const chunk = fc.oneof(
      fc.stringMatching(/^[0-9]{1,12}$/),
      fc.stringMatching(/^0[xX][0-9a-fA-F]{0,9}$/),
      fc.stringMatching(/^0[0-9]{1,12}$/),
      fc.constantFrom('', 'a', '0x1g', '256'),
    );
    fc.assert(
      fc.property(fc.array(chunk, { minLength: 1, maxLength: 5 }), (chunks) => {
        const host = chunks.join('.');
        let viaUrl: string | null;
        try {
          viaUrl = new URL(`http://${host}/`).hostname;
        } catch {
          viaUrl = null;
        }
        const asIp = viaUrl !== null && parseIp(viaUrl)?.version === 4 ? viaUrl : null;
        expect(text(host)).toBe(asIp);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads any canonical IPv6 address back to itself', () => {
    fc.assert(
      fc.property(fc.ipV6(), (v6) => {
        const ip = parseIp(v6);
        if (!ip) throw new Error(`fast-check gave an address parseIp refuses: ${v6}`);
        expect(text(v6)).toBe(formatIp(ip));
        expect(text(`[${v6}]`)).toBe(formatIp(ip));
        expect(literalIpOf(formatIp(ip))).toEqual(ip);
      }),
    );
  });

  it('never reads a domain name as an address', () => {
    // A name with a letter no number form uses (hex digits and x are numbers' letters).
    const named = fc.domain().filter((name) => /[g-wyz]/i.test(name));
    fc.assert(fc.property(named, (name) => expect(literalIpOf(name)).toBeNull()));
  });
});

describe('embeddedIpv4', () => {
  it.each<[string, string | null]>([
    ['::169.254.169.254', '169.254.169.254'],
    ['64:ff9b::a9fe:a9fe', '169.254.169.254'],
    ['64:ff9b::127.0.0.2', '127.0.0.2'],
    ['::1', null],
    ['::', null],
    ['fe80::1', null],
    ['2002:a9fe:a9fe::1', null],
    ['169.254.169.254', null],
    ['example.com', null],
  ])('%s carries %s', (address, expected) => {
    const ip = literalIpOf(address);
    const inner = ip && embeddedIpv4(ip);
    expect(inner ? formatIp(inner) : null).toBe(expected);
  });

  it('finds the IPv4 of a mapped address given as IPv6 bytes', () => {
    const bytes = new Uint8Array(16);
    bytes.set([0xff, 0xff, 169, 254, 169, 254], 10);
    const inner = embeddedIpv4({ version: 6, bytes });
    expect(inner && formatIp(inner)).toBe('169.254.169.254');
  });
});
