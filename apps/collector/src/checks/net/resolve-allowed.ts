import { parseIp, type IpAddress } from '@fleetwatch/contracts';
import { formatIp, literalIpOf, type TargetPolicy } from '@fleetwatch/domain';
import { lookup as systemLookup, Resolver } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import { TargetDeniedError } from './target-denied.error';

// The enforcement point of the target policy (SPEC §5). Everything a check connects to
// goes through resolveAllowed, and the caller connects to exactly the address it
// returns: the name is resolved once, every answer is checked, and no second lookup
// happens between the check and the connect (no DNS-rebinding window).
//
// Order matters:
//  1. literal forms first (`2852039166`, `0xA9FEA9FE`, `[::ffff:a9fe:a9fe]`): they are
//     read here, never handed to the OS, whose inet_aton would read them its own way;
//  2. a denied name is refused before any query leaves the host;
//  3. DNS (system getaddrinfo, or COLLECTOR_DNS_SERVERS), then every answer checked.
//     A name with any denied answer is refused as a whole, even if another answer is
//     allowed: such a name points somewhere it must not, and which answer a library
//     would pick (happy eyeballs, retries) is not ours to bet on.

export interface ResolvedTarget {
  /** An IP literal in canonical form: what to hand to net.connect / tls.connect / ping. */
  address: string;
  family: 4 | 6;
}

export interface ResolveOptions {
  signal?: AbortSignal;
  /** Resolver entries (COLLECTOR_DNS_SERVERS, see dns-servers.ts); empty or absent = the system's. */
  resolver?: readonly string[];
}

/** A query that found nothing: the `ENOTFOUND` people know from getaddrinfo. */
export class NameNotFoundError extends Error {
  readonly code = 'ENOTFOUND';
  constructor(readonly host: string) {
    super(`getaddrinfo ENOTFOUND ${host}`);
    this.name = 'NameNotFoundError';
  }
}

/** Per query try; c-ares retries once. The check's own signal ends it sooner. */
const RESOLVER_TRY_MS = 2_000;

/** The first address of the name (resolveAllowedAll), every answer checked. */
export async function resolveAllowed(
  host: string,
  policy: TargetPolicy,
  options: ResolveOptions = {},
): Promise<ResolvedTarget> {
  return (await resolveAllowedAll(host, policy, options))[0];
}

/**
 * Every address of the name in the resolver's order (at least one), each checked against the policy (a denied
 * answer refuses the whole name). A connection tries them in turn (connectChecked): a name's first address may be
 * one the service does not listen on (`localhost` → `::1` first, an IPv4-only server).
 */
export async function resolveAllowedAll(
  host: string,
  policy: TargetPolicy,
  options: ResolveOptions = {},
): Promise<ResolvedTarget[]> {
  options.signal?.throwIfAborted();
  const literal = literalIpOf(host);
  if (literal) return [checked(host, literal, policy)];

  const name = host.trim().replace(/\.$/, '').toLowerCase();
  const deniedName = policy.deniedName(name);
  if (deniedName) throw new TargetDeniedError(name, null, deniedName);

  const answers = options.resolver?.length
    ? await queryServers(name, options.resolver, options.signal)
    : await querySystem(name, options.signal);
  if (answers.length === 0) throw new NameNotFoundError(name);
  const targets = answers.map((text) => {
    const ip = parseIp(text);
    // An answer that is not an address is never connected to (the policy says so too).
    if (!ip) throw new TargetDeniedError(name, text, `unparseable address "${text}"`);
    return checked(name, ip, policy);
  });
  const seen = new Set<string>();
  return targets.filter((t) => !seen.has(t.address) && seen.add(t.address));
}

function checked(host: string, ip: IpAddress, policy: TargetPolicy): ResolvedTarget {
  const address = formatIp(ip);
  const network = policy.deniedBy(ip);
  if (network) throw new TargetDeniedError(host, address, network);
  return { address, family: ip.version };
}

/** getaddrinfo in the OS order. It cannot be cancelled (libuv thread pool): an abort stops the wait. */
async function querySystem(name: string, signal: AbortSignal | undefined): Promise<string[]> {
  const found = await abortable(systemLookup(name, { all: true, order: 'verbatim' }), signal);
  return found.map((a) => a.address);
}

/**
 * A and AAAA from the configured servers, IPv4 first. One Resolver per call: cancel()
 * ends every query of its channel, so a shared one would let one check's timeout kill
 * another's lookups. Answers are not cached across calls (TTL handling is the
 * server's): each check run sees the name as it is now.
 */
async function queryServers(name: string, servers: readonly string[], signal?: AbortSignal): Promise<string[]> {
  const resolver = new Resolver({ timeout: RESOLVER_TRY_MS, tries: 2 });
  resolver.setServers([...servers]);
  const onAbort = (): void => resolver.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
    signal?.throwIfAborted();
    const found = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (found.length > 0) return found;
    // Both failed or were empty: report a real failure (SERVFAIL, timeout) over "no such record".
    const failures = [v4, v6].flatMap((r) => (r.status === 'rejected' ? [r.reason as NodeJS.ErrnoException] : []));
    const real = failures.find((e) => e.code !== 'ENODATA' && e.code !== 'ENOTFOUND');
    if (real) throw real;
    return [];
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Node's `dns.lookup` signature on top of resolveAllowed, for libraries that resolve
 * through a `lookup` option (net.connect, tls.connect, pg, ioredis). It answers with
 * the one checked address, so `all: true` callers (happy eyeballs) cannot reach an
 * unchecked one. Caveat: Node skips `lookup` for a host that is already an IP literal
 * in dotted or colon form, so a caller must pass the address resolveAllowed returned
 * as the host (then this hook is belt and braces), not the check's host as written.
 */
export function policyLookup(policy: TargetPolicy, options: ResolveOptions = {}): LookupFunction {
  return (hostname, lookupOptions, callback) => {
    resolveAllowed(hostname, policy, options).then(
      ({ address, family }) => {
        if (lookupOptions.all) callback(null, [{ address, family }]);
        else callback(null, address, family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}
