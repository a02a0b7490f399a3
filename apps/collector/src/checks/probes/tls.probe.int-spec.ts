import { once } from 'node:events';
import { createSecureContext, createServer as createTlsServer, type Server } from 'node:tls';
import { createServer as createPlainServer, type AddressInfo } from 'node:net';
import { startCanary, type TestTarget } from './testing/targets';
import { checkOf, probeContext } from './testing/probe-context';
import { certificateForDays, selfSignedCertificate, type TestCertificate } from './testing/tls-certs';
import { tlsProbe } from './tls.probe';

// Real TLS servers with self-signed certificates made by openssl: one valid for a year,
// one expiring in 10 days, one already expired.

interface TlsTarget {
  port: number;
  server: Server;
  /** SNI names received (read from the ClientHello, before the server answers). */
  sni: string[];
  handshakes: () => number;
}

async function startTls(cert: TestCertificate): Promise<TlsTarget> {
  const sni: string[] = [];
  let hellos = 0;
  const context = createSecureContext({ key: cert.key, cert: cert.cert });
  const server = createTlsServer(
    {
      key: cert.key,
      cert: cert.cert,
      // Called for a ClientHello that carries SNI, before the server answers it.
      SNICallback: (name, cb) => {
        sni.push(name);
        cb(null, context);
      },
    },
    (s) => s.end(),
  );
  server.on('connection', () => hellos++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, server, sni, handshakes: () => hellos };
}

describe('tls probe (real handshakes)', () => {
  let year: TlsTarget;
  let tenDays: TlsTarget;
  let expired: TlsTarget;
  let notYet: TlsTarget;
  let silent: TestTarget;

  beforeAll(async () => {
    year = await startTls(certificateForDays(365));
    tenDays = await startTls(certificateForDays(10, { cn: 'soon.test', altNames: 'DNS:soon.test' }));
    expired = await startTls(selfSignedCertificate({ notAfter: new Date(Date.now() - 3_600_000) }));
    notYet = await startTls(
      selfSignedCertificate({
        notBefore: new Date(Date.now() + 5 * 86_400_000),
        notAfter: new Date(Date.now() + 60 * 86_400_000),
      }),
    );
    silent = await startCanary('127.0.0.1');
  });
  afterAll(async () => {
    for (const s of [year, tenDays, expired, notYet]) s?.server.close();
    await silent.close();
  });

  const tls = (port: number, extra: Record<string, unknown> = {}) =>
    checkOf({ name: 't', type: 'tls', host: '127.0.0.1', port, ...extra });

  it('reports the certificate: subject, issuer, validTo and whole days left', async () => {
    const out = await tlsProbe(tls(year.port, { tlsVerify: false }), probeContext());
    expect(out.ok).toBe(true);
    expect(out.facts.cert).toMatchObject({
      subject: 'CN=localhost, O=Fleetwatch Test',
      issuer: 'CN=localhost, O=Fleetwatch Test',
      authorized: false,
    });
    expect(out.facts.cert?.daysLeft).toBe(365);
    expect(new Date(out.facts.cert?.validTo ?? 0).getTime()).toBeGreaterThan(Date.now() + 365 * 86_400_000);
    expect(out.facts.result).toMatchObject({ protocol: expect.stringMatching(/^TLSv1\.[23]$/) });
    expect(out.latencyMs).toBeGreaterThan(0);
  });

  it('tlsVerify (the default) makes a self-signed certificate DOWN, still showing it', async () => {
    const out = await tlsProbe(tls(year.port), probeContext());
    expect(out).toMatchObject({
      ok: false,
      failureReason: 'certificate not trusted: DEPTH_ZERO_SELF_SIGNED_CERT',
      facts: { cert: { subject: 'CN=localhost, O=Fleetwatch Test', authorized: false } },
    });
  });

  it('minDaysLeft: 10 days (and an hour) left passes 10 and fails 11', async () => {
    const at10 = await tlsProbe(tls(tenDays.port, { tlsVerify: false, minDaysLeft: 10 }), probeContext());
    expect(at10).toMatchObject({ ok: true, facts: { cert: { daysLeft: 10 } } });
    const at11 = await tlsProbe(tls(tenDays.port, { tlsVerify: false, minDaysLeft: 11 }), probeContext());
    expect(at11).toMatchObject({ ok: false, failureReason: 'certificate expires in 10 days (minimum 11)' });
  });

  it('servername is sent as SNI; an address host sends none', async () => {
    tenDays.sni.length = 0;
    const before = tenDays.handshakes();
    await tlsProbe(tls(tenDays.port, { servername: 'soon.test', tlsVerify: false }), probeContext());
    const byAddress = await tlsProbe(tls(tenDays.port, { tlsVerify: false }), probeContext());
    expect(tenDays.handshakes()).toBe(before + 2);
    expect(tenDays.sni).toEqual(['soon.test']);
    expect(byAddress.facts.cert?.subject).toBe('CN=soon.test, O=Fleetwatch Test');
  });

  it('an expired certificate is DOWN by default (minDaysLeft 0), even unverified', async () => {
    const out = await tlsProbe(tls(expired.port, { tlsVerify: false }), probeContext());
    expect(out.ok).toBe(false);
    expect(out.facts.cert?.daysLeft).toBeLessThan(0);
    expect(out.failureReason).toMatch(/^certificate expired \(valid to \d{4}-/);
  });

  it('a certificate not valid yet is DOWN, even unverified (every client refuses it, as an expired one)', async () => {
    const out = await tlsProbe(tls(notYet.port, { tlsVerify: false }), probeContext());
    expect(out.ok).toBe(false);
    expect(out.failureReason).toMatch(/^certificate not valid yet \(valid from \d{4}-/);
    expect(Date.parse(out.facts.cert?.validFrom ?? '')).toBeGreaterThan(Date.now());
    // Verified, the handshake's own reason says it (once).
    const verified = await tlsProbe(tls(notYet.port), probeContext());
    expect(verified.failureReason).toBe('certificate not trusted: CERT_NOT_YET_VALID');
  });

  it("a port that does not speak TLS: a short reason, not OpenSSL's thread id, source file and line break", async () => {
    const plain = createPlainServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    try {
      const out = await tlsProbe(tls((plain.address() as AddressInfo).port), probeContext());
      // Was "809CE22A407F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/…:350:\n".
      expect(out).toEqual({
        ok: false,
        latencyMs: null,
        failureReason: 'TLS: wrong version number (the port does not speak TLS?)',
        facts: {},
      });
    } finally {
      plain.close();
    }
  });

  it('a peer that never answers the handshake times out at the check timeout', async () => {
    const started = Date.now();
    const out = await tlsProbe(tls(silent.port), probeContext({ timeoutMs: 400 }));
    expect(out).toEqual({ ok: false, latencyMs: null, failureReason: 'timed out after 400 ms', facts: {} });
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
