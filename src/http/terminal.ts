/**
 * Terminal logins (`stsgate login`, see src/idp/terminal-login.ts): `GET /cli/login` starts a normal
 * browser login that ends at the command's loopback address with a one-time code, `POST /cli/token`
 * trades the code and its PKCE verifier for a terminal session token, `POST /cli/logout` ends that session.
 * The token then works as a bearer token at `GET /v1/credentials` (login.ts).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Identity } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import { LoginFailure, parseTerminalRequest, type BrowserLogin } from '../idp/index.js';
import type { AuditLog } from '../observability/audit.js';
import { protocol } from './middleware/errors.js';
import { parseForm, readBody } from './middleware/request.js';
import { noStore, pageHeaders, pageOptions, queryParam } from './login.js';
import { accountLabel, signInPage } from './pages.js';

export interface TerminalRouteDependencies {
  login: BrowserLogin;
  /** Every role the rules grant an identity, in rule order. */
  grantedRoles(identity: Identity): string[];
  audit: AuditLog;
  maxBodyBytes: number;
  pageNotice?: string;
}

/** `/cli/login`, `/cli/token` and `/cli/logout`. */
export function terminalRoutes(deps: TerminalRouteDependencies): Router {
  const router = new Router();
  router.get('/cli/login', protocol('html'), noStore, pageHeaders, startTerminalLogin(deps));
  router.post('/cli/token', protocol('oauth'), noStore, readBody(deps.maxBodyBytes), parseForm, redeemCode(deps));
  router.post('/cli/logout', protocol('oauth'), noStore, endTerminalSession(deps));
  return router;
}

/**
 * `GET /cli/login?redirect_uri=&code_challenge=&code_challenge_method=S256&state=[&provider=][&role=]`:
 * checks the terminal request (a loopback redirect URI only, RFC 8252 §7.3), then 302 to the provider
 * (named, or the only one), or a page to pick one. Nothing is redirected when a check fails.
 */
function startTerminalLogin(deps: TerminalRouteDependencies) {
  return async function redirectToProvider(ctx: Context): Promise<void> {
    for (const name of Object.keys(ctx.query)) {
      if (!['redirect_uri', 'code_challenge', 'code_challenge_method', 'state', 'provider', 'role'].includes(name)) {
        throw new LoginFailure('bad_request', `The terminal sign-in link carries an unknown parameter ${JSON.stringify(name.slice(0, 64))}.`);
      }
    }
    const get = (name: string) => queryParam(ctx, name);
    const terminal = parseTerminalRequest({
      redirectUri: get('redirect_uri'),
      codeChallenge: get('code_challenge'),
      codeChallengeMethod: get('code_challenge_method'),
      state: get('state'),
    });
    const role = get('role');
    let providerId = get('provider');
    const providers = deps.login.providers;
    if (providerId === undefined && providers.length === 1) providerId = providers[0]!.id;
    if (providerId === undefined) {
      // Several providers: a page of links that repeat this request with the provider chosen.
      ctx.type = 'html';
      ctx.body = signInPage(
        providers.map((p) => {
          const query = new URLSearchParams(ctx.querystring);
          query.set('provider', p.id);
          return { id: p.id, displayName: p.displayName, href: `/cli/login?${query.toString()}` };
        }),
        { ...pageOptions(deps), terminal: true },
      );
      return;
    }
    try {
      const location = await deps.login.start(providerId, { terminal, ...(role !== undefined ? { role } : {}) });
      ctx.redirect(location.href);
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
  };
}

/** `POST /cli/logout` with the session's bearer token: ends it. 204 whether or not it existed (RFC 7009 §2.2 does the same for revocation). */
function endTerminalSession(deps: TerminalRouteDependencies) {
  return async function logout(ctx: Context): Promise<void> {
    const token = /^Bearer ([A-Za-z0-9_-]{43})$/i.exec(ctx.get('authorization'))?.[1];
    const ended = await deps.login.terminal.end(token);
    if (ended) deps.audit.session(ctx, 'logout', { provider: ended.provider, subject: ended.identity.subject });
    ctx.status = 204;
  };
}
