import { createHash, randomBytes } from 'node:crypto';

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

const POOL_IDS = 512;
let pool = Buffer.alloc(0);
let offset = 0;

/**
 * A UUIDv7 (RFC 9562: 48-bit ms timestamp, then random bits) for an update that
 * came without an id. Same layout as contracts' `uuidv7`, but draws randomness
 * from a pooled buffer: one `randomFillSync` per 512 ids instead of a WebCrypto
 * call per id, which showed up in the ingest profile.
 */
export function newUpdateId(now: number = Date.now()): string {
  if (offset + 10 > pool.length) {
    pool = randomBytes(POOL_IDS * 10);
    offset = 0;
  }
  const r = pool;
  const o = offset;
  offset += 10;
  const ts = now.toString(16).padStart(12, '0').slice(-12);
  const hex = (i: number) => HEX[r[o + i]];
  return (
    `${ts.slice(0, 8)}-${ts.slice(8, 12)}-` +
    `7${HEX[r[o] & 0x0f].slice(1)}${hex(1)}-` +
    `${HEX[(r[o + 2] & 0x3f) | 0x80]}${hex(3)}-` +
    `${hex(4)}${hex(5)}${hex(6)}${hex(7)}${hex(8)}${hex(9)}`
  );
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
