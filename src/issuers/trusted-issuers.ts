/**
 * Verification of web-identity tokens (GitHub Actions OIDC, Kubernetes service accounts, Google ID
 * tokens, any configured issuer) for AssumeRoleWithWebIdentity and RFC 8693 token exchange.
 *
 * Order of checks (RFC 7519 §7.2, RFC 8725 §3): shape and size before decoding; the unverified `iss`
 * only selects which configured issuer's keys to use; then signature, algorithm, issuer, audience and
 * times are checked by jose against that issuer's key set alone.
 */

import type { IssuerConfig } from '../config/types.js';
import type { Identity } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { DroppedJwk } from '../jwt/jwk-usability.js';
import type { RemoteKeyLimits } from './key-sources.js';
import { deepFreeze, RecentlyUsed } from '../util/recently-used.js';
import { TrustedIssuer, type VerifiedRepeat } from './trusted-issuer.js';
import { decodeUntrustedJwt } from './untrusted-jwt.js';

/** How TrustedIssuers fetches and caches keys, and how much input it accepts. */
export interface TrustedIssuersOptions {
  /** Lets issuers, discovery documents and JWKS use plain http (tests, the demo). */
  allowInsecureHttp: boolean;
  /** Deadline for one discovery or JWKS request, headers and body together. Default 3000. */
  fetchTimeoutMs?: number;
  /** After a successful JWKS fetch, how long an unknown `kid` must wait before it may trigger another. Default 30000. */
  cooldownMs?: number;
  /** How long a fetched JWKS or discovery document is used before it is fetched again. Default 600000. */
  cacheMaxAgeMs?: number;
  /** Longest token accepted, in characters (AWS's WebIdentityToken limit). Default 20000. */
  maxTokenLength?: number;
  /** Largest discovery document or JWKS accepted, in bytes. Default 256 KiB. */
  maxResponseBytes?: number;
  /** After a failed discovery or JWKS fetch, how long further fetches fail at once instead of asking again. Default 1000. */
  fetchFailureBackoffMs?: number;
  /** Clock for token times, epoch milliseconds (tests). Key caches follow `keysNow`. */
  now?: () => number;
  /** Clock for the key caches (cache age, unknown-kid cooldown, failure backoff), epoch milliseconds (tests). Default Date.now. */
  keysNow?: () => number;
  /** Told of every discovery and JWKS fetch, by issuer id (metrics). */
  onFetch?: (issuerId: string, kind: 'discovery' | 'jwks', ok: boolean) => void;
  /** Told once of each unusable key found in an issuer's fetched JWKS, which is dropped (logs, metrics). */
  onKeyDropped?: (issuerId: string, drop: DroppedJwk) => void;
}

/** A token that passed every check, and who it names. */
export interface VerifiedWebIdentity {
  /** `source` is the issuer id, `subject` the `sub` claim, `claims` the whole verified payload. */
  identity: Identity;
  issuerId: string;
  /** The configured audience that the token's `aud` contained. */
  audience: string;
  /** `exp`, epoch seconds. */
  expiresAt: number;
  /** `iat`, epoch seconds. */
  issuedAt?: number;
}

/**
 * How many verified tokens are remembered for their repeats (see verifyWebIdentityToken), and the longest
 * remembered: anyone who can get tokens from a trusted issuer (any GitHub repository, from GitHub's) can
 * fill the memo, so what it may hold is bounded (about 8 MiB of tokens; workload tokens are 1-2 KB).
 */
const REPEATS_REMEMBERED = 1024;
const REPEAT_MAX_TOKEN_CHARS = 8192;

const DEFAULTS = {
  fetchTimeoutMs: 3000,
  cooldownMs: 30_000,
  cacheMaxAgeMs: 10 * 60_000,
  maxTokenLength: 20_000,
  maxResponseBytes: 256 * 1024,
  fetchFailureBackoffMs: 1000,
} as const;

/** The configured set of trusted JWT issuers; verifies incoming web-identity tokens against them. */
export class TrustedIssuers {
  readonly #byIssuer = new Map<string, TrustedIssuer>();
  readonly #maxTokenLength: number;
  readonly #now: () => number;
  /** Tokens verified in full, by their exact text: the issuer, what a repeat must pass again, the answer. */
  readonly #repeats = new RecentlyUsed<string, { issuer: TrustedIssuer; repeat: VerifiedRepeat; verified: VerifiedWebIdentity }>(REPEATS_REMEMBERED);

