import type { TargetPolicy } from '@fleetwatch/domain';
import { TLSSocket } from 'node:tls';
import { Agent, type buildConnector } from 'undici';
import { authorizationErrorOf, certFactsOf, type CertFacts } from './cert-facts';
import { connectChecked } from './connect-checked';
import { CertificateUntrustedError } from './target-denied.error';

// The undici dispatcher of ONE check attempt. Decisions:
//  - Its own connector: every new connection (first request, each redirect hop to a new
//    origin) goes through connectChecked — resolve once, check the policy, connect to
//    exactly that address. undici's `connect: { lookup }` alone would not do: Node skips
//    `lookup` for hosts that are already IP literals, and undici hands them over as such.
//  - One Agent per attempt, closed when the attempt ends: no keep-alive socket outlives
//    the check run. A pooled socket would carry a policy decision, a tlsVerify setting
//    and a certificate from another check (or from before a policy change) into this
//    one, hide connect time from latency, and, with TLS 1.3 resumption, hide the peer
//    certificate. A new connection every run costs a handshake per interval, which is
//    what a monitor should measure anyway. Within the attempt, redirect hops to the
//    same origin may reuse the connection.
//  - No separate connect timeout: the attempt's signal (the check's timeout) ends the
//    lookup, the connect and the exchange alike.
//  - TLS: the handshake never rejects by itself; with tlsVerify an untrusted peer fails
//    the connection (CertificateUntrustedError) before any request byte is sent, after
//    its certificate facts were recorded, so the result can still show them.

export interface CheckAgentOptions {
  policy: TargetPolicy;
  signal: AbortSignal;
  resolver?: readonly string[];
  tlsVerify: boolean;
}

export interface CheckAgent {
  readonly dispatcher: Agent;
  /** Facts of the certificate presented on the last TLS connection to `url`'s origin. */
  certOf(url: URL): CertFacts | undefined;
  close(): Promise<void>;
}

export function createCheckAgent(options: CheckAgentOptions): CheckAgent {
  const certs = new Map<string, CertFacts>();
  const connect: buildConnector.connector = (o, callback) => {
    const https = o.protocol === 'https:';
    const port = Number(o.port) || (https ? 443 : 80);
    connectChecked({
      host: o.hostname,
      port,
      policy: options.policy,
      signal: options.signal,
      resolver: options.resolver,
      tls: https ? { alpn: ['http/1.1'] } : undefined,
    }).then(
      ({ socket }) => {
        if (socket instanceof TLSSocket) {
          const cert = certFactsOf(socket);
          if (cert) certs.set(originKey(o.hostname, port), cert);
          if (options.tlsVerify && !socket.authorized) {
            const reason = authorizationErrorOf(socket);
            socket.destroy();
            callback(new CertificateUntrustedError(o.hostname, reason), null);
            return;
          }
        }
        callback(null, socket);
      },
      (err: Error) => callback(err, null),
    );
  };
  const dispatcher = new Agent({ connect, pipelining: 1 });
  return {
    dispatcher,
    certOf(url) {
      const host = url.hostname.replace(/^\[|\]$/g, '');
      return certs.get(originKey(host, Number(url.port) || (url.protocol === 'https:' ? 443 : 80)));
    },
    async close() {
      await dispatcher.destroy();
    },
  };
}

function originKey(host: string, port: number): string {
  return `${host}:${port}`;
}
