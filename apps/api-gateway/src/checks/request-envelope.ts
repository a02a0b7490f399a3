import { CHECK_TYPES, locationSchema, UUID_PATTERN, type Actor } from '@fleetwatch/contracts';
import { InvalidError } from '@fleetwatch/domain';
import { z } from 'zod';
import type { Principal } from '../auth/principal';

// What the gateway checks of a configuration request itself: ids, query parameters,
// the If-Match header, that a body is an object. Check definitions are validated once,
// by their owner (sync-orchestrator, `checkInputSchema`); its InvalidError issues come
// back as this request's 400.

/** Who the audit log records: the authenticated user or API key. */
export function actorOf(principal: Principal): Actor {
  return { id: `${principal.kind === 'user' ? 'user' : 'api-key'}:${principal.id}`, name: principal.name };
}

export function checkIdOf(id: string): string {
  if (!UUID_PATTERN.test(id))
    throw new InvalidError(`id: not a check id (UUID): "${id.slice(0, 64)}"`, [
      { path: 'id', message: 'a check id (UUID)' },
    ]);
  return id;
}

/**
 * `If-Match: "7"` → 7 (the version a writer last read: a check's or the config's ETag).
 * Absent or `*` → undefined (write whatever the version). A bare `7` is taken too, for
 * scripts; weak tags never match (RFC 9110 §13.1.1: If-Match compares strongly).
 */
export function expectedVersionOf(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (value === undefined || value.trim() === '' || value.trim() === '*') return undefined;
  const m = /^\s*(?:"(\d{1,15})"|(\d{1,15}))\s*$/.exec(value);
  if (!m)
    throw new InvalidError(
      `If-Match: expected one version ETag such as "7", got ${JSON.stringify(value.slice(0, 64))}`,
      [{ path: 'If-Match', message: 'one strong ETag of a version, such as "7"' }],
    );
  return Number(m[1] ?? m[2]);
}

/** What an `Idempotency-Key` may be: 1 to this many visible ASCII characters (`!` to `~`). */
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;

const KEY_RULE = `1 to ${IDEMPOTENCY_KEY_MAX_LENGTH} visible ASCII characters (! to ~: no spaces, control or non-ASCII characters)`;

/**
 * `Idempotency-Key: <1–255 visible ASCII characters>` on a write → the key (absent → undefined). The owner answers a
 * request with the same key, caller, route and body as it answered the first (for a day), writing nothing again: a
 * script may send a write again after a 503 ("outcome unknown") without making it twice; the same key with another
 * body is refused (422). `header`: every value the request carried, one per header line (`IdempotencyKeyHeader`), so
 * a key sent twice is told apart from one key. A bad key is a 400 saying what is wrong with it and the limits.
 */
export function idempotencyKeyOf(header: string | readonly string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const values = typeof header === 'string' ? [header] : header;
  if (values.length === 0) return undefined;
  if (values.length > 1) return badKey(`sent ${values.length} times: send the header once, with one key (${KEY_RULE})`);
  const value = values[0];
  if (value.trim() === '') return badKey(`empty: send ${KEY_RULE}, or leave the header out`);
  if (value.length > IDEMPOTENCY_KEY_MAX_LENGTH)
    return badKey(`${value.length} characters, more than ${IDEMPOTENCY_KEY_MAX_LENGTH}: send ${KEY_RULE}`);
  const chars = [...value];
  const at = chars.findIndex((c) => !/^[\x21-\x7e]$/.test(c));
  if (at >= 0) {
    const c = chars[at];
    const what = c === ' ' ? 'a space' : c < ' ' || c === '\x7f' ? 'a control character' : 'not ASCII';
    const code = (c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    return badKey(`character ${at + 1} is ${what} (U+${code}): send ${KEY_RULE}`);
  }
  return value;
}

function badKey(problem: string): never {
  throw new InvalidError(`Idempotency-Key: ${problem}`, [{ path: 'Idempotency-Key', message: problem }]);
}

/**
 * A JSON object body (PUT, PATCH, POST of one check, an alert rule, a property, …). JSON text such as
 * `1e400` reads as ±Infinity, which the bus carries to the owner as null — in a merge patch "reset to the
 * default", elsewhere possibly a value the owner takes: refused here, naming where it is.
 */
export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new InvalidError('body: send a JSON object', [{ path: '(body)', message: 'expected a JSON object' }]);
  const at = nonFiniteAt(body, []);
  if (at) {
    const path = at.join('.') || '(body)';
    throw new InvalidError(`${path}: number out of range: a JSON number must fit a 64-bit float`, [
      { path, message: 'number out of range: a JSON number must fit a 64-bit float' },
    ]);
  }
  return body as Record<string, unknown>;
}

/** The path of the first number that is not finite inside a parsed JSON value, or null. */
function nonFiniteAt(value: unknown, path: Array<string | number>): Array<string | number> | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : path;
  if (typeof value !== 'object' || value === null) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = nonFiniteAt(value[i], [...path, i]);
      if (at) return at;
    }
    return null;
  }
  for (const [k, v] of Object.entries(value)) {
    const at = nonFiniteAt(v, [...path, k]);
    if (at) return at;
  }
  return null;
}

const boolParam = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const cursor = z.string().min(1).max(256).optional();

/** `GET /api/v1/checks` */
export const listChecksQuerySchema = z.strictObject({
  type: z.enum(CHECK_TYPES).optional(),
  tag: z.string().min(1).max(64).optional(),
  location: locationSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor,
});

/** `POST /api/v1/checks/bulk` */
export const bulkCreateBodySchema = z.strictObject({
  checks: z.array(z.unknown()).min(1, 'give at least one check').max(1000, 'at most 1000 checks per request'),
});

/** `POST /api/v1/config/import` */
export const importQuerySchema = z.strictObject({
  dryRun: boolParam.default(false),
  prune: boolParam.default(true),
});

/** `GET /api/v1/config/versions` */
export const versionsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  before: z.coerce.number().int().positive().max(2_147_483_647).optional(),
});

/** `GET /api/v1/config/audit` */
export const auditQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor,
  subject: z.string().min(1).max(300).optional(),
});

export function versionNumberOf(n: string): number {
  const v = Number(n);
  if (!/^\d{1,10}$/.test(n) || !Number.isSafeInteger(v) || v < 1 || v > 2_147_483_647)
    throw new InvalidError(`n: not a config version: "${n.slice(0, 32)}"`, [
      { path: 'n', message: 'a config version (a positive integer)' },
    ]);
  return v;
}
