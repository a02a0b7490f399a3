import { jsonPathAssertionProblem } from '@fleetwatch/domain';
import { CertificateUntrustedError, failureReasonOf, httpExchange } from '../net';
import type { Probe, ProbeFacts } from '../probe';
import { roundMs } from './tcp.probe';
import { certificateProblems } from './tls.probe';

/** Body bytes read for bodyContains and JSON; the download stops there. */
export const HTTP_BODY_READ_LIMIT = 1024 * 1024;
/** Body bytes kept as `bodyText` for conditions. */
export const BODY_TEXT_LIMIT = 64 * 1024;

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * http: one request (method, headers, body) with redirects followed by hand up to
 * maxRedirects, every hop's address through the target policy (net/http-exchange). UP
 * when the status is expected (default any 2xx or 3xx), the body contains
 * `bodyContains`, every JSON-path assertion holds, and for https the certificate is
 * trusted (tlsVerify) with at least `certMinDaysLeft` days left. Latency: from the
 * first connect to the last body byte read, redirects included.
 *
 * The body is read up to 1 MiB (bodyContains and JSON parsing see that much) and
 * exposed as `bodyText` up to 64 KiB; `body` is the parsed JSON when the response says
 * it is JSON (`application/json`, `…+json`) and fits. Compressed bodies are not
 * decoded: the probe sends no Accept-Encoding unless the check's headers do.
 */
export const httpProbe: Probe<'http'> = async (check, ctx) => {
  let res;
  try {
    res = await httpExchange(
      {
        url: check.url,
        method: check.method,
        headers: check.headers,
        body: check.body,
        followRedirects: check.followRedirects,
        maxRedirects: check.maxRedirects,
        tlsVerify: check.tlsVerify,
        maxBodyBytes: HTTP_BODY_READ_LIMIT,
      },
      { policy: ctx.policy, signal: ctx.signal, resolver: ctx.dnsServers },
    );
  } catch (err) {
    // An untrusted certificate (expired, a wrong name) still shows in the result, as the tls check shows it.
    const cert = err instanceof CertificateUntrustedError ? err.cert : undefined;
    return { ok: false, latencyMs: null, failureReason: failureReasonOf(err, ctx), facts: cert ? { cert } : {} };
  }

  const text = res.body.toString('utf8');
  const facts: ProbeFacts = {
    status: res.status,
    headers: res.headers,
    bodyText: res.body.length > BODY_TEXT_LIMIT ? res.body.subarray(0, BODY_TEXT_LIMIT).toString('utf8') : text,
  };
  const isJson = JSON_TYPE.test(res.headers['content-type'] ?? '');
  if (isJson && !res.truncated) facts.body = parseJson(text);
  if (res.cert) facts.cert = res.cert;

  const problems: string[] = [];
  // An empty list (stored before it was refused on write) is the default, not "no status is UP".
  const expected = check.expectedStatus?.length ? check.expectedStatus : undefined;
  if (expected ? !expected.includes(res.status) : res.status < 200 || res.status > 399)
    problems.push(`status ${res.status} not in ${expected ? `[${expected.join(', ')}]` : '2xx/3xx'}`);
  if (check.bodyContains !== undefined && !text.includes(check.bodyContains))
    problems.push(
      `body does not contain ${JSON.stringify(check.bodyContains)}${res.truncated ? ' (in its first 1 MiB)' : ''}`,
    );
  for (const assertion of check.jsonPath) {
    const problem =
      isJson && res.truncated
        ? `${assertion.path}: the JSON body is larger than 1 MiB`
        : jsonPathAssertionProblem(facts.body, assertion);
    if (problem) problems.push(problem);
  }
  // Trust was settled in the connector (an untrusted peer never got the request).
  if (res.url.startsWith('https:') && check.certMinDaysLeft !== undefined)
    problems.push(
      ...certificateProblems(res.cert, { verify: false, untrusted: null, minDaysLeft: check.certMinDaysLeft }),
    );

  const latencyMs = roundMs(res.elapsedMs);
  return problems.length
    ? { ok: false, latencyMs, failureReason: problems.join('; '), facts }
    : { ok: true, latencyMs, facts };
};

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
