import { parseIp, type IpAddress } from '@fleetwatch/contracts';

// A check's host is handed to the OS resolver (getaddrinfo → inet_aton) or a URL parser
// (WHATWG), and both read far more than dotted quads as addresses: `2852039166`,
// `0xA9FEA9FE`, `0251.0376.0251.0376`, `169.254.43518` all reach 169.254.169.254. The
// deny list must see those as the address they become BEFORE anything connects, so this
// reads every such form; what it returns is what a socket would connect to.

/** One inet_aton / WHATWG IPv4 part: `0x…` hex (may be empty digits), `0…` octal, else decimal. */
function ipv4Part(text: string): number | null {
  if (/^0[xX][0-9a-fA-F]*$/.test(text)) return text.length === 2 ? 0 : parseInt(text.slice(2), 16);
  if (/^0[0-7]+$/.test(text)) return parseInt(text.slice(1), 8);
  if (/^(?:0|[1-9]\d*)$/.test(text)) return Number(text);
  return null;
}

/**
 * The IPv4 forms inet_aton and the WHATWG host parser accept: 1 to 4 parts, the last
 * filling the remaining bytes (`10.1` is 10.0.0.1, `169.254.43518` is 169.254.169.254).
 * Long digit strings become huge floats, which the range checks reject, so no BigInt.
 */
function looseIpv4(text: string): Uint8Array | null {
  if (text.length === 0 || text.length > 253) return null;
  const parts = text.split('.');
  if (parts.length > 4) return null;
  const values: number[] = [];
  for (const p of parts) {
    const n = ipv4Part(p);
    if (n === null) return null;
    values.push(n);
  }
  const last = values.length - 1;
  for (let i = 0; i < last; i++) if (values[i] > 255) return null;
  // The last part fills 4 - (parts - 1) bytes.
  if (values[last] >= 2 ** (8 * (4 - last))) return null;
  let n = values[last];
  for (let i = 0; i < last; i++) n += values[i] * 2 ** (8 * (3 - i));
  return Uint8Array.of(Math.floor(n / 2 ** 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/**
 * The address `host` denotes when it is a literal in any form a resolver or URL parser
 * reads as one; null for a real name. Brackets (`[::1]`) and an IPv6 zone (`%eth0`,
 * `%25eth0`) are dropped; one trailing dot is allowed (WHATWG does). IPv4-mapped IPv6
 * comes back as IPv4 (the socket connects to that IPv4 host); other IPv6 forms that
 * embed an IPv4 address stay IPv6 here — see `embeddedIpv4`.
 */
export function literalIpOf(host: string): IpAddress | null {
  if (typeof host !== 'string') return null;
  let text = host.trim();
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) return null;
    return ipv6Literal(text.slice(1, -1));
  }
  if (text.includes(':')) return ipv6Literal(text);
  if (text.endsWith('.')) text = text.slice(0, -1);
  const v4 = looseIpv4(text);
  return v4 ? { version: 4, bytes: v4 } : null;
}

function ipv6Literal(text: string): IpAddress | null {
  const zone = text.indexOf('%');
  const address = zone >= 0 ? text.slice(0, zone) : text;
  if (!address.includes(':')) return null;
  return parseIp(address);
}

/**
 * The IPv4 address an IPv6 address carries and may deliver to: IPv4-mapped,
 * IPv4-compatible (`::169.254.169.254`, deprecated but still parsed) and the NAT64 well-known prefix
 * (`64:ff9b::a9fe:a9fe`, which a NAT64 gateway translates to 169.254.169.254). Null
 * otherwise, and for `::` and `::1`, which are IPv6's own unspecified and loopback.
 */
export function embeddedIpv4(ip: IpAddress): IpAddress | null {
  if (ip.version !== 6) return null;
  const b = ip.bytes;
  const zeros = (from: number, to: number): boolean => b.subarray(from, to).every((x) => x === 0);
  const compatible = zeros(0, 12) && !(zeros(12, 15) && b[15] <= 1);
  // parseIp already turns mapped text into IPv4; an IpAddress built elsewhere may not be.
  const mapped = zeros(0, 10) && b[10] === 0xff && b[11] === 0xff;
  const nat64 = b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12);
  return compatible || mapped || nat64 ? { version: 4, bytes: b.slice(12) } : null;
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run as `::`). */
export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) return Array.from(ip.bytes).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i] << 8) | ip.bytes[i + 1]);
  let bestAt = -1;
  let bestLen = 1; // a single zero group is not compressed
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (list: number[]): string => list.map((g) => g.toString(16)).join(':');
  if (bestAt < 0) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}
