import type { CheckSpec } from '@fleetwatch/contracts';
import { connect, type ChannelModel } from 'amqplib';
import { resolveAllowed } from '../net';
import type { Probe, ProbeContext, ProbeOutcome } from '../probe';
import { isDotSegment, managementGet, ratesOf } from './amqp.probe';
import { amqpConnectArgs, attemptSecret, vhostRefused } from './connect-target';
import { elapsedMs, MetricBag } from './service-metrics';

// rabbitmq-queues (issue 16): per-queue depth, consumers and rates. With a `managementUrl`
// the management HTTP API answers (rabbitmq_management plugin; same user and password):
// each named queue, or the vhost's queues a page at a time up to `maxQueues`. Without it —
// or when it does not answer (plugin not enabled, refused, not JSON) — the named queues are
// passive-declared over AMQP: depth and consumers, no rates (result.source says which).
// A named queue that does not exist fails the run and is reported as
// rabbitmq_queue_exists{queue} 0. Nothing is declared, consumed or purged.

type QueuesCheck = Extract<CheckSpec, { type: 'rabbitmq-queues' }>;

const MANAGEMENT_MAX_BYTES = 2 * 1024 * 1024;

interface QueueFigures {
  name: string;
  exists: boolean;
  messages?: number;
  ready?: number;
  unacked?: number;
  consumers?: number;
  rates?: Record<string, number>;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A management API queue object as figures. */
export function figuresOf(q: Record<string, unknown>): QueueFigures {
  return {
    name: String(q['name']),
    exists: true,
    messages: num(q['messages']),
    ready: num(q['messages_ready']),
    unacked: num(q['messages_unacknowledged']),
    consumers: num(q['consumers']),
    rates: ratesOf(q['message_stats']),
  };
}

function addQueue(bag: MetricBag, q: QueueFigures): void {
  const labels = { queue: q.name };
  bag.add('rabbitmq_queue_exists', q.exists ? 1 : 0, labels);
  if (!q.exists) return;
  bag.add('rabbitmq_queue_messages', q.messages, labels);
  bag.add('rabbitmq_queue_messages_ready', q.ready, labels);
  bag.add('rabbitmq_queue_messages_unacked', q.unacked, labels);
  bag.add('rabbitmq_queue_consumers', q.consumers, labels);
  if (q.rates) {
    bag.add('rabbitmq_queue_publish_rate', q.rates['publishRate'], labels);
    bag.add('rabbitmq_queue_deliver_rate', q.rates['deliverRate'], labels);
    bag.add('rabbitmq_queue_ack_rate', q.rates['ackRate'], labels);
    bag.add('rabbitmq_queue_redeliver_rate', q.rates['redeliverRate'], labels);
  }
}

class Unavailable extends Error {}

async function fromManagement(
  check: QueuesCheck,
  password: string,
  ctx: ProbeContext,
  signal: AbortSignal,
): Promise<QueueFigures[]> {
  // A vhost named "." or "..": no path names it (see isDotSegment); the named queues are passive-declared instead.
  if (isDotSegment(check.vhost)) throw new Unavailable(`vhost "${check.vhost}" cannot be named in its API paths`);
  const base = (check.managementUrl ?? '').replace(/\/+$/, '');
  const vhost = encodeURIComponent(check.vhost);
  const get = async (path: string): Promise<{ status: number; body: unknown }> => {
    const res = await managementGet(
      base + path,
      { username: check.username, password },
      MANAGEMENT_MAX_BYTES,
      ctx,
      signal,
    );
    if (res.status !== 200 && res.status !== 404) throw new Unavailable(`${path} answered ${res.status}`);
    if (res.truncated) throw new Unavailable(`${path} answered more than ${MANAGEMENT_MAX_BYTES} bytes`);
    try {
      return { status: res.status, body: res.status === 200 ? JSON.parse(res.body.toString('utf8')) : null };
    } catch {
      throw new Unavailable(`${path}: the answer is not JSON`);
    }
  };
  if (check.queues.length === 0) {
    const columns = 'name,messages,messages_ready,messages_unacknowledged,consumers,message_stats';
    const { status, body } = await get(
      `/api/queues/${vhost}?page=1&page_size=${check.maxQueues}&columns=${columns}&sort=name`,
    );
    if (status === 404) throw new Unavailable(`vhost "${check.vhost}" not known to the management API`);
    const items = (body as { items?: unknown }).items;
    if (!Array.isArray(items)) throw new Unavailable('the queue list has no items');
    return items.slice(0, check.maxQueues).map((q) => figuresOf(q as Record<string, unknown>));
  }
  const out: QueueFigures[] = [];
  for (const name of check.queues) {
    if (isDotSegment(name)) {
      // "." and ".." cannot be a path segment: the URL (and the API's router) takes them, "%2E" too, for the path's own
      // — the vhost's list, or every vhost's — a 200 read as the queue, UP whether it existed or not. Asked by name.
      const { status, body } = await get(
        `/api/queues/${vhost}?page=1&page_size=1&use_regex=true&name=${encodeURIComponent(`^${name.replace(/\./g, '\\.')}$`)}`,
      );
      const items = status === 200 ? (body as { items?: unknown }).items : [];
      if (!Array.isArray(items)) throw new Unavailable('the queue list has no items');
      const q = items.find((i) => (i as Record<string, unknown>)['name'] === name);
      out.push(q ? figuresOf(q as Record<string, unknown>) : { name, exists: false });
      continue;
    }
    const { status, body } = await get(`/api/queues/${vhost}/${encodeURIComponent(name)}`);
    out.push(status === 404 ? { name, exists: false } : figuresOf(body as Record<string, unknown>));
  }
  return out;
}

async function fromAmqp(
  check: QueuesCheck,
  password: string,
  address: string,
  signal: AbortSignal,
): Promise<QueueFigures[]> {
  let model: ChannelModel | undefined;
  try {
    model = await connect(
      ...amqpConnectArgs(check, address, password, { signal, heartbeat: 0, connectionName: 'fleetwatch-check' }),
    );
    model.on('error', () => undefined);
    const out: QueueFigures[] = [];
    let channel = await model.createChannel();
    channel.on('error', () => undefined);
    for (const name of check.queues) {
      try {
        const q = await channel.checkQueue(name);
        out.push({ name, exists: true, messages: q.messageCount, ready: q.messageCount, consumers: q.consumerCount });
      } catch (err) {
        if ((err as { code?: unknown }).code !== 404) throw err;
        out.push({ name, exists: false });
        // A failed passive declare closes the channel: the next queue gets a new one.
        channel = await model.createChannel();
        channel.on('error', () => undefined);
      }
    }
    return out;
  } finally {
    if (model) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([model.close().catch(() => undefined), new Promise<void>((r) => (t = setTimeout(r, 1000)))]);
      clearTimeout(t);
    }
  }
}

