/** The OAuth identifiers the token endpoint and discovery share (plain constants). */

/** RFC 8693 §2.1 grant type and §3 token type identifiers. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
} as const;

/** RFC 8628 §3.4 grant type of the device flow. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/**
 * Where stsgate's OpenID Provider (src/op/) answers under the public URL: discovery lists these, the http
 * layer routes them to oidc-provider. The token endpoint is the gateway's own (`/oauth2/token`), shared by
 * grant type; the JWKS is the gateway's own too.
 */
export const OP_ROUTES = {
  authorization: '/oauth2/authorize',
  token: '/oauth2/token',
  userinfo: '/oauth2/userinfo',
  end_session: '/oauth2/logout',
  device_authorization: '/oauth2/device_authorization',
  code_verification: '/oauth2/device',
  jwks: '/.well-known/jwks.json',
  // Never reached (the features are off); set so that no default path of oidc-provider is left to collide.
  introspection: '/oauth2/op-introspection',
  revocation: '/oauth2/op-revocation',
  registration: '/oauth2/op-registration',
  pushed_authorization_request: '/oauth2/op-par',
  backchannel_authentication: '/oauth2/op-backchannel',
  challenge: '/oauth2/op-challenge',
  credential: '/oauth2/op-credential',
} as const;

/** How the OP's clients may authenticate at the token endpoint: a public client with none (RFC 6749 §2.1), a confidential one with its secret (§2.3.1). */
export const OP_CLIENT_AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post'] as const;
