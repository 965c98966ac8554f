/**
 * Compact JWTs with the signature computed by node:crypto, on the calling thread.
 *
 * Why not jose's `SignJWT` / `jwtVerify` alone: jose signs and verifies through WebCrypto, whose every
 * operation is a job handed to Node's thread pool and back. On the exchange path that hand-off cost more
 * than the signature itself (bench/PROFILE.md, "`jose` against `node:crypto`"; `npm run bench:crypto`),
 * and on a busy machine the woken pool thread competes with the event loop for the same cores.
 *
 * What stays jose's: key selection (its JWKS resolvers hand over the CryptoKey), and every claim check
 * (`UnsecuredJWT.decode` runs jose's own `validateClaimsSet` over the same payload bytes, with the same
 * options and error classes). What is done here is only what jose's `verifySignature` does before
 * `crypto.subtle.verify`, in the same order and with the same error classes, and the signature itself.
 * test/jwt/compact-jwt.test.ts runs every algorithm and a table of broken tokens through both this and
 * `jwtVerify` and requires the same outcome.
 *
 * A signature is checked once per token and key: checking it is a pure function of the signing input,
 * the signature and the key, so a token seen again (a workload re-exchanging its token, a resource server
 * introspecting the same access token on every call) skips only that computation. Everything else runs on
 * every call: parsing, the algorithm allow-list, key resolution (a key dropped from its JWKS no longer
 * resolves, and a refetched key is a new key), and every claim check against the current time. A caller
 * that remembers whole verifications itself (issuers/trusted-issuers.ts) passes `rememberSignature: false`.
 */
import { KeyObject, sign as cryptoSign, verify as cryptoVerify, constants, type SignKeyObjectInput, type VerifyKeyObjectInput } from 'node:crypto';
import { errors, UnsecuredJWT, type CryptoKey, type FlattenedJWSInput, type JWSHeaderParameters, type JWTPayload, type JWTVerifyOptions, type ProtectedHeaderParameters } from 'jose';
import { RecentlyUsed } from '../util/recently-used.js';

/** The JWS algorithms stsgate signs or verifies with (RFC 7518 §3.1; RFC 8037 for EdDSA). Never `none`, never HS*. */
export type JwsAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

interface AlgorithmSpec {
  /** The hash given to node:crypto; null for EdDSA (Ed25519 hashes internally). */
  digest: 'sha256' | 'sha384' | 'sha512' | null;
  /** What the WebCrypto key must be, as jose's `checkCryptoKey` requires. */
  subtle: { name: string; hash?: string; namedCurve?: string };
  /** node:crypto key types and, for EC, the OpenSSL curve name. */
  keyType: 'rsa' | 'ec' | 'ed25519';
  curve?: string;
  /** RSA-PSS salt length in bytes (RFC 7518 §3.5: the hash length). */
  pssSaltLength?: number;
  /** ECDSA signatures are r || s of fixed length in JWS (RFC 7518 §3.4), not DER. */
  ieeeP1363?: boolean;
  /** RFC 7518 §3.3 / NIST: RSA keys of at least 2048 bits. */
  minRsaBits?: number;
}

const rsa = (bits: 256 | 384 | 512, pssSaltLength?: number): AlgorithmSpec => ({
  digest: `sha${bits}`,
  subtle: { name: pssSaltLength ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5', hash: `SHA-${bits}` },
  keyType: 'rsa',
  ...(pssSaltLength ? { pssSaltLength } : {}),
  minRsaBits: 2048,
});
const ecdsa = (bits: 256 | 384 | 512, namedCurve: string, curve: string): AlgorithmSpec => ({
  digest: `sha${bits}`,
  subtle: { name: 'ECDSA', namedCurve },
  keyType: 'ec',
  curve,
  ieeeP1363: true,
});

const ALGORITHMS: Readonly<Record<JwsAlgorithm, AlgorithmSpec>> = {
  RS256: rsa(256),
  RS384: rsa(384),
  RS512: rsa(512),
  PS256: rsa(256, 32),
  PS384: rsa(384, 48),
  PS512: rsa(512, 64),
  ES256: ecdsa(256, 'P-256', 'prime256v1'),
  ES384: ecdsa(384, 'P-384', 'secp384r1'),
  ES512: ecdsa(512, 'P-521', 'secp521r1'),
  EdDSA: { digest: null, subtle: { name: 'Ed25519' }, keyType: 'ed25519' },
};

function specOf(alg: string): AlgorithmSpec {
  const spec = Object.hasOwn(ALGORITHMS, alg) ? ALGORITHMS[alg as JwsAlgorithm] : undefined;
  if (!spec) throw new errors.JOSENotSupported(`alg ${alg} is not supported either by JOSE or your javascript runtime`);
  return spec;
}

function keyInput<T extends SignKeyObjectInput | VerifyKeyObjectInput>(spec: AlgorithmSpec, key: KeyObject): T | KeyObject {
  if (spec.pssSaltLength) return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: spec.pssSaltLength } as T;
  if (spec.ieeeP1363) return { key, dsaEncoding: 'ieee-p1363' } as T;
  return key;
}