  /** Throws an Error listing every configuration problem (bad algorithms, plain http, duplicates). */
  constructor(configs: readonly IssuerConfig[], options: TrustedIssuersOptions) {
    const limits: RemoteKeyLimits = {
      allowInsecureHttp: options.allowInsecureHttp,
      fetchTimeoutMs: positiveInteger(options.fetchTimeoutMs, DEFAULTS.fetchTimeoutMs, 'fetchTimeoutMs'),
      cooldownMs: nonNegative(options.cooldownMs, DEFAULTS.cooldownMs, 'cooldownMs'),
      cacheMaxAgeMs: nonNegative(options.cacheMaxAgeMs, DEFAULTS.cacheMaxAgeMs, 'cacheMaxAgeMs'),
      maxResponseBytes: positiveInteger(options.maxResponseBytes, DEFAULTS.maxResponseBytes, 'maxResponseBytes'),
      fetchFailureBackoffMs: nonNegative(options.fetchFailureBackoffMs, DEFAULTS.fetchFailureBackoffMs, 'fetchFailureBackoffMs'),
      ...(options.keysNow ? { now: options.keysNow } : {}),
    };
    this.#maxTokenLength = positiveInteger(options.maxTokenLength, DEFAULTS.maxTokenLength, 'maxTokenLength');
    this.#now = options.now ?? Date.now;

    const problems: string[] = [];
    const ids = new Set<string>();
    for (const config of configs) {
      if (ids.has(config.id)) problems.push(`issuers.${config.id}: id is used twice`);
      ids.add(config.id);
      // Two entries with one `iss` would make the choice of keys ambiguous.
      if (this.#byIssuer.has(config.issuer)) problems.push(`issuers.${config.id}: issuer ${config.issuer} is already configured`);
      try {
        const onFetch = options.onFetch;
        const issuerLimits = onFetch ? { ...limits, onFetch: (kind: 'discovery' | 'jwks', ok: boolean) => onFetch(config.id, kind, ok) } : limits;
        const onKeyDropped = options.onKeyDropped;
        this.#byIssuer.set(config.issuer, new TrustedIssuer(config, issuerLimits, onKeyDropped && ((drop) => onKeyDropped(config.id, drop))));
      } catch (err) {
        problems.push(err instanceof Error ? err.message : String(err));
      }
    }
    if (problems.length > 0) throw new Error(`invalid issuer configuration:\n${problems.join('\n')}`);
  }

  /** The configured issuer ids, in configuration order. */
  get ids(): string[] {
    return [...this.#byIssuer.values()].map((issuer) => issuer.id);
  }

  /**
   * Fetches every issuer's keys now, as its first token would, each within the fetch timeout: the usable
   * keys' count, or why there are none (unreachable, not a JWKS, a discovery document naming another issuer).
   */
  async fetchKeys(): Promise<{ id: string; usable?: number; error?: string }[]> {
    const issuers = [...this.#byIssuer.values()];
    const outcomes = await Promise.allSettled(issuers.map((issuer) => issuer.fetchKeys()));
    return outcomes.map((outcome, i) =>
      outcome.status === 'fulfilled'
        ? { id: issuers[i]!.id, usable: outcome.value }
        : { id: issuers[i]!.id, error: outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason) },
    );
  }

  /**
   * Verifies a web-identity token and returns the identity it proves. Throws GatewayError:
   * InvalidIdentityToken, ExpiredTokenException or IDPCommunicationError.
   */
  async verifyWebIdentityToken(token: string): Promise<VerifiedWebIdentity> {
    // The very same text as a token verified in full before (a workload exchanging one token again and
    // again, as an SDK's credential provider does): what depends on the clock and on the issuer's keys is
    // checked again; the shape, the claims and the signature, which depend only on the text, the key and
    // this configuration, are not decoded and checked once more. The answer is the same (frozen) object.
    const known = this.#repeats.get(token);
    if (known) {
      if (await known.issuer.passesAgain(known.repeat, this.#now())) return known.verified;
      // Expired, or its key changed: verified in full below, and remembered again only if it passes.
      this.#repeats.delete(token);
    }

    const { payload: untrusted } = decodeUntrustedJwt(token, this.#maxTokenLength);
    const iss = untrusted['iss'];
    if (typeof iss !== 'string' || iss === '') {
      throw new GatewayError('InvalidIdentityToken', 'Missing a required claim: iss.', { debug: 'no string iss' });
    }
    // Exact comparison (RFC 7519 §4.1.1 and OpenID Connect Core §2: case-sensitive, no normalization):
    // `https://a/` and `https://a` are different issuers.
    const issuer = this.#byIssuer.get(iss);
    if (!issuer) {
      throw new GatewayError('InvalidIdentityToken', `No OpenIDConnect provider found in your account for ${printable(iss)}.`, {
        debug: 'unknown iss',
      });
    }

    const { payload, audience, repeat } = await issuer.verify(token, this.#now());
    // Frozen through and through: a repeat of the token gets this very object.
    const verified: VerifiedWebIdentity = deepFreeze({
      identity: { source: issuer.id, subject: payload.sub, claims: { ...payload } },
      issuerId: issuer.id,
      audience,
      expiresAt: payload.exp,
      issuedAt: payload.iat,
    });
    if (repeat && token.length <= REPEAT_MAX_TOKEN_CHARS) this.#repeats.set(token, { issuer, repeat, verified });
    return verified;
  }
}

/** An untrusted string made safe to quote in a message: no control characters, bounded length. */
function printable(value: string): string {
  const cleaned = value.replace(/[^\x20-\x7e]/g, '?');
  return cleaned.length > 200 ? `${cleaned.slice(0, 200)}...` : cleaned;
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive integer`);
  return value;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (Number.isNaN(value) || value < 0) throw new TypeError(`${name} must be a number >= 0`);
  return value;
}
