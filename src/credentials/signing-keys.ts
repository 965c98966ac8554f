import { createHash, KeyObject as NodeKeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type KeyObject } from 'jose';
import type { SigningAlgorithm } from '../config/types.js';
import { createJwtSigner, type JwtSigner } from '../jwt/compact-jwt.js';

/**
 * stsgate's signing keys. The keys file is a JWKS of private keys; two optional members per key (epoch
 * seconds) drive rotation without downtime, the same on every replica because they are data, not events:
 *
 * - `nbf`: the key signs only from then on. It is published at once, so verifiers that cache the JWKS
 *   have it before the first token it signs reaches them.
 * - `exp`: the key is published (and accepted) only until then; set it past the last expiry of any
 *   token it signed.
 *
 * The signing key is the newest (last in the file) whose `nbf` has passed. `stsgate keys rotate` writes
 * the next file; replicas pick it up by polling. Nothing is decided by one replica alone, so two
 * replicas cannot race to rotate.
 */

/** One private signing key and its public half. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly privateKey: CryptoKey | KeyObject;
  /** Signs access tokens with this key through node:crypto; prepared once when the key is loaded. */
  readonly signer: JwtSigner;
  readonly publicJwk: JWK;
  /** Signs from (epoch seconds); undefined: always. */
  readonly notBefore?: number;
  /** Published until (epoch seconds); undefined: always. */
  readonly expires?: number;
}

type LocalJwks = ReturnType<typeof createLocalJWKSet>;

/** An immutable set of signing keys, as read from one version of the keys file. */
export class SigningKeySet {
  readonly keys: readonly SigningKey[];
  /** A fingerprint of the file this set came from (to notice changes). */
  readonly version: string;
  #verifier: { at: string; jwks: LocalJwks } | undefined;

  constructor(keys: readonly SigningKey[], version = '') {
    if (keys.length === 0) throw new Error('a signing key set needs at least one key');
    this.keys = keys;
    this.version = version;
  }

  /**
   * The key that signs new tokens at `now` (ms): the newest whose `nbf` has passed, among the keys of
   * `alg` when it is given (a keys file may hold keys of several algorithms: each target is signed with
   * the one its relying party accepts, and each algorithm rotates on its own).
   */
  current(now = Date.now(), alg?: SigningAlgorithm): SigningKey {
    const seconds = now / 1000;
    const usable = this.keys.filter((k) => (alg === undefined || k.alg === alg) && (k.notBefore ?? 0) <= seconds && (k.expires ?? Infinity) > seconds);
    const key = usable.at(-1);
    if (!key) {
      throw new Error(`no ${alg === undefined ? '' : `${alg} `}signing key is usable now: ${alg !== undefined && !this.keys.some((k) => k.alg === alg) ? `the keys file holds no ${alg} key` : 'every key is either not yet valid (nbf) or expired (exp)'}`);
    }
    return key;
  }

  /** The keys published and accepted at `now`: every key not past its `exp`, including ones not signing yet. */
  live(now = Date.now()): SigningKey[] {
    return this.keys.filter((k) => (k.expires ?? Infinity) > now / 1000);
  }

  /** The public JWKS (`/.well-known/jwks.json`) at `now`. */
  jwks(now = Date.now()): { keys: JWK[] } {
    return { keys: this.live(now).map((k) => k.publicJwk) };
  }

