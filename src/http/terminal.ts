/**
 * Terminal logins (`stsgate login`, see src/idp/terminal-login.ts): `GET /cli/login` asks the person to
 * confirm the code the command printed, its form's `POST /cli/login` starts a normal browser login that
 * ends at the command's loopback address with a one-time code (or, for `redirect_uri=urn:ietf:wg:oauth:2.0:oob`,
 * `stsgate login --paste-code`, on a page showing the code to paste), `POST /cli/token` trades the code and its
 * PKCE verifier for a terminal session token, `POST /cli/logout` ends that session. The token then works
 * as a bearer token at `GET /v1/credentials` (login.ts).
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { accountLabel } from '../domain/account-label.js';
import type { Identity } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import { terminalConfirmationCode } from '../idp/confirmation-code.js';
import { LoginFailure, parseTerminalRequest, type BrowserLogin } from '../idp/index.js';
import type { NewTerminalSession } from '../idp/terminal-login.js';
import type { LoginRateLimits } from '../limits/rate-limits.js';
import type { AuditLog } from '../observability/audit.js';
import { bearerToken, formTokenCheck, issueFormToken, noStore, pageHeaders, pageOptions, queryParam, startBoundLogin } from './middleware/browser.js';
import { protocol } from './middleware/errors.js';
import { countLoginRequest } from './middleware/rate-limit.js';
import { parseForm, readBody } from './middleware/request.js';
import { continuePage, terminalConfirmPage } from './pages.js';

export interface TerminalRouteDependencies {
  login: BrowserLogin;
  /** Every role the rules grant an identity, in rule order. */
  grantedRoles(identity: Identity): string[];
  audit: AuditLog;
  publicUrl: string;
  maxBodyBytes: number;
  /** Abuse limits on logins; absent: none. */
  loginLimits?: LoginRateLimits;
  pageNotice?: string;
  /** The OpenID Provider, when `clients:` are configured: a `terminal_login` client's device tokens open terminal sessions. */
  openIdProvider?: { terminalIdentity(accessToken: string): Promise<{ identity: Identity; provider: string; clientId: string } | undefined> };
}

/** `/cli/login`, `/cli/token`, `/cli/device/session` and `/cli/logout`. */
export function terminalRoutes(deps: TerminalRouteDependencies): Router {
  const router = new Router();
  const limited = countLoginRequest(deps.loginLimits);
  router.get('/cli/login', protocol('html'), noStore, pageHeaders, limited, confirmTerminalLogin(deps));
  router.post('/cli/login', protocol('html'), noStore, pageHeaders, limited, readBody(deps.maxBodyBytes), parseForm, confirmedHere(deps), startTerminalLogin(deps));
  router.post('/cli/token', protocol('oauth'), noStore, limited, readBody(deps.maxBodyBytes), parseForm, redeemCode(deps));
  router.post('/cli/device/session', protocol('oauth'), noStore, limited, deviceSession(deps));
  router.post('/cli/logout', protocol('oauth'), noStore, endTerminalSession(deps));
  return router;
}

/** The parameters of `/cli/login`: the terminal request, and which provider and role. */
const TERMINAL_PARAMETERS = ['redirect_uri', 'code_challenge', 'code_challenge_method', 'state', 'provider', 'role'];

/** The checked terminal request, provider and role from `/cli/login`'s query or form; unknown names are refused. */
function readTerminalParameters(get: (name: string) => string | undefined, names: Iterable<string>, allowed: readonly string[] = TERMINAL_PARAMETERS) {
  for (const name of names) {
    if (!allowed.includes(name)) {
      throw new LoginFailure('bad_request', `The terminal sign-in link carries an unknown parameter ${JSON.stringify(name.slice(0, 64))}.`);
    }
  }
  const terminal = parseTerminalRequest({
    redirectUri: get('redirect_uri'),
    codeChallenge: get('code_challenge'),
    codeChallengeMethod: get('code_challenge_method'),
    state: get('state'),
  });
  return { terminal, provider: get('provider'), role: get('role') };
}

/**
 * `GET /cli/login?redirect_uri=&code_challenge=&code_challenge_method=S256&state=[&provider=][&role=]`:
 * checks the terminal request (a loopback redirect URI only, RFC 8252 §7.3) and shows the confirmation
 * page: the code the command printed, and a button per provider (the named one, or all). Nothing is
 * stored and nothing redirected: a link alone, whoever made it, starts no login.
 */
function confirmTerminalLogin(deps: TerminalRouteDependencies) {
  return async function showConfirmation(ctx: Context): Promise<void> {
    const request = readTerminalParameters((name) => queryParam(ctx, name), Object.keys(ctx.query));
    let providers = deps.login.providers;
    if (request.provider !== undefined) {
      const named = deps.login.provider(request.provider);
      if (!named) throw new LoginFailure('unknown_provider', 'There is no such identity provider here.', { code: 'NotFound' });
      providers = [named];
    }
    const formToken = issueFormToken(ctx, deps);
    const { terminal, role } = request;
    ctx.type = 'html';
    ctx.body = terminalConfirmPage(
      {
        code: terminalConfirmationCode(terminal.codeChallenge),
        providers: providers.map((p) => ({ id: p.id, displayName: p.displayName })),
        fields: { redirect_uri: terminal.redirectUri, code_challenge: terminal.codeChallenge, code_challenge_method: 'S256', state: terminal.state, ...(role !== undefined ? { role } : {}) },
        formToken,
      },
      pageOptions(deps),
    );
  };
}

