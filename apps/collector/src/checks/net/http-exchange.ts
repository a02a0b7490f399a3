import type { TargetPolicy } from '@fleetwatch/domain';
import { performance } from 'node:perf_hooks';
import { request } from 'undici';
import type { CertFacts } from './cert-facts';
import { createCheckAgent } from './check-agent';

// One HTTP exchange of a check (http and prometheus probes): redirects followed by hand,
// so each hop's URL is vetted (http/https only) and its address goes through the policy
// in the attempt's connector like the first; the body read up to a cap, the rest never
// downloaded.

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
  elapsedMs: number;
}

export class RedirectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedirectError';
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Dropped when a redirect leaves the origin (as browsers do): they were meant for the first one. */
const ORIGIN_BOUND = ['authorization', 'cookie', 'proxy-authorization'];
const USER_AGENT = 'fleetwatch-collector';

export async function httpExchange(req: ExchangeRequest, ctx: ExchangeContext): Promise<ExchangeResult> {
  const started = performance.now();
  const agent = createCheckAgent({ ...ctx, tlsVerify: req.tlsVerify });
  try {
    let url = new URL(req.url);
    let method = req.method;
    let body = req.body;
    let headers = withUserAgent(req.headers);
    for (let hop = 0; ; hop++) {
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new RedirectError(`scheme "${url.protocol}" not allowed (http, https)`);
      const res = await request(url, { dispatcher: agent.dispatcher, method, headers, body, signal: ctx.signal });
      const location = headerText(res.headers.location);
      if (req.followRedirects && REDIRECTS.has(res.statusCode) && location !== undefined) {
        await res.body.dump();
        if (hop >= req.maxRedirects)
          throw new RedirectError(`more than ${req.maxRedirects} redirects (last to ${safeUrl(location, url)})`);
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new RedirectError(`redirect ${res.statusCode} to an invalid location "${location.slice(0, 200)}"`);
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:')
          throw new RedirectError(`redirect to scheme "${next.protocol}" refused (http, https only)`);
        if (next.origin !== url.origin) headers = without(headers, ORIGIN_BOUND);
        // 303 always, and 301/302 after a POST, continue as GET without the body (fetch standard).
        if (
          (res.statusCode === 303 && method !== 'HEAD') ||
          ([301, 302].includes(res.statusCode) && method === 'POST')
        ) {
          method = 'GET';
          body = undefined;
          headers = without(headers, ['content-type', 'content-length']);
        }
        url = next;
        continue;
      }
      const { bytes, truncated } = await readCapped(res.body, req.maxBodyBytes);
      return {
        status: res.statusCode,
        headers: flatHeaders(res.headers),
        body: bytes,
        truncated,
        url: url.toString(),
        redirects: hop,
        cert: url.protocol === 'https:' ? agent.certOf(url) : undefined,
        elapsedMs: performance.now() - started,
      };
    }
  } finally {
    await agent.close();
  }
}

async function readCapped(stream: AsyncIterable<Buffer>, max: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    if (size + chunk.length > max) {
      chunks.push(chunk.subarray(0, max - size));
      // Leaving the loop destroys the stream: the rest is never read.
      return { bytes: Buffer.concat(chunks), truncated: true };
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { bytes: Buffer.concat(chunks), truncated: false };
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    const text = headerText(v);
    if (text !== undefined) out[k.toLowerCase()] = text;
  }
  return out;
}

function withUserAgent(h: Record<string, string>): Record<string, string> {
  return Object.keys(h).some((k) => k.toLowerCase() === 'user-agent') ? { ...h } : { ...h, 'user-agent': USER_AGENT };
}

function without(h: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => !names.includes(k.toLowerCase())));
}

function safeUrl(location: string, base: URL): string {
  try {
    return new URL(location, base).toString().slice(0, 200);
  } catch {
    return location.slice(0, 200);
  }
}
