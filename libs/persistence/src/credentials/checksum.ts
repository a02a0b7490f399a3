import { randomInt } from 'node:crypto';
import { crc32 } from 'node:zlib';

// Checksummed credentials, as GitHub's tokens carry them: a base62 random part and a
// 6-character base62 CRC32 of everything before it. A mistyped or made-up credential
// fails the checksum and is refused without a database query. It is not a secret:
// whoever computes CRC32 can forge a valid one, so it filters noise, not attackers.

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 62^6 > 2^32: every CRC32 fits. */
export const CHECKSUM_CHARS = 6;

/** `length` uniformly random base62 characters (≈ 5.95 bits each). */
export function randomBase62(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[randomInt(62)];
  return out;
}

/** The base62 CRC32 of `body`, left-padded to CHECKSUM_CHARS. */
export function checksumOf(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_CHARS; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** `body` with its checksum appended. */
export function withChecksum(body: string): string {
  return body + checksumOf(body);
}

/** Whether the last CHECKSUM_CHARS characters of `credential` are the checksum of the rest. */
export function hasValidChecksum(credential: string): boolean {
  if (credential.length <= CHECKSUM_CHARS) return false;
  const body = credential.slice(0, -CHECKSUM_CHARS);
  return checksumOf(body) === credential.slice(-CHECKSUM_CHARS);
}
