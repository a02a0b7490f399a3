import { literalIpOf, type TargetPolicy } from '@fleetwatch/domain';
import { connect as netConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { resolveAllowed, type ResolvedTarget } from './resolve-allowed';
import { TargetDeniedError } from './target-denied.error';

// A TCP or TLS connection to a check's target through the policy: resolve once, check,
// connect to exactly that address, and check the peer the socket reports once more
// (the address actually connected to is what SPEC §5 speaks of). TLS never rejects here:
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
  const target = await resolveAllowed(t.host, t.policy, { signal: t.signal, resolver: t.resolver });
  const started = performance.now();
  const socket = await new Promise<Socket>((resolve, reject) => {
    t.signal.throwIfAborted();
    const s: Socket = t.tls
      ? tlsConnect({
          host: target.address,
          port: t.port,
          servername: sniName(t.host, t.tls.servername),
          rejectUnauthorized: false,
          ALPNProtocols: t.tls.alpn,
        })
      : netConnect({ host: target.address, port: t.port });
    const onAbort = (): void => {
      s.destroy(t.signal.reason instanceof Error ? t.signal.reason : new Error('aborted'));
    };
    const done = (): void => {
      t.signal.removeEventListener('abort', onAbort);
      s.off('error', onError);
    };
    const onError = (err: Error): void => {
      done();
      s.destroy();
      reject(err);
    };
    t.signal.addEventListener('abort', onAbort, { once: true });
    s.once('error', onError);
    s.once(t.tls ? 'secureConnect' : 'connect', () => {
      done();
      resolve(s);
    });
  });
  const connectMs = performance.now() - started;
  const peer = socket.remoteAddress;
  const denied = peer ? t.policy.deniedBy(peer) : 'no peer address';
  if (denied) {
    socket.destroy();
    throw new TargetDeniedError(t.host, peer ?? '(none)', denied);
  }
  return { socket, target, connectMs };
}

/** SNI is for names only (RFC 6066): none for a literal, so the certificate is matched against the address. */
function sniName(host: string, servername: string | undefined): string | undefined {
  if (servername) return servername;
  return literalIpOf(host) ? undefined : host.trim().replace(/\.$/, '');
}
