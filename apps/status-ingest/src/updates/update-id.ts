import { createHash } from 'node:crypto';

/** Namespace of update message ids (a fixed random UUID; never change it: ids of retries must stay equal across versions). */
const NAMESPACE = Buffer.from('5b0b7c1e2f0a4c8e9d3f6a1b2c3d4e5f', 'hex');

/**
 * The bus message id of a client-identified update: a name-based UUID (RFC 9562
 * version 5 layout) of (API key id, update id). A retry of the same update with the
 * same key gets the same message id, so the aggregator's message-id idempotency
 * drops the duplicate; two keys using the same update id do not collide.
 */
export function updateMessageId(apiKeyId: string, updateId: string): string {
  const hash = createHash('sha1').update(NAMESPACE).update(apiKeyId).update('\n').update(updateId).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