  /** A jose key resolver over the live keys, rebuilt only when that list changes. */
  verifier(now = Date.now()): LocalJwks {
    const live = this.live(now);
    const at = live.map((k) => k.kid).join(',');
    if (this.#verifier?.at !== at) this.#verifier = { at, jwks: createLocalJWKSet({ keys: live.map((k) => k.publicJwk) }) };
    return this.#verifier.jwks;
  }

  /** The algorithms of every key, for verification of stsgate's own tokens. */
  get algorithms(): SigningAlgorithm[] {
    return [...new Set(this.keys.map((k) => k.alg))];
  }
}

/**
 * The most keys a keys file (and so the published JWKS) may hold: AWS IAM refuses an OIDC provider whose
 * JWKS has more than 100 keys, and every verifier fetching it pays for each one.
 */
export const MAX_PUBLISHED_KEYS = 100;

const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);
/** Members of the keys file that are stsgate's own and never published. */
const SCHEDULE_MEMBERS = new Set(['nbf', 'exp']);
const ALGORITHMS: readonly SigningAlgorithm[] = ['ES256', 'EdDSA', 'RS256'];

/** Generates a new private JWK (with `kid` = its RFC 7638 thumbprint, `alg`, `use: sig`). */
export async function generateSigningJwk(alg: SigningAlgorithm): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg, use: 'sig' };
}

/** Imports private JWKs into a key set; refuses symmetric keys, public-only keys and unknown algorithms. */
export async function importSigningKeys(jwks: unknown, defaultAlg: SigningAlgorithm, version = ''): Promise<SigningKeySet> {
  const list = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list) || list.length === 0) throw new Error('the signing keys file must be a JWKS: {"keys": [ ...private JWKs ]}');
  if (list.length > MAX_PUBLISHED_KEYS) throw new Error(`the signing keys file holds ${list.length} keys, at most ${MAX_PUBLISHED_KEYS} (AWS refuses a JWKS with more): drop retired keys`);
  const keys: SigningKey[] = [];
  const kids = new Set<string>();
  for (const [i, raw] of list.entries()) {
    const jwk = raw as JWK & { nbf?: unknown; exp?: unknown };
    if (jwk.kty === 'oct') throw new Error(`keys[${i}]: symmetric keys cannot sign stsgate tokens`);
    if (typeof jwk.d !== 'string') throw new Error(`keys[${i}]: not a private key (no "d")`);
    const alg = (jwk.alg ?? defaultAlg) as SigningAlgorithm;
    if (!ALGORITHMS.includes(alg)) throw new Error(`keys[${i}]: algorithm "${alg}" is not one of ${ALGORITHMS.join(', ')}`);
    for (const member of ['nbf', 'exp'] as const) {
      if (jwk[member] !== undefined && !Number.isInteger(jwk[member])) throw new Error(`keys[${i}].${member}: must be epoch seconds (an integer)`);
    }
    const privateKey = await importJWK(jwk, alg);
    if (privateKey instanceof Uint8Array) throw new Error(`keys[${i}]: symmetric keys cannot sign stsgate tokens`);
    const publicJwk: JWK = Object.fromEntries(Object.entries(jwk).filter(([k]) => !PRIVATE_MEMBERS.has(k) && !SCHEDULE_MEMBERS.has(k)));
    const kid = jwk.kid ?? (await calculateJwkThumbprint(publicJwk));
    if (kids.has(kid)) throw new Error(`keys[${i}]: kid "${kid}" is used twice`);
    kids.add(kid);
    keys.push({
      kid,
      alg,
      privateKey,
      signer: createJwtSigner(alg, privateKey instanceof NodeKeyObject ? privateKey : NodeKeyObject.from(privateKey)),
      publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
      ...(jwk.nbf === undefined ? {} : { notBefore: jwk.nbf as number }),
      ...(jwk.exp === undefined ? {} : { expires: jwk.exp as number }),
    });
  }
  return new SigningKeySet(keys, version);
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
  return importSigningKeys(parsed, defaultAlg, createHash('sha256').update(text).digest('hex'));
}

/**
 * Generates a set in memory with one key per algorithm, in the order given (development only: tokens die
 * with the process). The last is the newest: it signs when no algorithm is named.
 */
