import { connect, type ChannelModel } from 'amqplib';
import { failureReasonOf, httpExchange, type ExchangeResult } from '../net';
import type { MetricSample, Probe, ProbeContext, ProbeOutcome } from '../probe';
import { amqpConnectArgs, connectTarget, vhostRefused } from './connect-target';
import { MetricBag, redactSecrets } from './service-metrics';

// One attempt at an AMQP 0-9-1 broker: connect (vhost, user, password from passwordEnv,
// TLS) to the address the target policy allowed, optionally passive-declare the check's
// queue for its depth and consumers (no plugin needed), and, when the check names a
// management API, read publish/deliver rates there. The management API is optional on
// the broker: when it does not answer, the result says so and the check still passes
// on what AMQP itself showed.
//
// amqplib makes its socket inside connect(), out of our reach; the attempt's signal goes
// into the socket options, so Node destroys that socket on abort or timeout whether the
// handshake is still running or long done.

/** The management API's answer is a few kB; anything beyond this is not it. */
const MANAGEMENT_MAX_BYTES = 256 * 1024;

function failed(
  failureReason: string,
  latencyMs: number | null = null,
  result?: Record<string, unknown>,
): ProbeOutcome {
  return { ok: false, latencyMs, failureReason, facts: result ? { result } : {} };
}

/** Rates (messages per second, as the management API smooths them) of a queue's or vhost's message_stats. */
export function ratesOf(stats: unknown): Record<string, number> {
  const s = (stats ?? {}) as Record<string, { rate?: unknown } | undefined>;
  const rate = (key: string): number => {
    const r = s[`${key}_details`]?.rate;
    // No message_stats (or no such detail) means nothing of that kind happened yet.
    return typeof r === 'number' && Number.isFinite(r) ? r : 0;
  };
  return {
    publishRate: rate('publish'),
    deliverRate: rate('deliver_get'),
    ackRate: rate('ack'),
    redeliverRate: rate('redeliver'),
  };
}

/**
 * A vhost or queue named "." or "..": no management API path names it. Parsed as a URL, the segment (escaped as %2E
 * too) is a dot segment and goes (RabbitMQ's router does the same): `/api/queues/v/.` asks for the vhost's list.
 */
export const isDotSegment = (name: string): boolean => name === '.' || name === '..';

