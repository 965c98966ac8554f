/**
 * `stsgate login --gateway URL [--provider P] [--role R]`: a browser login for a terminal, like
 * `aws sso login`, built as OAuth 2.0 for native apps (RFC 8252) with PKCE (RFC 7636):
 *
 *   1. listen on 127.0.0.1:<random port> (RFC 8252 §7.3: the gateway accepts any port there);
 *   2. open (and always print) `<gateway>/cli/login?redirect_uri=http://127.0.0.1:<port>/callback&state=…&code_challenge=…`,
 *      and print the confirmation code the gateway's page will ask the person to compare (derived from the
 *      challenge: a link someone else made, to their own loopback port, shows another code);
 *   3. the person confirms, the browser signs in at the gateway's provider, and the gateway redirects to
 *      the loopback address with a one-time code and our state;
 *   4. redeem the code with the PKCE verifier at `<gateway>/cli/token` for a terminal session token, and keep
 *      it in the config folder (0600) for `stsgate credentials`.
 *
 * The verifier never leaves this process, so a code that something else reads off the redirect is useless.
 *
 * With `--paste-code` (a machine without a browser, over SSH) step 1 is skipped and the redirect URI is
 * `urn:ietf:wg:oauth:2.0:oob`: the person opens the address on any device, and the gateway's page shows
 * the one-time code instead of redirecting; they paste it here, and step 4 is the same.
 *
 * Before any of it, the gateway's `/healthz` must answer: a mistyped `--gateway` or a gateway that is down
 * is said at once, not after minutes of waiting for a browser that can never get there.
 */
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { terminalConfirmationCode } from '../idp/confirmation-code.js';
import { PASTED_CODE_REDIRECT } from '../idp/terminal-login.js';
import type { ConfigFolder, SavedSession } from './config-folder.js';
import { gatewayErrorText } from './gateway-url.js';

export interface TerminalLoginOptions {
  /** The gateway's origin (see `gatewayOrigin`). */
  gateway: string;
  provider?: string;
  role?: string;
  folder: ConfigFolder;
  /** Open the browser (else only print the address). */
  openBrowser: boolean;
  /** Where messages for the person go (stderr: stdout stays clean for scripts). */
  say: (line: string) => void;
  /** How long to wait for the browser (default five minutes). */
  timeoutMs?: number;
  /** No loopback address: the person pastes the code the gateway's page shows (`--paste-code`). */
  pasteCode?: boolean;
  /** Where a pasted code is read from (default: a line of stdin). */
  readLine?: (timeoutMs: number) => Promise<string | undefined>;
  /**
   * The device authorization grant (RFC 8628, `--device --client ID`): sign in on any device at the
   * gateway's OpenID Provider as this `terminal_login` client; the approved grant's access token becomes
   * the terminal session (`POST /cli/device/session`).
   */
  device?: { clientId: string };
}

/** How long the gateway may take to answer `/healthz` before the login gives up. */
const REACHABLE_TIMEOUT_MS = 5_000;

/** What `/cli/token` answers. */
interface TokenResponse {
  session_token: string;
  token_type: string;
  expires_in: number;
  account: string;
  provider: string;
  roles: string[];
}

/** A failed login, with a message for the person (no secret in it). */
export class TerminalLoginError extends Error {}

