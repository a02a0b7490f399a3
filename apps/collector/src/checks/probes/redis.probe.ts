import type { Redis } from 'ioredis';
import type { MetricSample, Probe, ProbeContext, ProbeOutcome } from '../probe';
import { connectTarget } from './connect-target';
import { redisClient } from './redis-client';

// One attempt at a Redis server: connect to the address the target policy allowed (TLS
// servername stays the check's host), AUTH as the check says, PING, then INFO for role,
// clients, memory and replication. No SELECT of `db`: PING and INFO are server-wide, and a
// user without SELECT (or a cluster node) must still be answered (redis-client.ts);
// redis-stats, which reads keys, selects it. One connection per attempt, no retries,
// no offline queue (a command never waits for a reconnect that will not come), closed
// on every path — the runner owns retries and timing.

/** What the result reports from INFO: result key ← INFO field, as a number unless listed in TEXT. */
const FIELDS = {
  role: 'role',
  redisVersion: 'redis_version',
  mode: 'redis_mode',
  uptimeSeconds: 'uptime_in_seconds',
  connectedClients: 'connected_clients',
  blockedClients: 'blocked_clients',
  usedMemoryBytes: 'used_memory',
  usedMemoryPeakBytes: 'used_memory_peak',
  maxmemoryBytes: 'maxmemory',
  memFragmentationRatio: 'mem_fragmentation_ratio',
  connectedReplicas: 'connected_slaves',
  replicationOffset: 'master_repl_offset',
  // A replica's view of its primary.
  masterLinkStatus: 'master_link_status',
  masterLastIoSecondsAgo: 'master_last_io_seconds_ago',
  masterLinkDownSinceSeconds: 'master_link_down_since_seconds',
} as const;
const TEXT = new Set<keyof typeof FIELDS>(['role', 'redisVersion', 'mode', 'masterLinkStatus']);
const SECTIONS = ['server', 'clients', 'memory', 'replication'] as const;
/** What one attempt reads at most: PING and those sections of INFO are a few kB; a server sending more is cut off. */
export const MAX_READ_BYTES = 1024 * 1024;

/** `key:value` lines of INFO (sections' `# Name` headers and blank lines skipped). */
export function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

/** The result's facts from INFO, and its numbers as metrics under the same names. */
export function infoFacts(info: Map<string, string>): { result: Record<string, unknown>; metrics: MetricSample[] } {
  const result: Record<string, unknown> = {};
  const metrics: MetricSample[] = [];
  for (const [key, field] of Object.entries(FIELDS) as Array<[keyof typeof FIELDS, string]>) {
    const raw = info.get(field);
    if (raw === undefined) continue;
    if (TEXT.has(key)) {
      result[key] = raw;
      continue;
    }
    const n = Number(raw);
    if (raw === '' || !Number.isFinite(n)) continue;
    result[key] = n;
    metrics.push({ name: key, labels: {}, value: n });
  }
  return { result, metrics };
}

function failed(failureReason: string, latencyMs: number | null = null): ProbeOutcome {
  return { ok: false, latencyMs, failureReason, facts: {} };
}

export const redisProbe: Probe<'redis'> = async (check, ctx: ProbeContext): Promise<ProbeOutcome> => {
  const target = await connectTarget(check, ctx, undefined);
  if ('failure' in target) return failed(target.failure);
  const { reasonOf } = target;

  const { redis, open, why, unwire } = redisClient(check, target, ctx.timeoutMs, false, MAX_READ_BYTES);

  const started = performance.now();
  let graceful = false;
  try {
    await open();
    const pong: string = await redis.ping();
    const latencyMs = Math.round((performance.now() - started) * 100) / 100;
    if (pong !== 'PONG') return failed(`PING answered "${pong.slice(0, 64)}", not PONG`, latencyMs);
    graceful = true;
    const infos = await Promise.allSettled(SECTIONS.map((s) => redis.info(s)));
    const text = infos.map((r) => (r.status === 'fulfilled' ? r.value : '')).join('\n');
    const { result, metrics } = infoFacts(parseInfo(text));
    // A user whose ACL allows PING but not INFO: the server is up; say what is missing.
    const denied = infos.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (denied) result['infoError'] = reasonOf(why(denied.reason));
    return { ok: true, latencyMs, facts: { result, metrics } };
  } catch (err) {
    return failed(reasonOf(why(err)));
  } finally {
    unwire();
    await close(redis, graceful);
  }
};

/** QUIT after a clean run, bounded; the socket is destroyed in any case. */
async function close(redis: Redis, graceful: boolean): Promise<void> {
  if (graceful) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      redis.quit().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 1000);
      }),
    ]);
    clearTimeout(timer);
  }
  redis.disconnect();
}
