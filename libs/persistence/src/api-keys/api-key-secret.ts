import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hasValidChecksum, randomBase62, withChecksum } from '../credentials/checksum';

// The one definition of an API key's shape, shared by the code that issues keys
// (api-gateway, `POST /api/v1/api-keys`) and the code that checks them (ApiKeyVerifier,
// used by status-ingest and the gateway's bearer auth):
//
//   fwk_1a2b3c4d5e6f_<40 base62: ≈ 238 random bits><6 base62: CRC32 of all before it>
//   └──── prefix ───┘ (stored in `api_keys.prefix`, indexed; shown in lists; not secret)
//
// Keys issued before the checksum (`fwk_1a2b3c4d_<43 base64url>`, an 8-hex prefix) keep
// working; the verifier knows their prefixes, so a random key of either shape is
// refused without a query.
//
// `api_keys.key_hash` holds `sha256:<hex of SHA-256 of the whole key>`. A key carries
// over 230 random bits, so a fast hash is as safe as a slow one here (slow hashes
// protect guessable passwords) and lets the ingest edge verify a cache miss in
// microseconds. `verifyApiKey` also accepts argon2 PHC strings (`$argon2id$…`) should a
// caller store those.

export const API_KEY_TAG = 'fwk_';
const PREFIX_HEX = 12;
const SECRET_CHARS = 40;
const KEY_PATTERN = /^(fwk_[0-9a-f]{12})_[0-9A-Za-z]{46}$/;
const LEGACY_KEY_PATTERN = /^(fwk_[0-9a-f]{8})_[A-Za-z0-9_-]{43}$/;
const LEGACY_PREFIX_PATTERN = /^fwk_[0-9a-f]{8}$/;
const SHA256_TAG = 'sha256:';

export interface GeneratedApiKey {
  /** The full key: shown once to its owner, never stored. */
  key: string;
  /** `api_keys.prefix`. */
  prefix: string;
  /** `api_keys.key_hash`. */
  keyHash: string;
}

/** What the shape of a presented key says, before any lookup. */
export type ApiKeyShape =
  | { kind: 'checksummed'; prefix: string }
  | { kind: 'legacy'; prefix: string }
  | { kind: 'bad-checksum' }
  | { kind: 'malformed' };

/** A new random key with its prefix and hash, ready for ApiKeysRepository.create. */
export function generateApiKey(): GeneratedApiKey {
  const prefix = `${API_KEY_TAG}${randomBytes(PREFIX_HEX / 2).toString('hex')}`;
  const key = withChecksum(`${prefix}_${randomBase62(SECRET_CHARS)}`);
  return { key, prefix, keyHash: hashApiKey(key) };
}

export function apiKeyShapeOf(key: string): ApiKeyShape {
  const m = KEY_PATTERN.exec(key);
  if (m) return hasValidChecksum(key) ? { kind: 'checksummed', prefix: m[1] } : { kind: 'bad-checksum' };
  const legacy = LEGACY_KEY_PATTERN.exec(key);
  return legacy ? { kind: 'legacy', prefix: legacy[1] } : { kind: 'malformed' };
}

/** The prefix of a key of either well-formed shape, or null (malformed keys never reach the database). */
export function apiKeyPrefixOf(key: string): string | null {
  return KEY_PATTERN.exec(key)?.[1] ?? LEGACY_KEY_PATTERN.exec(key)?.[1] ?? null;
}

/** Whether a stored prefix belongs to a key issued before checksums. */
export function isLegacyApiKeyPrefix(prefix: string): boolean {
  return LEGACY_PREFIX_PATTERN.test(prefix);
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
