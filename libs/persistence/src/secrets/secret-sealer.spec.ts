import { createHash, createHmac } from 'node:crypto';
import { generateSealingKeyText, parseSealingKey, SecretSealer, SecretSealingError } from './secret-sealer';

const KEY_A = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const KEY_B = generateSealingKeyText();

describe('SecretSealer', () => {
  const sealer = SecretSealer.fromText(KEY_A);

  it('opens what it sealed; the ciphertext holds no part of the plaintext and differs every time', () => {
    const a = sealer.seal('hunter2-routing-key', 'channel:pd:routingKey');
    const b = sealer.seal('hunter2-routing-key', 'channel:pd:routingKey');
    expect(a).not.toBe(b);
    expect(a).not.toContain('hunter2');
    expect(a).toMatch(/^fw1\.[0-9a-f]{8}\./);
    expect(sealer.open(a, 'channel:pd:routingKey')).toBe('hunter2-routing-key');
    expect(sealer.open(sealer.seal('', 'c'), 'c')).toBe('');
    expect(sealer.open(sealer.seal('😀 ünïcode', 'c'), 'c')).toBe('😀 ünïcode');
  });

  it('digests: the same text the same under one key, another under another key or purpose; never a plain hash', () => {
    const text = '["deploy-42","subscriptions.create",{"secret":"hunter2"}]';
    const d = sealer.digest('config request id', text);
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(SecretSealer.fromText(KEY_A, [KEY_B]).digest('config request id', text)).toBe(d);
    expect(SecretSealer.fromText(KEY_B).digest('config request id', text)).not.toBe(d);
    expect(sealer.digest('another purpose', text)).not.toBe(d);
    expect(d).not.toBe(createHash('sha256').update(text).digest('hex'));
    // A key derived for the purpose: not the HMAC under the sealing key itself.
    expect(d).not.toBe(createHmac('sha256', parseSealingKey(KEY_A).key).update(text).digest('hex'));
  });

  it("previous digests: what digest() gave under each earlier key, in order, the current key's not among them", () => {
    const text = '["deploy-42","checks.create",{}]';
    const KEY_C = generateSealingKeyText();
    const rotated = SecretSealer.fromText(KEY_C, [KEY_A, KEY_B]);
    expect(rotated.previousDigests('config request id', text)).toEqual([
      sealer.digest('config request id', text),
      SecretSealer.fromText(KEY_B).digest('config request id', text),
    ]);
    expect(rotated.previousDigests('config request id', text)).not.toContain(rotated.digest('config request id', text));
    // Each key's derived key is its own (a cache by purpose alone would hand the current key's to the earlier ones).
    expect(rotated.digest('config request id', text)).toBe(
      SecretSealer.fromText(KEY_C).digest('config request id', text),
    );
    expect(sealer.previousDigests('config request id', text)).toEqual([]);
  });

  it.each([
    ['a flipped ciphertext byte', (s: string) => flipPart(s, 4)],
    ['a flipped tag byte', (s: string) => flipPart(s, 3)],
    ['a flipped IV byte', (s: string) => flipPart(s, 2)],
    ['a truncated value', (s: string) => s.slice(0, -2)],
    ['another key id', (s: string) => s.replace(/^fw1\.[0-9a-f]{8}/, 'fw1.deadbeef')],
    ['not sealed at all', () => 'plain text'],
  ])('refuses %s', (_what, tamper) => {
    const sealed = sealer.seal('secret', 'channel:x:secret');
    expect(() => sealer.open(tamper(sealed), 'channel:x:secret')).toThrow(SecretSealingError);
  });

  it('a value opens only in the context it was sealed for (no moving secrets between channels or fields)', () => {
    const sealed = sealer.seal('secret', 'channel:a:secret');
    expect(() => sealer.open(sealed, 'channel:b:secret')).toThrow(SecretSealingError);
    expect(() => sealer.open(sealed, 'channel:a:bearerToken')).toThrow(SecretSealingError);
  });

  it('rotation: the new key seals, the old one still opens, and old values are flagged for resealing', () => {
    const old = sealer.seal('v1', 'c');
    const rotated = SecretSealer.fromText(KEY_B, [KEY_A]);
    expect(rotated.keyId).not.toBe(sealer.keyId);
    expect(rotated.open(old, 'c')).toBe('v1');
    expect(rotated.needsReseal(old)).toBe(true);
    const fresh = rotated.seal('v2', 'c');
    expect(rotated.needsReseal(fresh)).toBe(false);
    expect(fresh.split('.')[1]).toBe(rotated.keyId);
    // A sealer without the new key cannot open the new value: named by its key id.
    expect(() => sealer.open(fresh, 'c')).toThrow(/sealed with key [0-9a-f]{8}/);
  });

  it.each([
    ['hex', KEY_A],
    ['base64url', KEY_B],
    ['base64', Buffer.alloc(32, 7).toString('base64')],
  ])('takes a %s key', (_f, text) => expect(parseSealingKey(text).key).toHaveLength(32));

  it.each([
    ['short', 'abcd'],
    ['31 bytes', 'a'.repeat(62)],
    ['empty', ''],
    ['not base64', '!'.repeat(43)],
  ])('refuses a %s key', (_f, text) => expect(() => parseSealingKey(text)).toThrow(SecretSealingError));
});

function flipPart(sealed: string, index: number): string {
  const parts = sealed.split('.');
  const bytes = Buffer.from(parts[index], 'base64url');
  bytes[0] ^= 1;
  parts[index] = bytes.toString('base64url');
  return parts.join('.');
}
