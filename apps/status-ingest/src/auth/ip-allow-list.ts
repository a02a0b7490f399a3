import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * A key's optional IP allow-list (`api_keys.allowed_cidrs`). Empty: any address.
 * IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`, what a dual-stack socket
 * reports) are matched as IPv4. A malformed entry allows nothing (fail closed).
 */
export class IpAllowList {
  private readonly list = new BlockList();
  readonly unrestricted: boolean;

  constructor(cidrs: readonly string[]) {
    this.unrestricted = cidrs.length === 0;
    for (const entry of cidrs) {
      const [address, bits] = entry.trim().split('/');
      const type = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null;
      if (!type) continue;
      const max = type === 'ipv4' ? 32 : 128;
      const prefix = bits === undefined ? max : Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) continue;
      this.list.addSubnet(address, prefix, type);
    }
  }

  allows(ip: string): boolean {
    if (this.unrestricted) return true;
    const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
    if (mapped) return this.list.check(mapped[1], 'ipv4');
    if (isIPv4(ip)) return this.list.check(ip, 'ipv4');
    if (isIPv6(ip)) return this.list.check(ip, 'ipv6');
    return false;
  }
}
