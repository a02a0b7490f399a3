import { hash } from '@node-rs/argon2';
import { apiKeyPrefixOf, generateApiKey, hashApiKey, verifyApiKey } from './api-key-secret';

describe('API key format', () => {
  it('generates keys whose prefix and hash verify', async () => {
    const k = generateApiKey();
    expect(k.key).toMatch(/^fwk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
    expect(k.key.startsWith(`${k.prefix}_`)).toBe(true);
    expect(apiKeyPrefixOf(k.key)).toBe(k.prefix);
    expect(k.keyHash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(k.keyHash).not.toContain(k.key);
    await expect(verifyApiKey(k.key, k.keyHash)).resolves.toBe(true);
    expect(generateApiKey().key).not.toBe(k.key);
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

  it.each(['', 'Bearer x', 'fwk_1234567_' + 'a'.repeat(43), 'fwk_1a2b3c4d_' + 'a'.repeat(42), 'fwk_1A2B3C4D_' + 'a'.repeat(43), 'fwk_1a2b3c4d_' + 'a'.repeat(42) + '!'])(
    'treats %j as malformed',
    (key) => expect(apiKeyPrefixOf(key)).toBeNull(),
  );
});
