import { CHECK_FRAMING_HEADERS, isSecretHeader } from '@fleetwatch/contracts';
import { literalIpOf, type TargetPolicy } from '@fleetwatch/domain';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { TLSSocket } from 'node:tls';
import { authorizationErrorOf, certFactsOf, type CertFacts } from './cert-facts';
import { connectChecked } from './connect-checked';
import { CertificateUntrustedError } from './target-denied.error';

// One HTTP exchange of a check (http, prometheus and amqp-management probes): redirects
// followed by hand, so each hop's URL is vetted (http/https only) and its address goes
// through the policy like the first; the body read up to a cap, the rest never downloaded.
//
// Decisions:
//  - node:http with no agent and our own `createConnection`: every request (first, each
//    redirect hop) connects through connectChecked — resolve once, check the policy,
//    connect to exactly that address, check the peer again. A `lookup` hook alone would
//    not do: Node skips it for hosts that are already IP literals.
//  - A new connection per request, closed when the request ends (`Connection: close`,
//    and the socket destroyed once the answer is read): no keep-alive socket outlives the
//    check run. A pooled socket would carry a policy decision, a tlsVerify setting and a
//    certificate from another check (or from before a policy change) into this one, hide
//    connect time from latency, and, with TLS 1.3 resumption, hide the peer certificate.
//    A new connection every run costs a handshake per interval, which is what a monitor
//    should measure anyway.
//  - Why not undici (used until the collector benchmark of issue 15): an undici Agent per
//    attempt — the only way to give each attempt its own checked connector and no pool —
//    cost about 1 ms of CPU per check (Agent setup and close, an error object with a
//    source-mapped stack for every closed client, the Wasm parser), twice what node:http
//    on a fresh connection costs, and undici's module graph held ~6 MB at rest.
//  - No separate connect timeout: the attempt's signal (the check's timeout) ends the
//    lookup, the connect and the exchange alike.
//  - TLS: the handshake never rejects by itself; with tlsVerify an untrusted peer fails
//    the connection (CertificateUntrustedError) before any request byte is sent, after
//    its certificate facts were recorded, so the result can still show them.

export interface ExchangeRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  followRedirects: boolean;
  maxRedirects: number;
  tlsVerify: boolean;
  /** Bytes of body kept; the download stops there and `truncated` says so. */
  maxBodyBytes: number;
}

export interface ExchangeContext {
  policy: TargetPolicy;
  signal: AbortSignal;
  resolver?: readonly string[];
}

export interface ExchangeResult {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  truncated: boolean;
  /** The URL that answered (after redirects). */
  url: string;
  redirects: number;
  /** The certificate of the answering origin, when it was https. */
  cert?: CertFacts;
  /** The certificates of the https hops before the answering one, in order (`host` is the URL's host[:port]). */
  hopCerts?: Array<{ host: string; cert: CertFacts }>;
  elapsedMs: number;
}

export class RedirectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedirectError';
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/**
 * Dropped when a redirect leaves the origin (as browsers do with Authorization and Cookie): every credential header
 * (contracts' isSecretHeader: X-Api-Key, X-Auth-Token, … too) was meant for the first one — a stored credential is
 * never sent to another host (SPEC §10).
 */
const originBound = isSecretHeader;
const USER_AGENT = 'fleetwatch-collector';
const EMPTY = Buffer.alloc(0);

interface Hop {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  truncated: boolean;
  cert?: CertFacts;
}

