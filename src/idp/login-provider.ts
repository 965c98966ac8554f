/**
 * One configured browser-login provider: its definition, its adapter and an openid-client Configuration
 * (from discovery for oidc kinds, from the definition's endpoints for oauth2 kinds). It builds the
 * authorization request and completes the code exchange; the BrowserLogin engine keeps the transaction.
 */
import {
  AuthorizationResponseError,
  ClientError,
  ClientSecretBasic,
  ClientSecretPost,
  Configuration,
  ResponseBodyError,
  allowInsecureRequests,
  authorizationCodeGrant,
  buildAuthorizationUrl,
  calculatePKCECodeChallenge,
  customFetch,
  discovery,
  enableNonRepudiationChecks,
  type ClientAuth,
  type ServerMetadata,
} from 'openid-client';
import type { ProviderConfig } from '../config/types.js';
import type { Identity } from '../domain/types.js';
import type { ProviderAdapter } from './adapter.js';
import { OIDC_ENDPOINTS, expandTemplate, type ProviderDefinition } from '../config/provider-definitions.js';
import { LoginFailure, providerFailed, providerUnreachable } from './login-failure.js';
import { buildClaims } from './profile-claims.js';
import { ProviderApi } from './provider-api.js';

/** Discovery metadata is re-read this often, so a provider's rotated endpoints are picked up. */
const METADATA_TTL_MS = 60 * 60 * 1000;
/** Seconds openid-client waits for any one provider request. */
const REQUEST_TIMEOUT_SECONDS = 10;

/** How far a provider's clock may run ahead of ours (ID token `iat`). */
const MAX_CLOCK_SKEW_SECONDS = 60;

export interface LoginProviderOptions {
  /** `<public_url>/callback/<id>`: registered with the provider, sent in both requests (RFC 6749 §4.1.3). */
  redirectUri: string;
  allowInsecureHttp: boolean;
}

/** What the engine keeps between the two legs of one login. */
export interface LoginChecks {
  state: string;
  nonce: string;
  codeVerifier: string;
  /** A `password` provider's form accepted a username and password: see {@link VerifiedPassword}. */
  verified?: VerifiedPassword;
}

/**
 * The identity a `password` provider's form made, waiting in the login transaction for the callback, which
 * must bring the one-time code whose SHA-256 this is.
 */
export interface VerifiedPassword {
  identity: Identity;
  codeHash: string;
}

/**
 * What the browser-login engine needs of any provider, whatever its protocol: where to send the browser
 * for a transaction (the provider's authorization endpoint, the IdP's SSO service, or stsgate's own
 * sign-in form), and how to turn the answer that came back into an identity.
 */
export interface BrowserLoginProvider {
  readonly id: string;
  readonly displayName: string;
  /**
   * `oauth` (OAuth 2 / OpenID Connect, this file), `saml` (saml-provider.ts) or `password` (a username and
   * password typed into stsgate's own form and checked by `checkPassword`: `use: ldap`, ldap/provider.ts).
   */
  readonly protocol: 'oauth' | 'saml' | 'password';
  /**
   * The `/callback/<id>` query parameter that carries the answer (`code`; SAML: the parked response's
   * handle; a password provider: the one-time code its form's check handed out).
   */
  readonly answerParameter: string;
  /** Where to send the browser to sign in, for this transaction's checks. */
  authorizationUrl(checks: LoginChecks): Promise<URL>;
  /** The identity the answer carries, once every check of the protocol passed. */
  complete(answer: URLSearchParams, checks: LoginChecks): Promise<Identity>;
  /** `password` providers only: checks a username and password; the identity they belong to. */
  checkPassword?(username: string, password: string): Promise<Identity>;
}

