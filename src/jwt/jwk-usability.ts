/**
 * Which keys of a trusted issuer's JWKS may ever verify a token. A key that cannot (too short, private,
 * symmetric, for encryption, of a type or algorithm the issuer does not allow, or malformed) is dropped
 * when the set is loaded, so no lookup, and no kid-less search over every key, ever tries it.
 *
 * Pure: no I/O. Used by the key sources (every load and refetch) and by the configuration schema (inline
 * `keys:` are refused with the same reasons).
 */
import { createPublicKey } from 'node:crypto';

/** Why a key was dropped; a bounded set (metric label). */
export type JwkDropReason =
  | 'rsa_too_short'
  | 'private_key'
  | 'symmetric_key'
  | 'unsupported_key_type'
  | 'not_for_signing'
  | 'algorithm_not_allowed'
  | 'malformed';

/** A dropped key: its `kid` (made printable), why, and a sentence saying so. Never any key material. */
export interface JwkProblem {
  reason: JwkDropReason;
  detail: string;
}

/** One key dropped from a set, with its position in the set as published. */
export interface DroppedJwk extends JwkProblem {
  index: number;
  kid: string | undefined;
}

/** RFC 8017 / NIST SP 800-131A: RSA keys under 2048 bits are not acceptable for signatures. */
export const MIN_RSA_MODULUS_BITS = 2048;

/** JWK members only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** The curve each signature algorithm needs (RFC 7518 §3.4, RFC 8037 §3.1); RSA algorithms take any RSA key. */
const CURVE_OF_ALGORITHM: Readonly<Record<string, string>> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521', EdDSA: 'Ed25519' };
/** Curves stsgate verifies with, by key type. Ed448 and secp256k1 are not among the issuer algorithms. */
const CURVES: Readonly<Record<string, readonly string[]>> = { EC: ['P-256', 'P-384', 'P-521'], OKP: ['Ed25519'] };
/** Members each key type needs (RFC 7518 §6.2.1, §6.3.1; RFC 8037 §2). */
const REQUIRED_MEMBERS: Readonly<Record<string, readonly string[]>> = { RSA: ['n', 'e'], EC: ['crv', 'x', 'y'], OKP: ['crv', 'x'] };

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Whether the algorithm `alg` can use a key of type `kty` on curve `crv`. */
function algorithmFits(alg: string, kty: string, crv: unknown): boolean {
  if (kty === 'RSA') return /^(RS|PS)(256|384|512)$/.test(alg);
  return CURVE_OF_ALGORITHM[alg] !== undefined && CURVE_OF_ALGORITHM[alg] === crv;
}

/** A JWK member made safe to quote: printable ASCII, at most 64 characters. */
export function printableMember(value: unknown): string {
  if (value === undefined) return '(none)';
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  const cleaned = text.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(cleaned.length > 64 ? `${cleaned.slice(0, 64)}...` : cleaned);
}

/** Why `jwk` can never verify a token for an issuer allowing `algorithms`, or undefined when it can. */
export function jwkProblem(jwk: unknown, algorithms: readonly string[]): JwkProblem | undefined {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return { reason: 'malformed', detail: 'the key is not a JSON object' };
  const key = jwk as Record<string, unknown>;
  const { kty, crv, use, alg } = key;
  if (kty === 'oct') return { reason: 'symmetric_key', detail: 'a symmetric (kty "oct") key: a shared secret is never a trust anchor (RFC 8725 §2.1)' };
  const privateMember = PRIVATE_MEMBERS.find((member) => Object.hasOwn(key, member));
  if (privateMember) return { reason: 'private_key', detail: `a private key (it has "${privateMember}"); a key set must hold public keys only` };
  if (typeof kty !== 'string' || !Object.hasOwn(REQUIRED_MEMBERS, kty)) {
    return { reason: 'unsupported_key_type', detail: `key type ${printableMember(kty)} is not RSA, EC or OKP` };
  }
  const curves = CURVES[kty];
  if (curves && !curves.includes(crv as string)) return { reason: 'unsupported_key_type', detail: `curve ${printableMember(crv)} is not one of ${curves.join(', ')}` };
  // RFC 7517 §4.2, §4.3: a key published for encryption, or whose operations exclude verify, is not for signatures.
  if (use !== undefined && use !== 'sig') return { reason: 'not_for_signing', detail: `"use" is ${printableMember(use)}, not "sig"` };
  if (Object.hasOwn(key, 'key_ops') && !(Array.isArray(key.key_ops) && key.key_ops.includes('verify'))) {
    return { reason: 'not_for_signing', detail: '"key_ops" does not include "verify"' };
  }
  const fitting = algorithms.filter((candidate) => algorithmFits(candidate, kty, crv));
  if (alg !== undefined && !(typeof alg === 'string' && fitting.includes(alg))) {
    return { reason: 'algorithm_not_allowed', detail: `"alg" ${printableMember(alg)} is not an allowed algorithm for this ${kty} key (allowed: ${algorithms.join(', ')})` };
  }
  if (fitting.length === 0) return { reason: 'algorithm_not_allowed', detail: `no allowed algorithm (${algorithms.join(', ')}) verifies with an ${kty}${crv === undefined ? '' : ` ${String(crv)}`} key` };
  const missing = REQUIRED_MEMBERS[kty]!.filter((member) => typeof key[member] !== 'string' || key[member] === '');
  if (missing.length > 0) return { reason: 'malformed', detail: `missing ${missing.map((m) => `"${m}"`).join(', ')}` };
  // node:crypto skips characters outside the alphabet, which would turn garbage into a (short) key.
  const notBase64url = REQUIRED_MEMBERS[kty]!.filter((member) => member !== 'crv' && !BASE64URL.test(key[member] as string));
  if (notBase64url.length > 0) return { reason: 'malformed', detail: `${notBase64url.map((m) => `"${m}"`).join(', ')} not base64url` };
  let modulusLength: number | undefined;
  try {
    // Only the public members are handed over, so nothing but a public key can come out.
    const members = Object.fromEntries(['kty', 'crv', 'n', 'e', 'x', 'y'].filter((m) => Object.hasOwn(key, m)).map((m) => [m, key[m]]));
    modulusLength = createPublicKey({ key: members as { kty: string }, format: 'jwk' }).asymmetricKeyDetails?.modulusLength;
  } catch {
    return { reason: 'malformed', detail: `the ${kty} key parameters do not form a valid public key` };
  }
  if (kty === 'RSA' && !(typeof modulusLength === 'number' && modulusLength >= MIN_RSA_MODULUS_BITS)) {
    return { reason: 'rsa_too_short', detail: `an RSA key of ${modulusLength ?? 'unknown'} bits; at least ${MIN_RSA_MODULUS_BITS} are required` };
  }
  return undefined;
}

/** The keys of a set that may verify tokens, and every other key with the reason it was dropped. */
export function partitionJwks(keys: readonly unknown[], algorithms: readonly string[]): { usable: Record<string, unknown>[]; dropped: DroppedJwk[] } {
  const usable: Record<string, unknown>[] = [];
  const dropped: DroppedJwk[] = [];
  keys.forEach((jwk, index) => {
    const problem = jwkProblem(jwk, algorithms);
    if (problem === undefined) {
      usable.push(jwk as Record<string, unknown>);
      return;
    }
    const kid = (jwk as { kid?: unknown } | null)?.kid;
    dropped.push({ index, kid: typeof kid === 'string' ? kid.replace(/[^\x20-\x7e]/g, '?').slice(0, 128) : undefined, ...problem });
  });
  return { usable, dropped };
}