export async function httpExchange(req: ExchangeRequest, ctx: ExchangeContext): Promise<ExchangeResult> {
  const started = performance.now();
  let url = new URL(req.url);
  let method = req.method.toUpperCase();
  let body = req.body;
  let headers = withUserAgent(req.headers);
  const hopCerts: Array<{ host: string; cert: CertFacts }> = [];
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new RedirectError(`scheme "${url.protocol}" not allowed (http, https)`);
    const redirecting = req.followRedirects;
    const res = await exchangeOnce(url, method, headers, body, req.tlsVerify, req.maxBodyBytes, ctx, (status, h) =>
      redirecting && REDIRECTS.has(status) && h.location !== undefined ? 0 : req.maxBodyBytes,
    );
    const location = res.headers.location;
    if (redirecting && REDIRECTS.has(res.status) && location !== undefined) {
      if (hop >= req.maxRedirects)
        throw new RedirectError(`more than ${req.maxRedirects} redirects (last to ${safeUrl(location, url)})`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new RedirectError(`redirect ${res.status} to an invalid location "${location.slice(0, 200)}"`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw new RedirectError(`redirect to scheme "${next.protocol}" refused (http, https only)`);
      if (res.cert) hopCerts.push({ host: url.host, cert: res.cert });
      // Credentials stay with the origin; a Host the check sets names the first host's virtual host: another host gets
      // its own (withHost) — the same host on another scheme or port (http → https) keeps it.
      if (next.origin !== url.origin) {
        headers = withoutMatching(
          headers,
          (name) => originBound(name) || (name.toLowerCase() === 'host' && next.hostname !== url.hostname),
        );
        // Kept on the same host: its port is the new URL's (a Host of app:8080 is not sent to :443).
        headers = withHostPort(headers, next.port);
      }
      // 303 always, and 301/302 after a POST, continue as GET without the body (fetch standard).
      if (
        (res.status === 303 && method !== 'HEAD') ||
        ((res.status === 301 || res.status === 302) && method === 'POST')
      ) {
        method = 'GET';
        body = undefined;
        headers = without(headers, ['content-type', 'content-length']);
      }
      url = next;
      continue;
    }
    return {
      status: res.status,
      headers: res.headers,
      body: res.body,
      truncated: res.truncated,
      url: url.toString(),
      redirects: hop,
      cert: res.cert,
      ...(hopCerts.length ? { hopCerts } : {}),
      elapsedMs: performance.now() - started,
    };
  }
}

/**
 * One request on a connection of its own, read to the end (or to `keep(status, headers)`
 * bytes: 0 for a redirect that will be followed), then the connection is closed.
 */
function exchangeOnce(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  tlsVerify: boolean,
  maxBodyBytes: number,
  ctx: ExchangeContext,
  keep: (status: number, headers: Record<string, string>) => number,
): Promise<Hop> {
  const { signal } = ctx;
  signal.throwIfAborted();
  const https = url.protocol === 'https:';
  const port = Number(url.port) || (https ? 443 : 80);
  // An IPv6 literal without its brackets, as it is named in policy messages and connected to.
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise<Hop>((resolve, reject) => {
    let settled = false;
    let cert: CertFacts | undefined;
    let socket: Socket | undefined;
    const finish = (err: unknown, hop?: Hop): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      // The connection never outlives the exchange, whatever the server or a Connection header said.
      request.destroy();
      socket?.destroy();
      if (err === undefined && hop) resolve(hop);
      else reject(err);
    };
    const onAbort = (): void => finish(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });

    const request: ClientRequest = httpRequest({
      method,
      path: `${url.pathname}${url.search}`,
      headers: withHost(headers, url.host, body),
      setHost: false,
      // Node waits for `done` when createConnection returns nothing (an asynchronous connect).
      createConnection: (_options: unknown, done: (err: Error | null, s?: Socket) => void) => {
        connectChecked({
          host,
          port,
          policy: ctx.policy,
          signal,
          resolver: ctx.resolver,
          // By address, a Host header names the certificate to expect; by name, the URL's name does (as curl -H Host).
          tls: https
            ? { alpn: ['http/1.1'], servername: literalIpOf(host) ? virtualHostOf(headers) : undefined }
            : undefined,
        }).then(
          ({ socket: s }) => {
            if (settled) {
              s.destroy();
              return;
            }
            socket = s;
            if (s instanceof TLSSocket) {
              cert = certFactsOf(s);
              if (tlsVerify && !s.authorized) {
                const reason = authorizationErrorOf(s);
                s.destroy();
                finish(new CertificateUntrustedError(host, reason, cert));
                return;
              }
            }
            done(null, s);
          },
          (err: Error) => finish(err),
        );
        return undefined;
      },
    } as unknown as RequestOptions);
    request.on('error', (err) => finish(err));
    request.on('response', (r: IncomingMessage) => {
      const flat = flatHeaders(r.rawHeaders);
      const status = r.statusCode ?? 0;
      const max = Math.min(keep(status, flat), maxBodyBytes);
      if (max === 0) {
        finish(undefined, { status, headers: flat, body: EMPTY, truncated: false, cert });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      r.on('data', (chunk: Buffer) => {
        if (size + chunk.length > max) {
          chunks.push(chunk.subarray(0, max - size));
          // Stop here: the rest is never read (the connection is closed).
          finish(undefined, { status, headers: flat, body: Buffer.concat(chunks), truncated: true, cert });
          return;
        }
        chunks.push(chunk);
        size += chunk.length;
      });
      r.on('end', () =>
        finish(undefined, {
          status,
          headers: flat,
          body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size),
          truncated: false,
          cert,
        }),
      );
      r.on('error', (err) => finish(err));
      r.on('close', () => {
        if (!r.complete) finish(new Error('the connection closed before the response ended'));
      });
    });
    request.end(body);
  });
}

