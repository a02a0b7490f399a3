import { literalIpOf, type TargetPolicy } from '@fleetwatch/domain';
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { resolveAllowedAll, type ResolvedTarget } from './resolve-allowed';
import { TargetDeniedError } from './target-denied.error';

// A TCP or TLS connection to a check's target through the policy: resolve once, check every
// answer, connect to exactly those addresses (in turn, staggered: firstConnected), check the
// peer the socket reports once more (the address actually connected to is what SPEC §5 speaks
// of), then TLS over that connection when asked. TLS never rejects here:
// the socket comes back with `authorized` and the caller decides, so a probe can still
// report the certificate of a server it does not trust.

export interface ConnectTarget {
  host: string;
  port: number;
  policy: TargetPolicy;
  signal: AbortSignal;
  resolver?: readonly string[];
  /** Present for TLS: SNI and the name the certificate must match (default: host, unless host is an IP literal). */
  tls?: { servername?: string; alpn?: string[] };
}

export interface CheckedSocket<S extends Socket = Socket> {
  socket: S;
  target: ResolvedTarget;
  /** From the first SYN to `connect` (TCP) or to the finished handshake (TLS). */
  connectMs: number;
}

export function connectChecked(
  t: ConnectTarget & { tls: NonNullable<ConnectTarget['tls']> },
): Promise<CheckedSocket<TLSSocket>>;
export function connectChecked(t: ConnectTarget): Promise<CheckedSocket>;
export async function connectChecked(t: ConnectTarget): Promise<CheckedSocket> {
  const targets = interleaveFamilies(
    await resolveAllowedAll(t.host, t.policy, { signal: t.signal, resolver: t.resolver }),
  ).slice(0, MAX_ADDRESSES);
  const { socket: tcp, target, startedAt } = await firstConnected(t, targets);
  const peer = tcp.remoteAddress;
  const denied = peer ? t.policy.deniedBy(peer) : 'no peer address';
  if (denied) {
    tcp.destroy();
    throw new TargetDeniedError(t.host, peer ?? '(none)', denied);
  }
  const socket = t.tls ? await handshake(tcp, t, t.tls) : tcp;
  // From the winning address's first SYN (an address that failed or lagged before it is not this one's latency).
  return { socket, target, connectMs: performance.now() - startedAt };
}

/** TLS over the connected socket; the caller decides about trust (rejectUnauthorized off). */
function handshake(tcp: Socket, t: ConnectTarget, tls: NonNullable<ConnectTarget['tls']>): Promise<TLSSocket> {
  return new Promise<TLSSocket>((resolve, reject) => {
    if (t.signal.aborted) {
      tcp.destroy();
      return reject(t.signal.reason);
    }
    const s = tlsConnect({
      socket: tcp,
      servername: sniName(t.host, tls.servername),
      rejectUnauthorized: false,
      ALPNProtocols: tls.alpn,
    });
    const onAbort = (): void => {
      s.destroy(t.signal.reason instanceof Error ? t.signal.reason : new Error('aborted'));
    };
    const onError = (err: Error): void => {
      t.signal.removeEventListener('abort', onAbort);
      s.destroy();
      tcp.destroy();
      reject(err);
    };
    t.signal.addEventListener('abort', onAbort, { once: true });
    s.once('error', onError);
    s.once('secureConnect', () => {
      t.signal.removeEventListener('abort', onAbort);
      s.off('error', onError);
      resolve(s);
    });
  });
}

/** Addresses of a name tried at most (each checked against the policy first). */
const MAX_ADDRESSES = 8;
/**
 * How long an address is given before the next one is tried beside it (RFC 8305's connection attempt delay; Node's
 * autoSelectFamily uses 250 ms): an address that drops the SYN does not cost the check its whole timeout.
 */
export const ATTEMPT_DELAY_MS = 250;

/** RFC 8305: the first address's family first, then the families alternate; each family keeps its order. */
export function interleaveFamilies(targets: readonly ResolvedTarget[]): ResolvedTarget[] {
  if (targets.length < 2) return [...targets];
  const first = targets[0].family;
  const same = targets.filter((x) => x.family === first);
  const other = targets.filter((x) => x.family !== first);
  const out: ResolvedTarget[] = [];
  for (let i = 0; i < Math.max(same.length, other.length); i++) {
    if (i < same.length) out.push(same[i]);
    if (i < other.length) out.push(other[i]);
  }
  return out;
}

/**
 * The first of `targets` to accept a TCP connection. The next address starts when the one before it fails, or
 * ATTEMPT_DELAY_MS after it started (RFC 8305 staggers connects, not handshakes); the losers are closed. All failed:
 * the error of the first to fail, naming how many others failed too.
 */
export function firstConnected(
  t: Pick<ConnectTarget, 'host' | 'port' | 'signal'>,
  targets: readonly ResolvedTarget[],
  open: (address: string, port: number) => Socket = (host, port) => netConnect({ host, port }),
): Promise<{ socket: Socket; target: ResolvedTarget; startedAt: number }> {
  return new Promise((resolve, reject) => {
    t.signal.throwIfAborted();
    const sockets = new Set<Socket>();
    const errors: Error[] = [];
    let next = 0;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      t.signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      const reason = t.signal.reason instanceof Error ? t.signal.reason : new Error('aborted');
      for (const s of sockets) s.destroy(reason);
      sockets.clear();
      if (settled) return;
      finish();
      reject(reason);
    };
    const failed = (err: Error): void => {
      errors.push(err);
      if (next < targets.length) return startNext();
      if (sockets.size > 0 || settled) return;
      finish();
      const first = errors[0];
      if (errors.length > 1)
        first.message += ` (and ${errors.length - 1} other address${errors.length > 2 ? 'es' : ''} of ${t.host} failed)`;
      reject(first);
    };
    const startNext = (): void => {
      clearTimeout(timer);
      if (settled || next >= targets.length) return;
      const target = targets[next++];
      const startedAt = performance.now();
      const s = open(target.address, t.port);
      sockets.add(s);
      const onError = (err: Error): void => {
        s.destroy();
        if (!sockets.delete(s)) return;
        failed(err);
      };
      s.once('error', onError);
      s.once('connect', () => {
        s.off('error', onError);
        if (settled) return void s.destroy();
        sockets.delete(s);
        finish();
        for (const other of sockets) other.destroy();
        sockets.clear();
        resolve({ socket: s, target, startedAt });
      });
      if (next < targets.length) timer = setTimeout(startNext, ATTEMPT_DELAY_MS);
    };
    t.signal.addEventListener('abort', onAbort, { once: true });
    startNext();
  });
}

/** SNI is for names only (RFC 6066): none for a literal, so the certificate is matched against the address. */
function sniName(host: string, servername: string | undefined): string | undefined {
  if (servername) return servername;
  return literalIpOf(host) ? undefined : host.trim().replace(/\.$/, '');
}