export async function generateSigningKeys(algorithms: SigningAlgorithm | readonly SigningAlgorithm[]): Promise<SigningKeySet> {
  const list = typeof algorithms === 'string' ? [algorithms] : algorithms;
  return importSigningKeys({ keys: await Promise.all(list.map((alg) => generateSigningJwk(alg))) }, list.at(-1)!);
}

/** What `rotateKeysFile` needs to know to schedule the change safely. */
export interface RotationSchedule {
  /** How long the new key is published before it signs: at least the JWKS cache time of verifiers plus the replicas' reload interval. */
  publishAheadSeconds: number;
  /** The longest a token can live (the largest role `max_session_seconds`), plus clock skew. */
  maxTokenLifetimeSeconds: number;
  now?: number;
}

/**
 * Computes the next keys file: adds `newKey` signing from now + publishAhead, and retires the keys of its
 * algorithm that it replaces once every token they could have signed has expired (keys of other
 * algorithms keep signing: each algorithm rotates on its own). Keys already past `exp` are dropped. A
 * result over MAX_PUBLISHED_KEYS is refused before anything is written.
 */
export function rotateKeysFile(file: { keys: (JWK & { nbf?: number; exp?: number })[] }, newKey: JWK, schedule: RotationSchedule): { keys: (JWK & { nbf?: number; exp?: number })[] } {
  // Rounded up: the new key must not sign sooner than publishAhead asks.
  const now = Math.ceil((schedule.now ?? Date.now()) / 1000);
  const signsFrom = now + schedule.publishAheadSeconds;
  const retireAt = signsFrom + schedule.maxTokenLifetimeSeconds;
  // A key without `alg` signs with the configured default: it is retired by any rotation (as before keys of several algorithms).
  const replaced = (k: JWK) => k.alg === undefined || k.alg === newKey.alg;
  const kept = file.keys
    .filter((k) => k.exp === undefined || k.exp > now)
    .map((k) => (replaced(k) && (k.exp === undefined || k.exp > retireAt) ? { ...k, exp: retireAt } : k));
  const next = { keys: [...kept, { ...newKey, nbf: signsFrom }] };
  if (next.keys.length > MAX_PUBLISHED_KEYS) {
    throw new Error(`the rotated keys file would hold ${next.keys.length} keys, at most ${MAX_PUBLISHED_KEYS} (AWS refuses a JWKS with more): wait until retired keys expire, or remove some`);
  }
  return next;
}

/** Where the current key set comes from: fixed (generated), or a file polled for changes. */
export interface SigningKeySource {
  readonly set: SigningKeySet;
}

/** A keys file, re-read on an interval so that a rotation written to it (or to a mounted Secret) takes effect on every replica. */
export class SigningKeysFile implements SigningKeySource {
  #set: SigningKeySet;
  #timer: NodeJS.Timeout | undefined;
  readonly #file: string;
  readonly #alg: SigningAlgorithm;

  private constructor(file: string, alg: SigningAlgorithm, set: SigningKeySet) {
    this.#file = file;
    this.#alg = alg;
    this.#set = set;
  }

  /** Loads the file; throws when it is missing or invalid (the gateway refuses to start). */
  static async open(file: string, alg: SigningAlgorithm): Promise<SigningKeysFile> {
    return new SigningKeysFile(file, alg, await loadSigningKeys(file, alg));
  }

  get set(): SigningKeySet {
    return this.#set;
  }

  /** Re-reads the file; a broken new version is reported and the last good set kept (fail safe, not open). */
  async reload(): Promise<{ changed: boolean }> {
    const next = await loadSigningKeys(this.#file, this.#alg);
    if (next.version === this.#set.version) return { changed: false };
    this.#set = next;
    return { changed: true };
  }

  /** Polls the file every `intervalMs`. */
  watch(intervalMs: number, report: (outcome: { changed: boolean } | { error: Error }) => void): void {
    this.#timer = setInterval(() => {
      this.reload().then(report, (error: unknown) => report({ error: error instanceof Error ? error : new Error(String(error)) }));
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
