/**
 * A real OpenID Connect provider on loopback (node-oidc-provider 9) with made-up users: the identity
 * provider of `stsgate demo`, and the stand-in for Google or any OIDC provider in the tests (through the
 * `issuer:` override). It signs RS256 ID tokens with a key generated at start, serves discovery, JWKS,
 * token and userinfo endpoints, requires PKCE when asked, and sends the RFC 9207 `iss` response parameter.
 *
 * Its login "UI" is one page at `/interaction/:uid` with a button per user: whoever opens it can sign in
 * as anyone. That is the point for a demo and a test, and why it must never face a network.
 *
 *   const idp = await DevelopmentIdentityProvider.start({
 *     users: { alice: { sub: '1001', email: 'alice@acme.com', email_verified: true } },
 *     clients: [{ clientId: 'gw', clientSecret: 's', redirectUri: `${publicUrl}/callback/google` }],
 *   });
 *   provider config: { id: 'google', use: 'google', issuer: idp.issuer, clientId: 'gw', clientSecret: 's' }
 *
 * Consent is granted without asking (a first-party client), so signing in is one click.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type OidcContext } from 'oidc-provider';

/** A user (keyed by a short name on the login page); `sub` is the subject, the rest claims released for the scopes asked for. */
export interface DevelopmentUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  hd?: string;
  preferred_username?: string;
  groups?: string[];
  /** Claims only the userinfo endpoint returns (not the ID token), to show they are merged. */
  userinfoOnly?: Record<string, unknown>;
  /** Shown next to the user's button on the login page; never a claim. */
  description?: string;
}

/** An OAuth client registered with the provider (the gateway). */
export interface DevelopmentClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** How the client authenticates at the token endpoint. Default client_secret_basic (stsgate's default for OIDC). */
  authMethod?: 'client_secret_basic' | 'client_secret_post';
}

export interface DevelopmentIdentityProviderOptions {
  users: Record<string, DevelopmentUser>;
  clients: DevelopmentClient[];
  /** Listen on this port of 127.0.0.1 (default: a free one). */
  port?: number;
  /** Require PKCE for every client (default: as oidc-provider decides, i.e. not for confidential clients). */
  requirePkce?: boolean;
  /** A warning shown at the top of the login page (the demo marks itself). */
  notice?: string;
}

/** Claims released per scope (OIDC Core §5.4); the profile scope also carries the claims rules like to use. */
const CLAIMS_BY_SCOPE = { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'hd', 'preferred_username', 'groups', 'department'] };

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** Reads an `application/x-www-form-urlencoded` request body (the login page's form). */
async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 16_384) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** A started development OpenID Connect provider. */
export class DevelopmentIdentityProvider {
  /** The issuer URL (`http://127.0.0.1:<port>`), also the base of every endpoint. */
  readonly issuer: string;
  readonly provider: Provider;
  readonly users: Readonly<Record<string, DevelopmentUser>>;
  readonly #server: Server;
  readonly #notice: string | undefined;

  private constructor(issuer: string, provider: Provider, server: Server, users: Record<string, DevelopmentUser>, notice: string | undefined) {
    this.issuer = issuer;
    this.provider = provider;
    this.#server = server;
    this.users = users;
    this.#notice = notice;
  }

  /** Starts the provider on 127.0.0.1 (loopback only: anyone who reaches the login page can be anyone). */
  static async start(options: DevelopmentIdentityProviderOptions): Promise<DevelopmentIdentityProvider> {
    const handler: { current?: (req: IncomingMessage, res: ServerResponse) => void } = {};
    const server = createServer((req, res) => handler.current!(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const signingKey = { ...(await exportJWK(privateKey)), kid: 'development-1', alg: 'RS256', use: 'sig' };
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
      // Signs the provider's own interaction cookies; new at every start, like the signing key.
      cookies: { keys: [randomBytes(32).toString('base64url')] },
      // Put the scopes' claims in the ID token too, as Google does.
      conformIdTokenClaims: false,
      claims: CLAIMS_BY_SCOPE,
      features: { devInteractions: { enabled: false } },
      // Seconds; given explicitly (oidc-provider asks for it), short because nothing here should outlive a demo.
      ttl: { Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      ...(options.requirePkce ? { pkce: { required: () => true } } : {}),
      // The account id is the user's `sub` (oidc-provider makes it the ID token's subject).
      async findAccount(_ctx: unknown, id: string) {
        const user = Object.values(users).find((u) => u.sub === id);
        if (!user) return undefined;
        return {
          accountId: id,
          async claims(use: string) {
            const { userinfoOnly, description: _description, ...claims } = user;
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
    const idp = new DevelopmentIdentityProvider(url, provider, server, users, options.notice);
    handler.current = (req, res) => {
      const path = new URL(req.url ?? '/', url).pathname;
      if (path.startsWith('/interaction/')) {
        void idp.#interaction(req, res).catch(() => {
          // An expired or unknown interaction: say so plainly (its cookie names the only detail there is).
          if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
          res.end('This sign-in has expired or is unknown. Start again from the gateway.');
        });
      } else {
        callback(req, res);
      }
    };
    return idp;
  }

  /** GET: one button per user; POST `user=<name>` signs that user in, `deny=<text>` refuses (an OAuth error back). */
  async #interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await this.provider.interactionDetails(req, res);
    if (req.method !== 'POST') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(this.#loginPage(details.uid));
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
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('unknown user');
      return;
    }
    await this.provider.interactionFinished(req, res, { login: { accountId: this.users[user]!.sub } }, { mergeWithLastSubmission: false });
  }

  #loginPage(uid: string): string {
    const rows = Object.entries(this.users)
      .map(([name, user]) => {
        const about = [user.email, user.description].filter((v): v is string => v !== undefined).map(escape).join(' — ');
        return `<li><button type="submit" name="user" value="${escape(name)}">Sign in as ${escape(name)}</button>${about ? ` <span>${about}</span>` : ''}</li>`;
      })
      .join('\n');
    const notice = this.#notice ? `<p role="alert" style="background:#fff3cd;border:2px solid #a15c00;padding:0.75rem;font-weight:600">${escape(this.#notice)}</p>` : '';
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Development identity provider</title></head>
<body style="font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem">
<main>
<h1>Development identity provider</h1>
${notice}
<p>Pick a sample user. There is no password: this provider signs in whoever clicks.</p>
<form method="post" action="/interaction/${escape(uid)}"><ul style="list-style:none;padding:0;display:grid;gap:0.75rem">
${rows}
</ul></form>
</main>
</body></html>`;
  }

  /** Stops listening and drops open connections (a browser's keep-alive would hold the port). */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
