import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

// The one definition of an API key's shape, shared by the code that issues keys
// (api-gateway, `POST /api/v1/api-keys`) and the code that checks them
// (status-ingest, later the gateway's bearer auth):
//
//   fwk_1a2b3c4d_<43 characters of base64url: 32 random bytes>
//   └── prefix ─┘ (stored in `api_keys.prefix`, indexed; shown in lists; not secret)
//
// `api_keys.key_hash` holds `sha256:<hex of SHA-256 of the whole key>`. A key carries
// 256 random bits, so a fast hash is as safe as a slow one here (slow hashes protect
// guessable passwords) and lets the ingest edge verify a cache miss in microseconds.
// `verifyApiKey` also accepts argon2 PHC strings (`$argon2id$…`) should a caller
// store those.

export const API_KEY_TAG = 'fwk_';
const PREFIX_HEX = 8;
const SECRET_BYTES = 32;
const KEY_PATTERN = /^(fwk_[0-9a-f]{8})_([A-Za-z0-9_-]{43})$/;
const SHA256_TAG = 'sha256:';

export interface GeneratedApiKey {
  /** The full key: shown once to its owner, never stored. */
  key: string;
  /** `api_keys.prefix`. */
  prefix: string;
  /** `api_keys.key_hash`. */
  keyHash: string;
}

/** A new random key with its prefix and hash, ready for ApiKeysRepository.create. */
export function generateApiKey(): GeneratedApiKey {
  const prefix = `${API_KEY_TAG}${randomBytes(PREFIX_HEX / 2).toString('hex')}`;
  const key = `${prefix}_${randomBytes(SECRET_BYTES).toString('base64url')}`;
  return { key, prefix, keyHash: hashApiKey(key) };
}

/** The prefix of a well-formed key, or null (malformed keys never reach the database). */
export function apiKeyPrefixOf(key: string): string | null {
  const m = KEY_PATTERN.exec(key);
  return m ? m[1] : null;
}

export function hashApiKey(key: string): string {
  return SHA256_TAG + createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Whether `key` matches a stored `keyHash`. Constant-time for the SHA-256 form;
 * argon2 hashes are verified with @node-rs/argon2 (loaded only when met).
 */
export async function verifyApiKey(key: string, keyHash: string): Promise<boolean> {
  if (keyHash.startsWith(SHA256_TAG)) {
    const expected = Buffer.from(keyHash.slice(SHA256_TAG.length), 'hex');
    const actual = createHash('sha256').update(key, 'utf8').digest();
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }
  if (keyHash.startsWith('$argon2')) {
    const { verify } = await import('@node-rs/argon2');
    return verify(keyHash, key).catch(() => false);
  }
  return false;
}