/** Something that signs compact JWTs with one private key; built once per key (signing-keys.ts). */
export interface JwtSigner {
  readonly alg: JwsAlgorithm;
  /** `header` and `claims` are serialized in their own member order, as jose's SignJWT does. */
  sign(header: Readonly<Record<string, unknown>>, claims: Readonly<Record<string, unknown>>): string;
}

/** Prepares a signer; throws when the key cannot sign with `alg` (wrong type, curve or size). */
export function createJwtSigner(alg: JwsAlgorithm, privateKey: KeyObject): JwtSigner {
  const spec = specOf(alg);
  if (privateKey.type !== 'private') throw new TypeError(`a ${alg} signing key must be a private key`);
  if (privateKey.asymmetricKeyType !== spec.keyType) throw new TypeError(`a ${alg} signing key must be of type ${spec.keyType}, not ${privateKey.asymmetricKeyType}`);
  if (spec.curve && privateKey.asymmetricKeyDetails?.namedCurve !== spec.curve) throw new TypeError(`a ${alg} signing key must be on curve ${spec.subtle.namedCurve}`);
  if (spec.minRsaBits && (privateKey.asymmetricKeyDetails?.modulusLength ?? 0) < spec.minRsaBits) throw new TypeError(`${alg} requires key modulusLength to be 2048 bits or larger`);
  const input = keyInput<SignKeyObjectInput>(spec, privateKey);
  return {
    alg,
    sign(header, claims) {
      const signingInput = `${encodeJson(header)}.${encodeJson(claims)}`;
      return `${signingInput}.${cryptoSign(spec.digest, Buffer.from(signingInput, 'ascii'), input).toString('base64url')}`;
    },
  };
}

