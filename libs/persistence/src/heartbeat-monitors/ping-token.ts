import { createHash } from 'node:crypto';
import { hasValidChecksum, randomBase62, withChecksum } from '../credentials/checksum';

// Ping URL tokens (`/ping/{token}`): the one definition, shared by the code that
// creates heartbeat monitors (api-gateway) and the ingest edge that looks them up.
//
//   fwp_<40 base62: ≈ 238 random bits><6 base62: CRC32 of all before it>
//
// Tokens issued before the checksum (43 characters of base64url) keep working: the
// ingest edge keeps the hashes of all monitors' tokens in memory for them (see
// PingTokenResolver). `heartbeat_monitors.token_hash` holds the lowercase hex SHA-256
// of the token; the token itself is shown once and never stored.

/** What a token may look like in a URL; anything else is answered 404 without a lookup. */
export const PING_TOKEN_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;
const CHECKSUMMED_PATTERN = /^fwp_[0-9A-Za-z]{46}$/;

export type PingTokenShape = 'checksummed' | 'legacy' | 'bad-checksum' | 'malformed';

/** A new random token with its checksum (50 characters, URL-safe). */
export function generatePingToken(): string {
  return withChecksum(`fwp_${randomBase62(40)}`);
}

export function pingTokenShapeOf(token: string): PingTokenShape {
  if (CHECKSUMMED_PATTERN.test(token)) return hasValidChecksum(token) ? 'checksummed' : 'bad-checksum';
  return PING_TOKEN_PATTERN.test(token) ? 'legacy' : 'malformed';
}

export function hashPingToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
