import { connectChecked, failureReasonOf } from '../net';
import type { Probe } from '../probe';

/**
 * tcp: the port accepts a connection. The host goes through the target policy
 * (connectChecked: resolved once, checked, connected to that address); latency is the
 * connect time alone (SYN to established), not the lookup. The socket is closed at once.
 */
export const tcpProbe: Probe<'tcp'> = async (check, ctx) => {
  try {
    const { socket, target, connectMs } = await connectChecked({
      host: check.host,
      port: check.port,
      policy: ctx.policy,
      signal: ctx.signal,
      resolver: ctx.dnsServers,
    });
    socket.destroy();
    return { ok: true, latencyMs: roundMs(connectMs), facts: { result: { address: target.address } } };
  } catch (err) {
    return { ok: false, latencyMs: null, failureReason: failureReasonOf(err, ctx), facts: {} };
  }
};

export function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
