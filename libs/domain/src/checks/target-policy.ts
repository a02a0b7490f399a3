import { cidrContains, formatCidr, parseCidr, parseIp, type Cidr, type IpAddress } from '@fleetwatch/contracts';

// Where checks may connect (SPEC §5): a deny list of networks, by default cloud metadata
// and link-local. Pure: the collector applies it to the address it actually connects to
// (after DNS, on every redirect hop); sync-orchestrator applies it at save time to
// literal addresses.

export interface TargetPolicy {
  /** The denied networks, canonical text. */
  readonly networks: readonly string[];
  /** The denied network containing `address` (an IP literal as a socket reports it), or null if allowed. */
  deniedBy(address: string | IpAddress): string | null;
}

export function createTargetPolicy(cidrs: readonly string[]): TargetPolicy {
  const parsed: Cidr[] = cidrs.map((text) => {
    const c = parseCidr(text);
    if (!c) throw new Error(`not a network: "${text}"`);
    return c;
  });
  const networks = parsed.map(formatCidr);
  return {
    networks,
    deniedBy(address) {
      const ip = typeof address === 'string' ? parseIp(address) : address;
      // An address we cannot read is never connected to.
      if (!ip) return `unparseable address "${String(address)}"`;
      for (let i = 0; i < parsed.length; i++) if (cidrContains(parsed[i], ip)) return networks[i];
      return null;
    },
  };
}
