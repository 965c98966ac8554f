/**
 * Driving a browser login through a test gateway with fetch: start at `/login/:provider`, sign in at a
 * provider double (or the oidc-provider stand-in), deliver the redirect back to `/callback/:provider`.
 *
 *   const { port, publicUrl } = await reservePublicUrl();
 *   const google = await OidcTestProvider.start({ users, clients: [{ clientId: 'gw', clientSecret: 's', redirectUri: `${publicUrl}/callback/google` }] });
 *   const gateway = await startTestGateway({ issuers: [], port, config: { publicUrl, providers: [googleProvider(google)] }, rules, store: redisStoreConfig() });
 *   const browser = new TestBrowser();
 *   const callback = await loginAs(browser, gateway.url, 'google', google, 'alice');   // 303 to `/`
 *   const creds = await browser.get(`${gateway.url}/v1/credentials?role=deployer`);
 */
import type { ProviderConfig } from '../../src/config/types.js';
import type { TestBrowser } from './browser.js';
import { freePort } from './oauth-double.js';

/** Anything that can play the person at a provider: the oidc-provider stand-in and the OAuth doubles. */
export interface LoginDouble {
  /** From the provider's authorization URL to the URL it redirects back to (not requested). */
  signIn(browser: TestBrowser, authorizationUrl: URL, user: string): Promise<URL>;
  /** The person refuses; the URL back carries an OAuth error. */
  deny(browser: TestBrowser, authorizationUrl: URL, description: string): Promise<URL>;
}

/** A free port and the matching plain-http public URL, for a gateway whose providers must know its redirect URIs first. */
export async function reservePublicUrl(): Promise<{ port: number; publicUrl: string }> {
  const port = await freePort();
  return { port, publicUrl: `http://127.0.0.1:${port}` };
}

/** A provider entry as `GatewayConfig.providers` holds it. */
export function providerConfig(id: string, use: string, settings: Partial<Omit<ProviderConfig, 'id' | 'use'>> = {}): ProviderConfig {
  return { id, use, clientId: `${id}-client`, clientSecret: `${id}-secret`, urls: {}, endpoints: {}, ...settings };
}

/** `GET /login/:provider?...`; returns the provider's authorization URL (the 302 Location). Throws when the gateway did not redirect. */
export async function startLogin(browser: TestBrowser, gatewayUrl: string, providerId: string, query: Record<string, string> = {}): Promise<URL> {
  const url = new URL(`/login/${providerId}`, gatewayUrl);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const response = await browser.get(url);
  const location = response.headers.get('location');
  if (response.status !== 302 || location === null) throw new Error(`/login/${providerId} answered HTTP ${response.status}: ${await response.text()}`);
  return new URL(location);
}

/** A whole login as `user`: start, sign in at the provider, deliver the callback; returns the callback's response (303 on success). */
export async function loginAs(browser: TestBrowser, gatewayUrl: string, providerId: string, double: LoginDouble, user: string, query: Record<string, string> = {}): Promise<Response> {
  const authorizationUrl = await startLogin(browser, gatewayUrl, providerId, query);
  const back = await double.signIn(browser, authorizationUrl, user);
  return browser.get(back);
}
