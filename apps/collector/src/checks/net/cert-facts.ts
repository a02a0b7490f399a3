import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { ProbeFacts } from '../probe';

export type CertFacts = NonNullable<ProbeFacts['cert']>;

const DAY_MS = 86_400_000;

/**
 * What conditions see of the peer's leaf certificate (`cert.daysLeft > 14`). daysLeft
 * is whole days, rounded down: a certificate that expired an hour ago has -1, one with
 * 23 hours left has 0, so "expires within N days" is `daysLeft < N` and the default
 * minimum of 0 fails only an expired certificate.
 */
export function certFactsOf(socket: TLSSocket, now = Date.now()): CertFacts | undefined {
  const cert: PeerCertificate = socket.getPeerCertificate();
  if (!cert || !cert.valid_to) return undefined;
  const validTo = new Date(cert.valid_to);
  const validFrom = new Date(cert.valid_from);
  return {
    daysLeft: daysLeft(validTo, now),
    subject: distinguishedName(cert.subject),
    issuer: distinguishedName(cert.issuer),
    // '' when the certificate's notBefore could not be read.
    validFrom: Number.isNaN(validFrom.getTime()) ? '' : validFrom.toISOString(),
    validTo: validTo.toISOString(),
    authorized: socket.authorized,
  };
}

export function daysLeft(validTo: Date, now: number): number {
  return Math.floor((validTo.getTime() - now) / DAY_MS);
}

/** `CN=example.com, O=Example` (multi-valued attributes joined with `+`). */
export function distinguishedName(dn: PeerCertificate['subject'] | undefined): string {
  if (!dn) return '';
  return Object.entries(dn)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ');
}

/** Why the handshake did not verify, as Node says it (`DEPTH_ZERO_SELF_SIGNED_CERT`, a host-name mismatch). */
export function authorizationErrorOf(socket: TLSSocket): string {
  const e: unknown = socket.authorizationError;
  if (e instanceof Error) return (e as NodeJS.ErrnoException).code ?? e.message;
  return e ? String(e) : 'not authorized';
}
