import {
  DEAD_LETTER_SUFFIX,
  deadLetterQueueOf,
  OBSERVATION_SHARDS,
  observationShardQueue,
  QueueName,
  type BrokerCounts,
  type QueueCounts,
} from '@fleetwatch/contracts';
import { connect } from 'amqplib';

// The member report's in-flight and queue counts, read from RabbitMQ itself (SPEC §8):
// the management API (rabbitmq_management, :15672 by default) lists every queue of the
// site's vhost with ready and unacked counts; without it, passive declares of the queues
// the site knows give ready counts and consumers (in-flight is then unknown: null).
// Ingress and egress over time come from the management API's vhost samples too.

const TIMEOUT_MS = 3_000;

export interface BrokerEndpoints {
  amqpUrl: string;
  /** `http://user:pass@host:15672`; derived from the AMQP URL when not given. */
  managementUrl?: string;
}

/**
 * `http://user:pass@host:15672` for an AMQP URL (same host and credentials); `https://…:15671` for `amqps`, so
 * credentials that travel encrypted to the broker are not sent in the clear to its management API.
 */
export function managementUrlOf(amqpUrl: string, port?: number): string {
  const u = new URL(amqpUrl);
  const auth = u.username ? `${u.username}:${u.password}@` : 'guest:guest@';
  const tls = u.protocol === 'amqps:';
  return `${tls ? 'https' : 'http'}://${auth}${u.hostname}:${port ?? (tls ? 15671 : 15672)}`;
}

export function vhostOf(amqpUrl: string): string {
  const path = new URL(amqpUrl).pathname;
  return path.length > 1 ? decodeURIComponent(path.slice(1)) : '/';
}

/** Every queue the site declares: work queues and their dead-letter queues. */
export function knownQueues(): string[] {
  const work = [
    ...Object.values(QueueName),
    ...Array.from({ length: OBSERVATION_SHARDS }, (_, i) => observationShardQueue(i)),
  ];
  return [...work, ...work.map((q) => deadLetterQueueOf(q))];
}

/** Folds per-queue counts into the report's totals; dead-letter queues count apart. */
export function totalsOf(source: BrokerCounts['source'], queues: QueueCounts[]): BrokerCounts {
  const dead = queues.filter((q) => q.name.endsWith(DEAD_LETTER_SUFFIX));
  const work = queues.filter((q) => !q.name.endsWith(DEAD_LETTER_SUFFIX));
  const inFlight = source === 'management' ? work.reduce((n, q) => n + (q.unacked ?? 0), 0) : null;
  return {
    source,
    inFlight,
    queued: work.reduce((n, q) => n + q.ready, 0),
    deadLettered: dead.reduce((n, q) => n + q.ready + (q.unacked ?? 0), 0),
    queues: queues.sort((a, b) => (a.name < b.name ? -1 : 1)),
  };
}

/** GET on the management API with the URL's credentials as basic auth (fetch refuses them in the URL). */
async function managementGet(base: string, path: string): Promise<unknown> {
  const u = new URL(base);
  const auth = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  const res = await fetch(`${u.protocol}//${u.host}${path}`, {
    headers: { authorization: `Basic ${auth}` },
    signal: AbortSignal.timeout(TIMEOUT_MS),
    redirect: 'error',
  });
  if (!res.ok) throw new Error(`management API answered ${res.status}`);
  return res.json();
}

interface ManagementQueue {
  name: string;
  messages_ready?: number;
  messages_unacknowledged?: number;
  consumers?: number;
}

export async function brokerCountsViaManagement(ep: BrokerEndpoints): Promise<BrokerCounts> {
  const base = ep.managementUrl ?? managementUrlOf(ep.amqpUrl);
  const vhost = encodeURIComponent(vhostOf(ep.amqpUrl));
  const list = (await managementGet(
    base,
    `/api/queues/${vhost}?columns=name,messages_ready,messages_unacknowledged,consumers`,
  )) as ManagementQueue[];
  return totalsOf(
    'management',
    list.map((q) => ({
      name: q.name,
      ready: q.messages_ready ?? 0,
      unacked: q.messages_unacknowledged ?? 0,
      consumers: q.consumers ?? 0,
    })),
  );
}

