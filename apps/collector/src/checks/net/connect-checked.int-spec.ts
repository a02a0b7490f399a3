import { createTargetPolicy, DEFAULT_DENY_NETWORKS } from '@fleetwatch/domain';
import { httpProbe } from '../probes/http.probe';
import { tcpProbe } from '../probes/tcp.probe';
import { tlsProbe } from '../probes/tls.probe';
import { startDnsServer, type TestDnsServer } from '../probes/testing/dns-server';
import { checkOf, probeContext } from '../probes/testing/probe-context';
import { startCanary, startHttpsTarget, startHttpTarget, type TestTarget } from '../probes/testing/targets';
import { selfSignedCertificate } from '../probes/testing/tls-certs';
import type { ProbeContext } from '../probe';
import { connect, Socket } from 'node:net';
import { ATTEMPT_DELAY_MS, firstConnected, interleaveFamilies } from './connect-checked';

// A name with several addresses is connected to in turn (RFC 8305, as Node's autoSelectFamily does for a plain
// connect): only the first was ever tried, so `localhost` (→ ::1 first on Debian and in containers) against an
// IPv4-only server, or a round-robin name with one address down, read DOWN. The next address starts when the one
// before fails, or ATTEMPT_DELAY_MS after it began (one that never answers the SYN does not cost the check its
// timeout); TLS runs over the connection won.

describe('connectChecked: every address of a name, in turn', () => {
  let web: TestTarget;
  let secure: TestTarget;
  let silent: TestTarget;
  let dns: TestDnsServer;

  beforeAll(async () => {
    web = await startHttpTarget((_req, res) => res.writeHead(200).end('up'));
    const cert = selfSignedCertificate({ notAfter: new Date(Date.now() + 30 * 86_400_000) });
    secure = await startHttpsTarget(cert, (_req, res) => res.writeHead(200).end('up'));
    // Accepts on the TLS server's port and never answers: a handshake there waits for ever.
    silent = await startCanary('127.0.0.5', secure.port);
    dns = await startDnsServer((name, type) => {
      if (type !== 'A') return [];
      switch (name) {
        case 'first-down.test': // nothing listens on 127.0.0.3
          return [
            { type: 'A', address: '127.0.0.3' },
            { type: 'A', address: '127.0.0.1' },
          ];
        case 'all-down.test':
          return [
            { type: 'A', address: '127.0.0.3' },
            { type: 'A', address: '127.0.0.4' },
          ];
        case 'first-silent.test':
          return [
            { type: 'A', address: '127.0.0.5' },
            { type: 'A', address: '127.0.0.1' },
          ];
        default:
          return null;
      }
    });
  });
  afterAll(async () => {
    await Promise.all([web?.close(), secure?.close(), silent?.close(), dns?.close()]);
  });

  const ctx = (timeoutMs = 5_000): ProbeContext => ({
    ...probeContext({ policy: createTargetPolicy([...DEFAULT_DENY_NETWORKS]), timeoutMs }),
    dnsServers: [dns.address],
  });

  it('a first address that refuses: the next one is connected to (tcp and http checks are UP)', async () => {
    const tcp = await tcpProbe(checkOf({ name: 't', type: 'tcp', host: 'first-down.test', port: web.port }), ctx());
    expect(tcp).toMatchObject({ ok: true });
    const before = web.connections();
    const http = await httpProbe(
      checkOf({ name: 'h', type: 'http', url: `http://first-down.test:${web.port}/` }),
      ctx(),
    );
    expect(http).toMatchObject({ ok: true, facts: { status: 200 } });
    expect(web.connections()).toBe(before + 1);
  });

  it('every address refuses: the first address is named, and how many others failed', async () => {
    const out = await tcpProbe(checkOf({ name: 't', type: 'tcp', host: 'all-down.test', port: web.port }), ctx());
    expect(out.ok).toBe(false);
    expect(out.failureReason).toMatch(/127\.0\.0\.3/);
    expect(out.failureReason).toMatch(/and 1 other address of all-down\.test failed/);
  });

  it('an address that never answers the SYN: the next starts after the attempt delay and wins; the first is closed', async () => {
    const opened: Socket[] = [];
    const open = (address: string, port: number): Socket => {
      // 10.0.0.1 stands for an address whose SYN is dropped: a socket that never connects nor fails.
      const s = address === '10.0.0.1' ? new Socket() : connect({ host: address, port });
      opened.push(s);
      return s;
    };
    const started = Date.now();
    const won = await firstConnected(
      { host: 'dual.test', port: web.port, signal: AbortSignal.timeout(5_000) },
      [
        { address: '10.0.0.1', family: 4 },
        { address: '127.0.0.1', family: 4 },
      ],
      open,
    );
    const took = Date.now() - started;
    expect(won.target.address).toBe('127.0.0.1');
    expect(took).toBeGreaterThanOrEqual(ATTEMPT_DELAY_MS - 10);
    expect(took).toBeLessThan(3_000);
    expect(opened[0].destroyed).toBe(true);
    won.socket.destroy();
  });

  it('the stagger is on the connect, not the handshake: an address that accepts and never answers TLS is the one', async () => {
    const out = await tlsProbe(
      checkOf({ name: 's', type: 'tls', host: 'first-silent.test', port: secure.port, tlsVerify: false }),
      ctx(1_000),
    );
    // As curl and Node's autoSelectFamily: the connection that was accepted is the check's — no second handshake.
    expect(out).toMatchObject({ ok: false, failureReason: 'timed out after 1000 ms' });
    expect(secure.connections()).toBe(0);
  });

  it('orders addresses by alternating families, each family in its order', () => {
    const v4 = (n: number) => ({ address: `10.0.0.${n}`, family: 4 as const });
    const v6 = (n: number) => ({ address: `2001:db8::${n}`, family: 6 as const });
    expect(interleaveFamilies([v6(1), v6(2), v4(1), v4(2), v4(3)])).toEqual([v6(1), v4(1), v6(2), v4(2), v4(3)]);
    expect(interleaveFamilies([v4(1), v4(2)])).toEqual([v4(1), v4(2)]);
  });
});
