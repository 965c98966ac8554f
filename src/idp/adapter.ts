import type { Configuration, TokenEndpointResponse } from 'openid-client';
import type { ProviderDefinition } from '../config/provider-definitions.js';
import type { ProviderApi } from './provider-api.js';

/** What an adapter gets once the authorization code has been exchanged (and, for oidc kinds, the ID token verified). */
export interface ProfileRequest {
  definition: ProviderDefinition;
  tokens: TokenEndpointResponse;
  /** oidc kinds: the verified ID token's claims (openid-client checked signature, iss, aud, exp, nonce). */
  idTokenClaims: Record<string, unknown> | undefined;
  configuration: Configuration;
  /** Every endpoint of the definition, templates filled and overrides applied. */
  endpoints: Readonly<Record<string, string>>;
  clientSecret: string;
  api: ProviderApi;
}

/**
 * The code a provider kind needs where its protocol differs from plain OAuth 2 / OpenID Connect: how to
 * read what the definition's claims are built from. Everything else (PKCE, state, nonce, the code
 * exchange, ID token verification) is the engine's, through openid-client.
 */
export interface ProviderAdapter {
  /** Reads the profile the definition's `claims:` paths point into (e.g. `{ user, email, orgs, teams }`). */
  readProfile(request: ProfileRequest): Promise<Record<string, unknown>>;
  /** Adjusts a token endpoint response before openid-client reads it, for providers that bend RFC 6749 §5.2. */
  adjustTokenResponse?(response: Response): Promise<Response>;
}
