import { charsetOf, decodeText } from '@fleetwatch/contracts';
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
 * trusted (tlsVerify) with at least `certMinDaysLeft` days left — the certificates of
 * the https hops it was redirected through too, each named by its host (facts.cert is
 * the answering origin's). Latency: from the start of the exchange (the first DNS
 * lookup included) to the last body byte read, redirects included.
 *
 * The body is read up to 1 MiB (bodyContains and JSON parsing see that much) and
 * exposed as `bodyText` up to 64 KiB; `body` is the parsed JSON when the response says
 * it is JSON (`application/json`, `…+json`), or the check has JSON-path assertions, and it fits. The text is decoded in the Content-Type's charset (UTF-8
 * by default), without a byte-order mark. Compressed bodies are not
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

  const text = decodeBody(res.body, res.headers['content-type'], res.truncated);
  const facts: ProbeFacts = {
    status: res.status,
    headers: res.headers,
    bodyText:
      res.body.length > BODY_TEXT_LIMIT
        ? decodeBody(res.body.subarray(0, BODY_TEXT_LIMIT), res.headers['content-type'], true)
        : text,
  };
  const isJson = JSON_TYPE.test(res.headers['content-type'] ?? '');
  // JSON-path assertions say the body is JSON, whatever its Content-Type (text/plain, none): read as such, as Uptime
  // Kuma's json-query and Gatus's [BODY] do — gated on the header, `{"status":"UP"}` served as text/plain was "not JSON".
  const asJson = isJson || check.jsonPath.length > 0;
  if (asJson && !res.truncated) facts.body = parseJson(text);
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
      asJson && res.truncated
        ? `${assertion.path}: the ${isJson ? 'JSON ' : ''}body is larger than 1 MiB`
        : jsonPathAssertionProblem(facts.body, assertion);
    if (problem) problems.push(problem);
  }
  // Trust was settled in the connector (an untrusted peer never got the request).
  if (res.url.startsWith('https:') && check.certMinDaysLeft !== undefined)
    problems.push(
      ...certificateProblems(res.cert, { verify: false, untrusted: null, minDaysLeft: check.certMinDaysLeft }),
    );
  // The https hops it was redirected through (an https URL redirecting to http included), named by their host.
  if (check.certMinDaysLeft !== undefined)
    for (const hop of res.hopCerts ?? [])
      problems.push(
        ...certificateProblems(hop.cert, { verify: false, untrusted: null, minDaysLeft: check.certMinDaysLeft }).map(
          (problem) => `${hop.host}: ${problem}`,
        ),
      );

  const latencyMs = roundMs(res.elapsedMs);
  return problems.length
    ? { ok: false, latencyMs, failureReason: problems.join('; '), facts }
    : { ok: true, latencyMs, facts };
};

/**
 * The body as text in the charset its Content-Type names (`text/html; charset=iso-8859-1`), UTF-8 when it names none
 * or one the WHATWG Encoding standard does not know; a byte-order mark is dropped (fetch's text() and json() drop it
 * too: `\uFEFF{…}` is JSON). Read as UTF-8 whatever it said, a Latin-1 page never contained "Größe" and a JSON body
 * with a BOM was "not JSON". A JSON type's charset is ignored: JSON is UTF-8 (RFC 8259, whose `charset` parameter has
 * no effect; fetch's json() ignores it too), and a UTF-8 body some server labels `application/json;
 * charset=ISO-8859-1` read as Latin-1 would fail its assertions. `cut`: the bytes end mid-body (the read cap,
 * bodyText's limit), so a character split there is left out rather than shown as U+FFFD.
 */
function decodeBody(body: Buffer, contentType: string | undefined, cut: boolean): string {
  return decodeText(body, JSON_TYPE.test(contentType ?? '') ? undefined : charsetOf(contentType), { stream: cut });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
