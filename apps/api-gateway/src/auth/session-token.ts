import { createHash, randomBytes } from 'node:crypto';

// Session bearer tokens: `fws_<tokenVersion>_<43 base64url>` (256 random bits). Only
// the SHA-256 is stored (sessions.token_hash). The token carries the user's
// tokenVersion at issue, so a password or role change (which bumps the version)
// invalidates it even if its session row were somehow left unrevoked.

const SESSION_TOKEN = /^fws_(\d{1,9})_[A-Za-z0-9_-]{43}$/;

export function hashSessionToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function newSessionToken(tokenVersion: number): { token: string; tokenHash: string } {
  const token = `fws_${tokenVersion}_${randomBytes(32).toString('base64url')}`;
  return { token, tokenHash: hashSessionToken(token) };
}

/** The tokenVersion a session token was issued at, or null when it is not one. */
export function sessionTokenVersion(candidate: string): number | null {
  const m = SESSION_TOKEN.exec(candidate);
  return m ? Number(m[1]) : null;
}