/** Runs the login; returns the exit code (0 signed in, 1 not). */
export async function terminalLogin(options: TerminalLoginOptions): Promise<number> {
  // RFC 7636 §4.1: 32 random octets, base64url: a 43-character verifier; §4.2: its S256 challenge.
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  // RFC 8252 §8.9 / RFC 6749 §10.12: our own state, so an answer injected into the loopback port is told apart.
  const state = randomBytes(24).toString('base64url');

  try {
    await checkReachable(options.gateway);
  } catch (err) {
    if (err instanceof TerminalLoginError) {
      options.say(`stsgate: ${err.message}`);
      return 1;
    }
    throw err;
  }
  if (options.device !== undefined) return deviceLogin(options, options.device.clientId);
  const receiver = options.pasteCode ? undefined : await LoopbackReceiver.start(state);
  try {
    const redirectUri = receiver === undefined ? PASTED_CODE_REDIRECT : `${receiver.origin}/callback`;
    const login = new URL('/cli/login', options.gateway);
    login.searchParams.set('redirect_uri', redirectUri);
    login.searchParams.set('code_challenge', challenge);
    login.searchParams.set('code_challenge_method', 'S256');
    login.searchParams.set('state', state);
    if (options.provider !== undefined) login.searchParams.set('provider', options.provider);
    if (options.role !== undefined) login.searchParams.set('role', options.role);

    const timeoutMs = options.timeoutMs ?? 5 * 60_000;
    let session: TokenResponse;
    options.say(
      receiver === undefined
        ? `Open this address in a browser on any device and sign in to ${options.gateway}:`
        : `Sign in to ${options.gateway} in your browser${options.openBrowser ? ' (opening it now)' : ''}:`,
    );
    options.say(`  ${login.href}`);
    options.say(`The page asks you to confirm the code ${terminalConfirmationCode(challenge)}: continue only if it shows this one.`);
    if (receiver === undefined) {
      options.say('Then paste the one-time code the page shows here, and press Enter (Ctrl-C to give up):');
      const pasted = (await (options.readLine ?? readStdinLine)(timeoutMs))?.trim();
      if (pasted === undefined) throw new TerminalLoginError(`no code pasted (the input ended, or ${Math.round(timeoutMs / 1000)} seconds passed)`);
      if (!/^[A-Za-z0-9_-]{20,200}$/.test(pasted)) throw new TerminalLoginError('that is not the code the page shows (letters, digits, - and _): run stsgate login again');
      session = await redeem(options.gateway, pasted, verifier, redirectUri);
    } else {
      if (options.openBrowser) openInBrowser(login.href);
      options.say('Waiting for the browser (Ctrl-C to give up)...');
      session = await receiver.receive(timeoutMs, (code) => redeem(options.gateway, code, verifier, redirectUri));
    }
    return await keepSession(options, session);
  } catch (err) {
    if (err instanceof TerminalLoginError) {
      options.say(`stsgate: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    await receiver?.close();
  }
}

/**
 * `stsgate login --device --client ID`: RFC 8628 with openid-client against the gateway's OpenID Provider.
 * The person opens the printed address on any device (already signed in there, or signing in), checks the
 * code and confirms; the access token of the approved grant is traded for a terminal session.
 */
async function deviceLogin(options: TerminalLoginOptions, clientId: string): Promise<number> {
  try {
    const oidc = await import('openid-client');
    const issuer = new URL(options.gateway);
    let config;
    try {
      config = await oidc.discovery(issuer, clientId, undefined, oidc.None(), issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : undefined);
    } catch (err) {
      throw new TerminalLoginError(`the gateway's OpenID Provider could not be reached (is a clients: entry ${JSON.stringify(clientId)} configured?): ${(err as Error).message}`);
    }
    let started;
    try {
      started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    } catch (err) {
      throw new TerminalLoginError(`the gateway refused the device login for client ${clientId}: ${(err as Error).message}`);
    }
    options.say(`Open this address on any device and sign in to ${options.gateway}:`);
    options.say(`  ${started.verification_uri_complete ?? started.verification_uri}`);
    options.say(`Confirm there only if it shows the code ${started.user_code}. Waiting (Ctrl-C to give up)...`);
    let tokens;
    try {
      tokens = await oidc.pollDeviceAuthorizationGrant(config, started, undefined, { signal: AbortSignal.timeout(options.timeoutMs ?? Math.min(started.expires_in * 1000, 15 * 60_000)) });
    } catch (err) {
      throw new TerminalLoginError(`the device login did not finish: ${(err as Error).message}`);
    }
    return await keepSession(options, await deviceSession(options.gateway, tokens.access_token));
  } catch (err) {
    if (err instanceof TerminalLoginError) {
      options.say(`stsgate: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

/** `POST /cli/device/session`: the device grant's access token for a terminal session. */
async function deviceSession(gateway: string, accessToken: string): Promise<TokenResponse> {
  let response: Response;
  try {
    response = await fetch(new URL('/cli/device/session', gateway), { method: 'POST', headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' }, signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    throw new TerminalLoginError(`the gateway could not be reached to finish the sign-in: ${(err as Error).message}`);
  }
  return readSession(response);
}

/** Keeps the new session in the config folder, says who signed in and with which roles; the exit code. */
async function keepSession(options: TerminalLoginOptions, session: TokenResponse): Promise<number> {
  const saved: SavedSession = {
    session_token: session.session_token,
    expires_at: new Date(Date.now() + session.expires_in * 1000).toISOString(),
    account: session.account,
    provider: session.provider,
    roles: session.roles,
  };
  const sessions = await options.folder.readSessions();
  const roleRefused = options.role !== undefined && !session.roles.includes(options.role);
  // A login without --role (the session expired) keeps the default role of the last one, if still granted.
  const role = options.role ?? sessions.gateways[options.gateway]?.role;
  if (role !== undefined && session.roles.includes(role)) saved.role = role;
  sessions.gateways[options.gateway] = saved;
  sessions.default_gateway = options.gateway;
  await options.folder.writeSessions(sessions);
  // Credentials and target tokens cached for an earlier session may be another account's: never hand them out again.
  await options.folder.forgetCachedTokens(options.gateway);

  options.say(`Signed in to ${options.gateway} as ${session.account}. Roles: ${session.roles.join(', ') || '(none)'}.`);
  options.say(`Session saved in ${options.folder.sessionsFile} until ${saved.expires_at}.`);
  if (roleRefused) {
    options.say(`stsgate: this account is not granted the role ${options.role}.`);
    return 1;
  }
  const hint = saved.role ?? session.roles[0];
  if (hint !== undefined) options.say(`Credentials: stsgate credentials --role ${hint}   (or credential_process = stsgate credentials --role ${hint} in ~/.aws/config)`);
  return 0;
}

/** `GET /healthz` must answer 200 within a few seconds, else the gateway is unreachable or not one. */
async function checkReachable(gateway: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(new URL('/healthz', gateway), { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(REACHABLE_TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as Error).name === 'TimeoutError' ? `no answer within ${REACHABLE_TIMEOUT_MS / 1000} seconds` : describeFetchError(err);
    throw new TerminalLoginError(`cannot reach the gateway at ${gateway} (${cause}): check --gateway, the network, and that the gateway runs`);
  }
  await response.body?.cancel();
  if (!response.ok) throw new TerminalLoginError(`${gateway}/healthz answered HTTP ${response.status}: is --gateway an stsgate gateway, and is it healthy?`);
}

/** fetch's TypeError says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, a certificate) is its cause. */
function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

/** One line of stdin, or undefined at its end or after `timeoutMs`. */
function readStdinLine(timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const lines = createInterface({ input: process.stdin, terminal: false });
    let settled = false;
    const done = (line: string | undefined) => {
      if (settled) return;
      // Settled first: closing the interface emits 'close' at once.
      settled = true;
      resolve(line);
      clearTimeout(timer);
      lines.close();
      // Let go of stdin so the process can exit.
      process.stdin.pause();
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    lines.once('line', (line) => done(line));
    lines.once('close', () => done(undefined));
  });
}

/** `POST /cli/token`: the code and the verifier for a session token. */
async function redeem(gateway: string, code: string, verifier: string, redirectUri: string): Promise<TokenResponse> {
  let response: Response;
  try {
    response = await fetch(new URL('/cli/token', gateway), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri }).toString(),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new TerminalLoginError(`the gateway could not be reached to finish the sign-in: ${(err as Error).message}`);
  }
  return readSession(response);
}

/** A session answer (`/cli/token`, `/cli/device/session`), checked; a refusal is a TerminalLoginError. */
async function readSession(response: Response): Promise<TokenResponse> {
  if (!response.ok) throw new TerminalLoginError(`the gateway refused to finish the sign-in: ${await gatewayErrorText(response)}`);
  const body = (await response.json()) as Partial<TokenResponse>;
  if (typeof body.session_token !== 'string' || typeof body.expires_in !== 'number' || body.token_type?.toLowerCase() !== 'bearer') {
    throw new TerminalLoginError('the gateway answered the sign-in with something that is not a session');
  }
  return { session_token: body.session_token, token_type: body.token_type, expires_in: body.expires_in, account: String(body.account ?? ''), provider: String(body.provider ?? ''), roles: Array.isArray(body.roles) ? body.roles.map(String) : [] };
}

/**
 * Opens `url` in the default browser when there is an opener (`open` on macOS, `xdg-open` elsewhere);
 * failing to is fine, the address is printed anyway.
 */
export function openInBrowser(url: string): void {
  const [command, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['rundll32', ['url.dll,FileProtocolHandler', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(command as string, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no opener: the printed address is enough
  }
}

const PAGE_STYLE = 'font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem';

function page(title: string, text: string): string {
  const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)} · stsgate</title></head><body style="${PAGE_STYLE}"><main><h1>${escape(title)}</h1><p>${escape(text)}</p></main></body></html>`;
}

/** The loopback HTTP server that receives the gateway's redirect; it answers the browser only once the code was redeemed, so its page tells the truth. */
class LoopbackReceiver {
  readonly origin: string;
  readonly #server: ReturnType<typeof createServer>;
  readonly #state: string;
  #handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  private constructor(server: ReturnType<typeof createServer>, origin: string, state: string) {
    this.#server = server;
    this.origin = origin;
    this.#state = state;
  }

  static async start(state: string): Promise<LoopbackReceiver> {
    const holder: { receiver?: LoopbackReceiver } = {};
    const server = createServer((req, res) => {
      const handle = holder.receiver === undefined ? undefined : holder.receiver.#handle;
      if (handle) handle(req, res);
      else res.writeHead(503).end();
    });
    // RFC 8252 §8.3: the IP literal, never `localhost` (which may resolve elsewhere or to another interface).
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const receiver = new LoopbackReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, state);
    holder.receiver = receiver;
    return receiver;
  }

  /** Waits for the redirect carrying our state, redeems its code with `redeem`, and answers the browser. */
  receive<T>(timeoutMs: number, redeem: (code: string) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let finished = false;
      const timer = setTimeout(() => finish(() => reject(new TerminalLoginError(`no answer from the browser within ${Math.round(timeoutMs / 1000)} seconds`))), timeoutMs);
      const finish = (settle: () => void) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        settle();
      };
      const answer = (res: ServerResponse, status: number, title: string, text: string) => {
        res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', connection: 'close' });
        res.end(page(title, text));
      };
      this.#handle = (req, res) => {
        const url = new URL(req.url ?? '/', this.origin);
        if (req.method !== 'GET' || url.pathname !== '/callback') return answer(res, 404, 'Not found', 'Nothing here.');
        if (finished) return answer(res, 410, 'Already finished', 'This terminal sign-in has already finished. Return to your terminal.');
        if (url.searchParams.get('state') !== this.#state) {
          // Not the answer to our request (RFC 6749 §10.12): ignore it and keep waiting for the real one.
          return answer(res, 400, 'Not this sign-in', 'This answer does not belong to the sign-in your terminal started.');
        }
        const error = url.searchParams.get('error');
        if (error !== null) {
          const description = (url.searchParams.get('error_description') ?? error).replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 600);
          answer(res, 200, 'Sign-in failed', `${description} Return to your terminal.`);
          return finish(() => reject(new TerminalLoginError(`sign-in failed: ${description}`)));
        }
        const code = url.searchParams.get('code');
        if (code === null || code === '') return answer(res, 400, 'No code', 'The gateway sent no code. Run stsgate login again.');
        finished = true;
        clearTimeout(timer);
        redeem(code).then(
          (result) => {
            answer(res, 200, 'Signed in', 'Your terminal is signed in. You can close this tab.');
            resolve(result);
          },
          (err: unknown) => {
            answer(res, 200, 'Sign-in failed', `${err instanceof Error ? err.message : String(err)}. Return to your terminal.`);
            reject(err instanceof Error ? err : new Error(String(err)));
          },
        );
      };
    });
  }

  /** Stops listening; a browser connection still open after a second is cut (its answer asked it to close). */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
      setTimeout(() => this.#server.closeAllConnections(), 1_000).unref();
    });
  }
}
