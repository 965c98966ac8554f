/**
 * The shared part of the loopback OAuth 2 test doubles (GitHub, Facebook, a misbehaving OIDC provider):
 * a real HTTP server on 127.0.0.1 with an authorization endpoint that shows one button per user (so a
 * real browser can click through) and issues single-use codes bound to redirect_uri and the PKCE
 * challenge, and a token endpoint that checks client, code, redirect_uri and code_verifier (RFC 7636 §4.6).
 *
 * Subclasses add their API routes (`route`) and shape token responses and errors as their provider does.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestBrowser } from './browser.js';

export interface OAuthClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/** A code the double issued, until it is redeemed (and kept after, to spot a replay). */
export interface IssuedCode {
  user: string;
  clientId: string;
  redirectUri: string;
  codeChallenge: string | undefined;
  codeChallengeMethod: string | undefined;
  nonce: string | undefined;
  scope: string;
  redeemed: boolean;
}

/** A small request view for route handlers. */
export interface DoubleRequest {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  form: URLSearchParams;
}

export interface DoubleResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** JSON response helper. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): DoubleResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Listens on a free loopback port (or `port`) and resolves with the server and its base URL. */
export async function listenLoopback(handler: (req: IncomingMessage, res: ServerResponse) => void, port = 0): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export abstract class OAuthCodeDouble<User> {
  /** The base URL, e.g. `http://127.0.0.1:43123` (set by `listen`). */
  url = '';
  readonly users: Map<string, User>;
  readonly clients = new Map<string, OAuthClient>();
  readonly codes = new Map<string, IssuedCode>();
  /** Access token -> user id. */
  readonly tokens = new Map<string, string>();
  /** Requests received, by path. */
  readonly hits = new Map<string, number>();
  /** Paths made to fail until `heal()`: `reset` drops the connection, a number answers with that status. */
  readonly sabotaged = new Map<string, 'reset' | number>();
  #server: Server | undefined;

  protected constructor(users: Record<string, User>) {
    this.users = new Map(Object.entries(users));
  }

  /** Starts listening on 127.0.0.1 (a free port unless `port`). */
  protected async listen(port = 0): Promise<this> {
    const { server, url } = await listenLoopback((req, res) => void this.#handle(req, res), port);
    this.#server = server;
    this.url = url;
    return this;
  }

  /** Makes `path` fail: `reset` drops the connection (unreachable), a status answers it with an empty body. */
  sabotage(path: string, how: 'reset' | number): void {
    this.sabotaged.set(path, how);
  }

  heal(): void {
    this.sabotaged.clear();
  }

  /** Registers a client (its redirect URI is compared exactly, RFC 9700 §4.1.3). */
  addClient(client: OAuthClient): void {
    this.clients.set(client.clientId, client);
  }

  /** Path of the authorization endpoint. */
  protected abstract readonly authorizePath: string;
  /** Path of the token endpoint. */
  protected abstract readonly tokenPath: string;
  /** How this provider answers a token request it refuses. */
  protected abstract tokenError(error: string, description: string): DoubleResponse;
  /** The success answer of the token endpoint for a redeemed code (a fresh access token is minted first). */
  protected abstract tokenResponse(accessToken: string, code: IssuedCode): Promise<DoubleResponse> | DoubleResponse;
  /** API routes; undefined when the path is not one. */
  protected abstract route(request: DoubleRequest): Promise<DoubleResponse | undefined> | DoubleResponse | undefined;

  /**
   * Plays the person at the provider: submits the user choice for `authorizationUrl` and returns the URL
   * the provider sends the browser back to (not requested).
   */
  async signIn(browser: TestBrowser, authorizationUrl: URL, user: string): Promise<URL> {
    const form = Object.fromEntries(authorizationUrl.searchParams);
    const response = await browser.request(new URL(this.authorizePath, this.url), { form: { ...form, user } });
    const location = response.headers.get('location');
    if (response.status !== 302 || location === null) throw new Error(`the double did not redirect back (HTTP ${response.status}: ${await response.text()})`);
    return new URL(location);
  }

  /** The user refuses at the provider: the URL the provider sends the browser back to with an error. */
  async deny(browser: TestBrowser, authorizationUrl: URL, description: string): Promise<URL> {
    const form = Object.fromEntries(authorizationUrl.searchParams);
    const response = await browser.request(new URL(this.authorizePath, this.url), { form: { ...form, deny: description } });
    return new URL(response.headers.get('location')!);
  }

  /** The user id behind a Bearer access token, or undefined. */
  protected userOf(request: DoubleRequest): string | undefined {
    const auth = request.headers.authorization;
    const token = typeof auth === 'string' && /^Bearer /i.test(auth) ? auth.slice(7) : request.url.searchParams.get('access_token');
    return token ? this.tokens.get(token) : undefined;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', this.url);
      this.hits.set(url.pathname, (this.hits.get(url.pathname) ?? 0) + 1);
      const sabotage = this.sabotaged.get(url.pathname);
      if (sabotage === 'reset') {
        req.socket.destroy();
        return;
      }
      if (sabotage !== undefined) {
        res.writeHead(sabotage, { 'content-type': 'text/html' });
        res.end('<html>upstream trouble</html>');
        return;
      }
      const form = req.method === 'POST' ? await readForm(req) : new URLSearchParams();
      const request: DoubleRequest = { method: req.method ?? 'GET', url, headers: req.headers, form };
      let answer: DoubleResponse | undefined;
      if (url.pathname === this.authorizePath) answer = this.#authorize(request);
      else if (url.pathname === this.tokenPath && request.method === 'POST') answer = await this.#token(request);
      else answer = await this.route(request);
      answer ??= json({ message: 'Not Found' }, 404);
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
  }

  /** GET: a page with one button per user; POST (`user` or `deny`): redirect back with a code or an error. */
  #authorize(request: DoubleRequest): DoubleResponse {
    const params = request.method === 'POST' ? request.form : request.url.searchParams;
    const client = this.clients.get(params.get('client_id') ?? '');
    const redirectUri = params.get('redirect_uri') ?? '';
    if (!client || client.redirectUri !== redirectUri) return { status: 400, headers: { 'content-type': 'text/plain' }, body: 'unknown client or redirect_uri' };
    if (request.method !== 'POST') {
      const hidden = [...params].map(([k, v]) => `<input type="hidden" name="${escape(k)}" value="${escape(v)}">`).join('');
      const buttons = [...this.users.keys()].map((id) => `<button type="submit" name="user" value="${escape(id)}">Sign in as ${escape(id)}</button>`).join('\n');
      return { status: 200, headers: { 'content-type': 'text/html' }, body: `<!doctype html><title>Test provider</title><form method="post">${hidden}${buttons}</form>` };
    }
    const back = new URL(redirectUri);
    const state = params.get('state');
    if (state !== null) back.searchParams.set('state', state);
    const denied = params.get('deny');
    if (denied !== null) {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', denied);
      return { status: 302, headers: { location: back.href } };
    }
    const user = params.get('user') ?? '';
    if (!this.users.has(user)) return { status: 400, headers: { 'content-type': 'text/plain' }, body: 'unknown user' };
    const code = randomBytes(16).toString('hex');
    this.codes.set(code, {
      user,
      clientId: client.clientId,
      redirectUri,
      codeChallenge: params.get('code_challenge') ?? undefined,
      codeChallengeMethod: params.get('code_challenge_method') ?? undefined,
      nonce: params.get('nonce') ?? undefined,
      scope: params.get('scope') ?? '',
      redeemed: false,
    });
    back.searchParams.set('code', code);
    return { status: 302, headers: { location: back.href } };
  }

  async #token(request: DoubleRequest): Promise<DoubleResponse> {
    const form = request.form;
    let clientId = form.get('client_id');
    let clientSecret = form.get('client_secret');
    const basic = request.headers.authorization;
    if (typeof basic === 'string' && basic.startsWith('Basic ')) {
      const [id, secret] = Buffer.from(basic.slice(6), 'base64').toString('utf8').split(':').map((p) => decodeURIComponent(p));
      clientId = id ?? null;
      clientSecret = secret ?? null;
    }
    const client = this.clients.get(clientId ?? '');
    if (!client || client.clientSecret !== clientSecret) return this.tokenError('invalid_client', 'client authentication failed');
    const code = this.codes.get(form.get('code') ?? '');
    if (!code || code.clientId !== client.clientId) return this.tokenError('invalid_grant', 'unknown code');
    if (code.redeemed) return this.tokenError('invalid_grant', 'code already used');
    if (code.redirectUri !== form.get('redirect_uri')) return this.tokenError('invalid_grant', 'redirect_uri mismatch');
    // RFC 7636 §4.6; a verifier for a code issued without a challenge is refused too (PKCE downgrade, RFC 9700 §2.1.1).
    const verifier = form.get('code_verifier');
    if (code.codeChallenge !== undefined || verifier !== null) {
      const expected = verifier === null ? undefined : createHash('sha256').update(verifier).digest('base64url');
      if (code.codeChallengeMethod !== 'S256' || expected !== code.codeChallenge) return this.tokenError('invalid_grant', 'PKCE verification failed');
    }
    code.redeemed = true;
    const accessToken = randomBytes(20).toString('hex');
    this.tokens.set(accessToken, code.user);
    return this.tokenResponse(accessToken, code);
  }
}
