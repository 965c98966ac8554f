import { createCipheriv, createDecipheriv } from 'node:crypto';
import { secureRandomBytes } from './entropy.js';

/**
 * Authenticated encryption (AES-256-GCM, node:crypto) for secrets kept in the store, so that a dump of
 * the store does not hand out usable credentials. The associated data binds a ciphertext to the record
 * it belongs to: a blob copied into another session's record does not decrypt.
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('the encryption key must be 32 bytes');
    this.#key = key;
  }

  /** Encrypts `plaintext`, bound to `context`; returns base64url `iv.ciphertext.tag`. */
  seal(plaintext: string, context: string): string {
    const iv = secureRandomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const encrypted = cipher.update(plaintext, 'utf8');
    // GCM is a stream mode: final() adds nothing (it computes the tag), so the one buffer is not copied.
    const rest = cipher.final();
    const body = rest.length === 0 ? encrypted : Buffer.concat([encrypted, rest]);
    return `${iv.toString('base64url')}.${body.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
  }

  /** Decrypts a blob made by `seal` with the same context; undefined when it was tampered with or is foreign. */
  open(sealed: string, context: string): string | undefined {
    const parts = sealed.split('.');
    if (parts.length !== 3) return undefined;
    const [iv, body, tag] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer];
    if (iv.length !== 12 || tag.length !== 16) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, iv);
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