/** A configured provider, ready to send people to and to take them back from. */
export class LoginProvider implements BrowserLoginProvider {
  readonly protocol = 'oauth' as const;
  readonly answerParameter = 'code';
  readonly id: string;
  readonly displayName: string;
  readonly definition: ProviderDefinition;
  readonly redirectUri: string;
  readonly #config: ProviderConfig;
  readonly #adapter: ProviderAdapter;
  readonly #allowInsecureHttp: boolean;
  readonly #endpoints: Readonly<Record<string, string>>;
  readonly #scopes: string[];
  #configuration: { value: Promise<Configuration>; expiresAt: number } | undefined;

  constructor(config: ProviderConfig, definition: ProviderDefinition, adapter: ProviderAdapter, options: LoginProviderOptions) {
    this.id = config.id;
    this.displayName = config.displayName ?? definition.display_name;
    this.definition = definition;
    this.redirectUri = options.redirectUri;
    this.#config = config;
    this.#adapter = adapter;
    this.#allowInsecureHttp = options.allowInsecureHttp;
    const variables = { ...definition.constants, ...definition.urls, ...config.urls };
    const endpoints: Record<string, string> = {};
    for (const [name, template] of Object.entries(definition.endpoints)) endpoints[name] = expandTemplate(template, variables);
    this.#endpoints = { ...endpoints, ...config.endpoints };
    const scopes = config.scopes ?? definition.scopes;
    // OIDC Core §3.1.2.1: without `openid` there is no ID token, and an oidc kind verifies one.
    this.#scopes = definition.kind === 'oidc' && !scopes.includes('openid') ? ['openid', ...scopes] : [...scopes];
  }

  /** Whether the provider returns an ID token (and so a nonce is sent and checked). */
  get isOpenIdConnect(): boolean {
    return this.definition.kind === 'oidc';
  }

  /**
   * The authorization request (RFC 6749 §4.1.1) with state, PKCE S256 (RFC 7636 §4.3; RFC 9700 §2.1.1
   * asks for it from every client) and, for OpenID Connect, a nonce (OIDC Core §3.1.2.1).
   */
  async authorizationUrl(checks: LoginChecks): Promise<URL> {
    const configuration = await this.#configurationOnce();
    const parameters: Record<string, string> = {
      response_type: 'code',
      redirect_uri: this.redirectUri,
      scope: this.#scopes.join(' '),
      state: checks.state,
      code_challenge: await calculatePKCECodeChallenge(checks.codeVerifier),
      code_challenge_method: 'S256',
    };
    if (this.isOpenIdConnect) parameters.nonce = checks.nonce;
    return buildAuthorizationUrl(configuration, parameters);
  }

