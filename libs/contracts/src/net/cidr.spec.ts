import { CidrSet, cidrSchema, formatCidr, isCidr, parseCidr, parseIp, rateLimitKeyOf } from './cidr';

describe('parseIp', () => {
  it.each<[string, string | null]>([
    ['10.1.2.3', '4:10,1,2,3'],
    ['0.0.0.0', '4:0,0,0,0'],
    ['255.255.255.255', '4:255,255,255,255'],
    ['::1', '6:0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1'],
    ['::', '6:0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0'],
    ['2001:db8::8a2e:370:7334', '6:32,1,13,184,0,0,0,0,0,0,138,46,3,112,115,52'],
    ['2001:DB8:0:0:0:0:0:1', '6:32,1,13,184,0,0,0,0,0,0,0,0,0,0,0,1'],
    ['fe80::1%eth0', '6:254,128,0,0,0,0,0,0,0,0,0,0,0,0,0,1'],
    ['64:ff9b::192.0.2.33', '6:0,100,255,155,0,0,0,0,0,0,0,0,192,0,2,33'],
    // IPv4-mapped IPv6, dotted or in hex, is the IPv4 address.
    ['::ffff:10.1.2.3', '4:10,1,2,3'],
    ['::FFFF:10.1.2.3', '4:10,1,2,3'],
    ['::ffff:a01:203', '4:10,1,2,3'],
    ['0:0:0:0:0:ffff:10.1.2.3', '4:10,1,2,3'],
    // Malformed.
    ['', null],
    ['10.1.2', null],
    ['10.1.2.3.4', null],
    ['256.1.2.3', null],
    ['010.1.2.3', null],
    ['0x7f.0.0.1', null],
    ['127.1', null],
    [' 10.1.2.3', null],
    ['10.1.2.3/8', null],
    [':::1', null],
    ['1::2::3', null],
    ['1:2:3:4:5:6:7:8:9', null],
    ['1:2:3:4:5:6:7', null],
    ['1:2:3:4:5:6:7:8::', null],
    ['12345::1', null],
    ['g::1', null],
    ['::ffff:300.1.2.3', null],
    ['1.2.3.4::', null],
    ['garbage', null],
  ])('%s → %s', (text, expected) => {
    const ip = parseIp(text);
    expect(ip ? `${ip.version}:${[...ip.bytes].join(',')}` : null).toBe(expected);
  });
});

describe('parseCidr', () => {
  it.each<[string, string | null]>([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['10.1.2.3/8', '10.0.0.0/8'],
    ['192.168.1.0/24', '192.168.1.0/24'],
    ['172.16.0.0/12', '172.16.0.0/12'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['127.0.0.1', '127.0.0.1/32'],
    ['10.0.0.255/31', '10.0.0.254/31'],
    ['fd00::/8', 'fd00:0:0:0:0:0:0:0/8'],
    ['2001:db8::/32', '2001:db8:0:0:0:0:0:0/32'],
    ['::1', '0:0:0:0:0:0:0:1/128'],
    ['::/0', '0:0:0:0:0:0:0:0/0'],
    ['fe80::1/10', 'fe80:0:0:0:0:0:0:0/10'],
    // IPv4-mapped networks are the IPv4 ones.
    ['::ffff:10.0.0.0/104', '10.0.0.0/8'],
    ['::ffff:0:0/96', '0.0.0.0/0'],
    ['::ffff:10.1.2.3', '10.1.2.3/32'],
    // Malformed.
    ['10.0.0.0/33', null],
    ['::/129', null],
    ['10.0.0.0/', null],
    ['10.0.0.0/-1', null],
    ['10.0.0.0/8/8', null],
    ['10.0.0.0/0x8', null],
    ['10.0.0.0/ 8', null],
    ['/8', null],
    ['fe80::1%eth0/64', null],
    ['not-a-cidr', null],
    ['', null],
  ])('%s → %s', (text, expected) => {
    const cidr = parseCidr(text);
    expect(cidr ? formatCidr(cidr) : null).toBe(expected);
    expect(isCidr(text)).toBe(expected !== null);
  });
});

describe('CidrSet.contains', () => {
  it.each<[string[], string, boolean]>([
    [[], '203.0.113.9', false],
    [['10.0.0.0/8'], '10.20.30.40', true],
    [['10.0.0.0/8'], '11.0.0.1', false],
    [['10.0.0.0/8'], '::ffff:10.1.2.3', true],
    [['10.0.0.0/8'], '::ffff:192.168.1.1', false],
    [['::ffff:10.0.0.0/104'], '10.9.9.9', true],
    [['127.0.0.1'], '127.0.0.1', true],
    [['127.0.0.1/32'], '127.0.0.2', false],
    [['172.16.0.0/12'], '172.31.255.255', true],
    [['172.16.0.0/12'], '172.32.0.0', false],
    [['10.0.0.0/31'], '10.0.0.1', true],
    [['10.0.0.0/31'], '10.0.0.2', false],
    [['0.0.0.0/0'], '198.51.100.1', true],
    [['0.0.0.0/0'], '2001:db8::1', false],
    [['::/0'], '10.0.0.1', false],
    [['::/0'], '2001:db8::1', true],
    [['fd00::/8'], 'fd12:3456::1', true],
    [['fd00::/8'], '2001:db8::1', false],
    [['fe80::/10'], 'fe80::1%eth0', true],
    [['fe80::/10'], 'febf::1', true],
    [['fe80::/10'], 'fec0::1', false],
    [['2001:db8::/127'], '2001:db8::1', true],
    [['2001:db8::/127'], '2001:db8::2', false],
    [['192.168.0.0/16', '::1/128'], '::1', true],
    [['not-a-cidr'], '10.0.0.1', false],
    [['10.0.0.0/40'], '10.0.0.1', false],
    [['10.0.0.0/8'], 'garbage', false],
    [['10.0.0.0/8'], '', false],
    [[' 10.0.0.0/8 '], '10.0.0.1', true],
  ])('%j contains %s: %s', (cidrs, ip, inside) => expect(new CidrSet(cidrs).contains(ip)).toBe(inside));

  it('keeps malformed entries aside: they match nothing, and the list is not empty', () => {
    const set = new CidrSet(['10.0.0.0/8', 'nope']);
    expect(set.invalid).toEqual(['nope']);
    expect(set.size).toBe(2);
  });
});

describe('cidrSchema', () => {
  it('accepts a CIDR and refuses anything else, saying what a CIDR looks like', () => {
    expect(cidrSchema.safeParse('10.0.0.0/8').success).toBe(true);
    const refused = cidrSchema.safeParse('10.0.0.0/99');
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0].message).toMatch(/is not a CIDR \(e\.g\. 10\.0\.0\.0\/8/);
  });
});

describe('rateLimitKeyOf', () => {
  it.each([
    ['10.1.2.3', '10.1.2.3'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['2001:db8:1:2:aaaa::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:db8:1:3::1', '2001:db8:1:3::/64'],
    ['not an address', 'not an address'],
  ])('%s → %s', (address, key) => expect(rateLimitKeyOf(address)).toBe(key));
});
