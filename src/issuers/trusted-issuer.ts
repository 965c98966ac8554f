/**
 * One configured issuer: its exact `iss`, accepted audiences and algorithms, clock rules, and the one
 * key source its tokens may be verified with.
 */

import { errors, type CryptoKey, type FlattenedJWSInput, type JWSHeaderParameters, type JWTPayload, type JWTVerifyOptions } from 'jose';

import type { IssuerAlgorithm, IssuerConfig } from '../config/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import { verifyJwt } from '../jwt/compact-jwt.js';
import { RecentlyUsed } from '../util/recently-used.js';
import type { DroppedJwk } from '../jwt/jwk-usability.js';
import { DiscoveryKeySource, InlineKeySource, RemoteKeySource, remoteUrlProblem, type JwksPolicy, type KeySource, type RemoteKeyLimits } from './key-sources.js';
import { issuedInFutureMessage, verificationFailure } from './verification-errors.js';

/**
 * Asymmetric signature algorithms only. `none` and HS* are never accepted, whatever the configuration
 * says: RFC 8725 §2.1 and §3.1 (alg confusion: an HMAC "signed" with the issuer's public key bytes).
 */
export const ACCEPTABLE_ALGORITHMS: ReadonlySet<string> = new Set<IssuerAlgorithm>([
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
]);

/** Claims every accepted token must carry (GitHub Actions, Kubernetes and Google tokens all do). */
const REQUIRED_CLAIMS = ['exp', 'iat', 'sub'];

/** At most this many candidate keys are tried for a token without `kid` that several keys could verify. */
const MAX_CANDIDATE_KEYS = 8;

/** How many dropped keys an issuer remembers having reported (a bound, however often its set changes). */
const REPORTED_DROPS_REMEMBERED = 256;

/** The successful result of verifying one token against its issuer. */
export interface IssuerVerification {
  payload: JWTPayload & { sub: string; exp: number; iat: number };
  audience: string;
  /** How to check the same token again cheaply; absent when it was verified by trying several keys. */
  repeat?: VerifiedRepeat;
}

/**
 * What a token `verify` passed needs checked again when it comes back (`passesAgain`): the key it was
 * verified with, found again for its header, and its time claims against the clock. Everything else
 * `verify` checked depends only on the token and this issuer's configuration.
 */
export interface VerifiedRepeat {
  readonly header: JWSHeaderParameters;
  readonly jws: FlattenedJWSInput;
  readonly key: CryptoKey;
  readonly iat: number;
  readonly exp: number;
  readonly nbf: number | undefined;
}

/** The key the issuer's key source gave for a token's header, with what it was asked. */
type ResolvedKey = Pick<VerifiedRepeat, 'header' | 'jws' | 'key'>;

/** One trusted issuer and the state behind it (its key cache). */
export class TrustedIssuer {
  readonly id: string;
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly algorithms: readonly IssuerAlgorithm[];
  readonly clockSkewSeconds: number;
  readonly maxTokenAgeSeconds: number | undefined;
  readonly #keys: KeySource;

