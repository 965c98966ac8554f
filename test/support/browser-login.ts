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
import { freePort } from './common.js';

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

/** What a terminal login's confirmation page (`GET /cli/login?…`) shows and would send back. */
export interface TerminalConfirmationPage {
  /** The code it asks the person to compare with the terminal's (`XXXX-XXXX`). */
  code: string;
  /** Its form's hidden fields (the terminal request and the form token). */
  fields: Record<string, string>;
  /** The providers it offers a button for, in order. */
  providers: string[];
}

/** Reads the confirmation page's code, hidden fields and provider buttons out of its HTML. */
export function readTerminalConfirmation(page: string): TerminalConfirmationPage {
  const unescape = (text: string) => text.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&#96;', '`').replaceAll('&amp;', '&');
  const code = /It showed the code <strong><code>([A-Z2-7]{4}-[A-Z2-7]{4})<\/code><\/strong>/.exec(page)?.[1];
  if (code === undefined) throw new Error(`not a confirmation page: ${page.slice(0, 500)}`);
  const fields = Object.fromEntries([...page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [unescape(m[1]!), unescape(m[2]!)]));
  const providers = [...page.matchAll(/<button type="submit" name="provider" value="([^"]+)">/g)].map((m) => unescape(m[1]!));
  return { code, fields, providers };
}

/**
 * Plays the person at a terminal login's confirmation page: GETs the address `stsgate login` printed,
 * checks the code (when given), and presses the button for `provider` (default: the only one) as the
 * page's own form does (a same-origin POST with the form token). Returns the provider's authorization URL
 * (where the answer's refresh leads).
 */
export async function confirmTerminalLogin(browser: TestBrowser, address: string | URL, options: { provider?: string; code?: string } = {}): Promise<URL> {
  const url = new URL(address);
  const response = await browser.get(url);
  const text = await response.text();
  if (response.status !== 200) throw new Error(`/cli/login answered HTTP ${response.status}: ${text.slice(0, 500)}`);
  const page = readTerminalConfirmation(text);
  if (options.code !== undefined && page.code !== options.code) throw new Error(`the page shows ${page.code}, the terminal ${options.code}`);
  const provider = options.provider ?? (page.providers.length === 1 ? page.providers[0]! : undefined);
  if (provider === undefined || !page.providers.includes(provider)) throw new Error(`no button for provider ${String(options.provider)} (${page.providers.join(', ')})`);
  const confirmed = await browser.request(new URL('/cli/login', url), { form: { ...page.fields, provider }, headers: { origin: url.origin, 'sec-fetch-site': 'same-origin' } });
  const answer = await confirmed.text();
  const refresh = /<meta http-equiv="refresh" content="0; url=([^"]+)">/.exec(answer)?.[1];
  if (confirmed.status !== 200 || refresh === undefined) throw new Error(`POST /cli/login answered HTTP ${confirmed.status}: ${answer.slice(0, 500)}`);
  return new URL(refresh.replaceAll('&amp;', '&'));
}
