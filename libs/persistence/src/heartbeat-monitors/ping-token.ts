import { createHash, randomBytes } from 'node:crypto';

// Ping URL tokens (`/ping/{token}`): the one definition, shared by the code that
// creates heartbeat monitors (api-gateway) and the ingest edge that looks them up.
// `heartbeat_monitors.token_hash` holds the lowercase hex SHA-256 of the token;
// the token itself is shown once and never stored.

/** What a token may look like in a URL; anything else is answered 404 without a lookup. */
export const PING_TOKEN_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

/** A new random token (32 bytes, base64url: 43 characters). */
export function generatePingToken(): string {
  return randomBytes(32).toString('base64url');
}

export function hashPingToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
