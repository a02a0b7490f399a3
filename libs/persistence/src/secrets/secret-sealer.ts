import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';

// Secrets at rest (SPEC §7, §10: channel secrets stored encrypted): AES-256-GCM with a random 96-bit
// IV per value, the 128-bit tag checked on open (a changed byte, a value moved to another row or
// field, or a wrong key is an error, never garbage). Each sealed value names the key that sealed it,
//
//   fw1.<key id>.<iv>.<tag>.<ciphertext>        (base64url parts; key id: 8 hex of sha256(key))
//
// so keys can rotate: a sealer holds the current key (sealing) and earlier ones (opening only), and
// `needsReseal` tells which values an earlier key sealed. `context` (e.g. `channel:<id>:url`) is
// authenticated, not stored: a value opens only where it was sealed.

const VERSION = 'fw1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretSealingError extends Error {}

/** The context a channel's secret field is sealed under (the owner seals, delivery opens): `channel:<id>:<field>`. */
export const channelSecretContext = (channelId: string, field: string): string => `channel:${channelId}:${field}`;

export interface SealingKey {
  id: string;
  key: Buffer;
}

/** A key from its text form: 64 hex digits or base64/base64url of 32 bytes. Throws on anything else. */
export function parseSealingKey(text: string): SealingKey {
  const t = text.trim();
  let key: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== 32)
    throw new SecretSealingError('an encryption key is 32 bytes: 64 hex digits or 44 characters of base64');
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 8), key };
}

/** A new random key in its text form (base64url, 43 characters). */
export function generateSealingKeyText(): string {
  return randomBytes(32).toString('base64url');
}

export class SecretSealer {
  private readonly keys: Map<string, Buffer>;
  private readonly current: SealingKey;
  /** digest()'s keys by sealing key and purpose: derived from it (HKDF), never the sealing key itself. */
  private readonly digestKeys = new Map<string, Buffer>();

  /** `current` seals and opens; `previous` only open (values sealed before a rotation). */
  constructor(current: SealingKey, previous: readonly SealingKey[] = []) {
    this.current = current;
    this.keys = new Map([current, ...previous].map((k) => [k.id, k.key]));
  }

  static fromText(current: string, previous: readonly string[] = []): SecretSealer {
    return new SecretSealer(parseSealingKey(current), previous.map(parseSealingKey));
  }

  get keyId(): string {
    return this.current.id;
  }

  /** How every value sealed now begins (`fw1.<key id>.`): one that does not was sealed by another key. */
  get sealedPrefix(): string {
    return `${VERSION}.${this.current.id}.`;
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    cipher.setAAD(Buffer.from(`${VERSION}.${this.current.id}.${context}`, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [
      VERSION,
      this.current.id,
      iv.toString('base64url'),
      tag.toString('base64url'),
      body.toString('base64url'),
    ].join('.');
  }

  open(sealed: string, context: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 5 || parts[0] !== VERSION) throw new SecretSealingError('not a sealed secret');
    const [, keyId, ivText, tagText, bodyText] = parts;
    const key = this.keys.get(keyId);
    if (!key) throw new SecretSealingError(`sealed with key ${keyId}, which this sealer does not hold`);
    const iv = Buffer.from(ivText, 'base64url');
    const tag = Buffer.from(tagText, 'base64url');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SecretSealingError('not a sealed secret');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(Buffer.from(`${VERSION}.${keyId}.${context}`, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(Buffer.from(bodyText, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      // Never the cause: it could carry bytes of the value.
      throw new SecretSealingError('sealed secret does not authenticate (changed, moved or wrong key)');
    }
  }

  /**
   * A keyed digest of `text` (HMAC-SHA256, hex) under a key derived from the current key for `purpose` alone (HKDF):
   * stable for the same text while the key stays, useless for testing guesses without the key — where a plain hash
   * of something holding a secret (a request id over a body with a webhook secret) would let whoever reads it test
   * guesses offline. After a rotation the same text digests differently.
   */
  digest(purpose: string, text: string): string {
    return this.digestUnder(this.current, purpose, text);
  }

  /**
   * The digests of `text` under each earlier key (FLEETWATCH_ENCRYPTION_KEY_PREVIOUS), in order: what digest() gave
   * before a rotation, so a value recorded by its digest then (a keyed request's id) is still recognised after it.
   */
  previousDigests(purpose: string, text: string): string[] {
    const out: string[] = [];
    for (const [id, key] of this.keys)
      if (id !== this.current.id) out.push(this.digestUnder({ id, key }, purpose, text));
    return out;
  }

  private digestUnder(sealing: SealingKey, purpose: string, text: string): string {
    const cacheKey = `${sealing.id}\u0000${purpose}`;
    let key = this.digestKeys.get(cacheKey);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', sealing.key, Buffer.alloc(0), `fleetwatch digest: ${purpose}`, 32));
      this.digestKeys.set(cacheKey, key);
    }
    return createHmac('sha256', key).update(text, 'utf8').digest('hex');
  }

  /** Whether a value was sealed by an earlier key (open and seal it again to rotate). */
  needsReseal(sealed: string): boolean {
    return sealed.split('.')[1] !== this.current.id;
  }
}