  /**
   * Completes the login from the callback's query parameters: openid-client checks state and the `iss`
   * response parameter (RFC 9207), redeems the code with the PKCE verifier, and for OpenID Connect
   * verifies the ID token (signature against the provider's keys, iss, aud, exp, nonce); then the
   * adapter reads the profile and the definition's claims make the identity.
   */
  async complete(parameters: URLSearchParams, checks: LoginChecks): Promise<Identity> {
    const configuration = await this.#configurationOnce();
    const callbackUrl = new URL(this.redirectUri);
    callbackUrl.search = parameters.toString();
    let profile: Record<string, unknown>;
    try {
      const tokens = await authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        ...(this.isOpenIdConnect ? { expectedNonce: checks.nonce, idTokenExpected: true } : {}),
      });
      const idTokenClaims = this.isOpenIdConnect ? ({ ...tokens.claims() } as Record<string, unknown>) : undefined;
      // OIDC Core §3.1.3.7 (10): iat may be used to reject tokens issued too far from now; one from the future is refused.
      if (idTokenClaims && typeof idTokenClaims.iat === 'number' && idTokenClaims.iat > Date.now() / 1000 + MAX_CLOCK_SKEW_SECONDS) {
        throw new LoginFailure('id_token_invalid', `The sign-in answer from ${this.displayName} did not pass verification (its ID token is not valid for this gateway). Start again.`, { debug: 'ID token iat is in the future' });
      }
      profile = await this.#adapter.readProfile({
        definition: this.definition,
        tokens,
        idTokenClaims,
        configuration,
        endpoints: this.#endpoints,
        clientSecret: this.#config.clientSecret,
        api: new ProviderApi({ displayName: this.displayName, allowInsecureHttp: this.#allowInsecureHttp }),
      });
    } catch (err) {
      throw classifyProviderError(err, this.displayName);
    }
    const claims = buildClaims(this.definition.claims, profile);
    const subject = claims.sub;
    if (typeof subject !== 'string' || subject === '') {
      throw new LoginFailure('profile_invalid', `${this.displayName} did not say which account signed in.`, { status: 502, code: 'IDPCommunicationError', debug: 'no sub claim' });
    }
    return { source: this.id, subject, claims };
  }

  /** The Configuration, discovered at most once per METADATA_TTL_MS; a failed discovery is not kept. */
  #configurationOnce(): Promise<Configuration> {
    const now = Date.now();
    if (this.#configuration === undefined || this.#configuration.expiresAt <= now) {
      const value = this.#buildConfiguration();
      this.#configuration = { value, expiresAt: now + METADATA_TTL_MS };
      value.catch(() => {
        if (this.#configuration?.value === value) this.#configuration = undefined;
      });
    }
    return this.#configuration.value;
  }

  async #buildConfiguration(): Promise<Configuration> {
    const secret = this.#config.clientSecret;
    let metadata: ServerMetadata;
    let auth: ClientAuth;
    if (this.isOpenIdConnect) {
      const issuer = this.#config.issuer ?? this.definition.issuer!;
      let discovered: Configuration;
      try {
        discovered = await discovery(new URL(issuer), this.#config.clientId, undefined, undefined, {
          execute: this.#allowInsecureHttp ? [allowInsecureRequests] : [],
          timeout: REQUEST_TIMEOUT_SECONDS,
        });
      } catch (err) {
        throw classifyProviderError(err, this.displayName, 'discovery');
      }
      metadata = plainMetadata(discovered.serverMetadata());
      for (const [name, field] of Object.entries(OIDC_ENDPOINTS)) {
        const override = this.#config.endpoints[name];
        if (override !== undefined) (metadata as Record<string, unknown>)[field] = override;
      }
      // RFC 6749 §2.3.1: servers must support HTTP Basic for client secrets, so it is the default when advertised.
      const methods = metadata.token_endpoint_auth_methods_supported;
      auth = methods === undefined || methods.includes('client_secret_basic') ? ClientSecretBasic(secret) : ClientSecretPost(secret);
    } else {
      const authorization = this.#endpoints.authorization!;
      metadata = {
        // oauth2 kinds publish no issuer; the authorization server's origin stands in (openid-client needs one).
        issuer: new URL(authorization).origin,
        authorization_endpoint: authorization,
        token_endpoint: this.#endpoints.token!,
      };
      // GitHub and Facebook document the client secret as a form parameter.
      auth = ClientSecretPost(secret);
    }
    const configuration = new Configuration(metadata, this.#config.clientId, { client_secret: secret }, auth);
    if (this.#allowInsecureHttp) allowInsecureRequests(configuration);
    // openid-client skips the ID token signature on TLS-protected token responses (OIDC Core §3.1.3.7
    // allows it); stsgate verifies it anyway, so a tampered or forged ID token never becomes an identity.
    if (this.isOpenIdConnect) enableNonRepudiationChecks(configuration);
    configuration.timeout = REQUEST_TIMEOUT_SECONDS;
    const adjust = this.#adapter.adjustTokenResponse;
    if (adjust) {
      const tokenEndpoint = metadata.token_endpoint;
      configuration[customFetch] = async (url, options) => {
        const response = await fetch(url, options);
        return url === tokenEndpoint ? adjust(response) : response;
      };
    }
    return configuration;
  }
}

