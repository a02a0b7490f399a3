import { IpAllowList } from './ip-allow-list';

describe('IpAllowList', () => {
  it.each<[string[], string, boolean]>([
    [[], '203.0.113.9', true],
    [['10.0.0.0/8'], '10.20.30.40', true],
    [['10.0.0.0/8'], '11.0.0.1', false],
    [['10.0.0.0/8'], '::ffff:10.1.2.3', true],
    [['10.0.0.0/8'], '::ffff:192.168.1.1', false],
    [['127.0.0.1'], '127.0.0.1', true],
    [['127.0.0.1/32'], '127.0.0.2', false],
    [['fd00::/8'], 'fd12:3456::1', true],
    [['fd00::/8'], '2001:db8::1', false],
    [['192.168.0.0/16', '::1/128'], '::1', true],
    [['not-a-cidr'], '10.0.0.1', false],
    [['10.0.0.0/40'], '10.0.0.1', false],
    [['10.0.0.0/8'], 'garbage', false],
  ])('%j allows %s: %s', (cidrs, ip, allowed) => expect(new IpAllowList(cidrs).allows(ip)).toBe(allowed));
});
