/**
 * The OpenID Connect Discovery document (`/.well-known/openid-configuration`) and the JWKS stsgate
 * publishes, built in one place so that `stsgate oidc export` writes exactly what the gateway serves.
 *
 * Relying parties that trust stsgate as an ID-token issuer (AWS IAM OIDC providers, GCP workload identity
 * pools, Azure federated credentials, Kubernetes, Vault) read the members OpenID Connect Discovery 1.0 §3
 * requires of such an issuer, as GitHub Actions' issuer publishes them: the AWS IAM console refuses a
 * provider without `response_types_supported`.
 */
import type { JWK } from 'jose';
import { DEVICE_CODE_GRANT, OP_CLIENT_AUTH_METHODS, OP_ROUTES, TOKEN_EXCHANGE_GRANT } from '../domain/oauth-identifiers.js';
import { ACCEPTABLE_ALGORITHMS } from '../issuers/index.js';
import type { GatewayConfig } from '../config/types.js';
import { targetClaimNames } from '../rules/target-claims.js';
import type { SigningKeySet } from './signing-keys.js';

/** The claims stsgate's access token carries (design.md, "Credential set"). */
export const ACCESS_TOKEN_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'role', 'scope', 'sid', 'idp'] as const;

export interface DiscoveryOptions {
  publicUrl: string;
  /** Client authentication methods `/oauth2/introspect` takes; empty: `none` (open). */
  introspectionMethods?: readonly string[];
  /** Claim names tokens may carry besides the access token's (targets' claims, session tags). */
  claimsSupported?: readonly string[];
  /** Scopes besides `openid` (the roles' scopes). */
  scopesSupported?: readonly string[];
  /** stsgate as an OpenID Provider (`clients:`), when any client is configured. */
  openIdProvider?: OpenIdProviderDiscovery;
}

/** What the OpenID Provider adds to discovery (src/op/), from the configured clients. */
export interface OpenIdProviderDiscovery {
  /** Whether a client may use the device flow (then the device authorization endpoint is listed). */
  deviceFlow: boolean;
  /** The scopes clients may ask for and the claims they release. */
  scopes: readonly string[];
  claims: readonly string[];
}

/** The discovery document for the keys published at `now`: the signing algorithms follow the live keys (a rotation may add one). */
export function discoveryDocument(options: DiscoveryOptions, keys: SigningKeySet, now = Date.now()): Record<string, unknown> {
  const base = options.publicUrl.replace(/\/+$/, '');
  // RFC 8414 §2: the methods configured clients use; `none` while the endpoint is open.
  const introspectionMethods = options.introspectionMethods ?? [];
  const algorithms = [...new Set(keys.live(now).map((key) => key.alg))];
  // One document for both roles of the one issuer: the token issuer (RFC 8693 exchange) and, with
  // `clients:`, the OpenID Provider, whose members are added here (the token endpoint is shared by grant type).
  const op = options.openIdProvider;
  return {
    ...baseDocument(options, base, introspectionMethods, algorithms),
    ...(op === undefined ? {} : openIdProviderMembers(op, base, options)),
  };
}

/** The members every stsgate issuer publishes (the token issuer's document). */
function baseDocument(options: DiscoveryOptions, base: string, introspectionMethods: readonly string[], algorithms: string[]): Record<string, unknown> {
  return {
    issuer: options.publicUrl,
    jwks_uri: `${base}/.well-known/jwks.json`,
    token_endpoint: `${base}/oauth2/token`,
    introspection_endpoint: `${base}/oauth2/introspect`,
    revocation_endpoint: `${base}/oauth2/revoke`,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: algorithms,
    scopes_supported: [...new Set(['openid', ...(options.scopesSupported ?? [])])],
    claims_supported: [...new Set([...ACCESS_TOKEN_CLAIMS, ...(options.claimsSupported ?? [])])],
    grant_types_supported: [TOKEN_EXCHANGE_GRANT],
    token_endpoint_auth_methods_supported: ['none'],
    introspection_endpoint_auth_methods_supported: introspectionMethods.length > 0 ? introspectionMethods : ['none'],
    ...(introspectionMethods.includes('private_key_jwt') ? { introspection_endpoint_auth_signing_alg_values_supported: [...ACCEPTABLE_ALGORITHMS] } : {}),
    revocation_endpoint_auth_methods_supported: ['none'],
    access_token_signing_alg_values_supported: algorithms,
  };
}

/**
 * The OpenID Provider's members (OpenID Connect Discovery 1.0 §3, RFC 8414, RFC 8628 §4, RFC 9207), merged
 * into the token issuer's: the lists the two share (response and grant types, scopes, claims, client
 * authentication methods) are unions.
 */
function openIdProviderMembers(op: OpenIdProviderDiscovery, base: string, options: DiscoveryOptions): Record<string, unknown> {
  return {
    authorization_endpoint: `${base}${OP_ROUTES.authorization}`,
    userinfo_endpoint: `${base}${OP_ROUTES.userinfo}`,
    end_session_endpoint: `${base}${OP_ROUTES.end_session}`,
    ...(op.deviceFlow ? { device_authorization_endpoint: `${base}${OP_ROUTES.device_authorization}` } : {}),
    response_types_supported: ['code', 'id_token'],
    // oidc-provider's response modes (fragment too: RFC 6749 allows it for a code response, if a client asks).
    response_modes_supported: ['form_post', 'fragment', 'query'],
    grant_types_supported: ['authorization_code', 'refresh_token', ...(op.deviceFlow ? [DEVICE_CODE_GRANT] : []), TOKEN_EXCHANGE_GRANT],
    code_challenge_methods_supported: ['S256'],
    // What the OP takes (each client uses the one it is configured with): `none` is a public client's.
    token_endpoint_auth_methods_supported: [...OP_CLIENT_AUTH_METHODS],
    scopes_supported: [...new Set(['openid', ...op.scopes, ...(options.scopesSupported ?? [])])],
    claims_supported: [...new Set([...ACCESS_TOKEN_CLAIMS, 'auth_time', 'nonce', 'acr', 'at_hash', ...op.claims, ...(options.claimsSupported ?? [])])],
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    authorization_response_iss_parameter_supported: true,
  };
}

/** The public JWKS at `now`: every key not past its `exp`, public members only. */
export function publishedJwks(keys: SigningKeySet, now = Date.now()): { keys: JWK[] } {
  return keys.jwks(now);
}

/** What discovery lists besides the access token's own claims: targets' claims, session tag names, roles' scopes. */
export function discoveryClaims(config: Pick<GatewayConfig, 'targets' | 'roles' | 'clients'>): Pick<DiscoveryOptions, 'claimsSupported' | 'scopesSupported' | 'openIdProvider'> & Required<Pick<DiscoveryOptions, 'claimsSupported' | 'scopesSupported'>> {
  const clients = config.clients ?? [];
  return {
    claimsSupported: [...new Set([...targetClaimNames(config.targets ?? []), ...config.roles.flatMap((role) => Object.keys(role.sessionTags))])],
    scopesSupported: [...new Set(config.roles.flatMap((role) => role.scopes))],
    ...(clients.length === 0
      ? {}
      : {
          openIdProvider: {
            deviceFlow: clients.some((client) => client.grantTypes.includes('device_code')),
            scopes: [...new Set(clients.flatMap((client) => client.scopes))],
            claims: ['sub', ...new Set(clients.flatMap((client) => client.claims))],
          },
        }),
  };
}