function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** A verification key, or a resolver that picks one from the protected header (jose's JWKS functions). */
export type VerificationKey = CryptoKey | ((header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey> | CryptoKey);

/** What `verifyJwt` returns, as jose's `jwtVerify` does. */
export interface VerifiedJwt {
  payload: JWTPayload;
  protectedHeader: ProtectedHeaderParameters;
}

/** The node:crypto handle of each WebCrypto key, made once (jose's resolvers return the same CryptoKey per JWK). */
const keyObjects = new WeakMap<CryptoKey, KeyObject>();

/** Tokens whose signature verified, with the key it verified under; bounded (see the top of the file). */
const verifiedSignatures = new RecentlyUsed<string, KeyObject>(1024);

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Verifies a compact JWT exactly as jose's `jwtVerify(token, key, options)` does (same checks, order,
 * errors and result), except that the signature is checked by node:crypto and base64url is read strictly
 * (jose, through `atob`, also accepts `=` padding and embedded whitespace in a segment).
 * `options.crit` is not supported (stsgate recognizes no extensions beyond jose's own `b64`).
 */
export async function verifyJwt(token: string, key: VerificationKey, options: JWTVerifyOptions, { rememberSignature = true }: { rememberSignature?: boolean } = {}): Promise<VerifiedJwt> {
  if (options.crit !== undefined) throw new TypeError('verifyJwt does not support the crit option');
  if (typeof token !== 'string') throw new errors.JWSInvalid('Compact JWS must be a string or Uint8Array');
  const { 0: protectedSegment, 1: payloadSegment, 2: signatureSegment, length } = token.split('.');
  if (length !== 3) throw new errors.JWSInvalid('Invalid Compact JWS');
  const allowed = options.algorithms === undefined ? undefined : new Set(options.algorithms);

  // jose's verifySignature, step by step.
  const header = parseProtectedHeader(protectedSegment!);
  const extensions = validateCrit(header);
  const b64 = extensions.includes('b64') ? validateB64(header) : true;
  const { alg } = header;
  if (typeof alg !== 'string' || !alg) throw new errors.JWSInvalid('JWS "alg" (Algorithm) Header Parameter missing or invalid');
  if (allowed && !allowed.has(alg)) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  const jws: FlattenedJWSInput = { payload: payloadSegment!, protected: protectedSegment!, signature: signatureSegment! };
  const resolved = typeof key === 'function' ? await key(header, jws) : key;
  const spec = specOf(alg);
  // The signing input must be ASCII; a base64url payload always is, an unencoded one (b64: false) may not be.
  if (!/^[\x00-\x7f]*$/.test(payloadSegment!)) throw new errors.JWSInvalid('The payload is not a valid base64url string');
  const signature = decodeBase64url(signatureSegment!, 'signature', errors.JWSInvalid);
  const verificationKey = checkVerificationKey(resolved, spec, alg);
  if (!rememberSignature || verifiedSignatures.get(token) !== verificationKey) {
    let verified = false;
    try {
      verified = cryptoVerify(spec.digest, Buffer.from(`${protectedSegment}.${payloadSegment}`, 'ascii'), keyInput<VerifyKeyObjectInput>(spec, verificationKey), signature);
    } catch (cause) {
      throw new errors.JWSSignatureVerificationFailed(undefined, { cause });
    }
    if (!verified) throw new errors.JWSSignatureVerificationFailed();
    if (rememberSignature) verifiedSignatures.set(token, verificationKey);
  }

  // jose's jwtVerify after the signature: no unencoded payloads, then its own claim checks over the
  // same payload, the header's typ/crit/b64 kept so that `typ` is checked against the real header.
  // jose decodes the payload after the signature, as JWSInvalid when it is not base64url.
  decodeBase64url(payloadSegment!, 'payload', errors.JWSInvalid);
  if (!b64) throw new errors.JWTInvalid('JWTs MUST NOT use unencoded payload');
  const { payload } = UnsecuredJWT.decode(`${encodeJson({ ...header, alg: 'none' })}.${payloadSegment}.`, options);
  return { payload, protectedHeader: header as ProtectedHeaderParameters };
}

function parseProtectedHeader(segment: string): Record<string, unknown> {
  const message = 'JWS Protected Header is invalid';
  let parsed: unknown;
  try {
    parsed = JSON.parse(strictUtf8.decode(decodeBase64url(segment, 'protected header', errors.JWSInvalid)));
  } catch (cause) {
    throw new errors.JWSInvalid(message, { cause });
  }
  if (!isPlainObject(parsed)) throw new errors.JWSInvalid(message);
  return parsed;
}

/** jose's `isObject`: a plain JSON object. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Object.prototype.toString.call(value) !== '[object Object]') return false;
  const prototype = Object.getPrototypeOf(value) as object | null;
  return prototype === null || Object.getPrototypeOf(prototype) === null;
}

/** RFC 7515 §4.1.11, as jose's `validateCrit` with only `b64` (RFC 7797) recognized. */
function validateCrit(header: Record<string, unknown>): string[] {
  const { crit } = header;
  if (crit === undefined) return [];
  if (!Array.isArray(crit) || crit.length === 0 || crit.some((input) => typeof input !== 'string' || input.length === 0)) {
    throw new errors.JWSInvalid('"crit" (Critical) Header Parameter MUST be an array of non-empty strings when present');
  }
  for (const parameter of crit as string[]) {
    if (parameter !== 'b64') throw new errors.JOSENotSupported(`Extension Header Parameter "${parameter}" is not recognized`);
    if (!Object.hasOwn(header, parameter) || header[parameter] === undefined) throw new errors.JWSInvalid(`Extension Header Parameter "${parameter}" is missing`);
  }
  return crit as string[];
}

function validateB64(header: Record<string, unknown>): boolean {
  if (typeof header.b64 !== 'boolean') throw new errors.JWSInvalid('The "b64" (base64url-encode payload) Header Parameter must be a boolean');
  return header.b64;
}

function decodeBase64url(value: string, label: string, ErrorClass: typeof errors.JWSInvalid): Buffer {
  // Buffer.from skips characters outside the alphabet; refuse them (and impossible lengths) instead.
  if (!BASE64URL.test(value) || value.length % 4 === 1) throw new ErrorClass(`Failed to base64url decode the ${label}`);
  return Buffer.from(value, 'base64url');
}

/** jose's `prepareKey` + `checkCryptoKey` + `checkModulusLength` for a WebCrypto verification key. */
function checkVerificationKey(key: unknown, spec: AlgorithmSpec, alg: string): KeyObject {
  if (!isCryptoKey(key)) throw new TypeError(`Key for the ${alg} algorithm must be of type CryptoKey.`);
  if (key.type !== 'public') throw new TypeError(`CryptoKey instances must be of type "public" for the ${alg} algorithm`);
  const algorithm = key.algorithm as { name: string; hash?: { name: string }; namedCurve?: string; modulusLength?: number };
  const expected = spec.subtle;
  const unusable = (what: string, prop = 'algorithm.name') => new TypeError(`CryptoKey does not support this operation, its ${prop} must be ${what}`);
  if (algorithm.name !== expected.name) throw unusable(expected.name);
  if (expected.hash && algorithm.hash?.name !== expected.hash) throw unusable(expected.hash, 'algorithm.hash');
  if (expected.namedCurve && algorithm.namedCurve !== expected.namedCurve) throw unusable(expected.namedCurve, 'algorithm.namedCurve');
  if (!key.usages.includes('verify')) throw new TypeError('CryptoKey does not support this operation, its usages must include verify.');
  if (spec.minRsaBits && (typeof algorithm.modulusLength !== 'number' || algorithm.modulusLength < spec.minRsaBits)) {
    throw new TypeError(`${alg} requires key modulusLength to be 2048 bits or larger`);
  }
  let keyObject = keyObjects.get(key);
  if (!keyObject) {
    keyObject = KeyObject.from(key);
    keyObjects.set(key, keyObject);
  }
  return keyObject;
}

function isCryptoKey(key: unknown): key is CryptoKey {
  return (key as { [Symbol.toStringTag]?: unknown } | null)?.[Symbol.toStringTag] === 'CryptoKey';
}
