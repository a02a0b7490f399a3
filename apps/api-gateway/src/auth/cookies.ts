// The two cookies of a browser session, read and written by hand. @fastify/cookie 11
// loads its parser (cookie 2, an ES module) with a dynamic import(), which Jest's
// runtime on Node 20 cannot run; the gateway needs only this much of it.

/** Cookie names and values the gateway sets: token characters only, so no encoding is needed. */
const TOKEN = /^[A-Za-z0-9_-]+$/;

/** The cookies of a `Cookie` header; the first of a repeated name wins. Malformed pairs are skipped. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (!TOKEN.test(name) || name in out) continue;
    out[name] = value;
  }
  return out;
}

export interface CookieAttributes {
  path: string;
  httpOnly: boolean;
  sameSite: 'strict';
  secure: boolean;
  /** Seconds; 0 deletes the cookie. */
  maxAge: number;
}

/** A Set-Cookie header value. */
export function serializeCookie(name: string, value: string, a: CookieAttributes): string {
  if (!TOKEN.test(name)) throw new TypeError(`cookie name ${JSON.stringify(name)} is not a token`);
  if (value !== '' && !TOKEN.test(value)) throw new TypeError(`cookie ${name}: value is not a token`);
  const parts = [`${name}=${value}`, `Path=${a.path}`, `Max-Age=${Math.max(0, Math.floor(a.maxAge))}`];
  if (a.maxAge <= 0) parts.push('Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  if (a.httpOnly) parts.push('HttpOnly');
  if (a.secure) parts.push('Secure');
  parts.push('SameSite=Strict');
  return parts.join('; ');
}
