import { secureRandomBytes } from './entropy.js';

/** RFC 4648 base32 alphabet, as AWS uses in access key ids. */
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** 16 characters of A-Z2-7 from 80 random bits: the session id, and the tail of the AccessKeyId. */
export function newSessionId(): string {
  const bytes = secureRandomBytes(10);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** `ASIA` marks temporary credentials, as in AWS. */
export const ACCESS_KEY_PREFIX = 'ASIA';
const ACCESS_KEY_ID = /^ASIA([A-Z2-7]{16})$/;

/** The AccessKeyId of a session. */
export function accessKeyIdFor(sessionId: string): string {
  return `${ACCESS_KEY_PREFIX}${sessionId}`;
}

/** The session id inside an AccessKeyId, or undefined when the id is not one of stsgate's. */
export function sessionIdFromAccessKeyId(accessKeyId: string): string | undefined {
  return ACCESS_KEY_ID.exec(accessKeyId)?.[1];
}

/** A session id as found in an access token's `sid`. */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Z2-7]{16}$/.test(value);
}

/** 40 characters from the AWS secret-key alphabet (base64 of 30 random bytes). */
export function newSecretAccessKey(): string {
  return secureRandomBytes(30).toString('base64');
}

/** A random token id (`jti`). */
export function newTokenId(): string {
  return secureRandomBytes(16).toString('base64url');
}
