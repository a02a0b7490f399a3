import { dnsProbe, sameAnswer, splitResolver } from './dns.probe';
import { startDnsServer, type TestDnsServer, type TestRecord } from './testing/dns-server';
import { checkOf, probeContext } from './testing/probe-context';

// A real DNS server (dns2, UDP on 127.0.0.1) answers the probe's real queries.

const ZONE: Record<string, TestRecord[]> = {
  'app.test': [
    { type: 'A', address: '10.1.2.3' },
    { type: 'A', address: '10.1.2.4' },
    { type: 'AAAA', address: '2001:db8::1' },
    { type: 'MX', priority: 10, exchange: 'mail.app.test' },
    { type: 'MX', priority: 20, exchange: 'backup.app.test' },
    { type: 'TXT', data: 'v=spf1 -all' },
    { type: 'TXT', data: ['part one, ', 'part two'] },
  ],
  'www.app.test': [{ type: 'CNAME', domain: 'app.test' }],
  'empty.test': [],
};

describe('dns probe (real queries to a local server)', () => {
  let dns: TestDnsServer;
  beforeAll(async () => {
    dns = await startDnsServer((name, type) => (name in ZONE ? ZONE[name].filter((r) => r.type === type) : null));
  });
  afterAll(() => dns.close());

  const check = (extra: Record<string, unknown>) =>
    checkOf({ name: 'd', type: 'dns', query: 'app.test', resolver: dns.address, ...extra });

  it('A: every address, in the order served', async () => {
    const out = await dnsProbe(check({}), probeContext());
    expect(out).toMatchObject({ ok: true, facts: { answers: ['10.1.2.3', '10.1.2.4'] } });
    expect(out.latencyMs).toBeGreaterThanOrEqual(0);
    expect(dns.queries.at(-1)).toEqual({ name: 'app.test', type: 'A' });
  });

  it('AAAA, MX (priority and FQDN) and TXT (strings of one record joined)', async () => {
    expect((await dnsProbe(check({ recordType: 'AAAA' }), probeContext())).facts.answers).toEqual(['2001:db8::1']);
    expect((await dnsProbe(check({ recordType: 'MX' }), probeContext())).facts.answers).toEqual([
      '10 mail.app.test.',
      '20 backup.app.test.',
    ]);
    expect((await dnsProbe(check({ recordType: 'TXT' }), probeContext())).facts.answers).toEqual([
      'v=spf1 -all',
      'part one, part two',
    ]);
    expect(
      (await dnsProbe(check({ query: 'www.app.test', recordType: 'CNAME' }), probeContext())).facts.answers,
    ).toEqual(['app.test.']);
  });

  it('expected answers: all present is UP (case, final dot and address spelling aside)', async () => {
    const up = await dnsProbe(check({ recordType: 'MX', expected: ['10 MAIL.app.test'] }), probeContext());
    expect(up.ok).toBe(true);
    const v6 = await dnsProbe(check({ recordType: 'AAAA', expected: ['2001:DB8:0:0::1'] }), probeContext());
    expect(v6.ok).toBe(true);
  });

  it('TXT data is compared exactly: another case or a final dot is another value (DOWN)', async () => {
    const txt = (expected: string[]) => dnsProbe(check({ recordType: 'TXT', expected }), probeContext());
    expect(await txt(['v=spf1 -all', 'part one, part two'])).toMatchObject({ ok: true });
    expect(await txt(['V=SPF1 -ALL'])).toMatchObject({
      ok: false,
      failureReason: 'expected "V=SPF1 -ALL" not in answers [v=spf1 -all, part one, part two]',
    });
    expect(await txt(['v=spf1 -all.'])).toMatchObject({ ok: false });
    expect(await txt(['PART ONE, PART TWO'])).toMatchObject({ ok: false });
    // Whitespace around an expected entry (pasted, YAML) was always trimmed: an existing check stays UP.
    expect(await txt([' v=spf1 -all\n'])).toMatchObject({ ok: true });
  });

  it('an expected answer missing is DOWN, saying which', async () => {
    const out = await dnsProbe(check({ expected: ['10.1.2.3', '10.9.9.9'] }), probeContext());
    expect(out).toMatchObject({
      ok: false,
      failureReason: 'expected "10.9.9.9" not in answers [10.1.2.3, 10.1.2.4]',
      facts: { answers: ['10.1.2.3', '10.1.2.4'] },
    });
  });

  it('no records of the type is DOWN; NXDOMAIN is DOWN with the resolver error', async () => {
    const none = await dnsProbe(check({ query: 'empty.test' }), probeContext());
    expect(none).toMatchObject({ ok: false, failureReason: 'no A records for empty.test', facts: { answers: [] } });
    const nx = await dnsProbe(check({ query: 'missing.test' }), probeContext());
    expect(nx).toMatchObject({ ok: false, latencyMs: null, failureReason: 'queryA ENOTFOUND missing.test' });
  });

  it('without a resolver on the check, COLLECTOR_DNS_SERVERS (ctx.dnsServers) is asked', async () => {
    const before = dns.queries.length;
    const out = await dnsProbe(
      checkOf({ name: 'd', type: 'dns', query: 'app.test', recordType: 'TXT' }),
      probeContext({ dnsServers: [dns.address] }),
    );
    expect(out.ok).toBe(true);
    expect(dns.queries.length).toBe(before + 1);
  });

  it('a resolver in a denied network is refused before any query', async () => {
    const port = dns.address.split(':')[1];
    const before = dns.queries.length;
    const out = await dnsProbe(check({ resolver: `2130706433:${port}` }), probeContext({ deny: ['127.0.0.0/8'] }));
    expect(out).toMatchObject({
      ok: false,
      failureReason: 'address 127.0.0.1 of 2130706433 is in denied network 127.0.0.0/8',
    });
    expect(dns.queries.length).toBe(before);
  });

  it.each(['127.0.0.1:0', '[::1]:0', '127.0.0.1:99999'])(
    'a stored resolver %s (refused by the schema since) fails the run, not the collector',
    async (resolver) => {
      // Port 0 reached c-ares's setServers, whose native assertion aborted the whole process.
      const stored = { ...check({}), resolver };
      const out = await dnsProbe(stored, probeContext());
      expect(out).toMatchObject({ ok: false, failureReason: expect.stringContaining('the port must be 1–65535') });
    },
  );

  it('a resolver that never answers times out at the check timeout', async () => {
    const silent = await startDnsServer(() => {
      throw new Error('never answers');
    });
    try {
      const out = await dnsProbe(check({ resolver: silent.address }), probeContext({ timeoutMs: 400 }));
      expect(out).toMatchObject({ ok: false, failureReason: 'timed out after 400 ms' });
    } finally {
      await silent.close();
    }
  });
});

