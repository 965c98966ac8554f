/**
 * A small web application on loopback that signs people in with stsgate as its OpenID Provider, through
 * openid-client (v6): what Grafana or Argo CD do, small enough to read. `/` starts a login (or shows who is
 * signed in), `/callback` redeems the code, `/logout` is RP-initiated logout, `/signed-out` is where that
 * ends. The page shows the ID token's name, email, groups and roles as text a browser test can read.
 *
 *   const app = await RelyingPartyApp.start();                       // reserve its URL first
 *   ... configure the client with app.redirectUri / app.postLogoutRedirectUri, start the gateway ...
 *   await app.connect(publicUrl, 'webapp', secret);
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as client from 'openid-client';

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export class RelyingPartyApp {
  readonly url: string;
  readonly #server: Server;
  #config: client.Configuration | undefined;
  /** Pending logins by state (one browser at a time is enough for a test). */
  readonly #pending = new Map<string, { verifier: string; nonce: string }>();
  /** The signed-in person's ID token and claims, by this app's own cookie. */
  readonly #sessions = new Map<string, { idToken: string; claims: Record<string, unknown> }>();

  private constructor(url: string, server: Server) {
    this.url = url;
    this.#server = server;
  }

  static async start(): Promise<RelyingPartyApp> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const app = new RelyingPartyApp(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, server);
    server.on('request', (req, res) => {
      app.#handle(new URL(req.url ?? '/', app.url), req.headers.cookie ?? '').then(
        ({ status, headers, body }) => {
          res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(`relying party error: ${err instanceof Error ? `${err.message} ${JSON.stringify(err)}` : String(err)}`);
        },
      );
    });
    return app;
  }

  get redirectUri(): string {
    return `${this.url}/callback`;
  }

  get postLogoutRedirectUri(): string {
    return `${this.url}/signed-out`;
  }

  /** Discovers the provider (loopback http allowed). */
  async connect(issuer: string, clientId: string, secret: string): Promise<void> {
    this.#config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });
  }

  async #handle(url: URL, cookies: string): Promise<{ status: number; headers?: Record<string, string>; body: string }> {
    const config = this.#config!;
    const session = this.#sessions.get(/(?:^|; )rp=([^;]+)/.exec(cookies)?.[1] ?? '');
    if (url.pathname === '/') {
      if (session) {
        const { claims } = session;
        const list = (value: unknown) => (Array.isArray(value) ? value.map(String).join(', ') : '');
        return {
          status: 200,
          body: `<!doctype html><title>Test app</title><h1>Hello ${escape(String(claims.name ?? claims.sub))}</h1>
<p id="sub">${escape(String(claims.sub))}</p><p id="email">${escape(String(claims.email ?? ''))}</p>
<p id="roles">${escape(list(claims.roles))}</p><p id="groups">${escape(list(claims.groups))}</p><p><a href="/logout">Log out</a></p>`,
        };
      }
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      this.#pending.set(state, { verifier, nonce });
      const location = client.buildAuthorizationUrl(config, { redirect_uri: this.redirectUri, scope: 'openid email profile groups roles', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce });
      return { status: 302, headers: { location: location.href }, body: '' };
    }
    if (url.pathname === '/callback') {
      const pending = this.#pending.get(url.searchParams.get('state') ?? '');
      if (!pending) return { status: 400, body: 'unknown state' };
      this.#pending.delete(url.searchParams.get('state')!);
      const tokens = await client.authorizationCodeGrant(config, url, { pkceCodeVerifier: pending.verifier, expectedState: url.searchParams.get('state')!, expectedNonce: pending.nonce });
      const id = client.randomState();
      this.#sessions.set(id, { idToken: tokens.id_token!, claims: tokens.claims()! as Record<string, unknown> });
      return { status: 302, headers: { location: '/', 'set-cookie': `rp=${id}; Path=/; HttpOnly; SameSite=Lax` }, body: '' };
    }
    if (url.pathname === '/logout' && session) {
      const location = client.buildEndSessionUrl(config, { id_token_hint: session.idToken, post_logout_redirect_uri: this.postLogoutRedirectUri });
      return { status: 302, headers: { location: location.href, 'set-cookie': 'rp=; Path=/; Max-Age=0' }, body: '' };
    }
    if (url.pathname === '/signed-out') return { status: 200, body: '<!doctype html><title>Test app</title><h1>Signed out of the test app</h1>' };
    return { status: 404, body: 'not found' };
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
