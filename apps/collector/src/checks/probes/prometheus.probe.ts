import { DEFAULT_PROMETHEUS_LIMITS, parsePrometheusText } from '@fleetwatch/domain';
import { failureReasonOf, httpExchange } from '../net';
import type { Probe } from '../probe';
import { roundMs } from './tcp.probe';

/** What a scrape asks for: the text format the parser reads (no OpenMetrics, no protobuf). */
export const PROMETHEUS_ACCEPT = 'text/plain;version=0.0.4';

/**
 * prometheus: scrape a /metrics URL the way the http probe fetches (policy on every
 * hop, redirects by hand, tlsVerify), read at most the parser's byte limit, and expose
 * the samples as `metrics` for `metric("name", {labels})` conditions. UP when the
 * status is 2xx and the page has at least one sample. Malformed lines are skipped and
 * counted (`result.skipped`), not fatal: a scrape is someone else's output. A page
 * larger than the limit is read as far as the limit (`result.truncated`).
 */
export const prometheusProbe: Probe<'prometheus'> = async (check, ctx) => {
  let res;
  try {
    res = await httpExchange(
      {
        url: check.url,
        method: 'GET',
        headers: { accept: PROMETHEUS_ACCEPT },
        followRedirects: true,
        maxRedirects: 5,
        tlsVerify: check.tlsVerify,
        maxBodyBytes: DEFAULT_PROMETHEUS_LIMITS.maxBytes,
      },
      { policy: ctx.policy, signal: ctx.signal, resolver: ctx.dnsServers },
    );
  } catch (err) {
    return { ok: false, latencyMs: null, failureReason: failureReasonOf(err, ctx), facts: {} };
  }
  const latencyMs = roundMs(res.elapsedMs);
  if (res.status < 200 || res.status > 299)
    return { ok: false, latencyMs, failureReason: `status ${res.status} not 2xx`, facts: { status: res.status } };

  let text = res.body.toString('utf8');
  // A page cut at the byte limit ends mid-line: `up 12345` cut to `up 12` would read as 12.
  if (res.truncated) text = text.slice(0, text.lastIndexOf('\n') + 1);
  const parsed = parsePrometheusText(text);
  const metrics = parsed.samples.map(({ name, labels, value }) => ({ name, labels, value }));
  const result = {
    samples: metrics.length,
    skipped: parsed.skipped,
    truncated: res.truncated ? 'maxBytes' : (parsed.truncated ?? null),
    errors: parsed.errors.slice(0, 3).map((e) => `line ${e.line}: ${e.message}`),
  };
  const facts = { status: res.status, metrics, result };
  if (metrics.length === 0)
    return {
      ok: false,
      latencyMs,
      failureReason: `no samples in the scrape${result.errors.length ? ` (${result.errors[0]})` : ''}`,
      facts,
    };
  return { ok: true, latencyMs, facts };
};