  /**
   * Throws an Error listing every problem when the configuration cannot be used safely. `onKeyDropped`
   * hears of each unusable key in a fetched JWKS once (by kid, or position without one, and reason),
   * however often the set is refetched.
   */
  constructor(config: IssuerConfig, limits: RemoteKeyLimits, onKeyDropped?: (drop: DroppedJwk) => void) {
    const problems = issuerConfigProblems(config, limits.allowInsecureHttp);
    if (problems.length > 0) throw new Error(problems.map((p) => `issuers.${config.id}: ${p}`).join('\n'));
    this.id = config.id;
    this.issuer = config.issuer;
    this.audiences = [...config.audiences];
    this.algorithms = [...config.algorithms];
    this.clockSkewSeconds = config.clockSkewSeconds;
    this.maxTokenAgeSeconds = config.maxTokenAgeSeconds;
    try {
      this.#keys = keySourceFor(config, limits, { algorithms: config.algorithms, ...(onKeyDropped ? { onDropped: reportedOnce(onKeyDropped) } : {}) });
    } catch (err) {
      throw new Error(`issuers.${config.id}: keys: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** Verifies signature and claims (RFC 7519 §7.2) and returns the claims and the audience that matched. */
  async verify(token: string, nowMs: number): Promise<IssuerVerification> {
    const nowSeconds = Math.floor(nowMs / 1000);
    const options: JWTVerifyOptions = {
      algorithms: [...this.algorithms],
      issuer: this.issuer,
      audience: [...this.audiences],
      clockTolerance: this.clockSkewSeconds,
      requiredClaims: REQUIRED_CLAIMS,
      currentDate: new Date(nowMs),
      ...(this.maxTokenAgeSeconds === undefined ? {} : { maxTokenAge: this.maxTokenAgeSeconds }),
    };
    let payload: JWTPayload;
    let key: ResolvedKey | undefined;
    try {
      ({ payload, key } = await this.#verifySignatureAndClaims(token, options));
    } catch (err) {
      throw verificationFailure(err, this.#failureContext(nowSeconds));
    }

    // jose checks iat in the future only together with maxTokenAge; a token "issued" later than now is
    // refused either way.
    const iat = payload.iat as number;
    if (iat > nowSeconds + this.clockSkewSeconds) {
      throw new GatewayError('InvalidIdentityToken', issuedInFutureMessage(iat, nowSeconds), { debug: `issuer=${this.id} iat in the future` });
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') {
      throw new GatewayError('InvalidIdentityToken', 'The sub claim must be a non-empty string.', { debug: `issuer=${this.id} bad sub` });
    }
    const audience = this.audiences.find((candidate) => (Array.isArray(payload.aud) ? payload.aud.includes(candidate) : payload.aud === candidate));
    if (audience === undefined) throw new GatewayError('InvalidIdentityToken', 'Incorrect token audience.', { debug: `issuer=${this.id} aud` });
    const verified = payload as IssuerVerification['payload'];
    // jose checked that nbf, when present, is a number.
    // Not `{ ...key, iat, ... }`: members written after a spread are slow on Node 20 (bench/README.md).
    const repeat = key && Object.assign({}, key, { iat, exp: verified.exp, nbf: payload.nbf });
    return { payload: verified, audience, ...(repeat ? { repeat } : {}) };
  }

  /**
   * Whether a token `verify` passed before (`repeat` is what it returned) passes again at `nowMs`: its
   * time claims by the same rules as jose's and `verify`'s (the same clock skew and maximum age), and the
   * key its header names now still the very key that verified it (a JWKS refetched or rotated gives other
   * key objects). False: verify the token in full, which says why it fails. A failure to find the key is
   * thrown as `verify` throws it, since `verify` would meet it first; several keys matching a header
   * without kid is not one (`verify` then tries each).
   */
  async passesAgain(repeat: VerifiedRepeat, nowMs: number): Promise<boolean> {
    const now = Math.floor(nowMs / 1000);
    const skew = this.clockSkewSeconds;
    if (repeat.nbf !== undefined && repeat.nbf > now + skew) return false;
    if (repeat.exp <= now - skew) return false;
    if (this.maxTokenAgeSeconds !== undefined) {
      const age = now - repeat.iat;
      if (age - skew > this.maxTokenAgeSeconds || age < -skew) return false;
    }
    if (repeat.iat > now + skew) return false;
    try {
      return (await this.#keys.resolve(repeat.header, repeat.jws)) === repeat.key;
    } catch (err) {
      // A header without kid that several keys now match: `verify` tries each candidate.
      if (err instanceof errors.JWKSMultipleMatchingKeys) return false;
      throw verificationFailure(err, this.#failureContext(now));
    }
  }

  /** What verificationFailure words a refusal with. */
  #failureContext(nowSeconds: number) {
    return { issuerId: this.id, issuer: this.issuer, nowSeconds, maxTokenAgeSeconds: this.maxTokenAgeSeconds };
  }

  /** Fetches this issuer's keys now (discovery, JWKS) and returns how many are usable; throws a KeySourceError otherwise. */
  fetchKeys(): Promise<number> {
    return this.#keys.fetchKeys();
  }

  /** The claims, and the key that verified them when the issuer's keys gave one for the header. */
  async #verifySignatureAndClaims(token: string, options: JWTVerifyOptions): Promise<{ payload: JWTPayload; key?: ResolvedKey }> {
    let resolved: ResolvedKey | undefined;
    try {
      // The key resolver sees only `alg` and `kid`; `jwk`, `jku`, `x5u` and `x5c` in the header are
      // ignored (RFC 8725 §3.10). jose's checks, node:crypto's signature (src/jwt/compact-jwt.ts).
      const { payload } = await verifyJwt(
        token,
        async (header, jws) => {
          const key = await this.#keys.resolve(header, jws);
          resolved = { header, jws, key };
          return key;
        },
        options,
        // TrustedIssuers remembers what this verification gives (the token's repeats): the signature memo
        // would only hold a second copy of every token, fresh ones included.
        { rememberSignature: false },
      );
      return { payload, ...(resolved ? { key: resolved } : {}) };
    } catch (err) {
      if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
      // A token without `kid` that several keys of the right type could verify: try each, as jose
      // documents; only a signature mismatch moves on to the next key.
      let tried = 0;
      for await (const candidate of err as AsyncIterable<CryptoKey>) {
        if (++tried > MAX_CANDIDATE_KEYS) break;
        try {
          return { payload: (await verifyJwt(token, candidate, options)).payload };
        } catch (inner) {
          if (inner instanceof errors.JWSSignatureVerificationFailed) continue;
          throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }
}

function keySourceFor(config: IssuerConfig, limits: RemoteKeyLimits, policy: JwksPolicy): KeySource {
  switch (config.keys.kind) {
    case 'inline':
      return new InlineKeySource(config.keys.jwks, config.algorithms);
    case 'jwks_uri':
      return new RemoteKeySource(config.keys.uri, limits, policy);
    case 'discovery':
      return new DiscoveryKeySource(config.issuer, limits, policy);
  }
}

/** Passes each dropped key on the first time it is seen; a set refetched every few minutes logs nothing new. */
function reportedOnce(report: (drop: DroppedJwk) => void): (drop: DroppedJwk) => void {
  const reported = new RecentlyUsed<string, true>(REPORTED_DROPS_REMEMBERED);
  return (drop) => {
    const key = `${drop.kid === undefined ? `#${drop.index}` : `kid:${drop.kid}`}\u0000${drop.reason}`;
    if (reported.get(key)) return;
    reported.set(key, true);
    report(drop);
  };
}

/** Every reason `config` cannot be used, as `field: what is wrong` lines. */
function issuerConfigProblems(config: IssuerConfig, allowInsecureHttp: boolean): string[] {
  const problems: string[] = [];
  if (config.issuer === '') problems.push('issuer: must not be empty');
  if (config.audiences.length === 0 || config.audiences.some((a) => a === '')) problems.push('audiences: at least one non-empty audience is required');
  if (config.algorithms.length === 0) problems.push('algorithms: at least one algorithm is required');
  for (const alg of config.algorithms) {
    if (!ACCEPTABLE_ALGORITHMS.has(alg)) problems.push(`algorithms: ${String(alg)} is not allowed; allowed: ${[...ACCEPTABLE_ALGORITHMS].join(', ')}`);
  }
  if (!Number.isFinite(config.clockSkewSeconds) || config.clockSkewSeconds < 0) problems.push('clock_skew_seconds: must be a number >= 0');
  if (config.maxTokenAgeSeconds !== undefined && !(config.maxTokenAgeSeconds > 0)) problems.push('max_token_age_seconds: must be > 0');
  if (config.keys.kind === 'discovery') {
    const problem = remoteUrlProblem(config.issuer, allowInsecureHttp);
    if (problem) problems.push(`issuer: discovery needs an https URL, and this one ${problem}`);
  }
  if (config.keys.kind === 'jwks_uri') {
    const problem = remoteUrlProblem(config.keys.uri, allowInsecureHttp);
    if (problem) problems.push(`jwks_uri: ${problem}`);
  }
  if (config.keys.kind === 'inline' && (!Array.isArray(config.keys.jwks?.keys) || config.keys.jwks.keys.length === 0)) {
    problems.push('keys: an inline JWKS needs at least one key');
  }
  return problems;
}
