import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type KeyObject } from 'jose';
import type { SigningAlgorithm } from '../config/types.js';

/** One private signing key and its public half. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly privateKey: CryptoKey | KeyObject;
  readonly publicJwk: JWK;
}

/** The keys stsgate signs with: the newest (last in the file) signs, every public half is published. */
export class SigningKeySet {
  readonly keys: readonly SigningKey[];

  constructor(keys: readonly SigningKey[]) {
    if (keys.length === 0) throw new Error('a signing key set needs at least one key');
    this.keys = keys;
  }

  /** The key that signs new tokens. */
  get current(): SigningKey {
    return this.keys[this.keys.length - 1]!;
  }

  /** The public JWKS (`/.well-known/jwks.json`). */
  get jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  /** The algorithms of every key, for verification of stsgate's own tokens. */
  get algorithms(): SigningAlgorithm[] {
    return [...new Set(this.keys.map((k) => k.alg))];
  }

  /** Finds a key by `kid`. */
  byKid(kid: string): SigningKey | undefined {
    return this.keys.find((k) => k.kid === kid);
  }
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** Generates a new private JWK (with `kid` = its RFC 7638 thumbprint, `alg`, `use: sig`). */
export async function generateSigningJwk(alg: SigningAlgorithm): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg, use: 'sig' };
}

/** Imports private JWKs into a key set; refuses symmetric keys and keys without a usable `alg`. */
export async function importSigningKeys(jwks: unknown, defaultAlg: SigningAlgorithm): Promise<SigningKeySet> {
  const list = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list) || list.length === 0) throw new Error('the signing keys file must be a JWKS: {"keys": [ ...private JWKs ]}');
  const keys: SigningKey[] = [];
  for (const [i, raw] of list.entries()) {
    const jwk = raw as JWK;
    if (jwk.kty === 'oct') throw new Error(`keys[${i}]: symmetric keys cannot sign stsgate tokens`);
    if (typeof jwk.d !== 'string') throw new Error(`keys[${i}]: not a private key (no "d")`);
    const alg = (jwk.alg ?? defaultAlg) as SigningAlgorithm;
    if (!['ES256', 'EdDSA', 'RS256'].includes(alg)) throw new Error(`keys[${i}]: algorithm "${alg}" is not one of ES256, EdDSA, RS256`);
    const privateKey = await importJWK(jwk, alg);
    if (privateKey instanceof Uint8Array) throw new Error(`keys[${i}]: symmetric keys cannot sign stsgate tokens`);
    const publicJwk: JWK = Object.fromEntries(Object.entries(jwk).filter(([k]) => !(PRIVATE_MEMBERS as readonly string[]).includes(k)));
    const kid = jwk.kid ?? (await calculateJwkThumbprint(publicJwk));
    keys.push({ kid, alg, privateKey, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } });
  }
  return new SigningKeySet(keys);
}

/** Loads the signing keys file named in the configuration. */
export async function loadSigningKeys(file: string, defaultAlg: SigningAlgorithm): Promise<SigningKeySet> {
  const text = await readFile(file, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${file}: not JSON`);
  }
  return importSigningKeys(parsed, defaultAlg);
}

/** Generates a one-key set in memory (development only: tokens die with the process). */
export async function generateSigningKeys(alg: SigningAlgorithm): Promise<SigningKeySet> {
  return importSigningKeys({ keys: [await generateSigningJwk(alg)] }, alg);
}
