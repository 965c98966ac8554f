/**
 * The development OpenID Connect provider (src/demo/development-idp.ts: node-oidc-provider 9 on loopback)
 * as the tests use it: standing in for Google or any OIDC provider through the `issuer:` override, plus
 * the person's part at its login page, played with a TestBrowser.
 *
 *   const google = await OidcTestProvider.start({
 *     users: { alice: { sub: '1001', email: 'alice@acme.com', email_verified: true, hd: 'acme.com' } },
 *     clients: [{ clientId: 'gw', clientSecret: 's', redirectUri: `${publicUrl}/callback/google` }],
 *   });
 *   provider config: { id: 'google', use: 'google', issuer: google.issuer, clientId: 'gw', clientSecret: 's' }
 *   const callbackUrl = await google.signIn(browser, authorizationUrl, 'alice');   // not yet requested
 *   await google.close();
 */
import {
  DevelopmentIdentityProvider,
  type DevelopmentClient,
  type DevelopmentIdentityProviderOptions,
  type DevelopmentUser,
} from '../../src/demo/development-idp.js';
import type { TestBrowser } from './browser.js';

export type OidcTestUser = DevelopmentUser;
export type OidcTestClient = DevelopmentClient;
export type OidcTestProviderOptions = DevelopmentIdentityProviderOptions;

export class OidcTestProvider {
  readonly idp: DevelopmentIdentityProvider;

  private constructor(idp: DevelopmentIdentityProvider) {
    this.idp = idp;
  }

  /** Starts the provider on 127.0.0.1. */
  static async start(options: OidcTestProviderOptions): Promise<OidcTestProvider> {
    return new OidcTestProvider(await DevelopmentIdentityProvider.start(options));
  }

  get issuer(): string {
    return this.idp.issuer;
  }

  /**
   * Plays the person at the provider: from the authorization URL (as the gateway redirected to it)
   * through the login interaction to the redirect back, whose URL is returned unrequested.
   */
  async signIn(browser: TestBrowser, authorizationUrl: URL, user: string): Promise<URL> {
    return this.#submit(browser, authorizationUrl, { user });
  }

  /** The person refuses: the redirect back carries `error=access_denied` and `description`. */
  async deny(browser: TestBrowser, authorizationUrl: URL, description: string): Promise<URL> {
    return this.#submit(browser, authorizationUrl, { deny: description });
  }

  async #submit(browser: TestBrowser, authorizationUrl: URL, form: Record<string, string>): Promise<URL> {
    return submitAtDevelopmentIdp(browser, authorizationUrl, form);
  }

  async close(): Promise<void> {
    await this.idp.close();
  }
}

/**
 * Plays the person at any development identity provider (the demo's too, in another process): from the
 * authorization URL through its login page, posting `form` (`{ user }` or `{ deny }`), to the redirect back,
 * whose URL is returned unrequested.
 */
export async function submitAtDevelopmentIdp(browser: TestBrowser, authorizationUrl: URL, form: Record<string, string>): Promise<URL> {
  const redirectUri = authorizationUrl.searchParams.get('redirect_uri') ?? '';
  const isBack = (next: URL) => `${next.origin}${next.pathname}` === redirectUri;
  const first = await browser.follow(authorizationUrl, { until: (next) => next.pathname.startsWith('/interaction/') || isBack(next) });
  if (isBack(first.url)) return first.url;
  if (first.response !== undefined) throw new Error(`the provider did not start an interaction (HTTP ${first.response.status}: ${await first.response.text()})`);
  const back = await browser.follow(first.url, { first: { form }, until: isBack });
  if (back.response !== undefined) throw new Error(`the provider did not redirect back (HTTP ${back.response.status}: ${await back.response.text()})`);
  return back.url;
}
