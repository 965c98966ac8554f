import { createHash, KeyObject as NodeKeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { calculateJwkThumbprint, createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type KeyObject } from 'jose';
import type { SigningAlgorithm } from '../config/types.js';
import { createJwtSigner, type JwtSigner } from '../jwt/compact-jwt.js';
import { printableMember } from '../jwt/jwk-usability.js';
import { describeValue, found, isMapping } from '../util/validation.js';

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

/**
 * A keys file (or a key set given in code) that cannot be used, with every problem found in it, each
 * `what was found, what is expected`. `loadSigningKeys` puts the file's path in front of each.
 */
export class SigningKeysError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join('; '));
    this.name = 'SigningKeysError';
    this.problems = problems;
  }
}

const JWKS_SHAPE = 'a JWKS of private keys: {"keys": [ ...private JWKs ]} (stsgate keys generate prints one key)';

/** Why `jwks` is not a JWKS at all (a single JWK, a list, an empty set), or undefined when it has a `keys` list to look into. */
function jwksShapeProblem(jwks: unknown): string | undefined {
  if (!isMapping(jwks)) return `${found(jwks)}, expected ${JWKS_SHAPE}`;
  const list = jwks.keys;
  // A JWK has a `kty` (RFC 7517 §4.1); a JWKS has only `keys` (§5).
  if (list === undefined && typeof jwks.kty === 'string') return 'found a single JWK, expected a JWKS holding it: {"keys": [ <the key> ]}';
  if (!Array.isArray(list)) return `found ${list === undefined ? 'a mapping without "keys"' : `"keys" that is ${describeValue(list)}`}, expected ${JWKS_SHAPE}`;
  if (list.length === 0) return 'found an empty "keys" list, expected at least one private key in it (stsgate keys generate prints one)';
  if (list.length > MAX_PUBLISHED_KEYS) return `found ${list.length} keys, expected at most ${MAX_PUBLISHED_KEYS} (AWS refuses a JWKS with more): drop retired keys`;
  return undefined;
}

/**
 * Imports private JWKs into a key set; refuses symmetric keys, public-only keys and unknown algorithms.
 * Throws a `SigningKeysError` naming every unusable key (by position and kid), not only the first.
 */
export async function importSigningKeys(jwks: unknown, defaultAlg: SigningAlgorithm, version = ''): Promise<SigningKeySet> {
  const shape = jwksShapeProblem(jwks);
  if (shape !== undefined) throw new SigningKeysError([shape]);
  const list = (jwks as { keys: unknown[] }).keys;
  const problems: string[] = [];
  const keys: SigningKey[] = [];
  const kids = new Set<string>();
  for (const [i, raw] of list.entries()) {
    // The kid only: a key's other members may be private.
    const named = isMapping(raw) && typeof raw.kid === 'string' ? `keys[${i}] (kid ${printableMember(raw.kid)})` : `keys[${i}]`;
    const key = await importSigningKey(raw, defaultAlg, (problem) => problems.push(`${named}: ${problem}`));
    if (!key) continue;
    if (kids.has(key.kid)) {
      problems.push(`${named}: found kid ${printableMember(key.kid)} a second time, expected a kid used once`);
      continue;
    }
    kids.add(key.kid);
    keys.push(key);
  }
  if (problems.length > 0) throw new SigningKeysError(problems);
  return new SigningKeySet(keys, version);
}

/** One private JWK as a signing key, or undefined after telling `problem` why it cannot be one. */
async function importSigningKey(raw: unknown, defaultAlg: SigningAlgorithm, problem: (text: string) => void): Promise<SigningKey | undefined> {
  if (!isMapping(raw)) {
    problem(`${found(raw)}, expected a private JWK`);
    return undefined;
  }
  const jwk = raw as JWK & { nbf?: unknown; exp?: unknown };
  if (jwk.kty === 'oct') {
    problem('found a symmetric key (kty "oct"), expected a private EC, OKP or RSA key: symmetric keys cannot sign stsgate tokens');
    return undefined;
  }
  if (typeof jwk.d !== 'string') {
    problem('found a public key (no "d"), expected a private key: the keys file holds the private halves of what /.well-known/jwks.json publishes (stsgate keys generate)');
    return undefined;
  }
  const alg = (jwk.alg ?? defaultAlg) as SigningAlgorithm;
  if (!ALGORITHMS.includes(alg)) {
    problem(`found algorithm ${printableMember(String(alg))}, expected one of ${ALGORITHMS.join(', ')}`);
    return undefined;
  }
  let ok = true;
  for (const member of ['nbf', 'exp'] as const) {
    if (jwk[member] !== undefined && !Number.isInteger(jwk[member])) {
      problem(`${member}: ${found(jwk[member])}, expected epoch seconds (an integer)`);
      ok = false;
    }
  }
  if (!ok) return undefined;
  let privateKey: Awaited<ReturnType<typeof importJWK>>;
  try {
    privateKey = await importJWK(jwk, alg);
  } catch (err) {
    // jose's message names what is wrong with the key (curve, missing member), never its values.
    problem(`found a key jose cannot import as ${alg} (${err instanceof Error ? err.message : String(err)}), expected a private ${alg} key`);
    return undefined;
  }
  if (privateKey instanceof Uint8Array) {
    problem('found a symmetric key, expected a private EC, OKP or RSA key: symmetric keys cannot sign stsgate tokens');
    return undefined;
  }
  const publicJwk: JWK = Object.fromEntries(Object.entries(jwk).filter(([k]) => !PRIVATE_MEMBERS.has(k) && !SCHEDULE_MEMBERS.has(k)));
  const kid = jwk.kid ?? (await calculateJwkThumbprint(publicJwk));
  return {
    kid,
    alg,
    privateKey,
    signer: createJwtSigner(alg, privateKey instanceof NodeKeyObject ? privateKey : NodeKeyObject.from(privateKey)),
    publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
    ...(jwk.nbf === undefined ? {} : { notBefore: jwk.nbf as number }),
    ...(jwk.exp === undefined ? {} : { expires: jwk.exp as number }),
  };
}

/**
 * Loads a signing keys file. Throws a `SigningKeysError` whose every problem starts with the file's path:
 * unreadable, not JSON, not a JWKS (a single JWK, an empty set) or holding an unusable key.
 */
export async function loadSigningKeys(file: string, defaultAlg: SigningAlgorithm): Promise<SigningKeySet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const where = isAbsolute(file) ? '' : ` (from the working directory ${process.cwd()})`;
    throw new SigningKeysError([`${file}: cannot be read (${code})${where}, expected a readable file holding ${JWKS_SHAPE}`]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SigningKeysError([`${file}: found text that is not JSON, expected ${JWKS_SHAPE}`]);
  }
  try {
    return await importSigningKeys(parsed, defaultAlg, createHash('sha256').update(text).digest('hex'));
  } catch (err) {
    if (err instanceof SigningKeysError) throw new SigningKeysError(err.problems.map((problem) => `${file}: ${problem}`));
    throw err;
  }
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
