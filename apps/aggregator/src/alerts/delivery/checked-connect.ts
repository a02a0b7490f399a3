import { lookup } from 'node:dns/promises';
import type { Socket } from 'node:net';
import { Agent, buildConnector } from 'undici';
import {
  createTargetPolicy,
  DEFAULT_DENY_NETWORKS,
  formatIp,
  literalIpOf,
  type TargetPolicy,
} from '@fleetwatch/domain';

// Notifications go through the checks' target policy (SPEC §5, FLEETWATCH_CHECK_DENY_NETWORKS, libs/domain): the
// host is resolved once, every answer checked, the connection made to exactly the checked address, and the peer
// the socket reports checked once more. A denied target is refused before any byte is sent to it; the send fails
// (not retried: waiting does not change the policy) and the log says why. Redirects are only followed to the same
// origin (http-transport.ts), each hop connecting through here again.

/** The policy refused where a notification would go. */
export class DeliveryTargetDeniedError extends Error {
  readonly code = 'ETARGETDENIED';
  constructor(message: string) {
    super(message);
    this.name = 'DeliveryTargetDeniedError';
  }
}

export const isTargetDenied = (err: unknown): boolean => {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  return e?.code === 'ETARGETDENIED' || e?.cause?.code === 'ETARGETDENIED';
};

export const defaultDeliveryPolicy = (): TargetPolicy => createTargetPolicy(DEFAULT_DENY_NETWORKS);

/** Resolves a name to its addresses (node:dns's lookup by default; a test gives its own). */
export type Lookup = (name: string) => Promise<Array<{ address: string; family: number }>>;
const systemLookup: Lookup = (name) => lookup(name, { all: true, order: 'verbatim' });

/**
 * The address to connect to for `host`, checked: a literal as is, a name resolved once (every answer checked), within
 * `timeoutMs`. The lookup is the system resolver's (getaddrinfo in libuv's pool of four threads), which only the OS
 * bounds: an SMTP host whose DNS hung held its delivery for as long, before the send's own timeouts started.
 */
export async function resolveChecked(
  host: string,
  policy: TargetPolicy,
  timeoutMs = 10_000,
  resolve: Lookup = systemLookup,
): Promise<{ address: string; literal: boolean }> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const literal = literalIpOf(bare);
  if (literal) {
    const address = formatIp(literal);
    const network = policy.deniedBy(literal);
    if (network) throw new DeliveryTargetDeniedError(`address ${address} is in denied network ${network}`);
    return { address, literal: true };
  }
  const name = bare.trim().replace(/\.$/, '').toLowerCase();
  const deniedName = policy.deniedName(name);
  if (deniedName) throw new DeliveryTargetDeniedError(`name ${name} is denied by the target policy`);
  let timer: NodeJS.Timeout | undefined;
  const answers = await Promise.race([
    resolve(name),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(Object.assign(new Error(`DNS lookup of ${name} took over ${timeoutMs} ms`), { code: 'ETIMEOUT' })),
        timeoutMs,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  if (!answers.length) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  for (const a of answers) {
    const network = policy.deniedBy(a.address);
    // A name with any denied answer is refused whole: which answer a client would pick is not ours to bet on.
    if (network) throw new DeliveryTargetDeniedError(`address ${a.address} of ${name} is in denied network ${network}`);
  }
  return { address: answers[0].address, literal: false };
}

/** The peer a connected socket reports, checked once more (null: allowed). */
export function peerProblem(socket: Pick<Socket, 'remoteAddress'>, policy: TargetPolicy): string | null {
  const peer = socket.remoteAddress;
  if (!peer) return 'the connection reports no peer address';
  const network = policy.deniedBy(peer);
  return network ? `address ${peer} is in denied network ${network}` : null;
}

/** An undici dispatcher whose every connection goes through the policy (TLS names kept for SNI and certificates). */
export function checkedAgent(policy: TargetPolicy, connectTimeoutMs = 5000): Agent {
  const connector = buildConnector({ timeout: connectTimeoutMs });
  return new Agent({
    keepAliveTimeout: 10_000,
    maxResponseSize: -1,
    connect: (options, callback) => {
      resolveChecked(options.hostname, policy, connectTimeoutMs).then(
        ({ address }) =>
          // `host` (the URL's host) stays: undici takes the TLS server name from it.
          connector({ ...options, hostname: address }, (err, socket) => {
            if (err || !socket) return callback(err ?? new Error('no socket'), null);
            const problem = peerProblem(socket, policy);
            if (problem) {
              socket.destroy();
              return callback(new DeliveryTargetDeniedError(problem), null);
            }
            callback(null, socket);
          }),
        (err: Error) => callback(err, null),
      );
    },
  });
}
