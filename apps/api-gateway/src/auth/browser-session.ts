import { createHash, timingSafeEqual } from 'node:crypto';

// Browser sessions (issue 17). The dashboard signs in through POST /api/v1/auth/session:
// the session token (the same `fws_…` a bearer client gets) travels in an HttpOnly,
// SameSite=Strict cookie the page's scripts cannot read, so an injected script cannot
// steal it. Writes made with the cookie need CSRF proof: the `X-CSRF-Token` header must
// carry the token derived from the session token (readable by the page from the
// `fw_csrf` cookie or the sign-in answer; a cross-site page can read neither), and an
// `Origin` (or `Referer`), when the browser sends one, must be this origin or an allowed
// one. Bearer clients send no cookie and are unaffected.

export const SESSION_COOKIE = 'fw_session';
export const CSRF_COOKIE = 'fw_csrf';
export const CSRF_HEADER = 'x-csrf-token';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method.toUpperCase());
}

/**
 * The CSRF token of a session: a hash of its secret token under a fixed label. Stateless
 * (any replica recomputes it), changes with every session, and reveals nothing of the
 * session token (SHA-256 preimage).
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHash('sha256').update(`fleetwatch-csrf\u0000${sessionToken}`, 'utf8').digest('base64url');
}

export function csrfTokenMatches(sessionToken: string, presented: string | undefined): boolean {
  if (!presented) return false;
  const expected = Buffer.from(csrfTokenFor(sessionToken));
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** `https://fleetwatch.example:8443` as an Origin header spells it (no path, no trailing slash). */
export function normaliseOrigin(origin: string): string | null {
  if (origin === 'null') return null;
  try {
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return `${url.protocol}//${url.host}`.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * The origin a request was made to: its scheme (`request.protocol`: https on a TLS socket,
 * or from X-Forwarded-Proto of a trusted proxy) and `request.host` (X-Forwarded-Host only
 * from trusted proxies), default port dropped; null when the Host is missing or malformed.
 */
export function requestOrigin(request: { protocol?: string; host?: string }): string | null {
  if (!request.host) return null;
  return normaliseOrigin(`${request.protocol === 'https' ? 'https' : 'http'}://${request.host}`);
}

export type OriginVerdict =
  | { ok: true }
  | {
      ok: false;
      reason: string;
      /**
       * The Origin is this request's host and port with the other scheme: most often a page served over
       * https by a TLS-terminating proxy the gateway does not trust (GATEWAY_TRUST_PROXY), so the gateway
       * sees http. See warnOtherSchemeOnce.
       */
      otherSchemeOnly?: boolean;
    };

/**
 * Whether a browser request's Origin may act on this site: the same origin as the request
 * (scheme, host and port: `https://gw` is not `http://gw` — see requestOrigin) or listed in
 * `allowed` (normalised origins). `required`: a missing Origin is refused (WebSocket
 * upgrades, which browsers always send it on); otherwise a missing Origin falls back to
 * Referer, and a request with neither passes (old browsers on same-origin forms; the CSRF
 * token still has to match).
 */
export function checkOrigin(
  headers: { origin?: string; referer?: string },
  self: string | null,
  allowed: readonly string[],
  required: boolean,
): OriginVerdict {
  const raw = headers.origin ?? (required ? undefined : headers.referer);
  if (raw === undefined) return required ? { ok: false, reason: 'no Origin header' } : { ok: true };
  const normalised = normaliseOrigin(raw);
  if (normalised === null) return { ok: false, reason: `origin ${JSON.stringify(raw.slice(0, 100))} is not allowed` };
  if (self !== null && normalised === self) return { ok: true };
  if (allowed.includes(normalised)) return { ok: true };
  const otherSchemeOnly = self !== null && withoutScheme(normalised) === withoutScheme(self);
  return { ok: false, reason: `origin ${normalised} is not allowed`, ...(otherSchemeOnly ? { otherSchemeOnly } : {}) };
}

/**
 * `host[:port]` of a normalised origin as spelled, each scheme's default port dropped: `https://gw` and
 * `http://gw` match (a proxy terminating TLS on 443 forwards `Host: gw` to an http gateway), as do
 * `https://gw:3000` and `http://gw:3000`.
 */
function withoutScheme(origin: string): string {
  return new URL(origin).host;
}

let warnedOtherScheme = false;

/**
 * Logs once per process (an operator needs the hint once, not at every page load) that a browser request was
 * refused only for its scheme: behind a TLS-terminating proxy that GATEWAY_TRUST_PROXY does not list, the gateway
 * sees http while the page is https, and every sign-in, cookie write and WebSocket is 403. Returns whether it
 * logged.
 */
export function warnOtherSchemeOnce(
  logger: { warn(obj: object, msg: string): void },
  verdict: OriginVerdict,
  self: string | null,
): boolean {
  if (verdict.ok || !verdict.otherSchemeOnly || warnedOtherScheme) return false;
  warnedOtherScheme = true;
  logger.warn(
    { refused: verdict.reason, requestOrigin: self },
    'a browser request was refused only because its Origin has the other scheme (same host and port): behind a ' +
      'TLS-terminating proxy, list the proxy in GATEWAY_TRUST_PROXY (its X-Forwarded-Proto is then believed) or the ' +
      'public https:// origin in GATEWAY_WS_ALLOWED_ORIGINS. Logged once per process',
  );
  return true;
}

export interface SessionCookieOptions {
  secure: boolean;
  maxAgeSeconds: number;
}

/** Attributes of both cookies: the session one HttpOnly, the CSRF one readable by the page. */
export function cookieAttributes(options: SessionCookieOptions, httpOnly: boolean) {
  return {
    path: '/',
    httpOnly,
    sameSite: 'strict' as const,
    secure: options.secure,
    maxAge: options.maxAgeSeconds,
  };
}
