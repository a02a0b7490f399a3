import { createHash } from 'node:crypto';
import type { RpcContext } from '@fleetwatch/messaging';
import type { SecretSealer } from '@fleetwatch/persistence';
import type { WriteRequest } from './config-writer';

/**
 * What makes a write idempotent: the request's message id (the same on a redelivery) — or, when the HTTP client
 * sent an `Idempotency-Key`, an id derived from that key, the method and the params (which name the caller): the
 * client's retry after a 503 is then answered as the first request was, even though it is another message. A keyed
 * request carries a second id, `keyId`, from the key, the method and the caller alone (not the body): the owner keeps
 * it with the answer, so the same key sent again with another body is told apart from a new key (and refused).
 * Used by every configuration owner's RPC handler (checks, alert configuration, status pages, properties,
 * subscriptions).
 *
 * The params of a keyed request may hold secrets in plain text (a subscription's webhook secret, a channel's tokens,
 * an http check's credential headers, a YAML import holding any of these), and config_requests keeps the id for a
 * day, next to a key that may be guessable: a plain sha256 over them would let whoever reads that table test guesses
 * at a weak secret offline. So with `sealer` (FLEETWATCH_ENCRYPTION_KEY) the id is a keyed digest (HMAC under a key
 * derived from it, SecretSealer.digest) of the whole key-method-params text — every secret field, today's and
 * tomorrow's, with no list to keep — and the same key and body still give the same id, another secret another one.
 * Without the key (`null`) it is the plain sha256: channel and subscription secrets are then refused before anything
 * is recorded, and the credential headers of http checks are stored in plain text beside it anyway. The keyId holds
 * no body, so it stays a plain hash, the same after a rotation of the key or an upgrade from plain ids.
 *
 * A retry may reach a replica whose key changed since the first request was recorded (a rotation, FLEETWATCH_
 * ENCRYPTION_KEY set on an upgrade): its `priorIds` are the ids the same request had before — the digests under the
 * earlier keys (FLEETWATCH_ENCRYPTION_KEY_PREVIOUS) and the plain sha256 of ids before the keyed digest. The writer
 * answers a keyed request whose key was used by one of those as the first request was (not the 422 of a reused key).
 * They are only compared with the id a row already holds, never recorded. A replica without the key the first request
 * was recorded under (one not yet given the new key, mid-rotation) still refuses the retry as a reused key (422):
 * never applied twice.
 */
export function requestOf(
  ctx: RpcContext,
  params: unknown,
  sealer: Pick<SecretSealer, 'digest' | 'previousDigests'> | null,
): WriteRequest {
  if (ctx.idempotencyKey === undefined) return { id: ctx.messageId, method: ctx.method, deadline: ctx.deadline };
  const text = canonicalJson([ctx.idempotencyKey, ctx.method, params]);
  return {
    id: uuidOf(sealer ? sealer.digest(REQUEST_ID_PURPOSE, text) : sha256Hex(text)),
    ...(sealer ? { priorIds: [...sealer.previousDigests(REQUEST_ID_PURPOSE, text), sha256Hex(text)].map(uuidOf) } : {}),
    method: ctx.method,
    deadline: ctx.deadline,
    keyed: true,
    keyId: uuidOf(sha256Hex(canonicalJson(['key', ctx.idempotencyKey, ctx.method, callerOf(params)]))),
  };
}

/** Who sent a write: its params' `actor.id` (`user:42`, `api-key:7`; every write's params name one). */
function callerOf(params: unknown): string | null {
  const actor = (params as { actor?: { id?: unknown } } | null)?.actor;
  return typeof actor?.id === 'string' ? actor.id : null;
}

/** What SecretSealer.digest derives the request ids' key for. */
const REQUEST_ID_PURPOSE = 'config request id';

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A hex digest (sha256 or HMAC-SHA256) shaped as a UUID (config_requests' keys): version 8 (custom), RFC 9562 variant. */
function uuidOf(digest: string): string {
  return `${digest.slice(0, 8)}-${digest.slice(8, 12)}-8${digest.slice(13, 16)}-${((parseInt(digest[16], 16) & 0x3) | 0x8).toString(16)}${digest.slice(17, 20)}-${digest.slice(20, 32)}`;
}

/**
 * JSON with every object's fields in one order (sorted): a retry is the same request whatever order its client wrote
 * the body's fields in (JSON objects are unordered; a client that builds its body again may order them differently).
 */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
