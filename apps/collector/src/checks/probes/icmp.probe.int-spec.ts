import { icmpProbe, parsePingOutput } from './icmp.probe';
import { checkOf, probeContext } from './testing/probe-context';

// The real system ping (iputils-ping; the CI machine and the collector image install it).

describe('icmp probe (system ping)', () => {
  it('127.0.0.1 answers: UP, latency is the average RTT', async () => {
    const out = await icmpProbe(checkOf({ name: 'p', type: 'icmp', host: '127.0.0.1', count: 2 }), probeContext());
    expect(out.failureReason).toBeUndefined();
    expect(out.ok).toBe(true);
    expect(out.facts.result).toMatchObject({ address: '127.0.0.1', transmitted: 2, received: 2, lossPct: 0 });
    expect(out.latencyMs).toBe(out.facts.result?.rttAvgMs);
    expect(out.latencyMs).toBeGreaterThan(0);
    expect(out.latencyMs).toBeLessThan(100);
  });

  it('::1 over IPv6, and a literal in another form (0x7f.1) is pinged as the address it denotes', async () => {
    const v6 = await icmpProbe(checkOf({ name: 'p', type: 'icmp', host: '::1' }), probeContext());
    expect(v6).toMatchObject({ ok: true, facts: { result: { address: '::1', received: 1 } } });
    const hex = await icmpProbe(checkOf({ name: 'p', type: 'icmp', host: '0x7f.1' }), probeContext());
    expect(hex).toMatchObject({ ok: true, facts: { result: { address: '127.0.0.1' } } });
  });

  it('a denied address is refused before ping runs', async () => {
    const out = await icmpProbe(checkOf({ name: 'p', type: 'icmp', host: '2852039166' }), probeContext());
    expect(out).toEqual({
      ok: false,
      latencyMs: null,
      failureReason: 'address 169.254.169.254 of 2852039166 is in denied network 169.254.0.0/16',
      facts: {},
    });
  });
});

describe('parsePingOutput', () => {
  it('reads iputils summaries, with and without replies', () => {
    expect(
      parsePingOutput(
        '--- 10.0.0.1 ping statistics ---\n3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms\nrtt min/avg/max/mdev = 0.041/0.052/0.063/0.011 ms\n',
      ),
    ).toEqual({ transmitted: 3, received: 2, lossPct: 33.3, rttMinMs: 0.041, rttAvgMs: 0.052, rttMaxMs: 0.063 });
    expect(parsePingOutput('1 packets transmitted, 0 received, 100% packet loss, time 0ms\n')).toEqual({
      transmitted: 1,
      received: 0,
      lossPct: 100,
      rttMinMs: null,
      rttAvgMs: null,
      rttMaxMs: null,
    });
    expect(parsePingOutput('ping: socket: Operation not permitted')).toBeNull();
  });
});
