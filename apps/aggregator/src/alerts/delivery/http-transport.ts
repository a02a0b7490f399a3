import { request, type Dispatcher } from 'undici';
import { isTransientHttpStatus, parseRetryAfter, type HttpChannelRequest } from '@fleetwatch/alerting';
import { checkedAgent, defaultDeliveryPolicy, isTargetDenied } from './checked-connect';
import type { SendResult } from './delivery.types';

// Sends a channel's HTTP request (webhook, Slack, Teams, PagerDuty) with undici: a bounded time for the
// whole exchange, at most a few KB of the answer read (kept for the log; the rest discarded unread), and
// redirects followed only to the same origin with a 307/308 (method and body kept). A redirect to another
// host is never followed: the request carries credentials (signature, bearer token, routing key, or a
// Slack/Teams URL that is itself the secret) that must not be forwarded elsewhere (SPEC §10).

export interface HttpTransportOptions {
  /** The whole exchange, redirects included. */
  timeoutMs: number;
  /** Most bytes of an answer read. */
  maxResponseBytes: number;
  maxRedirects: number;
  /** Where connections are made: a policy-checked agent (checked-connect.ts); default the default deny list's. */
  dispatcher?: Dispatcher;
}

export const DEFAULT_HTTP_OPTIONS: HttpTransportOptions = {
  timeoutMs: 10_000,
  maxResponseBytes: 4096,
  maxRedirects: 3,
};

/** The agent of sends given none: connections reused per origin, connect bounded, the default deny list applied. */
const defaultAgent = checkedAgent(defaultDeliveryPolicy());

async function readBounded(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const room = max - size;
      chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      size += Math.min(chunk.length, room);
      if (size >= max) break;
    }
  } catch {
    /* an answer cut short still told us its status */
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describeError(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  const code = e?.cause?.code ?? e?.code;
  const message = e?.cause?.message ?? e?.message ?? String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

function deniedMessage(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return (e?.cause?.code === 'ETARGETDENIED' ? e.cause.message : e?.message) ?? String(err);
}

function headerOf(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export async function sendHttp(
  req: HttpChannelRequest,
  options: HttpTransportOptions = DEFAULT_HTTP_OPTIONS,
): Promise<SendResult> {
  const started = performance.now();
  const done = (r: Omit<SendResult, 'durationMs'>): SendResult => ({
    ...r,
    durationMs: Math.round(performance.now() - started),
  });
  const signal = AbortSignal.timeout(options.timeoutMs);
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return done({
      ok: false,
      transient: false,
      httpStatus: null,
      retryAfterMs: null,
      error: 'the channel URL is not a valid URL',
    });
  }
  for (let hop = 0; ; hop++) {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'POST',
        headers: req.headers,
        body: req.body,
        dispatcher: options.dispatcher ?? defaultAgent,
        signal,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
    } catch (err) {
      // A target the policy refuses stays refused: failed at once, not retried.
      const denied = isTargetDenied(err);
      return done({
        ok: false,
        transient: !denied,
        httpStatus: null,
        retryAfterMs: null,
        error: denied ? `refused by the target policy: ${deniedMessage(err)}` : describeError(err),
      });
    }
    const status = res.statusCode;
    const headers = res.headers as Record<string, string | string[] | undefined>;
    if (status >= 300 && status < 400) {
      await readBounded(res.body, 0);
      const location = headerOf(headers, 'location');
      let next: URL | null = null;
      try {
        next = location ? new URL(location, url) : null;
      } catch {
        next = null;
      }
      const sameOrigin = next !== null && next.origin === url.origin;
      if (next && sameOrigin && (status === 307 || status === 308) && hop < options.maxRedirects) {
        url = next;
        continue;
      }
      const where = next ? (sameOrigin ? 'the same host' : next.origin) : 'nowhere';
      return done({
        ok: false,
        transient: false,
        httpStatus: status,
        retryAfterMs: null,
        error: `HTTP ${status}: redirect to ${where} not followed`,
      });
    }
    const text = await readBounded(res.body, options.maxResponseBytes);
    if (status >= 200 && status < 300)
      return done({ ok: true, transient: false, httpStatus: status, retryAfterMs: null, error: null });
    return done({
      ok: false,
      transient: isTransientHttpStatus(status),
      httpStatus: status,
      retryAfterMs: parseRetryAfter(headerOf(headers, 'retry-after'), Date.now()),
      error: `HTTP ${status}${text.trim() ? `: ${text.trim()}` : ''}`,
    });
  }
}
