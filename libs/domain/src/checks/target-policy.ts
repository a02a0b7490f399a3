import {
  checkAddressOf,
  cidrContains,
  formatCidr,
  parseCidr,
  type CheckSpec,
  type Cidr,
  type IpAddress,
} from '@fleetwatch/contracts';
import { embeddedIpv4, formatIp, literalIpOf } from './literal-ip';

// Where checks may connect (SPEC §5): a deny list of networks, by default cloud metadata
// and link-local, and a fixed list of names that reach cloud metadata. Pure: the
// collector applies it to the address it actually connects to (after DNS, on every
// redirect hop); sync-orchestrator applies it at save time to literal addresses and names.

/**
 * The default of FLEETWATCH_CHECK_DENY_NETWORKS (SPEC §11: setting it replaces this list).
 * Loopback and private networks stay allowed: monitoring internal services is the point.
 */
export const DEFAULT_DENY_NETWORKS: readonly string[] = [
  // IPv4 link-local: 169.254.169.254 (AWS, GCP, Azure, OCI, OpenStack, DigitalOcean …),
  // 169.254.170.2 (ECS task credentials), 169.254.42.42 (Scaleway).
  '169.254.0.0/16',
  'fe80::/10',
  // Alibaba Cloud metadata.
  '100.100.100.200/32',
  // AWS IMDS over IPv6 (Nitro).
  'fd00:ec2::254/128',
  // GCP metadata server over IPv6.
  'fd20:ce::254/128',
  // Oracle Cloud (Classic) metadata; 192.0.0.0/24 is IETF protocol space, never a real target.
  '192.0.0.192/32',
];

/**
 * Names that reach a cloud metadata service through the provider's resolver (GCP's
 * `metadata`, `metadata.google.internal`, `metadata.goog`; AWS's `instance-data`). They
 * stay denied whatever FLEETWATCH_CHECK_DENY_NETWORKS says: an operator who narrows the
 * network list to their own ranges has not thereby allowed metadata credentials out.
 */
export const DEFAULT_DENIED_NAMES: readonly string[] = [
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
];

export interface TargetPolicy {
  /** The denied networks, canonical text. */
  readonly networks: readonly string[];
  /** The denied names, lower case without a trailing dot. */
  readonly names: readonly string[];
  /**
   * The denied network containing `address` (an IP literal as a socket reports it, or
   * any form `literalIpOf` reads), or null if allowed. An IPv6 address that carries an
   * IPv4 one (IPv4-compatible, NAT64) is denied when either is.
   */
  deniedBy(address: string | IpAddress): string | null;
  /** The denied name `host` is (case-insensitive, one trailing dot ignored), or null. */
  deniedName(host: string): string | null;
}

export function createTargetPolicy(
  cidrs: readonly string[],
  names: readonly string[] = DEFAULT_DENIED_NAMES,
): TargetPolicy {
  const parsed: Cidr[] = cidrs.map((text) => {
    const c = parseCidr(text.trim());
    if (!c) throw new Error(`not a network: "${text}"`);
    return c;
  });
  const networks = parsed.map(formatCidr);
  const nameSet = new Set(names.map(normalName));
  const within = (ip: IpAddress): string | null => {
    for (let i = 0; i < parsed.length; i++) if (cidrContains(parsed[i], ip)) return networks[i];
    return null;
  };
  return {
    networks,
    names: [...nameSet],
    deniedBy(address) {
      const ip = typeof address === 'string' ? literalIpOf(address) : address;
      // An address we cannot read is never connected to.
      if (!ip) return `unparseable address "${String(address)}"`;
      const direct = within(ip);
      if (direct) return direct;
      const inner = embeddedIpv4(ip);
      return inner ? within(inner) : null;
    },
    deniedName(host) {
      const name = normalName(host);
      return nameSet.has(name) ? name : null;
    },
  };
}

function normalName(host: string): string {
  const lower = host.trim().toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

export interface TargetProblem {
  /** The field of the check, as in a validation error (`url`, `host`, `resolver`, `managementUrl`). */
  path: string;
  message: string;
}

/**
 * Save-time policy check (issue 15): refuses a check whose address is a literal in a
 * denied network (in any encoding) or a denied name. Other names are not resolved here —
 * what they resolve to can change; the collector checks the address it connects to.
 */
export function checkTargetProblem(check: CheckSpec, policy: TargetPolicy): TargetProblem | null {
  const path = addressField(check);
  const host = checkAddressOf(check);
  if (path && host) {
    const problem = hostProblem(host, policy);
    if (problem) return { path, message: problem };
  }
  // amqp's (and rabbitmq-queues') management API is a second address the collector connects to.
  if ((check.type === 'amqp' || check.type === 'rabbitmq-queues') && check.managementUrl) {
    const mgmt = hostOfUrl(check.managementUrl);
    const problem = mgmt ? hostProblem(mgmt, policy) : null;
    if (problem) return { path: 'managementUrl', message: problem };
  }
  return null;
}

/**
 * Why the policy refuses `host` as written (a denied name, or a literal address in a denied network, in any
 * encoding), or null. Names are not resolved: the sender checks the address it connects to.
 */
export function targetHostProblem(host: string, policy: TargetPolicy): string | null {
  return hostProblem(host, policy);
}

/** What `localhost` and every `*.localhost` name resolve to, whatever the resolver (RFC 6761 §6.3). */
const LOOPBACK_OF_LOCALHOST = ['127.0.0.1', '::1'];

function hostProblem(host: string, policy: TargetPolicy): string | null {
  const name = policy.deniedName(host);
  if (name) return `name ${name} reaches a cloud metadata service and is always denied`;
  const ip = literalIpOf(host);
  if (!ip) return localhostProblem(host, policy);
  const network = policy.deniedBy(ip);
  if (!network) return null;
  const canonical = formatIp(ip);
  const shown = canonical === host.toLowerCase() ? canonical : `${host} (${canonical})`;
  return `address ${shown} is in denied network ${network} (FLEETWATCH_CHECK_DENY_NETWORKS)`;
}

/**
 * The one kind of name whose address is known without asking a resolver: `localhost` is loopback everywhere, so a
 * policy that denies loopback refuses it at save time (the collector would refuse what it resolves to anyway).
 */
function localhostProblem(host: string, policy: TargetPolicy): string | null {
  const lower = host.trim().toLowerCase().replace(/\.$/, '');
  if (lower !== 'localhost' && !lower.endsWith('.localhost')) return null;
  for (const address of LOOPBACK_OF_LOCALHOST) {
    const network = policy.deniedBy(address);
    if (network)
      return `name ${lower} is loopback (${address}) in denied network ${network} (FLEETWATCH_CHECK_DENY_NETWORKS)`;
  }
  return null;
}

function addressField(check: CheckSpec): string | null {
  switch (check.type) {
    case 'http':
    case 'prometheus':
      return 'url';
    case 'dns':
      return 'resolver';
    case 's3':
      return 'endpoint';
    case 'process':
      return null;
    default:
      return 'host';
  }
}

function hostOfUrl(text: string): string | null {
  try {
    const h = new URL(text).hostname;
    return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  } catch {
    return null;
  }
}
