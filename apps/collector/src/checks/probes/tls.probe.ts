import { authorizationErrorOf, certFactsOf, connectChecked, failureReasonOf, type CertFacts } from '../net';
import type { Probe, ProbeOutcome } from '../probe';
import { roundMs } from './tcp.probe';

/**
 * tls: a handshake with host:port (SNI `servername`, default the host unless it is an
 * address), then the leaf certificate's facts. The handshake itself never rejects, so
 * an untrusted or expired certificate still shows in `cert` while the result says why
 * it is DOWN. Latency: connect plus handshake.
 */
export const tlsProbe: Probe<'tls'> = async (check, ctx) => {
  try {
    const { socket, connectMs } = await connectChecked({
      host: check.host,
      port: check.port,
      policy: ctx.policy,
      signal: ctx.signal,
      resolver: ctx.dnsServers,
      tls: { servername: check.servername },
    });
    const cert = certFactsOf(socket);
    const protocol = socket.getProtocol();
    const cipher = socket.getCipher()?.name;
    const untrusted = socket.authorized ? null : authorizationErrorOf(socket);
    socket.destroy();
    const problems = certificateProblems(cert, { verify: check.tlsVerify, untrusted, minDaysLeft: check.minDaysLeft });
    const outcome: ProbeOutcome = {
      ok: problems.length === 0,
      latencyMs: roundMs(connectMs),
      facts: { cert, result: { protocol, cipher } },
    };
    if (problems.length) outcome.failureReason = problems.join('; ');
    return outcome;
  } catch (err) {
    return { ok: false, latencyMs: null, failureReason: failureReasonOf(err, ctx), facts: {} };
  }
};

const NOT_BEFORE_LEEWAY_MS = 5 * 60_000;

/** Shared with the http probe: trust (when verified), not valid yet, and days left. */
export function certificateProblems(
  cert: CertFacts | undefined,
  o: { verify: boolean; untrusted: string | null; minDaysLeft: number | undefined; now?: number },
): string[] {
  if (!cert) return ['no certificate presented'];
  const problems: string[] = [];
  if (o.verify && o.untrusted) problems.push(`certificate not trusted: ${o.untrusted}`);
  // Validity counts only where asked for (tls: always, default 0 = "not expired"; http:
  // certMinDaysLeft), so an http check with tlsVerify off does not care about the certificate.
  // A certificate before its notBefore is refused by every client, as an expired one is (verified, the
  // handshake already says CERT_NOT_YET_VALID).
  // Five minutes of leeway: a certificate issued just now (ACME sets notBefore to the issue time) read by a
  // collector whose clock is a little behind is not DOWN.
  const from = cert.validFrom ? Date.parse(cert.validFrom) : NaN;
  if (o.minDaysLeft !== undefined && !(o.verify && o.untrusted) && from > (o.now ?? Date.now()) + NOT_BEFORE_LEEWAY_MS)
    problems.push(`certificate not valid yet (valid from ${cert.validFrom})`);
  if (o.minDaysLeft !== undefined && cert.daysLeft < o.minDaysLeft)
    problems.push(
      cert.daysLeft < 0
        ? `certificate expired (valid to ${cert.validTo})`
        : `certificate expires in ${cert.daysLeft} days (minimum ${o.minDaysLeft})`,
    );
  return problems;
}