describe('dns probe: what a server answers beside the question', () => {
  let dns: TestDnsServer;
  beforeAll(async () => {
    dns = await startDnsServer((name, type) => {
      // A server answering every question about this name with its A record (some appliances and proxies do).
      if (name === 'plain.test') return [{ type: 'A', address: '10.9.9.9' }];
      if (name === '7.2.0.192.in-addr.arpa' && type === 'PTR') return [{ type: 'PTR', domain: 'host.test' }];
      if (name === '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa' && type === 'PTR')
        return [{ type: 'PTR', domain: 'six.test' }];
      return null;
    });
  });
  afterAll(() => dns.close());
  const check = (extra: Record<string, unknown>) =>
    checkOf({ name: 'd', type: 'dns', query: 'plain.test', resolver: dns.address, ...extra });

  it('a CNAME question answered with an A record is no CNAME: DOWN, not the name as its own alias', async () => {
    // c-ares gave the queried name itself: UP, and `expected: ["plain.test"]` matched.
    const out = await dnsProbe(check({ recordType: 'CNAME', expected: ['plain.test'] }), probeContext());
    expect(out).toMatchObject({ ok: false, failureReason: 'no CNAME records for plain.test', facts: { answers: [] } });
    expect(dns.queries.at(-1)).toEqual({ name: 'plain.test', type: 'CNAME' });
  });

  it('a PTR check of an address asks for its reverse name (IPv4 and IPv6)', async () => {
    // The literal was asked for ("queryPtr ENOTFOUND 192.0.2.7"): every run DOWN.
    const v4 = await dnsProbe(
      check({ query: '192.0.2.7', recordType: 'PTR', expected: ['host.test'] }),
      probeContext(),
    );
    expect(v4).toMatchObject({ ok: true, facts: { answers: ['host.test.'] } });
    expect(dns.queries.at(-1)).toEqual({ name: '7.2.0.192.in-addr.arpa', type: 'PTR' });
    const v6 = await dnsProbe(check({ query: '2001:db8::1', recordType: 'PTR' }), probeContext());
    expect(v6).toMatchObject({ ok: true, facts: { answers: ['six.test.'] } });
    const name = await dnsProbe(check({ query: '7.2.0.192.in-addr.arpa', recordType: 'PTR' }), probeContext());
    expect(name).toMatchObject({ ok: true, facts: { answers: ['host.test.'] } });
  });
});

describe('dns probe helpers', () => {
  it.each([
    ['10.0.0.53', { host: '10.0.0.53', port: 53 }],
    ['10.0.0.53:5353', { host: '10.0.0.53', port: 5353 }],
    ['ns.example:53', { host: 'ns.example', port: 53 }],
    ['[2001:db8::53]:5353', { host: '2001:db8::53', port: 5353 }],
    ['2001:db8::53', { host: '2001:db8::53', port: 53 }],
  ])('splitResolver(%s)', (text, out) => expect(splitResolver(text)).toEqual(out));

  it('sameAnswer compares names without case or final dot, addresses as addresses', () => {
    expect(sameAnswer('mail.example.', 'MAIL.EXAMPLE')).toBe(true);
    expect(sameAnswer('2001:db8::1', '2001:0db8:0::1')).toBe(true);
    expect(sameAnswer('10.0.0.1', '10.0.0.10')).toBe(false);
  });
});
