import { createTargetPolicy, DEFAULT_DENY_NETWORKS } from '@fleetwatch/domain';
import dnsPromises from 'node:dns/promises';
import { connect, Socket } from 'node:net';
import { httpProbe } from '../probes/http.probe';
import { icmpProbe } from '../probes/icmp.probe';
import { prometheusProbe } from '../probes/prometheus.probe';
import { tcpProbe } from '../probes/tcp.probe';
import { tlsProbe } from '../probes/tls.probe';
import { startDnsServer, type TestDnsServer } from '../probes/testing/dns-server';
import { checkOf, probeContext } from '../probes/testing/probe-context';
import { startCanary, startHttpTarget, type TestTarget } from '../probes/testing/targets';
import type { ProbeContext, ProbeOutcome } from '../probe';
import { policyLookup } from './resolve-allowed';

// The SSRF corpus (SPEC §5, issue 15). A canary listens on 127.0.0.2 — denied here on
// top of the defaults — on the same port as an allowed server on 127.0.0.1, so every
// spelling of 127.0.0.2, every redirect and every DNS answer that leads there would be
// seen as a connection. Its count must stay 0, and each result must name the denial.

const DENIED = /address 127\.0\.0\.2 (of \S+ )?is in denied network 127\.0\.0\.2\/32/;

