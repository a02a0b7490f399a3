import { execFile } from 'node:child_process';
import { failureReasonOf, resolveAllowed } from '../net';
import type { Probe } from '../probe';

// icmp: the system `ping` (Debian iputils-ping), not a raw socket from Node. Sending ICMP
// echo needs a raw socket (CAP_NET_RAW) or an unprivileged ICMP datagram socket (only
// where net.ipv4.ping_group_range covers the group; on these machines it is "1 0":
// nobody). Node can open neither without a native addon, and the collector should not
// run with CAP_NET_RAW itself; Debian's ping carries `cap_net_raw=ep` as a file
// capability (and uses the datagram socket where the sysctl allows), so only that one
// binary holds the privilege. The image must install iputils-ping.
//
// The host goes through the target policy first and ping gets the checked literal
// address with -n: ping never resolves a name itself (no second lookup, no rebinding).

const PING = 'ping';

export const icmpProbe: Probe<'icmp'> = async (check, ctx) => {
  let address: string;
  let family: 4 | 6;
  try {
    ({ address, family } = await resolveAllowed(check.host, ctx.policy, {
      signal: ctx.signal,
      resolver: ctx.dnsServers,
    }));
  } catch (err) {
    return { ok: false, latencyMs: null, failureReason: failureReasonOf(err, ctx), facts: {} };
  }
  const args = [
    `-${family}`,
    '-n',
    '-q',
    '-c',
    String(pingCount(ctx.timeoutMs, check.count)),
    '-i',
    '0.2',
    ...pingDeadline(ctx.timeoutMs, pingCount(ctx.timeoutMs, check.count)),
    address,
  ];
  const started = performance.now();
  const run = await new Promise<{ code: number | string | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      PING,
      args,
      {
        signal: ctx.signal,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
        timeout: ctx.timeoutMs + 1000,
      },
      (err, stdout, stderr) =>
        resolve({
          code: err ? ((err as NodeJS.ErrnoException).code ?? 1) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        }),
    );
  });
  if (ctx.signal.aborted) return { ok: false, latencyMs: null, failureReason: failureReasonOf(null, ctx), facts: {} };
  if (run.code === 'ENOENT')
    return { ok: false, latencyMs: null, failureReason: 'ping is not installed (Debian: iputils-ping)', facts: {} };
  const summary = plausibleRtts(parsePingOutput(run.stdout), performance.now() - started);
  if (!summary)
    return {
      ok: false,
      latencyMs: null,
      failureReason: `ping failed: ${(run.stderr || run.stdout).trim().split('\n')[0] || `exit ${run.code}`}`,
      facts: {},
    };
  const result = { address, ...summary };
  if (summary.received === 0)
    return {
      ok: false,
      latencyMs: null,
      failureReason: `no echo reply from ${address} (${summary.transmitted} sent)`,
      facts: { result },
    };
  return { ok: true, latencyMs: summary.rttAvgMs, facts: { result } };
};

/** Time left to ping for spawning it and reading its summary before the check's timeout. */
const PING_MARGIN_MS = 500;

/**
 * ping's own limits, ending it before the check's timeout: a host that never answers reads "no echo reply" (loss
 * 100 %, with its counts), not "timed out". `-w` (whole seconds) was the timeout rounded down — the timeout itself
 * for the usual whole-second one (10 s), so the run's abort killed ping at the moment it was to print its summary.
 * Under a second of budget, no -w: -W (per reply, fractional) after the last of `count` echoes, 0.2 s apart.
 */
export function pingDeadline(timeoutMs: number, count: number): string[] {
  const budgetMs = timeoutMs - PING_MARGIN_MS;
  const deadlineS = Math.floor(budgetMs / 1000);
  if (deadlineS >= 1) return ['-W', '1', '-w', String(deadlineS)];
  const waitMs = Math.min(1000, Math.max(100, budgetMs - (count - 1) * 200));
  return ['-W', String(waitMs / 1000)];
}

/**
 * The echoes to send: `count`, but under 1.5 s of timeout (no -w: a fractional timeout, a retry cut to what is left of
 * the run) only as many as fit, 0.2 s apart with 0.1 s to wait after the last — 10 echoes take 1.8 s whatever -W is.
 */
export function pingCount(timeoutMs: number, count: number): number {
  const budgetMs = timeoutMs - PING_MARGIN_MS;
  if (budgetMs >= 1000) return count;
  return Math.max(1, Math.min(count, Math.floor((budgetMs - 100) / 200) + 1));
}

export interface PingSummary {
  transmitted: number;
  received: number;
  lossPct: number;
  rttMinMs: number | null;
  rttAvgMs: number | null;
  rttMaxMs: number | null;
}

/**
 * The summary with its round-trip times unknown (null) when they are longer than the whole ping run took: ping counts
 * an RTT from the send time written in the echo's data, as the target sends it back, so a target (or a middlebox)
 * that alters the data makes the RTT anything — a zeroed timestamp read as 1.8e12 ms, decades. No reply can have
 * taken longer than the run it came back in.
 */
export function plausibleRtts(summary: PingSummary | null, runMs: number): PingSummary | null {
  if (!summary || summary.rttMaxMs === null || summary.rttMaxMs <= runMs) return summary;
  return { ...summary, rttMinMs: null, rttAvgMs: null, rttMaxMs: null };
}

/** iputils' summary lines (LC_ALL=C): "3 packets transmitted, 2 received, …" and "rtt min/avg/max/mdev = …". */
export function parsePingOutput(stdout: string): PingSummary | null {
  const counts = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(stdout);
  if (!counts) return null;
  const transmitted = Number(counts[1]);
  const received = Number(counts[2]);
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/[\d.]+ ms/.exec(stdout);
  return {
    transmitted,
    received,
    lossPct: transmitted ? Math.round(((transmitted - received) / transmitted) * 1000) / 10 : 100,
    rttMinMs: rtt ? Number(rtt[1]) : null,
    rttAvgMs: rtt ? Number(rtt[2]) : null,
    rttMaxMs: rtt ? Number(rtt[3]) : null,
  };
}
