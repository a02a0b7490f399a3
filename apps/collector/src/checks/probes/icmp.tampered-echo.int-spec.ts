import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkResultPayloadSchema } from '@fleetwatch/contracts';
import { createIsolatedVhost, waitFor } from '@fleetwatch/testing';
import { CollectorHarness, definitions, ResultTap, seedAssignment } from '../checks.int-helpers';
import { icmpProbe } from './icmp.probe';
import { checkOf, probeContext } from './testing/probe-context';

// The real system ping against a target that alters the data of its echo replies. ping (iputils) counts a reply's
// round trip from the send time it wrote into the echo's data, as the target sends it back: a target (or a middlebox)
// that zeroes that data made ping report an RTT of decades (1.8e12 ms), past what check.result carries (a day), and
// every result of the check was discarded from the spool as unpublishable — the check silent at that location while
// the host answered every echo. One that shifts the time back an hour gave a latency of an hour, stored as measured.
//
// The target: a responder on a raw socket in a network namespace of ping's own (the kernel's echo replies turned
// off there), started by a `ping` on PATH that runs the real one inside it — root (`unshare -n`) and python3 needed,
// as CI and this machine have; skipped where they are not.

jest.setTimeout(120_000);

const RESPONDER = `
import os, socket, struct, sys
mode = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
def csum(b):
    if len(b) % 2: b += b'\\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
pid = os.fork()
if pid == 0:
    s.close(); os.execv(sys.argv[2], sys.argv[2:])
s.settimeout(0.1)
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done: sys.exit(os.waitstatus_to_exitcode(status))
    try: pkt, addr = s.recvfrom(65535)
    except socket.timeout: continue
    icmp = pkt[(pkt[0] & 15) * 4:]
    if icmp[0] != 8: continue
    # ping's data starts with its send time (struct timeval, host order): zeroed, or an hour earlier.
    sec, usec = struct.unpack('<qq', icmp[8:24])
    stamp = struct.pack('<qq', 0, 0) if mode == 'zero' else struct.pack('<qq', sec - 3600, usec)
    data = stamp + icmp[24:]
    c = csum(struct.pack('!BBH', 0, 0, 0) + icmp[4:8] + data)
    s.sendto(struct.pack('!BBH', 0, 0, c) + icmp[4:8] + data, addr)
`;

/** A directory holding a `ping` whose echoes a tampering target answers (`mode`), or null where it cannot run. */
function tamperingPing(mode: 'zero' | 'hour'): string | null {
  let realPing: string;
  let python: string;
  let ip: string;
  try {
    execFileSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
    realPing = execFileSync('sh', ['-c', 'command -v ping'], { encoding: 'utf8' }).trim();
    ip = execFileSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).trim();
    python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'fw-tampered-echo-'));
  writeFileSync(join(dir, 'responder.py'), RESPONDER);
  const setup = `${ip} link set lo up && echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all`;
  writeFileSync(
    join(dir, 'ping'),
    `#!/bin/sh\nexec unshare -n sh -c '${setup} && exec "$0" "$@"' ${python} ${join(dir, 'responder.py')} ${mode} ${realPing} "$@"\n`,
  );
  chmodSync(join(dir, 'ping'), 0o755);
  return dir;
}

/**
 * Where the tampering target cannot run: skipped with a warning, but not as root (CI runs as root, with unshare,
 * python3 and ip): there a missing tool fails the test rather than leave it silently not run.
 */
function notShown(): void {
  const why = 'no `unshare -n`, `ip` or python3 on this machine: the tampered echo run is not shown';
  if (process.getuid?.() === 0) throw new Error(`${why} (as root, where CI runs it)`);
  console.warn(why);
}

const path = process.env.PATH;
let dir: string | null = null;
afterEach(() => {
  process.env.PATH = path;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

it('an RTT longer than the ping run itself (a timestamp shifted back an hour) is unknown, not an hour', async () => {
  dir = tamperingPing('hour');
  if (!dir) return notShown();
  process.env.PATH = `${dir}:${path ?? '/usr/bin:/bin'}`;
  const out = await icmpProbe(
    checkOf({ name: 'p', type: 'icmp', host: '127.0.0.1', count: 2 }),
    probeContext({ timeoutMs: 5_000 }),
  );
  // Every echo was answered: the host is up; how long the answers took is not known.
  expect(out).toMatchObject({
    ok: true,
    latencyMs: null,
    facts: { result: { received: 2, rttMinMs: null, rttAvgMs: null, rttMaxMs: null } },
  });
});

it('a collector whose icmp target zeroes the echo data still publishes its results (UP, latency unknown)', async () => {
  dir = tamperingPing('zero');
  if (!dir) return notShown();
  process.env.PATH = `${dir}:${path ?? '/usr/bin:/bin'}`;
  const vhost = await createIsolatedVhost('collector-tampered-echo');
  const tap = await ResultTap.open(vhost.amqpUrl);
  const spoolDir = join(dir, 'spool');
  const [check] = definitions([
    { name: 'tampered', type: 'icmp' as const, host: '127.0.0.1', count: 2, intervalSeconds: 2, timeoutSeconds: 2 },
  ]);
  await seedAssignment(join(spoolDir, 'assignment.json'), 'lab-echo', [check]);
  const c = await CollectorHarness.start({
    AMQP_URL: vhost.amqpUrl,
    FLEETWATCH_LOCATION: 'lab-echo',
    COLLECTOR_SPOOL_DIR: spoolDir,
    COLLECTOR_HOST_INTERVAL_SECONDS: '0',
  });
  try {
    await waitFor(() => tap.of(check.id).length >= 2, {
      timeoutMs: 30_000,
      description: 'two results of the check on the bus',
    });
    for (const e of tap.of(check.id)) {
      expect(checkResultPayloadSchema.safeParse(e.payload).success).toBe(true);
      expect(e.payload).toMatchObject({ ok: true, latencyMs: null });
    }
    expect(await c.metric('fleetwatch_collector_spool_dropped_total', { reason: 'invalid' })).toBe(0);
  } finally {
    await c.stop();
    await tap.close();
    await vhost.dispose();
  }
});
