/**
 * Where one trusted issuer's verification keys come from: an inline JWKS, a configured `jwks_uri`, or
 * OpenID Connect discovery. A key source only ever looks at the token's `alg` and `kid`; header
 * parameters that carry or point to keys (`jwk`, `jku`, `x5u`, `x5c`) are never consulted
 * (RFC 8725 §3.10: do not let the token choose where its keys come from).
 */

import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, type CryptoKey, type FetchImplementation, type FlattenedJWSInput, type JWSHeaderParameters, type RemoteJWKSet } from 'jose';

import { fetchIdpBody, fetchIdpJsonObject, IDP_USER_AGENT } from './idp-fetch.js';
import { partitionJwks, type DroppedJwk } from '../jwt/jwk-usability.js';

/** Resolves the one key that may verify a token, given its protected header. */
export interface KeySource {
  resolve(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey>;
  /**
   * Obtains the keys now, as the first token would (discovery, then the JWKS), and returns how many are
   * usable; throws a KeySourceError when they cannot be had or none is usable (`check-config --connect`).
   */
  fetchKeys(): Promise<number>;
}

/** Timing and size limits shared by every remote key source. */
export interface RemoteKeyLimits {
  fetchTimeoutMs: number;
  cooldownMs: number;
  cacheMaxAgeMs: number;
  maxResponseBytes: number;
  allowInsecureHttp: boolean;
  /**
   * After a failed discovery or JWKS fetch, how long further fetches fail at once instead of asking the IdP
   * again. Keys already cached keep verifying meanwhile; only fetches wait.
   */
  fetchFailureBackoffMs: number;
  /** Told of every discovery and JWKS fetch and whether it succeeded (metrics). */
  onFetch?: (kind: 'discovery' | 'jwks', ok: boolean) => void;
  /** Clock for cache ages, cooldowns and failure backoffs, epoch milliseconds. Default Date.now (tests pass their own). */
  now?: () => number;
}

/** Which keys of a loaded JWKS a source keeps (see jwk-usability.ts), and whom it tells about the others. */
export interface JwksPolicy {
  /** The issuer's allowed algorithms: a key no allowed algorithm can use is dropped. */
  algorithms: readonly string[];
  /** Told of every key dropped, at every load of the set (the caller reports each key once). */
  onDropped?: (drop: DroppedJwk) => void;
}

/**
 * The key set (or discovery document) could not be obtained or used: the IdP is down, slow, sent
 * something that is not a key set, or published an unusable key. Distinct from a token's own faults so
 * the caller can answer IDPCommunicationError instead of InvalidIdentityToken.
 */
export class KeySourceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeySourceError';
  }
}

/** Errors a JWKS lookup raises because of the token (its kid or alg), not because of the IdP. */
const TOKEN_SIDE_KEY_ERRORS = new Set<string>([
  errors.JWKSNoMatchingKey.code,
  errors.JWKSMultipleMatchingKeys.code,
  errors.JOSENotSupported.code,
]);

/**
 * Runs a JWKS lookup and sorts its failures: token-side misses pass through unchanged, anything else
 * (fetch, timeout, malformed set) becomes a KeySourceError. Unusable keys never reach the lookup: they
 * were dropped when the set was loaded. A token whose `kid` names a dropped key is the IdP's fault, not
 * the token's: it fails as the key source, with the reason.
 */