describe('target policy enforcement: SSRF corpus', () => {
  const policy = createTargetPolicy([...DEFAULT_DENY_NETWORKS, '127.0.0.2/32']);
  let allowed: TestTarget;
  let canary: TestTarget;
  let dns: TestDnsServer;
  let port: number;
  let rebindLookups = 0;

  beforeAll(async () => {
    allowed = await startHttpTarget((req, res) => {
      const to = new URL(req.url ?? '/', 'http://x').searchParams.get('to');
      if (to) res.writeHead(302, { location: to }).end();
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('allowed');
    });
    port = allowed.port;
    canary = await startCanary('127.0.0.2', port);
    dns = await startDnsServer((name, type) => {
      if (type !== 'A') return [];
      switch (name) {
        case 'canary.test':
          return [{ type: 'A', address: '127.0.0.2' }];
        case 'mixed.test':
          return [
            { type: 'A', address: '127.0.0.1' },
            { type: 'A', address: '127.0.0.2' },
          ];
        case 'meta.test':
          return [{ type: 'A', address: '169.254.169.254' }];
        case 'rebind.test':
          // Allowed on the first lookup, the canary ever after.
          return [{ type: 'A', address: rebindLookups++ === 0 ? '127.0.0.1' : '127.0.0.2' }];
        default:
          return null;
      }
    });
  });
  afterAll(async () => {
    await Promise.all([allowed?.close(), canary?.close(), dns?.close()]);
  });
  afterEach(() => expect(canary.connections()).toBe(0));

  const ctx = (timeoutMs = 3_000): ProbeContext => ({
    ...probeContext({ policy, timeoutMs }),
    dnsServers: [dns.address],
  });
  const http = (url: string): Promise<ProbeOutcome> => httpProbe(checkOf({ name: 's', type: 'http', url }), ctx());

  it('the canary counts: a connection to it without the policy is seen (the corpus below can fail)', async () => {
    const open = probeContext({ timeoutMs: 1_000, policy: createTargetPolicy([]) });
    await tcpProbe(checkOf({ name: 's', type: 'tcp', host: '127.0.0.2', port }), open);
    expect(canary.connections()).toBe(1);
    // Reset for the afterEach assertion: a fresh canary on the same address and port.
    await canary.close();
    canary = await startCanary('127.0.0.2', port);
  });

  it.each([
    'http://2130706434:PORT/',
    'http://0x7f000002:PORT/',
    'http://0177.0.0.2:PORT/',
    'http://127.2:PORT/',
    'http://127.0.0.2:PORT/',
    'http://[::ffff:127.0.0.2]:PORT/',
    'http://[::ffff:7f00:2]:PORT/',
    'https://0x7f.0.0.2:PORT/',
  ])('http %s is refused', async (template) => {
    const out = await http(template.replace('PORT', String(port)));
    expect(out).toMatchObject({ ok: false, latencyMs: null });
    expect(out.failureReason).toMatch(DENIED);
  });

  it.each(['2130706434', '0x7f000002', '0177.0.0.2', '127.2', '::ffff:7f00:2', '[::ffff:127.0.0.2]'])(
    'tcp, tls and icmp with host %s are refused',
    async (host) => {
      const tcp = await tcpProbe(checkOf({ name: 's', type: 'tcp', host: host.replace(/^\[|\]$/g, ''), port }), ctx());
      const tls = await tlsProbe(checkOf({ name: 's', type: 'tls', host: host.replace(/^\[|\]$/g, ''), port }), ctx());
      const icmp = await icmpProbe(checkOf({ name: 's', type: 'icmp', host: host.replace(/^\[|\]$/g, '') }), ctx());
      for (const out of [tcp, tls, icmp]) expect(out.failureReason).toMatch(DENIED);
    },
  );

  it.each([
    ['a redirect to the canary', 'http://127.0.0.2:PORT/'],
    ['a redirect to a decimal spelling of it', 'http://2130706434:PORT/x'],
    ['a redirect to a name that resolves to it', 'http://canary.test:PORT/'],
  ])('%s is refused on that hop (the first hop reached the allowed server)', async (_what, to) => {
    const before = allowed.connections();
    const out = await http(`${allowed.origin}/?to=${encodeURIComponent(to.replace('PORT', String(port)))}`);
    expect(out.failureReason).toMatch(DENIED);
    expect(allowed.connections()).toBe(before + 1);
  });

  it('a prometheus scrape redirected to the canary is refused', async () => {
    const to = encodeURIComponent(`http://127.0.0.2:${port}/metrics`);
    const out = await prometheusProbe(
      checkOf({ name: 's', type: 'prometheus', url: `${allowed.origin}/?to=${to}` }),
      ctx(),
    );
    expect(out.failureReason).toMatch(DENIED);
  });

  it('a name resolving to the canary (through the configured resolver) is refused, for every probe', async () => {
    expect((await http(`http://canary.test:${port}/`)).failureReason).toBe(
      'address 127.0.0.2 of canary.test is in denied network 127.0.0.2/32',
    );
    const tcp = await tcpProbe(checkOf({ name: 's', type: 'tcp', host: 'canary.test', port }), ctx());
    expect(tcp.failureReason).toMatch(DENIED);
    const icmp = await icmpProbe(checkOf({ name: 's', type: 'icmp', host: 'canary.test' }), ctx());
    expect(icmp.failureReason).toMatch(DENIED);
  });

  it('a name with one allowed and one denied answer is refused as a whole', async () => {
    const out = await tcpProbe(checkOf({ name: 's', type: 'tcp', host: 'mixed.test', port }), ctx());
    expect(out.failureReason).toMatch(DENIED);
  });

  it('rebinding: the connection goes to the address that was checked, looked up once per run', async () => {
    rebindLookups = 0;
    const before = allowed.connections();
    const first = await http(`http://rebind.test:${port}/`);
    // One A lookup, answered 127.0.0.1 (allowed): that address and no other was connected to.
    expect(first).toMatchObject({ ok: true, facts: { status: 200, bodyText: 'allowed' } });
    expect(rebindLookups).toBe(1);
    expect(allowed.connections()).toBe(before + 1);
    // The name now answers 127.0.0.2: the next run checks that answer and refuses it.
    const second = await http(`http://rebind.test:${port}/`);
    expect(second.failureReason).toBe('address 127.0.0.2 of rebind.test is in denied network 127.0.0.2/32');
    expect(rebindLookups).toBe(2);
    expect(allowed.connections()).toBe(before + 1);
  });

  it("policyLookup as net.connect's lookup: a name resolving to the canary fails the connect, an allowed one connects", async () => {
    const lookup = policyLookup(policy, { resolver: [dns.address] });
    const attempt = (host: string) =>
      new Promise<string>((resolve) => {
        const s = connect({ host, port, lookup });
        s.once('connect', () => resolve(`connected ${s.remoteAddress}`));
        s.once('error', (err) => resolve(err.message));
        s.once('connect', () => s.destroy());
      });
    expect(await attempt('canary.test')).toBe('address 127.0.0.2 of canary.test is in denied network 127.0.0.2/32');
    rebindLookups = 0;
    expect(await attempt('rebind.test')).toBe('connected 127.0.0.1');
  });

  describe('cloud metadata (default policy) is refused without any network traffic', () => {
    const metadataPolicy = createTargetPolicy(DEFAULT_DENY_NETWORKS);
    const quiet = (): ProbeContext => ({
      ...probeContext({ policy: metadataPolicy, timeoutMs: 3_000 }),
      dnsServers: [dns.address],
    });
    let connects: jest.SpyInstance;
    let lookups: jest.SpyInstance;
    beforeEach(() => {
      // Pass-through spies: they only count socket connects and system lookups.
      connects = jest.spyOn(Socket.prototype, 'connect');
      lookups = jest.spyOn(dnsPromises, 'lookup');
    });
    afterEach(() => {
      connects.mockRestore();
      lookups.mockRestore();
    });

    it('control: the spies do see a system lookup and a connect', async () => {
      const ctl = probeContext({ policy: metadataPolicy });
      const out = await tcpProbe(checkOf({ name: 's', type: 'tcp', host: 'localhost', port }), ctl);
      expect(out.failureReason ?? 'connected').toMatch(/connected|ECONNREFUSED ::1/);
      expect(lookups).toHaveBeenCalled();
      expect(connects).toHaveBeenCalled();
    });

    it.each([
      'http://169.254.169.254/latest/meta-data/',
      'http://2852039166/',
      'http://0xA9FEA9FE/',
      'http://0251.0376.0251.0376/',
      'http://169.254.43518/',
      'http://[::ffff:169.254.169.254]/',
      'http://[::ffff:a9fe:a9fe]/',
      'http://[64:ff9b::a9fe:a9fe]/',
      'http://metadata.google.internal/computeMetadata/v1/',
      'http://metadata/',
    ])('%s', async (url) => {
      const queries = dns.queries.length;
      const out = await httpProbe(checkOf({ name: 's', type: 'http', url }), quiet());
      expect(out.ok).toBe(false);
      expect(out.failureReason).toMatch(
        /^(address 169\.254\.169\.254 (of \S+ )?is in denied network 169\.254\.0\.0\/16|address 64:ff9b::a9fe:a9fe is in denied network 169\.254\.0\.0\/16|name metadata(\.google\.internal)? is denied by the target policy)/,
      );
      expect(connects).not.toHaveBeenCalled();
      expect(lookups).not.toHaveBeenCalled();
      expect(dns.queries.length).toBe(queries);
    });

    it('tcp 2852039166:80 and a name answering 169.254.169.254 (one query, no connect)', async () => {
      const tcp = await tcpProbe(checkOf({ name: 's', type: 'tcp', host: '2852039166', port: 80 }), quiet());
      expect(tcp.failureReason).toBe('address 169.254.169.254 of 2852039166 is in denied network 169.254.0.0/16');
      const named = await tcpProbe(checkOf({ name: 's', type: 'tcp', host: 'meta.test', port: 80 }), quiet());
      expect(named.failureReason).toBe('address 169.254.169.254 of meta.test is in denied network 169.254.0.0/16');
      expect(connects).not.toHaveBeenCalled();
    });
  });
});