/** Passive declares of the known queues over one short connection; a missing queue is skipped. */
export async function brokerCountsViaPassive(ep: BrokerEndpoints): Promise<BrokerCounts> {
  const conn = await connect(ep.amqpUrl, { timeout: TIMEOUT_MS });
  conn.on('error', () => undefined);
  try {
    const queues: QueueCounts[] = [];
    let ch = await conn.createChannel();
    ch.on('error', () => undefined);
    for (const name of knownQueues()) {
      try {
        const q = await ch.checkQueue(name);
        queues.push({ name, ready: q.messageCount, unacked: null, consumers: q.consumerCount });
      } catch {
        // A 404 closes the channel: open another for the next queue.
        ch = await conn.createChannel();
        ch.on('error', () => undefined);
      }
    }
    return totalsOf('passive', queues);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** The management API first; passive declares when it does not answer. */
export async function brokerCounts(ep: BrokerEndpoints): Promise<BrokerCounts> {
  try {
    return await brokerCountsViaManagement(ep);
  } catch {
    return brokerCountsViaPassive(ep);
  }
}

interface Sample {
  sample: number;
  timestamp: number;
}
interface VhostDetails {
  message_stats?: Record<string, { samples?: Sample[] } | number>;
  recv_oct_details?: { samples?: Sample[] };
  send_oct_details?: { samples?: Sample[] };
}

export interface VhostMinute {
  at: number;
  published: number | null;
  delivered: number | null;
  receivedBytes: number | null;
  sentBytes: number | null;
}

/** Per-minute increments of a cumulative sample series (newest first from RabbitMQ), keyed by minute start. */
export function incrementsPerMinute(samples: readonly Sample[] | undefined): Map<number, number> {
  const out = new Map<number, number>();
  if (!samples) return out;
  const sorted = [...samples].sort((a, b) => a.timestamp - b.timestamp);
  for (let i = 1; i < sorted.length; i++) {
    const minute = Math.floor(sorted[i].timestamp / 60_000) * 60_000;
    const delta = Math.max(0, sorted[i].sample - sorted[i - 1].sample);
    out.set(minute, (out.get(minute) ?? 0) + delta);
  }
  return out;
}

/**
 * Messages published into and delivered out of the vhost, and bytes received from and sent
 * to its clients, per minute over the last `minutes` (the management API's own samples).
 * Throws when the management API does not answer.
 */
export async function vhostFlow(ep: BrokerEndpoints, minutes: number): Promise<Map<number, VhostMinute>> {
  const base = ep.managementUrl ?? managementUrlOf(ep.amqpUrl);
  const age = (minutes + 1) * 60;
  const v = (await managementGet(
    base,
    `/api/vhosts/${encodeURIComponent(vhostOf(ep.amqpUrl))}?msg_rates_age=${age}&msg_rates_incr=60&data_rates_age=${age}&data_rates_incr=60`,
  )) as VhostDetails;
  const stat = (name: string) => {
    const s = v.message_stats?.[`${name}_details`];
    return typeof s === 'object' ? s.samples : undefined;
  };
  const series = {
    published: incrementsPerMinute(stat('publish')),
    delivered: incrementsPerMinute(stat('deliver_get')),
    receivedBytes: incrementsPerMinute(v.recv_oct_details?.samples),
    sentBytes: incrementsPerMinute(v.send_oct_details?.samples),
  };
  const out = new Map<number, VhostMinute>();
  for (const [key, m] of Object.entries(series) as [keyof typeof series, Map<number, number>][]) {
    for (const [at, n] of m) {
      const row = out.get(at) ?? { at, published: 0, delivered: 0, receivedBytes: 0, sentBytes: 0 };
      row[key] = n;
      out.set(at, row);
    }
  }
  return out;
}