async function resolveFrom(
  lookup: (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>,
  header: JWSHeaderParameters,
  token: FlattenedJWSInput,
  droppedKeys: () => ReadonlyMap<string, string>,
): Promise<CryptoKey> {
  try {
    return await lookup(header, token);
  } catch (err) {
    // Read after the lookup: it may have (re)loaded the set.
    const droppedKey = typeof header.kid === 'string' ? droppedKeys().get(header.kid) : undefined;
    if (err instanceof errors.JWKSNoMatchingKey && droppedKey !== undefined) {
      throw new KeySourceError(`the key the token names is ignored: ${droppedKey}`, { cause: err });
    }
    if (err instanceof errors.JOSEError && TOKEN_SIDE_KEY_ERRORS.has(err.code)) throw err;
    if (err instanceof KeySourceError) throw err;
    throw new KeySourceError(describeKeyFailure(err), { cause: err });
  }
}

/** Dropped keys that have a kid, by kid: what `resolveFrom` says when a token names one. */
function droppedByKid(dropped: readonly DroppedJwk[]): Map<string, string> {
  return new Map(dropped.filter((d) => d.kid !== undefined).map((d) => [d.kid!, d.detail]));
}

/**
 * A fetched JWKS body with its unusable keys removed, each reported to the policy. A body that is not a
 * JSON object with a `keys` array is returned as it came, for jose to refuse as it always has.
 */
function filterJwksBody(body: Uint8Array, policy: JwksPolicy): { body: Uint8Array; usable: number; dropped: DroppedJwk[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return { body, usable: 0, dropped: [] };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || !Array.isArray((doc as { keys?: unknown }).keys)) return { body, usable: 0, dropped: [] };
  const { usable, dropped } = partitionJwks((doc as { keys: unknown[] }).keys, policy.algorithms);
  if (dropped.length === 0) return { body, usable: usable.length, dropped };
  for (const drop of dropped) policy.onDropped?.(drop);
  return { body: new TextEncoder().encode(JSON.stringify({ keys: usable })), usable: usable.length, dropped };
}

function describeKeyFailure(err: unknown): string {
  if (err instanceof errors.JOSEError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** Keys given in the configuration; nothing is fetched. */
export class InlineKeySource implements KeySource {
  readonly #lookup: ReturnType<typeof createLocalJWKSet>;
  readonly #count: number;

  /**
   * Throws at construction when any key is unusable (weak, private, symmetric, for encryption, of an
   * algorithm the issuer does not allow): the operator wrote it, so it is a configuration error, not
   * something to drop quietly. The loader refuses the same keys with their paths (config/schema.ts).
   */
  constructor(jwks: { keys: Record<string, unknown>[] }, algorithms: readonly string[]) {
    const { dropped } = partitionJwks(jwks.keys, algorithms);
    if (dropped.length > 0) {
      throw new Error(dropped.map((d) => `keys[${d.index}]${d.kid === undefined ? '' : ` (kid ${JSON.stringify(d.kid)})`}: ${d.detail}`).join('; '));
    }
    this.#lookup = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
    this.#count = jwks.keys.length;
  }

  resolve(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    return resolveFrom(this.#lookup, header, token, () => NO_DROPPED_KEYS);
  }

  /** Nothing to fetch: every inline key was checked at construction. */
  fetchKeys(): Promise<number> {
    return Promise.resolve(this.#count);
  }
}

const NO_DROPPED_KEYS: ReadonlyMap<string, string> = new Map();

/**
 * A JWKS at a URL: fetched on first use and when older than `cacheMaxAgeMs`; a token whose `kid` is
 * unknown triggers at most one refetch per `cooldownMs`, and concurrent fetches are shared (jose's remote
 * set keeps one in-flight request). jose fetches, parses and picks the key; the timing is kept here, on
 * the injected clock, with the same rules as jose's own (its cache age and cooldown are turned off).
 */
export class RemoteKeySource implements KeySource {
  readonly uri: string;
  readonly #set: RemoteJWKSet;
  readonly #backoffMs: number;
  readonly #cacheMaxAgeMs: number;
  readonly #cooldownMs: number;
  readonly #now: () => number;
  /** When the key set in use was fetched (undefined: none yet). */
  #fetchedAt: number | undefined;
  /** Until when fetching is not retried after a failure, and that failure. */
  #failed: { until: number; reason: string } | undefined;
  /** Keys with a kid that the last loaded set held but that were dropped, and why. */
  #dropped: ReadonlyMap<string, string> = NO_DROPPED_KEYS;
  /** The last loaded set's usable keys, and why each other key was dropped. */
  #lastLoad: { usable: number; dropped: readonly DroppedJwk[] } = { usable: 0, dropped: [] };

  constructor(uri: string, limits: RemoteKeyLimits, policy: JwksPolicy) {
    this.uri = uri;
    this.#backoffMs = limits.fetchFailureBackoffMs;
    this.#cacheMaxAgeMs = limits.cacheMaxAgeMs;
    this.#cooldownMs = limits.cooldownMs;
    this.#now = limits.now ?? Date.now;
    const boundedFetch: FetchImplementation = async (url, init) => {
      // Without this, an IdP that is down is asked again by every request naming its issuer (no valid
      // token needed: keys are looked up before the signature is checked), at whatever rate clients send.
      const failed = this.#failed;
      if (failed && this.#now() < failed.until) throw new KeySourceError(`not fetched again within ${this.#backoffMs} ms of a failure (${failed.reason})`);
      let body: Uint8Array;
      try {
        body = await fetchIdpBody(url, { signal: init.signal, headers: init.headers, maxBytes: limits.maxResponseBytes });
      } catch (err) {
        limits.onFetch?.('jwks', false);
        throw err;
      }
      limits.onFetch?.('jwks', true);
      // Every load, the first and each refetch, drops the unusable keys before jose builds its set.
      const filtered = filterJwksBody(body, policy);
      this.#dropped = droppedByKid(filtered.dropped);
      this.#lastLoad = { usable: filtered.usable, dropped: filtered.dropped };
      return new Response(filtered.body, { status: 200, headers: { 'content-type': 'application/json' } });
    };
    this.#set = createRemoteJWKSet(new URL(uri), {
      timeoutDuration: limits.fetchTimeoutMs,
      // Never stale and never cooling down by jose's own clock: #lookup decides when to reload.
      cooldownDuration: Infinity,
      cacheMaxAge: Infinity,
      headers: { 'user-agent': IDP_USER_AGENT, accept: 'application/jwk-set+json, application/json' },
      [customFetch]: boundedFetch,
    });
  }

  async resolve(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    try {
      const key = await resolveFrom((h, t) => this.#lookup(h, t), header, token, () => this.#dropped);
      this.#failed = undefined;
      return key;
    } catch (err) {
      if (err instanceof KeySourceError && !(this.#failed && this.#now() < this.#failed.until)) {
        this.#failed = { until: this.#now() + this.#backoffMs, reason: err.message.slice(0, 200) };
      }
      throw err;
    }
  }

  async fetchKeys(): Promise<number> {
    try {
      await this.#reload();
    } catch (err) {
      if (err instanceof KeySourceError) throw err;
      const detail = describeKeyFailure(err);
      throw new KeySourceError(detail.includes(this.uri) ? detail : `${this.uri}: ${detail}`, { cause: err });
    }
    const { usable, dropped } = this.#lastLoad;
    if (usable === 0) {
      const reasons = dropped.map((d) => `keys[${d.index}]${d.kid === undefined ? '' : ` (kid ${JSON.stringify(d.kid)})`}: ${d.detail}`);
      throw new KeySourceError(`${this.uri} holds no usable key${reasons.length > 0 ? ` (${reasons.join('; ')})` : ''}`);
    }
    return usable;
  }

  /** jose's remote-set rules on our clock: reload when there is no set or it is older than the cache age; an unknown kid reloads once the cooldown has passed. */
  async #lookup(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    if (!this.#freshFor(this.#cacheMaxAgeMs)) await this.#reload();
    try {
      return await this.#set(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey && !this.#freshFor(this.#cooldownMs)) {
        await this.#reload();
        return this.#set(header, token);
      }
      throw err;
    }
  }

  /** Whether the key set in use was fetched less than `durationMs` ago. */
  #freshFor(durationMs: number): boolean {
    return this.#fetchedAt !== undefined && this.#now() < this.#fetchedAt + durationMs;
  }

  /** Fetches the set again (sharing a fetch already in flight) and notes when it arrived. */
  async #reload(): Promise<void> {
    await this.#set.reload();
    this.#fetchedAt = this.#now();
  }
}

interface DiscoveredMetadata {
  jwksUri: string;
  fetchedAt: number;
}

/**
 * Keys found through OpenID Connect Discovery 1.0: `<issuer>/.well-known/openid-configuration`, whose
 * `issuer` must equal the configured issuer exactly (§4.3, against issuer impersonation), then its
 * `jwks_uri`. The document is cached for `cacheMaxAgeMs`; when a refresh fails the last good document
 * keeps serving (its keys are still checked by the JWKS cache) and the refresh is retried after
 * `cooldownMs`.
 */
export class DiscoveryKeySource implements KeySource {
  readonly issuer: string;
  readonly discoveryUrl: string;
  readonly #limits: RemoteKeyLimits;
  readonly #policy: JwksPolicy;
  #metadata: DiscoveredMetadata | undefined;
  #inFlight: Promise<DiscoveredMetadata> | undefined;
  #nextRefreshAt = 0;
  /** With no document yet: until when discovery is not retried after a failure, and that failure. */
  #failed: { until: number; error: unknown } | undefined;
  #keys: RemoteKeySource | undefined;
  readonly #now: () => number;

  constructor(issuer: string, limits: RemoteKeyLimits, policy: JwksPolicy) {
    this.issuer = issuer;
    this.#limits = limits;
    this.#policy = policy;
    this.#now = limits.now ?? Date.now;
    this.discoveryUrl = discoveryUrlFor(issuer);
  }

  async resolve(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    return this.#keySource(await this.#currentMetadata()).resolve(header, token);
  }

  async fetchKeys(): Promise<number> {
    return this.#keySource(await this.#currentMetadata()).fetchKeys();
  }

  /** The key source of the JWKS the discovery document names (a new one when the document moved it). */
  #keySource(metadata: DiscoveredMetadata): RemoteKeySource {
    if (this.#keys?.uri !== metadata.jwksUri) this.#keys = new RemoteKeySource(metadata.jwksUri, this.#limits, this.#policy);
    return this.#keys;
  }

  async #currentMetadata(): Promise<DiscoveredMetadata> {
    const cached = this.#metadata;
    const now = this.#now();
    if (cached && now - cached.fetchedAt < this.#limits.cacheMaxAgeMs) return cached;
    if (cached && now < this.#nextRefreshAt) return cached;
    // With no document to fall back on, a failure is answered again for a short while rather than
    // retried by every request (see RemoteKeySource).
    if (!cached && !this.#inFlight && this.#failed && now < this.#failed.until) throw this.#failed.error;
    // One in-flight discovery request per issuer, however many tokens arrive at once.
    this.#inFlight ??= this.#fetchMetadata().finally(() => {
      this.#inFlight = undefined;
    });
    try {
      const fresh = await this.#inFlight;
      this.#metadata = fresh;
      this.#failed = undefined;
      return fresh;
    } catch (err) {
      if (!(this.#failed && this.#now() < this.#failed.until)) this.#failed = { until: this.#now() + this.#limits.fetchFailureBackoffMs, error: err };
      if (!cached) throw err;
      this.#nextRefreshAt = this.#now() + this.#limits.cooldownMs;
      return cached;
    }
  }

  async #fetchMetadata(): Promise<DiscoveredMetadata> {
    let doc: Record<string, unknown>;
    try {
      doc = await fetchIdpJsonObject(this.discoveryUrl, {
        signal: AbortSignal.timeout(this.#limits.fetchTimeoutMs),
        maxBytes: this.#limits.maxResponseBytes,
        headers: { 'user-agent': IDP_USER_AGENT, accept: 'application/json' },
      });
      this.#limits.onFetch?.('discovery', true);
    } catch (err) {
      this.#limits.onFetch?.('discovery', false);
      const detail = err instanceof Error && err.name === 'TimeoutError' ? `${this.discoveryUrl} timed out` : err instanceof Error ? err.message : String(err);
      throw new KeySourceError(`discovery failed: ${detail}`, { cause: err });
    }
    if (doc['issuer'] !== this.issuer) {
      throw new KeySourceError(
        `discovery document at ${this.discoveryUrl} names issuer ${JSON.stringify(String(doc['issuer']).slice(0, 200))}, not the configured ${JSON.stringify(this.issuer)}`,
      );
    }
    const jwksUri = doc['jwks_uri'];
    if (typeof jwksUri !== 'string') throw new KeySourceError(`discovery document at ${this.discoveryUrl} has no jwks_uri`);
    const problem = remoteUrlProblem(jwksUri, this.#limits.allowInsecureHttp);
    if (problem) throw new KeySourceError(`discovery document at ${this.discoveryUrl}: jwks_uri ${problem}`);
    return { jwksUri, fetchedAt: this.#now() };
  }
}

/**
 * OpenID Connect Discovery 1.0 §4.1: the issuer with any terminating `/` removed, then
 * `/.well-known/openid-configuration`. Only the URL is built this way; the issuer itself is still
 * compared byte for byte.
 */
export function discoveryUrlFor(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/** Why `value` may not be fetched (not an absolute http(s) URL, or plain http when not allowed), or undefined. */
export function remoteUrlProblem(value: string, allowInsecureHttp: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') return allowInsecureHttp ? undefined : 'uses plain http (allowed only with dev.allow_insecure_http)';
  return `uses ${url.protocol.replace(/:$/, '')}, not https`;
}