function failed(failureReason: string, latencyMs: number | null = null): ProbeOutcome {
  return { ok: false, latencyMs, failureReason, facts: {}, metrics: [] };
}

export const rabbitmqQueuesProbe: Probe<'rabbitmq-queues'> = async (check, ctx): Promise<ProbeOutcome> => {
  const own = new AbortController();
  // The address is resolved only if the management API does not answer (the AMQP fallback).
  const attempt = attemptSecret(check, ctx, check.username === 'guest' ? 'guest' : '', own.signal);
  if ('failure' in attempt) return failed(attempt.failure);
  const { signal, password, reasonOf } = attempt;

  const started = performance.now();
  let queues: QueueFigures[] | undefined;
  let source = 'amqp';
  let management: string | undefined;
  try {
    if (check.managementUrl !== undefined) {
      try {
        queues = await fromManagement(check, password, ctx, signal);
        source = 'management';
        management = 'ok';
      } catch (err) {
        if (signal.aborted) throw err;
        management = `unavailable: ${err instanceof Unavailable ? err.message : reasonOf(err)}`;
      }
    }
    if (queues === undefined) {
      if (check.queues.length === 0)
        return failed(
          check.managementUrl
            ? `management API ${management}; name the queues to fall back to passive declares`
            : 'no queues named and no managementUrl to list them',
          elapsedMs(started),
        );
      const { address } = await resolveAllowed(check.host, ctx.policy, { signal, resolver: ctx.dnsServers });
      queues = await fromAmqp(check, password, address, signal);
    }
  } catch (err) {
    // The fallback failed too: say why the management API was not used (a 401 names the password).
    const also = management === undefined ? '' : `; the management API was ${management}`;
    if (!signal.aborted && vhostRefused(err))
      return failed(
        `the broker refused vhost "${check.vhost}" (it does not exist, or user "${check.username}" may not use it)${also}`,
      );
    return failed(reasonOf(err) + also, null);
  } finally {
    own.abort();
  }
  const latencyMs = elapsedMs(started);
  const bag = new MetricBag();
  bag.add('rabbitmq_management_up', management === undefined ? undefined : management === 'ok' ? 1 : 0);
  bag.add('rabbitmq_queues_reported', queues.filter((q) => q.exists).length);
  for (const q of queues) addQueue(bag, q);
  const missing = queues.filter((q) => !q.exists).map((q) => q.name);
  const result: Record<string, unknown> = { source, queues: queues.length, missing: missing.length };
  if (management !== undefined) result['management'] = management;
  const outcome: ProbeOutcome = {
    ok: missing.length === 0,
    latencyMs,
    facts: { result, metrics: bag.samples() },
    metrics: bag.toArray(),
  };
  if (missing.length)
    outcome.failureReason = `queue${missing.length > 1 ? 's' : ''} ${missing
      .slice(0, 5)
      .map((q) => `"${q}"`)
      .join(', ')} not found in vhost "${check.vhost}"`;
  return outcome;
};
