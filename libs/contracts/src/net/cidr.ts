import { z } from 'zod';

// The one CIDR rule of the project: per-key allow-lists, trusted proxies, the
// collector's denied networks, and the gateway's key form all parse here. Pure
// (no node:net), so the dashboard can validate a CIDR as the services do.

/** An IP address as its bytes (4 or 16). */
export interface IpAddress {
  readonly version: 4 | 6;
  readonly bytes: Uint8Array;
}

/** A network: its address with the host bits cleared, and the prefix length. */
export interface Cidr extends IpAddress {
  readonly prefix: number;
}

const OCTET = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Dotted quad only: no `127.1`, no octal or hex parts, no leading zeros. */
function ipv4Bytes(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return null;
  return Uint8Array.from(parts, Number);
}

function ipv6Bytes(text: string): Uint8Array | null {
  if (text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const gap = text.indexOf('::');
  if (gap !== text.lastIndexOf('::')) return null;
  const split = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = gap >= 0 ? split(text.slice(0, gap)) : text.split(':');
  const tail = gap >= 0 ? split(text.slice(gap + 2)) : [];
  const last = gap >= 0 ? tail : head;
  let v4: Uint8Array | null = null;
  if (last.length > 0 && last[last.length - 1].includes('.')) {
    v4 = ipv4Bytes(last.pop() as string);
    if (!v4) return null;
  }
  if (![...head, ...tail].every((g) => GROUP.test(g))) return null;
  const groups = head.length + tail.length + (v4 ? 2 : 0);
  // `::` stands for at least one zero group.
  if (gap >= 0 ? groups > 7 : groups !== 8) return null;
  const bytes = new Uint8Array(16);
  const put = (list: string[], at: number): void =>
    list.forEach((g, i) => {
      const n = parseInt(g, 16);
      bytes[at + 2 * i] = n >> 8;
      bytes[at + 2 * i + 1] = n & 0xff;
    });
  put(head, 0);
  put(tail, 16 - 2 * tail.length - (v4 ? 4 : 0));
  if (v4) bytes.set(v4, 12);
  return bytes;
}

function isIpv4Mapped(bytes: Uint8Array): boolean {
  return bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * Parses an IPv4 or IPv6 address strictly. IPv4-mapped IPv6 (`::ffff:10.1.2.3`,
 * what a dual-stack socket reports for an IPv4 peer) comes back as IPv4, so one
 * rule matches a client however it connected. An IPv6 zone (`%eth0`) is ignored.
 */
export function parseIp(text: string): IpAddress | null {
  if (typeof text !== 'string') return null;
  const v4 = ipv4Bytes(text);
  if (v4) return { version: 4, bytes: v4 };
  const zone = text.indexOf('%');
  const v6 = ipv6Bytes(zone >= 0 && zone < text.length - 1 ? text.slice(0, zone) : text);
  if (!v6) return null;
  return isIpv4Mapped(v6) ? { version: 4, bytes: v6.slice(12) } : { version: 6, bytes: v6 };
}

/**
 * The key a per-address limit counts a client under: an IPv4 address itself, an
 * IPv6 address's /64 (one host usually holds a whole /64, so counting /128s would
 * let it rotate addresses past the limit). Unparseable text is its own key.
 */
export function rateLimitKeyOf(address: string): string {
  const ip = parseIp(address);
  if (!ip) return address;
  if (ip.version === 4) return ip.bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((ip.bytes[i] << 8) | ip.bytes[i + 1]).toString(16));
  return `${groups.join(':')}::/64`;
}

/**
 * Parses `address/prefix`; a bare address is a single host (/32 or /128). Host
 * bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`). An IPv4-mapped network of
 * /96 or longer (`::ffff:10.0.0.0/104`) becomes the IPv4 one (`10.0.0.0/8`).
 */
export function parseCidr(text: string): Cidr | null {
  if (typeof text !== 'string') return null;
  const slash = text.indexOf('/');
  const addressText = slash >= 0 ? text.slice(0, slash) : text;
  if (addressText.includes('%')) return null;
  const v4 = ipv4Bytes(addressText);
  const bytes = v4 ?? ipv6Bytes(addressText);
  if (!bytes) return null;
  const max = bytes.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const bits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return null;
    prefix = Number(bits);
  }
  if (!v4 && isIpv4Mapped(bytes) && prefix >= 96) return network({ version: 4, bytes: bytes.slice(12) }, prefix - 96);
  return network({ version: v4 ? 4 : 6, bytes }, prefix);
}

function network(address: IpAddress, prefix: number): Cidr {
  const bytes = Uint8Array.from(address.bytes);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.min(8, Math.max(0, prefix - 8 * i));
    bytes[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return { version: address.version, bytes, prefix };
}

export function isCidr(text: string): boolean {
  return parseCidr(text) !== null;
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.version !== ip.version) return false;
  const whole = cidr.prefix >> 3;
  for (let i = 0; i < whole; i++) if (cidr.bytes[i] !== ip.bytes[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip.bytes[whole] & mask) === cidr.bytes[whole];
}

/** Canonical text of a network (`10.0.0.0/8`, `fd00::/8` with hex groups, not compressed). */
export function formatCidr(cidr: Cidr): string {
  if (cidr.version === 4) return `${cidr.bytes.join('.')}/${cidr.prefix}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((cidr.bytes[i] << 8) | cidr.bytes[i + 1]).toString(16));
  return `${groups.join(':')}/${cidr.prefix}`;
}

/**
 * A list of networks. Entries that do not parse are kept in `invalid` and match
 * nothing, so a list with a bad entry fails closed rather than open.
 */
export class CidrSet {
  readonly networks: readonly Cidr[];
  readonly invalid: readonly string[];

  constructor(entries: readonly string[]) {
    const networks: Cidr[] = [];
    const invalid: string[] = [];
    for (const entry of entries) {
      const cidr = parseCidr(entry.trim());
      if (cidr) networks.push(cidr);
      else invalid.push(entry);
    }
    this.networks = networks;
    this.invalid = invalid;
  }

  get size(): number {
    return this.networks.length + this.invalid.length;
  }

  /** Whether `ip` (text, as a socket or header gives it) is inside one of the networks; false for a malformed address. */
  contains(ip: string | IpAddress): boolean {
    const address = typeof ip === 'string' ? parseIp(ip) : ip;
    if (!address) return false;
    return this.networks.some((n) => cidrContains(n, address));
  }
}

export const CIDR_EXAMPLE = 'e.g. 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7';

/** One CIDR (or bare address) in an HTTP body. */
export const cidrSchema = z
  .string()
  .max(64)
  .refine(isCidr, { message: `is not a CIDR (${CIDR_EXAMPLE})` });
