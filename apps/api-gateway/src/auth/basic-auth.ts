import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';

// HTTP Basic for a leader polling this site (SPEC §8: "member endpoints accept the credentials
// a leader holds: HTTP basic auth of a site user, or a bearer API key with the fleet scope").
// Accepted only on the read-only member endpoints below, GET only, and never above viewer:
// a password sent with every request must not open anything that changes the site.

/**
 * The member endpoints a leader reads (route patterns as Fastify registers them, so a query
 * string, a trailing slash or percent-encoding cannot make another route look like one).
 * Kept here, beside the guard that honours them, rather than as a decorator on the member
 * controller, which its own owner maintains.
 */
export const MEMBER_READ_ROUTES: ReadonlySet<string> = new Set([
  '/api/v1/status/report',
  '/api/v1/metrics/flow',
  '/api/v1/system/snapshot/current',
]);

/** True for a request the leader's credentials (Basic, or a `fleet`-scoped key) may make. */
export function isMemberRead(method: string, routeUrl: string | undefined): boolean {
  return method === 'GET' && routeUrl !== undefined && MEMBER_READ_ROUTES.has(routeUrl);
}

export interface BasicCredentials {
  username: string;
  password: string;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Longest Authorization value read as Basic (a username of 256 and a long password, base64'd). */
const MAX_BASIC_LENGTH = 4096;

/**
 * `Basic <base64(username:password)>` → its parts, or null when the header is not Basic at all.
 * Throws (a message naming no part of the value) when it is Basic but malformed.
 */
export function parseBasicAuthorization(authorization: string | undefined): BasicCredentials | null {
  if (!authorization) return null;
  const m = /^Basic[ ]+(\S*)\s*$/i.exec(authorization);
  if (!m) return null;
  const encoded = m[1];
  if (encoded.length === 0 || encoded.length > MAX_BASIC_LENGTH || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded))
    throw new MalformedBasicError('Authorization "Basic" value is not base64');
  // Strictly UTF-8: read leniently, each bad sequence became U+FFFD, which a stored password may hold (argon2 hashes
  // UTF-8), so any non-UTF-8 byte in its place signed in. A leading BOM stays a character, as Buffer kept it.
  let decoded: string;
  try {
    decoded = STRICT_UTF8.decode(Buffer.from(encoded, 'base64'));
  } catch {
    throw new MalformedBasicError('Authorization "Basic" value is not UTF-8');
  }
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw new MalformedBasicError('Authorization "Basic" value must be base64 of "username:password"');
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (username.length > 256 || password.length === 0 || password.length > 1024)
    throw new MalformedBasicError('Authorization "Basic" username or password has a bad length');
  // No username holds a NUL (usernames are store-safe text); Postgres would refuse the lookup (a 500 before any login).
  if (username.includes('\u0000'))
    throw new MalformedBasicError('Authorization "Basic" username holds a NUL character');
  return { username, password };
}

export class MalformedBasicError extends Error {}

/** Whom a verified Basic credential belonged to, at which token version. */
export interface BasicVerdict {
  userId: string;
  tokenVersion: number;
}

/**
 * Verified Basic credentials, remembered for a while so a leader polling three endpoints every
 * cycle does not cost three argon2 verifications (and three rate-limit tokens) each time. Keyed
 * by an HMAC of the credentials under a key made for this process: neither the password nor a
 * plain hash of it is held. A hit still re-reads the user (id and token version must match:
 * a password change, role change or disable bumps the version and ends the entry at once).
 * Only successes are kept: every wrong password costs a verification and a rate-limit token.
 */
export class BasicVerdictCache {
  private readonly key = randomBytes(32);
  private readonly entries: LRUCache<string, BasicVerdict>;

  constructor(options: { ttlMs?: number; max?: number } = {}) {
    this.entries = new LRUCache({ max: options.max ?? 1000, ttl: options.ttlMs ?? 5 * 60_000 });
  }

  private keyOf(c: BasicCredentials): string {
    return createHmac('sha256', this.key)
      .update(JSON.stringify([c.username, c.password]))
      .digest('base64url');
  }

  get(c: BasicCredentials): BasicVerdict | undefined {
    return this.entries.get(this.keyOf(c));
  }

  set(c: BasicCredentials, verdict: BasicVerdict): void {
    this.entries.set(this.keyOf(c), verdict);
  }

  delete(c: BasicCredentials): void {
    this.entries.delete(this.keyOf(c));
  }

  get size(): number {
    return this.entries.size;
  }
}
