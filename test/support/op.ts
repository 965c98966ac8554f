/**
 * stsgate's OpenID Provider as the tests use it: clients to configure, openid-client (v6) as the relying
 * party, and the person's part in a TestBrowser (the authorization request, stsgate's sign-in page with an
 * upstream login, the redirect back to the client).
 *
 *   const env = await startLoginEnvironment({ store, gateway: { clients: testClients() } });
 *   const rp = await relyingParty(env.publicUrl, 'webapp', WEBAPP_SECRET);
 *   const browser = new TestBrowser();
 *   const { tokens } = await codeFlow(rp, browser, env, { user: 'alice' });
 */
import * as client from 'openid-client';
import type { OidcClientConfig } from '../../src/config/types.js';
import type { TestBrowser } from './browser.js';
import { loginAs } from './browser-login.js';
import type { LoginEnvironment } from './login-environment.js';

/** Where the test clients' redirects go: never requested (the browser stops at the Location). */
export const REDIRECT_URI = 'http://127.0.0.1:9/callback';
export const WEBAPP_SECRET = 'webapp-secret-0123456789';
export const OTHER_SECRET = 'other-secret-0123456789';

/** A client as `clients:` loads it. */
export function opClient(id: string, settings: Partial<OidcClientConfig> = {}): OidcClientConfig {
  return {
    id,
    name: id,
    type: 'confidential',
    authMethod: 'client_secret_basic',
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: ['http://127.0.0.1:9/signed-out'],
    grantTypes: ['authorization_code', 'refresh_token'],
    scopes: ['openid', 'email', 'profile', 'groups', 'roles', 'offline_access'],
    roles: ['deployer', 'reader', 'admin'],
    claims: ['email', 'email_verified', 'name', 'preferred_username', 'groups', 'roles'],
    terminalLogin: false,
    lifetimes: { accessTokenSeconds: 600, idTokenSeconds: 600 },
    ...settings,
  };
}

/**
 * The clients most tests use: `webapp` (confidential, every scope, every role), `spa` (public: PKCE
 * required, may see `reader` only, no groups), `device` (public, device flow), `other` (confidential, only
 * openid and email, a second client for mix-ups), `stsgate-cli` (the terminal's device login: `stsgate login --device`).
 */
export function testClients(): OidcClientConfig[] {
  return [
    opClient('webapp', { name: 'Web App', secret: WEBAPP_SECRET }),
    opClient('spa', { type: 'public', authMethod: 'none', roles: ['reader'], claims: ['email', 'email_verified', 'name', 'roles'] }),
    opClient('device', { type: 'public', authMethod: 'none', redirectUris: [], grantTypes: ['device_code', 'refresh_token'] }),
    opClient('stsgate-cli', { type: 'public', authMethod: 'none', redirectUris: [], grantTypes: ['device_code'], scopes: ['openid'], terminalLogin: true }),
    opClient('other', { secret: OTHER_SECRET, scopes: ['openid', 'email'], roles: [] }),
  ];
}

/** openid-client's configuration for one client, by discovery at the gateway (loopback http allowed). */
export async function relyingParty(publicUrl: string, clientId: string, secret?: string): Promise<client.Configuration> {
  const auth = secret === undefined ? client.None() : client.ClientSecretBasic(secret);
  return client.discovery(new URL(publicUrl), clientId, secret === undefined ? { token_endpoint_auth_method: 'none' } : undefined, auth, { execute: [client.allowInsecureRequests] });
}

/** An authorization request with PKCE (S256) and state, as openid-client builds it. */
export async function authorizationRequest(rp: client.Configuration, parameters: Record<string, string> = {}): Promise<{ url: URL; verifier: string; state: string; nonce: string }> {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(rp, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid email profile groups roles',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...parameters,
  });
  return { url, verifier, state, nonce };
}

const isCallback = (redirectUri: string) => (next: URL) => `${next.origin}${next.pathname}` === redirectUri;

/**
 * Plays the person from an authorization URL to the redirect back to the client (returned, unrequested):
 * when stsgate asks them to sign in, they sign in upstream as `user` at `provider` (default google).
 * Throws when the flow stops anywhere else; `onSignInPage` sees the sign-in page's HTML.
 */
export async function authorizeInBrowser(
  browser: TestBrowser,
  env: LoginEnvironment,
  url: URL,
  options: { user?: string; provider?: 'google' | 'okta' | 'github'; redirectUri?: string; onSignInPage?: (html: string) => void } = {},
): Promise<URL> {
  const back = isCallback(options.redirectUri ?? REDIRECT_URI);
  const first = await browser.follow(url, { until: back });
  if (first.response === undefined) return first.url;
  if (!first.url.pathname.startsWith('/oauth2/interaction/') || first.response.status !== 200) {
    throw new Error(`the authorization request stopped at ${first.url.pathname} with HTTP ${first.response.status}: ${(await first.response.text()).slice(0, 500)}`);
  }
  options.onSignInPage?.(await first.response.text());
  const provider = options.provider ?? 'google';
  const double = provider === 'github' ? env.github : env[provider];
  const callback = await loginAs(browser, env.gateway.url, provider, double, options.user ?? (provider === 'okta' ? 'carol' : provider === 'github' ? 'octocat' : 'alice'), { return_to: first.url.pathname });
  const location = callback.headers.get('location');
  if (callback.status !== 303 || location === null) throw new Error(`the upstream login ended with HTTP ${callback.status}: ${(await callback.text()).slice(0, 500)}`);
  const rest = await browser.follow(new URL(location, env.gateway.url), { until: back });
  if (rest.response !== undefined) throw new Error(`the flow stopped at ${rest.url.pathname} with HTTP ${rest.response.status}: ${(await rest.response.text()).slice(0, 500)}`);
  return rest.url;
}

/** A whole authorization code flow: request, the person's part, and the code redeemed by openid-client. */
export async function codeFlow(
  rp: client.Configuration,
  browser: TestBrowser,
  env: LoginEnvironment,
  options: { user?: string; provider?: 'google' | 'okta' | 'github'; parameters?: Record<string, string>; onSignInPage?: (html: string) => void } = {},
): Promise<{ tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers; callback: URL }> {
  const request = await authorizationRequest(rp, options.parameters);
  const callback = await authorizeInBrowser(browser, env, request.url, options);
  const tokens = await client.authorizationCodeGrant(rp, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
  return { tokens, callback };
}