/**
 * The confirmation must be the person's click on the gateway's own page: never a cross-site POST (an
 * attacker's page submitting the form for them), and always with the form token of this browser's
 * form cookie (double submit), which another site can neither read nor set.
 */
function confirmedHere(deps: TerminalRouteDependencies) {
  return async function checkConfirmation(ctx: Context, next: Next): Promise<void> {
    const check = formTokenCheck(ctx, deps);
    if (check !== 'ok') {
      throw new GatewayError('AccessDenied', 'A terminal sign-in must be confirmed on this site’s own page. Open the address stsgate login printed again.', {
        debug: check === 'cross-site' ? 'cross-site confirmation' : 'form token missing or not this browser’s',
      });
    }
    await next();
  };
}

/**
 * `POST /cli/login` (the confirmation page's form): starts the browser login for the terminal request and
 * sends the browser on to the chosen provider (`continuePage`).
 */
function startTerminalLogin(deps: TerminalRouteDependencies) {
  return async function redirectToProvider(ctx: Context): Promise<void> {
    const form = ctx.state.form as Map<string, string>;
    const { terminal, provider: providerId, role } = readTerminalParameters((name) => (form.get(name) === '' ? undefined : form.get(name)), form.keys(), [...TERMINAL_PARAMETERS, 'form_token']);
    if (providerId === undefined) throw new LoginFailure('bad_request', 'Choose an identity provider to sign in with.');
    try {
      const location = await startBoundLogin(ctx, deps, providerId, { terminal, ...(role !== undefined ? { role } : {}) });
      ctx.type = 'html';
      ctx.body = continuePage(location, deps.login.provider(providerId)!.displayName, pageOptions(deps));
    } catch (err) {
      if (err instanceof LoginFailure && deps.login.provider(providerId)) deps.audit.session(ctx, 'login_failed', { provider: providerId, reason: err.reason });
      throw err;
    }
  };
}

/**
 * `POST /cli/token` (`grant_type=authorization_code`, `code`, `code_verifier`, `redirect_uri`), a public
 * client as RFC 8252 §8.4 has it: no client secret; the PKCE verifier proves the caller started the login.
 * Answers `{ session_token, token_type: "Bearer", expires_in, account, roles }`.
 */
function redeemCode(deps: TerminalRouteDependencies) {
  return async function issueTerminalSession(ctx: Context): Promise<void> {
    const form = ctx.state.form as Map<string, string>;
    const grantType = form.get('grant_type');
    if (grantType === undefined) throw new GatewayError('invalid_request', 'grant_type is required.');
    if (grantType !== 'authorization_code') throw new GatewayError('unsupported_grant_type', 'Only grant_type=authorization_code is supported here.');
    const code = form.get('code');
    const codeVerifier = form.get('code_verifier');
    const redirectUri = form.get('redirect_uri');
    if (!code || !codeVerifier || !redirectUri) throw new GatewayError('invalid_request', 'code, code_verifier and redirect_uri are required.');
    let created;
    try {
      created = await deps.login.terminal.redeem({ code, codeVerifier, redirectUri });
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'invalid_grant') deps.audit.session(ctx, 'login_failed', { reason: 'terminal_code_refused' });
      throw err;
    }
    answerSession(ctx, deps, created);
  };
}

/** A new terminal session's audit line and answer: `{ session_token, token_type: "Bearer", expires_in, account, provider, roles }`. */
function answerSession(ctx: Context, deps: TerminalRouteDependencies, created: NewTerminalSession): void {
  const { identity, provider } = created.session;
  deps.audit.session(ctx, 'terminal_session', { provider, subject: identity.subject });
  ctx.body = {
    session_token: created.token,
    token_type: 'Bearer',
    expires_in: deps.login.terminal.ttlSeconds,
    account: accountLabel(identity),
    provider,
    roles: deps.grantedRoles(identity),
  };
}

/**
 * `POST /cli/device/session` with `Authorization: Bearer <access token>` (`stsgate login --device`): the
 * access token a `terminal_login` client got by the device authorization grant (RFC 8628), approved in a
 * signed-in browser, becomes a terminal session for that person; the same answer as `/cli/token`. Anything
 * else (no provider, another client's token, an expired one, a browser session ended since) is 401.
 */
function deviceSession(deps: TerminalRouteDependencies) {
  return async function issueDeviceSession(ctx: Context): Promise<void> {
    const token = bearerToken(ctx);
    const found = token === undefined || deps.openIdProvider === undefined ? undefined : await deps.openIdProvider.terminalIdentity(token);
    if (found === undefined) {
      deps.audit.session(ctx, 'login_failed', { reason: 'device_token_refused' });
      throw new GatewayError('invalid_client', 'The access token is not a live device login of a client allowed to open terminal sessions.', { status: 401, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
    }
    answerSession(ctx, deps, await deps.login.terminal.create(found.identity, found.provider));
  };
}

/** `POST /cli/logout` with the session's bearer token: ends it. 204 whether or not it existed (RFC 7009 §2.2 does the same for revocation). */
function endTerminalSession(deps: TerminalRouteDependencies) {
  return async function logout(ctx: Context): Promise<void> {
    const ended = await deps.login.terminal.end(bearerToken(ctx));
    if (ended) deps.audit.session(ctx, 'logout', { provider: ended.provider, subject: ended.identity.subject });
    ctx.status = 204;
  };
}
