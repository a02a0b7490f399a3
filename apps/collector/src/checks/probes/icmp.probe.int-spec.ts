import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { icmpProbe, parsePingOutput, pingCount, pingDeadline } from './icmp.probe';
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

/**
 * An address that drops echo requests here (no reply and no error for a second), or null: none is silent on every
 * machine (a TEST-NET address may be unroutable, answered by a router's unreachable, or dropped).
 */
async function silentAddress(): Promise<string | null> {
  for (const address of ['192.0.2.77', '198.51.100.77', '203.0.113.77', '10.255.255.77']) {
    const started = Date.now();
    const out = await promisify(execFile)('ping', ['-n', '-q', '-c', '1', '-W', '1', '-w', '1', address], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    if (/ 0 received/.test(out.stdout) && !/errors/.test(out.stdout) && Date.now() - started >= 900) return address;
  }
  return null;
}

/**
 * A `ping` on PATH that runs the real one, with the probe's arguments, in a fresh network namespace where 192.0.2.0/24
 * is routed to the loopback and never answered (not forwarded): a silent host on any machine that may `unshare -n`
 * (root, as CI and here) — no address of the host's own network need happen to drop echoes. Null where it may not.
 */
function silentNamespacePing(): { dir: string; address: string } | null {
  let realPing: string;
  try {
    execFileSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
    realPing = execFileSync('sh', ['-c', 'command -v ping'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'fw-silent-ping-'));
  const setup = 'ip link set lo up && ip addr add 192.0.2.1/32 dev lo && ip route add 192.0.2.0/24 dev lo';
  writeFileSync(join(dir, 'ping'), `#!/bin/sh\nexec unshare -n sh -c '${setup} && exec "$0" "$@"' ${realPing} "$@"\n`);
  chmodSync(join(dir, 'ping'), 0o755);
  return { dir, address: '192.0.2.77' };
}

describe('icmp probe: a host that never answers', () => {
  let namespaced: { dir: string; address: string } | null = null;
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
    if (namespaced) rmSync(namespaced.dir, { recursive: true, force: true });
  });

  it('is DOWN with "no echo reply" and its counts before the check times out, not "timed out"', async () => {
    namespaced = silentNamespacePing();
    if (namespaced) process.env.PATH = `${namespaced.dir}:${path ?? '/usr/bin:/bin'}`;
    const address = namespaced?.address ?? (await silentAddress());
    if (!address) {
      console.warn('no silent address on this machine and no `unshare -n`: the 100 % loss run is not shown');
      return;
    }
    const started = Date.now();
    const out = await icmpProbe(
      checkOf({ name: 'p', type: 'icmp', host: address, count: 2 }),
      probeContext({ timeoutMs: 2_000 }),
    );
    expect(out).toMatchObject({
      ok: false,
      failureReason: expect.stringMatching(
        new RegExp(`^no echo reply from ${address.replace(/\./g, '\\.')} \\(\\d+ sent\\)$`),
      ),
      facts: { result: { address, received: 0, lossPct: 100 } },
    });
    expect(Date.now() - started).toBeLessThan(2_000);
  }, 15_000);

  it('under 1.5 s of timeout (a fractional one, a retry cut short), more echoes than fit are not sent', async () => {
    namespaced = silentNamespacePing();
    if (!namespaced) {
      console.warn('no `unshare -n` on this machine: the sub-second run is not shown');
      return;
    }
    process.env.PATH = `${namespaced.dir}:${path ?? '/usr/bin:/bin'}`;
    const started = Date.now();
    // 10 echoes 0.2 s apart take 1.8 s: past a 1.2 s timeout, whatever -W is.
    const out = await icmpProbe(
      checkOf({ name: 'p', type: 'icmp', host: namespaced.address, count: 10 }),
      probeContext({ timeoutMs: 1_200 }),
    );
    expect(out).toMatchObject({
      ok: false,
      failureReason: expect.stringMatching(/^no echo reply from 192\.0\.2\.77 /),
    });
    expect(Date.now() - started).toBeLessThan(1_200);
  }, 15_000);

  it("ping's deadline ends before the check's timeout, also under a second", () => {
    expect(pingDeadline(10_000, 1)).toEqual(['-W', '1', '-w', '9']);
    expect(pingDeadline(2_000, 3)).toEqual(['-W', '1', '-w', '1']);
    expect(pingDeadline(1_000, 1)).toEqual(['-W', '0.5']);
    expect(pingDeadline(1_000, 2)).toEqual(['-W', '0.3']);
    expect(pingDeadline(100, 5)).toEqual(['-W', '0.1']);
    // Under 1.5 s, only the echoes that fit the budget (0.2 s apart, 0.1 s after the last).
    expect([pingCount(10_000, 10), pingCount(1_500, 10), pingCount(1_200, 10), pingCount(1_000, 5)]).toEqual([
      10, 10, 4, 3,
    ]);
    expect([pingCount(1_000, 1), pingCount(100, 5)]).toEqual([1, 1]);
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