/** Lower-case names; repeated headers joined with ", " (set-cookie included). */
function flatHeaders(raw: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    const prev = out[k];
    out[k] = prev === undefined ? raw[i + 1] : `${prev}, ${raw[i + 1]}`;
  }
  return out;
}

function withUserAgent(h: Record<string, string>): Record<string, string> {
  return Object.keys(h).some((k) => k.toLowerCase() === 'user-agent') ? { ...h } : { ...h, 'user-agent': USER_AGENT };
}

/**
 * The name in a Host header the check sets (port left out), unless it is an address: for a URL by address, the SNI
 * and the name the certificate must match, as a browser reaching that virtual host would send — a check of
 * `https://10.0.0.5/` with `Host: app.example.com` verifies app.example.com's certificate. Only hops on the first
 * host carry the check's Host (a redirect to another host drops it).
 */
function virtualHostOf(h: Record<string, string>): string | undefined {
  const value = Object.entries(h).find(([k]) => k.toLowerCase() === 'host')?.[1];
  if (value === undefined) return undefined;
  const name = value
    .trim()
    .replace(/^\[(.*)\](?::\d*)?$/, '$1')
    .replace(/^([^:]*):\d*$/, '$1')
    .replace(/\.$/, '');
  return name === '' || literalIpOf(name) ? undefined : name;
}

/** The check's Host header (if any) with `port` ('' = the scheme's default) in place of its own. */
function withHostPort(h: Record<string, string>, port: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (k.toLowerCase() !== 'host') {
      out[k] = v;
      continue;
    }
    const name = /^(\[[^\]]*\]|[^:]*)(?::\d*)?$/.exec(v.trim())?.[1] ?? v;
    out[k] = port ? `${name}:${port}` : name;
  }
  return out;
}

/** The Host header (the URL's host, default port left out) unless the check sets one; the body's length, and no other framing. */
function withHost(h: Record<string, string>, host: string, body: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  let hasHost = false;
  for (const [k, v] of Object.entries(h)) {
    const name = k.toLowerCase();
    // The framing is the body's (a check stored before such headers were refused on write).
    if (CHECK_FRAMING_HEADERS.test(name)) continue;
    if (name === 'host') hasHost = true;
    out[k] = v;
  }
  if (!hasHost) out.host = host;
  if (body !== undefined) out['content-length'] = String(Buffer.byteLength(body));
  return out;
}

function without(h: Record<string, string>, names: string[]): Record<string, string> {
  return withoutMatching(h, (k) => names.includes(k.toLowerCase()));
}

function withoutMatching(h: Record<string, string>, drop: (name: string) => boolean): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => !drop(k)));
}

function safeUrl(location: string, base: URL): string {
  try {
    return new URL(location, base).toString().slice(0, 200);
  } catch {
    return location.slice(0, 200);
  }
}
