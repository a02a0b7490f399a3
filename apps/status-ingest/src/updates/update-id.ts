import { v5, v7 } from 'uuid';

/** Namespace of update message ids (a fixed random UUID; never change it: ids of retries must stay equal across versions). */
const NAMESPACE = Buffer.from('5b0b7c1e2f0a4c8e9d3f6a1b2c3d4e5f', 'hex');

/**
 * The bus message id of a client-identified update: a name-based UUIDv5 of
 * (API key id, update id). A retry of the same update with the same key gets the
 * same message id, so the aggregator's message-id idempotency drops the duplicate;
 * two keys using the same update id do not collide.
 */
export function updateMessageId(apiKeyId: string, updateId: string): string {
  // Bytes, not a string: uuid's own UTF-8 step throws on a lone surrogate, Buffer.from replaces it as before.
  return v5(Buffer.from(`${apiKeyId}\n${updateId}`, 'utf8'), NAMESPACE);
}

/** A UUIDv7 (time-ordered) for an update that came without an id; uuid draws randomness from a pooled buffer. */
export function newUpdateId(now: number = Date.now()): string {
  return v7({ msecs: now });
}