/** A GET of the management API (same user and password as AMQP), no redirects, the body bounded. */
export function managementGet(
  url: string,
  auth: { username: string; password: string },
  maxBodyBytes: number,
  ctx: ProbeContext,
  signal: AbortSignal,
): Promise<ExchangeResult> {
  return httpExchange(
    {
      url,
      method: 'GET',
      headers: {
        authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`,
        accept: 'application/json',
      },
      followRedirects: false,
      maxRedirects: 0,
      tlsVerify: true,
      maxBodyBytes,
    },
    { policy: ctx.policy, signal, resolver: ctx.dnsServers },
  );
}

async function managementFacts(
  baseUrl: string,
  vhost: string,
  queue: string | undefined,
  auth: { username: string; password: string },
  ctx: ProbeContext,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  if (isDotSegment(vhost) || (queue !== undefined && isDotSegment(queue)))
    return {
      management: `unavailable: "${queue !== undefined && isDotSegment(queue) ? queue : vhost}" cannot be named in its API paths`,
    };
  const base = baseUrl.replace(/\/+$/, '');
  const path = queue
    ? `/api/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(queue)}`
    : `/api/vhosts/${encodeURIComponent(vhost)}`;
  try {
    const res = await managementGet(base + path, auth, MANAGEMENT_MAX_BYTES, ctx, signal);
    if (res.status !== 200) return { management: `unavailable: ${path} answered ${res.status}` };
    const body = JSON.parse(res.body.toString('utf8')) as {
      message_stats?: unknown;
      messages_unacknowledged?: unknown;
    };
    const out: Record<string, unknown> = { management: 'ok', ...ratesOf(body.message_stats) };
    if (queue && typeof body.messages_unacknowledged === 'number')
      out['messagesUnacked'] = body.messages_unacknowledged;
    return out;
  } catch (err) {
    // The plugin not enabled (nothing listens), a proxy in the way, not JSON: no failure.
    const reason =
      err instanceof SyntaxError
        ? 'the answer is not JSON'
        : failureReasonOf(err, { signal, timeoutMs: ctx.timeoutMs });
    return { management: `unavailable: ${redactSecrets(reason, auth.password)}` };
  }
}

export const amqpProbe: Probe<'amqp'> = async (check, ctx: ProbeContext): Promise<ProbeOutcome> => {
  // `own` ends the socket once the attempt is over, whatever close() managed.
  const own = new AbortController();
  // Without passwordEnv: RabbitMQ's built-in default user has the well-known password
  // "guest" (no secret); any other user tries an empty one.
  const target = await connectTarget(check, ctx, check.username === 'guest' ? 'guest' : '', own.signal);
  if ('failure' in target) return failed(target.failure);
  const { signal, password, reasonOf } = target;

  const started = performance.now();
  let model: ChannelModel | undefined;
  let graceful = false;
  try {
    model = await connect(
      ...amqpConnectArgs(check, target.address, password, { signal, heartbeat: 0, connectionName: 'fleetwatch-check' }),
    );
    // Failures surface through the pending call; a late 'error' must not crash the collector.
    model.on('error', () => undefined);
    const result: Record<string, unknown> = {
      product: model.connection.serverProperties.product,
      serverVersion: model.connection.serverProperties.version,
    };
    const metrics: MetricSample[] = [];
    // The queue's depth and consumers also go out with the result, named as the queue collector names them:
    // facts stay in the collector, so without these a queue_depth (or check_metric) rule on this check never fires.
    const published = new MetricBag();
    if (check.queue !== undefined) {
      const channel = await model.createChannel();
      channel.on('error', () => undefined);
      try {
        const q = await channel.checkQueue(check.queue);
        result['messages'] = q.messageCount;
        result['consumers'] = q.consumerCount;
        published.add('rabbitmq_queue_messages', q.messageCount, { queue: check.queue });
        published.add('rabbitmq_queue_consumers', q.consumerCount, { queue: check.queue });
      } catch (err) {
        if (signal.aborted) throw err;
        graceful = true; // the broker closed the channel, the connection is fine
        const latencyMs = elapsed(started);
        if ((err as { code?: unknown }).code === 404)
          return failed(`queue "${check.queue}" does not exist in vhost "${check.vhost}"`, latencyMs, result);
        return failed(`queue "${check.queue}": ${reasonOf(err)}`, latencyMs, result);
      }
      // A failed passive declare has closed the channel already; a good one is closed with the connection.
    }
    const latencyMs = elapsed(started);
    graceful = true;
    if (check.managementUrl !== undefined)
      Object.assign(
        result,
        await managementFacts(
          check.managementUrl,
          check.vhost,
          check.queue,
          { username: check.username, password },
          ctx,
          signal,
        ),
      );
    for (const [name, value] of Object.entries(result))
      if (typeof value === 'number') metrics.push({ name, labels: {}, value });
    // The series it publishes are series its conditions read too (`metric("rabbitmq_queue_messages", {"queue": …})`,
    // as rabbitmq-queues checks read them): only the result's own names were, while the target showed these.
    for (const m of published.toArray()) metrics.push({ name: m.name, labels: { ...m.labels }, value: m.value });
    return {
      ok: true,
      latencyMs,
      facts: { result, metrics },
      ...(published.size > 0 ? { metrics: published.toArray() } : {}),
    };
  } catch (err) {
    // Connection.Open refused: amqplib keeps only the frame's name, not the broker's text.
    if (!signal.aborted && vhostRefused(err))
      return failed(
        `the broker refused vhost "${check.vhost}" (it does not exist, or user "${check.username}" may not use it)`,
      );
    return failed(reasonOf(err), model ? elapsed(started) : null);
  } finally {
    await close(model, graceful);
    own.abort();
  }
};

function elapsed(since: number): number {
  return Math.round((performance.now() - since) * 100) / 100;
}

/** A polite Connection.Close after a clean run, bounded; the socket goes with the signal after. */
async function close(model: ChannelModel | undefined, graceful: boolean): Promise<void> {
  if (!model || !graceful) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    model.close().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1000);
    }),
  ]);
  clearTimeout(timer);
}
