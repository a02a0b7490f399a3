import { createHash } from 'node:crypto';
import type { RpcContext } from '@fleetwatch/messaging';
import type { WriteRequest } from './config-writer';

/**
 * What makes a write idempotent: the request's message id (the same on a redelivery) — or, when the HTTP client
 * sent an `Idempotency-Key`, an id derived from that key, the method and the params (which name the caller): the
 * client's retry after a 503 is then answered as the first request was, even though it is another message. A keyed
 * request carries a second id, `keyId`, from the key, the method and the caller alone (not the body): the owner keeps
 * it with the answer, so the same key sent again with another body is told apart from a new key (and refused).
 * Used by every configuration owner's RPC handler (checks, alert configuration, status pages, properties).
 */
export function requestOf(ctx: RpcContext, params: unknown): WriteRequest {
  if (ctx.idempotencyKey === undefined) return { id: ctx.messageId, method: ctx.method, deadline: ctx.deadline };
  return {
    id: uuidOf(canonicalJson([ctx.idempotencyKey, ctx.method, params])),
    method: ctx.method,
    deadline: ctx.deadline,
    keyed: true,
    keyId: uuidOf(canonicalJson(['key', ctx.idempotencyKey, ctx.method, callerOf(params)])),
  };
}

/** Who sent a write: its params' `actor.id` (`user:42`, `api-key:7`; every write's params name one). */
function callerOf(params: unknown): string | null {
  const actor = (params as { actor?: { id?: unknown } } | null)?.actor;
  return typeof actor?.id === 'string' ? actor.id : null;
}

/** The sha256 of `text` shaped as a UUID (config_requests' keys): version 8 (custom), RFC 9562 variant. */
function uuidOf(text: string): string {
  const digest = createHash('sha256').update(text).digest('hex');
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
