import { CidrSet } from '@fleetwatch/contracts';

/**
 * A key's optional IP allow-list (`api_keys.allowed_cidrs`), matched against the
 * client address (after trusted proxies). Empty: any address. The rule itself is
 * contracts' CidrSet: IPv4-mapped IPv6 matches as IPv4, a malformed entry allows
 * nothing (fail closed).
 */
export class IpAllowList {
  private readonly set: CidrSet;
  readonly unrestricted: boolean;

  constructor(cidrs: readonly string[]) {
    this.set = new CidrSet(cidrs);
    this.unrestricted = cidrs.length === 0;
  }

  allows(ip: string): boolean {
    return this.unrestricted || this.set.contains(ip);
  }
}
