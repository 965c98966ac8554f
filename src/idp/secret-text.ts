import { createHash, timingSafeEqual } from 'node:crypto';

/** The store key part for a secret value (a state, cookie, code or token): its SHA-256, base64url, so the store never holds the value itself. */
export function secretDigest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** Compares two secret texts in constant time, whatever their lengths (their SHA-256 digests are compared). */
export function equalSecretText(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
