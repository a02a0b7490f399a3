import { hash } from '@node-rs/argon2';
import { createHash } from 'node:crypto';
import { checksumOf } from '../credentials/checksum';
import {
  apiKeyPrefixOf,
  apiKeyShapeOf,
  generateApiKey,
  hashApiKey,
  isLegacyApiKeyPrefix,
  verifyApiKey,
} from './api-key-secret';

/** A key as issued before checksums: `fwk_<8 hex>_<43 base64url>`. */
function legacyKey(): { key: string; prefix: string } {
  const prefix = `fwk_${createHash('sha1').update(String(Math.random())).digest('hex').slice(0, 8)}`;
  return { key: `${prefix}_${createHash('sha256').update(prefix).digest('base64url')}`, prefix };
}

describe('API key format', () => {
  it('generates checksummed keys whose prefix and hash verify', async () => {
    const k = generateApiKey();
    expect(k.key).toMatch(/^fwk_[0-9a-f]{12}_[0-9A-Za-z]{46}$/);
    expect(k.key.startsWith(`${k.prefix}_`)).toBe(true);
    expect(k.key.slice(-6)).toBe(checksumOf(k.key.slice(0, -6)));
    expect(apiKeyShapeOf(k.key)).toEqual({ kind: 'checksummed', prefix: k.prefix });
    expect(apiKeyPrefixOf(k.key)).toBe(k.prefix);
    expect(isLegacyApiKeyPrefix(k.prefix)).toBe(false);
    expect(k.keyHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(k.keyHash).not.toContain(k.key);
    await expect(verifyApiKey(k.key, k.keyHash)).resolves.toBe(true);
    expect(generateApiKey().key).not.toBe(k.key);
  });

  it('tells a mistyped key by its checksum: any one changed character fails it', () => {
    const { key } = generateApiKey();
    for (let i = 17; i < key.length; i++) {
      const c = key[i] === 'a' ? 'b' : 'a';
      const typo = key.slice(0, i) + c + key.slice(i + 1);
      expect(apiKeyShapeOf(typo)).toEqual({ kind: 'bad-checksum' });
    }
    // The prefix is covered too.
    expect(apiKeyShapeOf(`fwk_${'0'.repeat(12)}${key.slice(16)}`).kind).toBe('bad-checksum');
  });

  it('still recognises keys issued before checksums, by their shape', () => {
    const { key, prefix } = legacyKey();
    expect(apiKeyShapeOf(key)).toEqual({ kind: 'legacy', prefix });
    expect(apiKeyPrefixOf(key)).toBe(prefix);
    expect(isLegacyApiKeyPrefix(prefix)).toBe(true);
  });

  it('refuses another key with the same prefix, a tampered hash or an unknown hash scheme', async () => {
    const k = generateApiKey();
    const other = `${k.prefix}_${'A'.repeat(43)}`;
    await expect(verifyApiKey(other, k.keyHash)).resolves.toBe(false);
    await expect(verifyApiKey(k.key, 'sha256:00')).resolves.toBe(false);
    await expect(verifyApiKey(k.key, hashApiKey(k.key).replace('sha256:', 'md5:'))).resolves.toBe(false);
  });

  it('verifies argon2 hashes too', async () => {
    const k = generateApiKey();
    const stored = await hash(k.key);
    await expect(verifyApiKey(k.key, stored)).resolves.toBe(true);
    await expect(verifyApiKey(`${k.prefix}_${'B'.repeat(43)}`, stored)).resolves.toBe(false);
  });

  it.each([
    '',
    'Bearer x',
    'fwk_1234567_' + 'a'.repeat(43),
    'fwk_1a2b3c4d_' + 'a'.repeat(42),
    'fwk_1A2B3C4D_' + 'a'.repeat(43),
    'fwk_1a2b3c4d_' + 'a'.repeat(42) + '!',
    'fwk_1a2b3c4d5e6f_' + 'a'.repeat(45),
    'fwk_1a2b3c4d5e6f_' + 'a'.repeat(45) + '-',
  ])('treats %j as malformed', (key) => {
    expect(apiKeyPrefixOf(key)).toBeNull();
    expect(apiKeyShapeOf(key)).toEqual({ kind: 'malformed' });
  });
});
