/**
 * Authentication of the resource servers allowed to introspect (RFC 7662 §2.1: "the endpoint MUST also
 * require some form of authorization", against token scanning, §4). Three methods, one per client:
 *
 * - `client_secret_basic` and `client_secret_post` (RFC 6749 §2.3.1): a shared secret, compared in
 *   constant time;
 * - `private_key_jwt` (RFC 7523 §2.2 and §3, OpenID Connect Core §9): a JWT signed with the client's
 *   private key, `iss` = `sub` = the client id, `aud` the introspection endpoint URL or the issuer, a short
 *   `exp`, and a `jti` used once (kept in the store until the assertion expires, so a replay on any replica
 *   fails).
 *
 * Every failure is `invalid_client` (RFC 6749 §5.2) with one public message, whether the client is unknown,
 * the secret wrong or the assertion bad; the reason goes to `debug` only.
 */
import { createLocalJWKSet, errors, type JWTPayload } from 'jose';
import type { IntrospectionClientConfig } from '../config/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import { equalSecretText } from '../util/secret-text.js';
import { ACCEPTABLE_ALGORITHMS } from '../issuers/index.js';
import { decodeUntrustedJwt } from '../issuers/untrusted-jwt.js';
import { verifyJwt } from '../jwt/compact-jwt.js';
import { storeKeys } from '../store/keys.js';
import { secretDigest, storeFailure } from '../store/records.js';
import type { Store } from '../store/store.js';

/** RFC 7523 §2.2. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** The authentication methods, as named in RFC 8414 `*_endpoint_auth_methods_supported`. */
export type ClientAuthMethod = IntrospectionClientConfig['auth'];

/** An assertion may not live longer than this (RFC 7523 §3 leaves it to the server; five minutes is usual). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
/** Clock difference tolerated on `exp`, `nbf` and `iat`. */
const ASSERTION_CLOCK_SKEW_SECONDS = 30;
/** Longest assertion accepted, in characters. */
const MAX_ASSERTION_LENGTH = 8_000;
/** Longest `jti` accepted; it is stored (hashed) until the assertion expires. */
const MAX_JTI_LENGTH = 256;

/** Who authenticated, and how. */
export interface AuthenticatedClient {
  id: string;
  method: ClientAuthMethod;
}

/** What a request offers to authenticate its client: the Authorization header and the form. */
export interface ClientCredentialsInput {
  authorization: string | undefined;
  form: ReadonlyMap<string, string>;
}

type Client =
  | { id: string; auth: 'client_secret_basic' | 'client_secret_post'; secret: string }
  | { id: string; auth: 'private_key_jwt'; keys: ReturnType<typeof createLocalJWKSet> };

/** The configured introspection clients and the checks of their credentials. */
export class ClientAuthenticator {
  readonly #clients = new Map<string, Client>();
  readonly #store: Store;
  /** The `aud` values an assertion may name: the endpoint's URL, and the issuer (OpenID Connect Core §9). */
  readonly #audiences: string[];
  readonly #now: () => number;