/** A copy of discovered metadata without openid-client's helper functions. */
function plainMetadata(metadata: Readonly<ServerMetadata>): ServerMetadata {
  return Object.fromEntries(Object.entries(metadata).filter(([, value]) => typeof value !== 'function')) as ServerMetadata;
}

/** openid-client's codes for an ID token that failed verification. */
const ID_TOKEN_CODES = new Set(['OAUTH_JWT_CLAIM_COMPARISON_FAILED', 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED', 'OAUTH_KEY_SELECTION_FAILED']);
/** openid-client's codes for a provider answer that is not a usable protocol message. */
const UNUSABLE_ANSWER_CODES = new Set([
  'OAUTH_RESPONSE_IS_NOT_JSON',
  'OAUTH_PARSE_ERROR',
  'OAUTH_HTTP_REQUEST_FORBIDDEN',
  'OAUTH_REQUEST_PROTOCOL_FORBIDDEN',
  'OAUTH_INVALID_SERVER_METADATA',
  'OAUTH_MISSING_SERVER_METADATA',
  'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED',
]);

/** Turns what openid-client (or fetch) threw into the LoginFailure the person and the audit log see. */
export function classifyProviderError(err: unknown, provider: string, phase: 'discovery' | 'callback' = 'callback'): Error {
  if (err instanceof LoginFailure) return err;
  const detail = describeError(err);
  if (err instanceof ResponseBodyError) {
    if (err.status >= 500) return providerFailed(provider, `token endpoint: HTTP ${err.status} ${err.error}`, err);
    // RFC 6749 §5.2 invalid_grant: a wrong PKCE verifier (RFC 7636 §4.6), a used or foreign code.
    return new LoginFailure('code_rejected', `${provider} did not accept this sign-in (the authorization code was refused). Start again.`, { debug: `token endpoint: ${err.error}`, cause: err });
  }
  if (err instanceof AuthorizationResponseError) {
    return new LoginFailure('provider_error', `${provider} refused the sign-in.`, { debug: err.error, cause: err });
  }
  if (err instanceof ClientError) {
    const code = err.code ?? '';
    if (code === 'OAUTH_TIMEOUT' || code === 'OAUTH_ABORT') return providerUnreachable(provider, `${phase}: ${detail}`, err);
    if (phase === 'discovery') return providerFailed(provider, `discovery: ${detail}`, err);
    if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM') {
      const status = err.cause instanceof Response ? err.cause.status : 500;
      if (status < 500) return new LoginFailure('code_rejected', `${provider} did not accept this sign-in (the authorization code was refused). Start again.`, { debug: `token endpoint: HTTP ${status}`, cause: err });
      return providerFailed(provider, `HTTP ${status}: ${detail}`, err);
    }
    if (UNUSABLE_ANSWER_CODES.has(code)) return providerFailed(provider, detail, err);
    if (ID_TOKEN_CODES.has(code) || (code === 'OAUTH_INVALID_RESPONSE' && /jwt|id_token|signature/i.test(detail))) {
      return new LoginFailure('id_token_invalid', `The sign-in answer from ${provider} did not pass verification (its ID token is not valid for this gateway). Start again.`, { debug: detail, cause: err });
    }
    return new LoginFailure('response_invalid', `The sign-in answer from ${provider} did not pass verification. Start again.`, { debug: detail, cause: err });
  }
  if (err instanceof TypeError && !/^ERR_INVALID/.test(String((err as { code?: unknown }).code ?? ''))) {
    return providerUnreachable(provider, `${phase}: ${detail}`, err);
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** The error and its causes' messages, for the private log (never a token: openid-client's messages carry none). */
function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 4; depth++) {
    parts.push(`${(current as { code?: string }).code ?? current.name}: ${current.message}`);
    current = current.cause;
  }
  return parts.join(' <- ') || String(err);
}
