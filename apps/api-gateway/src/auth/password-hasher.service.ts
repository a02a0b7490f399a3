import { Injectable } from '@nestjs/common';
import { hash, verify } from '@node-rs/argon2';
import { randomBytes } from 'node:crypto';

/** argon2id password hashes (SPEC §10), with @node-rs/argon2's defaults (~10 ms). */
@Injectable()
export class PasswordHasher {
  private dummy: Promise<string> | null = null;

  hash(password: string): Promise<string> {
    return hash(password);
  }

  async verify(passwordHash: string, password: string): Promise<boolean> {
    return verify(passwordHash, password).catch(() => false);
  }

  /**
   * Spends the time of a real verification against a hash nobody knows the password
   * of, so a login for an unknown user takes about as long as one with a wrong password.
   */
  async verifyNobody(password: string): Promise<false> {
    this.dummy ??= hash(randomBytes(16).toString('hex'));
    await this.verify(await this.dummy, password);
    return false;
  }

  /** A random password for the first admin when none is configured (24 characters). */
  generatePassword(): string {
    return randomBytes(18).toString('base64url');
  }
}
