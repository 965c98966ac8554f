import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Opaque values stsgate hands out (cookies, login states it checks, terminal codes and session tokens,
 * form tokens): 32 random bytes, base64url without padding, 43 characters. Anything else is refused
 * before the store is asked.
 */
const OPAQUE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/** A new opaque value: 32 random bytes (256 bits), base64url. */
export function newOpaqueValue(): string {
  return randomBytes(32).toString('base64url');
}

/** Whether `value` has the shape of an opaque value stsgate hands out (`newOpaqueValue`). */
export function isOpaqueValue(value: string | null | undefined): value is string {
  return typeof value === 'string' && OPAQUE_VALUE.test(value);
}

/**
 * The opaque value an Authorization header carries as a bearer token, or undefined. RFC 6750 §2.1: the
 * scheme is case-insensitive; the token is one of ours or nothing.
 */
export function opaqueBearerToken(authorization: string): string | undefined {
  const token = /^Bearer (\S+)$/i.exec(authorization)?.[1];
  return isOpaqueValue(token) ? token : undefined;
}

/** Compares two secret texts in constant time, whatever their lengths (their SHA-256 digests are compared). */
export function equalSecretText(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