  constructor(clients: readonly IntrospectionClientConfig[], options: { store: Store; endpointUrl: string; issuer: string; now?: () => number }) {
    for (const client of clients) {
      this.#clients.set(
        client.id,
        client.auth === 'private_key_jwt'
          ? { id: client.id, auth: client.auth, keys: createLocalJWKSet(client.jwks as Parameters<typeof createLocalJWKSet>[0]) }
          : { id: client.id, auth: client.auth, secret: client.secret },
      );
    }
    this.#store = options.store;
    this.#audiences = [...new Set([options.endpointUrl, options.issuer])];
    this.#now = options.now ?? Date.now;
  }

  /** Whether any client is configured; with none, the endpoint is open (as before clients existed). */
  get required(): boolean {
    return this.#clients.size > 0;
  }

  /** The methods in use, for discovery (RFC 8414 §2 `introspection_endpoint_auth_methods_supported`). */
  get methods(): ClientAuthMethod[] {
    return [...new Set([...this.#clients.values()].map((c) => c.auth))];
  }

  /**
   * Authenticates the request's client by the one method it used; throws GatewayError invalid_client
   * (401, with `WWW-Authenticate: Basic` when Basic was used or could have been), or invalid_request when
   * it used more than one method (RFC 6749 §2.3: "MUST NOT use more than one").
   */
  async authenticate({ authorization, form }: ClientCredentialsInput): Promise<AuthenticatedClient> {
    const basic = authorization !== undefined && /^basic /i.test(authorization);
    const offered = [basic, form.has('client_secret'), form.has('client_assertion') || form.has('client_assertion_type')].filter(Boolean).length;
    if (offered > 1) throw new GatewayError('invalid_request', 'Use exactly one client authentication method.');
    if (basic) return this.#secret('client_secret_basic', parseBasic(authorization!));
    if (form.has('client_secret')) return this.#secret('client_secret_post', { id: form.get('client_id') ?? '', secret: form.get('client_secret')! });
    if (form.has('client_assertion') || form.has('client_assertion_type')) return this.#assertion(form);
    throw this.#failure('no client authentication', authorization !== undefined);
  }

  #secret(method: 'client_secret_basic' | 'client_secret_post', offered: { id: string; secret: string }): AuthenticatedClient {
    const client = this.#clients.get(offered.id);
    // Compared even for an unknown client, so the time taken does not tell which client ids exist.
    const expected = client && client.auth !== 'private_key_jwt' ? client.secret : '\u0000no client';
    const matches = equalSecretText(offered.secret, expected);
    if (!client) throw this.#failure(`${method}: unknown client`, method === 'client_secret_basic');
    if (client.auth !== method) throw this.#failure(`${method}: client ${client.id} authenticates with ${client.auth}`, method === 'client_secret_basic');
    if (!matches) throw this.#failure(`${method}: wrong secret for client ${client.id}`, method === 'client_secret_basic');
    return { id: client.id, method };
  }

  async #assertion(form: ReadonlyMap<string, string>): Promise<AuthenticatedClient> {
    const type = form.get('client_assertion_type');
    const assertion = form.get('client_assertion');
    if (type !== JWT_BEARER_ASSERTION_TYPE) throw this.#failure(`private_key_jwt: client_assertion_type is not ${JWT_BEARER_ASSERTION_TYPE}`);
    if (!assertion) throw this.#failure('private_key_jwt: no client_assertion');
    let iss: unknown;
    try {
      iss = decodeUntrustedJwt(assertion, MAX_ASSERTION_LENGTH).payload['iss'];
    } catch {
      throw this.#failure('private_key_jwt: the assertion is not a compact JWS');
    }
    // RFC 7523 §3: iss and sub are the client id; a client_id sent beside the assertion must agree.
    const client = typeof iss === 'string' ? this.#clients.get(iss) : undefined;
    if (!client) throw this.#failure('private_key_jwt: unknown client');
    if (client.auth !== 'private_key_jwt') throw this.#failure(`private_key_jwt: client ${client.id} authenticates with ${client.auth}`);
    if (form.has('client_id') && form.get('client_id') !== client.id) throw this.#failure(`private_key_jwt: client_id differs from the assertion's iss (${client.id})`);

    const nowMs = this.#now();
    let payload: JWTPayload;
    try {
      ({ payload } = await verifyJwt(assertion, client.keys, {
        // Asymmetric only: an HMAC assertion would need a secret shared with stsgate, and none is (RFC 8725 §3.1).
        algorithms: [...ACCEPTABLE_ALGORITHMS],
        issuer: client.id,
        subject: client.id,
        audience: this.#audiences,
        requiredClaims: ['exp', 'jti'],
        clockTolerance: ASSERTION_CLOCK_SKEW_SECONDS,
        currentDate: new Date(nowMs),
      }));
    } catch (err) {
      const detail = err instanceof errors.JOSEError ? err.code : err instanceof Error ? err.name : 'unknown';
      throw this.#failure(`private_key_jwt: client ${client.id}: assertion refused (${detail})`);
    }
    const nowSeconds = Math.floor(nowMs / 1000);
    const exp = payload.exp as number;
    if (exp > nowSeconds + MAX_ASSERTION_LIFETIME_SECONDS + ASSERTION_CLOCK_SKEW_SECONDS) {
      throw this.#failure(`private_key_jwt: client ${client.id}: exp more than ${MAX_ASSERTION_LIFETIME_SECONDS} s ahead`);
    }
    const jti = payload.jti;
    if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) throw this.#failure(`private_key_jwt: client ${client.id}: jti missing or too long`);
    // Single use (RFC 7523 §3 item 7): remembered until the assertion could no longer be accepted anyway.
    const ttlMs = Math.max(1_000, (exp + ASSERTION_CLOCK_SKEW_SECONDS - nowSeconds) * 1_000);
    // The first use creates the counter at 1 (atomic on every store); a replay finds it already there.
    let uses: number;
    try {
      uses = await this.#store.increment(storeKeys.clientAssertion(client.id, secretDigest(jti)), ttlMs);
    } catch (err) {
      throw storeFailure(err, 'credential', 'client assertion jti: ');
    }
    const first = uses === 1;
    if (!first) throw this.#failure(`private_key_jwt: client ${client.id}: assertion replayed (jti seen before)`);
    return { id: client.id, method: 'private_key_jwt' };
  }

  /** invalid_client, 401; `WWW-Authenticate: Basic` when Basic was tried or is what a client could use (RFC 6749 §5.2). */
  #failure(debug: string, basicTried = false): GatewayError {
    const offerBasic = basicTried || this.methods.includes('client_secret_basic');
    return new GatewayError('invalid_client', 'Client authentication failed.', {
      debug,
      ...(offerBasic ? { headers: { 'WWW-Authenticate': 'Basic realm="stsgate", charset="UTF-8"' } } : {}),
    });
  }
}

/**
 * RFC 6749 §2.3.1 / RFC 7617: `Basic base64(urlencoded(id) ":" urlencoded(secret))`. A header that does
 * not decode this way yields an empty id, which no client has.
 */
function parseBasic(authorization: string): { id: string; secret: string } {
  const encoded = authorization.slice('basic '.length).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return { id: '', secret: '' };
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { id: '', secret: '' };
  try {
    const formDecode = (part: string) => decodeURIComponent(part.replace(/\+/g, ' '));
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    return { id: '', secret: '' };
  }
}
