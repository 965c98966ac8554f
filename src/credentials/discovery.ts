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
import { TOKEN_EXCHANGE_GRANT } from '../domain/oauth-identifiers.js';
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
}

/** The discovery document for the keys published at `now`: the signing algorithms follow the live keys (a rotation may add one). */
export function discoveryDocument(options: DiscoveryOptions, keys: SigningKeySet, now = Date.now()): Record<string, unknown> {
  const base = options.publicUrl.replace(/\/+$/, '');
  // RFC 8414 §2: the methods configured clients use; `none` while the endpoint is open.
  const introspectionMethods = options.introspectionMethods ?? [];
  const algorithms = [...new Set(keys.live(now).map((key) => key.alg))];
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

/** The public JWKS at `now`: every key not past its `exp`, public members only. */
export function publishedJwks(keys: SigningKeySet, now = Date.now()): { keys: JWK[] } {
  return keys.jwks(now);
}

/** What discovery lists besides the access token's own claims: targets' claims, session tag names, roles' scopes. */
export function discoveryClaims(config: Pick<GatewayConfig, 'targets' | 'roles'>): Required<Pick<DiscoveryOptions, 'claimsSupported' | 'scopesSupported'>> {
  return {
    claimsSupported: [...new Set([...targetClaimNames(config.targets ?? []), ...config.roles.flatMap((role) => Object.keys(role.sessionTags))])],
    scopesSupported: [...new Set(config.roles.flatMap((role) => role.scopes))],
  };
}
