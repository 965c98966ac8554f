/**
 * A real OpenID Connect provider on loopback (node-oidc-provider 9), standing in for Google or any OIDC
 * provider through the `issuer:` override. It signs RS256 ID tokens, serves discovery, JWKS, token and
 * userinfo endpoints, supports PKCE, and sends the RFC 9207 `iss` response parameter.
 *
 * Its login "UI" is one page with a button per user at `/interaction/:uid` (a real browser can click it);
 * tests drive the same endpoints with fetch:
 *
 *   const google = await OidcTestProvider.start({
 *     users: { alice: { sub: '1001', email: 'alice@acme.com', email_verified: true, hd: 'acme.com' } },
 *     clients: [{ clientId: 'gw', clientSecret: 's', redirectUri: `${publicUrl}/callback/google` }],
 *   });
 *   provider config: { id: 'google', use: 'google', issuer: google.issuer, clientId: 'gw', clientSecret: 's' }
 *   const callbackUrl = await google.signIn(browser, authorizationUrl, 'alice');   // not yet requested
 *   await google.close();
 *
 * Consent is granted without asking (first-party client), so signing in is one step.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type OidcContext } from 'oidc-provider';
import type { TestBrowser } from './browser.js';
import { listenLoopback, readForm } from './oauth-double.js';

/** A user of the stand-in (keyed by a name for the login page); `sub` is the subject, the rest claims released for the scopes asked for. */
export interface OidcTestUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  hd?: string;
  preferred_username?: string;
  groups?: string[];
  /** Claims only the userinfo endpoint returns (not the ID token), to show they are merged. */
  userinfoOnly?: Record<string, unknown>;
}

export interface OidcTestClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** How the client authenticates at the token endpoint. Default client_secret_basic (stsgate's default for OIDC). */
  authMethod?: 'client_secret_basic' | 'client_secret_post';
}

export interface OidcTestProviderOptions {
  users: Record<string, OidcTestUser>;
  clients: OidcTestClient[];
  /** Listen on this port (default: a free one). */
  port?: number;
  /** Require PKCE for every client (default: as oidc-provider decides, i.e. not for confidential clients). */
  requirePkce?: boolean;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export class OidcTestProvider {
  readonly issuer: string;
  readonly provider: Provider;
  readonly users: Readonly<Record<string, OidcTestUser>>;
  readonly #server: Server;

  private constructor(issuer: string, provider: Provider, server: Server, users: Record<string, OidcTestUser>) {
    this.issuer = issuer;
    this.provider = provider;
    this.#server = server;
    this.users = users;
  }

  /** Starts the provider on 127.0.0.1. */
  static async start(options: OidcTestProviderOptions): Promise<OidcTestProvider> {
    const handler: { current?: (req: IncomingMessage, res: ServerResponse) => void } = {};
    const { server, url } = await listenLoopback((req, res) => handler.current!(req, res), options.port ?? 0);
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const signingKey = { ...(await exportJWK(privateKey)), kid: 'stand-in-1', alg: 'RS256', use: 'sig' };
    const users = options.users;
    const provider = new Provider(url, {
      clients: options.clients.map((c) => ({
        client_id: c.clientId,
        client_secret: c.clientSecret,
        redirect_uris: [c.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: c.authMethod ?? 'client_secret_basic',
      })),
      jwks: { keys: [signingKey] },
      cookies: { keys: ['stand-in-cookie-key-not-secret'] },
      // Put the scopes' claims in the ID token too, as Google does.
      conformIdTokenClaims: false,
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'hd', 'preferred_username', 'groups', 'department'] },
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      ...(options.requirePkce ? { pkce: { required: () => true } } : {}),
      // The account id is the user's `sub` (oidc-provider makes it the ID token's subject).
      async findAccount(_ctx: unknown, id: string) {
        const user = Object.values(users).find((u) => u.sub === id);
        if (!user) return undefined;
        return {
          accountId: id,
          async claims(use: string) {
            const { userinfoOnly, ...claims } = user;
            return use === 'userinfo' ? { ...claims, ...userinfoOnly } : claims;
          },
        };
      },
      // A first-party client: consent is implied, so the grant is made without a consent screen.
      async loadExistingGrant(ctx: OidcContext) {
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
        grant.addOIDCScope('openid email profile');
        await grant.save();
        return grant;
      },
    });
    const callback = provider.callback();
    const stand = new OidcTestProvider(url, provider, server, users);
    handler.current = (req, res) => {
      const path = new URL(req.url ?? '/', url).pathname;
      if (path.startsWith('/interaction/')) void stand.#interaction(req, res).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
      else callback(req, res);
    };
    return stand;
  }

  /** GET: one button per user (and a refusal); POST `user=<id>` logs that user in, `deny=<text>` refuses. */
  async #interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await this.provider.interactionDetails(req, res);
    if (req.method !== 'POST') {
      const buttons = Object.keys(this.users).map((id) => `<button type="submit" name="user" value="${escape(id)}">Sign in as ${escape(id)}</button>`).join('\n');
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>Stand-in provider</title><form method="post" action="/interaction/${escape(details.uid)}">${buttons}</form>`);
      return;
    }
    const form = await readForm(req);
    const denied = form.get('deny');
    if (denied !== null) {
      await this.provider.interactionFinished(req, res, { error: 'access_denied', error_description: denied }, { mergeWithLastSubmission: false });
      return;
    }
    const user = form.get('user') ?? '';
    if (!Object.hasOwn(this.users, user)) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('unknown user');
      return;
    }
    await this.provider.interactionFinished(req, res, { login: { accountId: this.users[user]!.sub } }, { mergeWithLastSubmission: false });
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
    const redirectUri = authorizationUrl.searchParams.get('redirect_uri') ?? '';
    const isBack = (next: URL) => `${next.origin}${next.pathname}` === redirectUri;
    const first = await browser.follow(authorizationUrl, { until: (next) => next.pathname.startsWith('/interaction/') || isBack(next) });
    if (isBack(first.url)) return first.url;
    if (first.response !== undefined) throw new Error(`the provider did not start an interaction (HTTP ${first.response.status}: ${await first.response.text()})`);
    const back = await browser.follow(first.url, { first: { form }, until: isBack });
    if (back.response !== undefined) throw new Error(`the provider did not redirect back (HTTP ${back.response.status}: ${await back.response.text()})`);
    return back.url;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
