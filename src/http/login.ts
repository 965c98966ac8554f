import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { brokeredCredentialsJson, brokeredPageText, sessionCredentialsJson, targetTokenJson } from '../credentials/credential-formats.js';
import type { TokenExchange } from '../credentials/exchange.js';
import type { TargetTokens } from '../credentials/target-tokens.js';
import { accountLabel } from '../domain/account-label.js';
import type { RoleCatalog } from '../domain/role-catalog.js';
import type { Identity } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import { LOGIN_TRANSACTION_TTL_MS, LoginFailure, SamlLoginProvider, type BrowserLogin, type LoginFlow, type LoginOutcome, type TerminalRequest } from '../idp/index.js';
import { equalSecretText } from '../util/secret-text.js';
import type { LoginRateLimits, PasswordAttemptLimits } from '../limits/rate-limits.js';
import type { AuditLog } from '../observability/audit.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { bearerToken, formTokenCheck, issueFormToken, noStore, pageHeaders, pageOptions, queryParam, requestSite, setCookie, startBoundLogin } from './middleware/browser.js';
import { protocol } from './middleware/errors.js';
import { countLoginRequest, countPasswordAttempt } from './middleware/rate-limit.js';
import { parseForm, readBody } from './middleware/request.js';
import { ASSETS, PAGE_CSP, accountPage, passwordPage, signInPage, terminalCodePage, type PageOptions, type PageRole } from './pages.js';

export interface LoginRouteDependencies {
  login: BrowserLogin;
  /** Finishes logins at the callback: rules, the no-role refusal, browser session or terminal code. */
  loginFlow: LoginFlow;
  exchange: TokenExchange;
  /** Every role the rules grant an identity, in rule order. */
  grantedRoles(identity: Identity): string[];
  /** The configured roles: the page shows each granted role's description, ARN and longest session. */
  roles: Pick<RoleCatalog, 'byName' | 'resolve'>;
  audit: AuditLog;
  metrics: GatewayMetrics;
  publicUrl: string;
  maxBodyBytes: number;
  /** Abuse limits on logins; absent: none. */
  loginLimits?: LoginRateLimits;
  /** Limits on username-and-password attempts at a directory provider's form; absent: none. */
  passwordLimits?: PasswordAttemptLimits;
  /** A warning on top of every page (`stsgate demo`). */
  pageNotice?: string;
  /** The configured targets; absent: none. */
  targets?: Pick<TargetTokens, 'byName'>;
}

/** The action named in AccessDenied for browser-session credentials. */
const BROWSER_ACTION = 'stsgate:GetCredentials';

/**
 * The browser side: the page at `/`, `/login/:provider`, `/callback/:provider`, `/logout`, and
 * `/v1/credentials` for the session cookie.
 */
export function loginRoutes(deps: LoginRouteDependencies): Router {
  const router = new Router();
  const page = [protocol('html'), noStore, pageHeaders] as const;
  router.get('/', ...page, startPage(deps));
  router.get('/assets/:file', asset);
  router.get('/login/:provider', ...page, countLoginRequest(deps.loginLimits), startLogin(deps));
  router.get('/login/:provider/password', ...page, countLoginRequest(deps.loginLimits), showPasswordForm(deps));
  router.post('/login/:provider/password', ...page, countLoginRequest(deps.loginLimits), readBody(deps.maxBodyBytes), parseForm, formFromHere(deps), countPasswordAttempt(deps.passwordLimits), checkPassword(deps));
  router.get('/callback/:provider', ...page, countLoginRequest(deps.loginLimits), completeLogin(deps));
  // SAML providers: the SP metadata to register at the IdP, and the AssertionConsumerService (HTTP-POST).
  router.get('/saml/:provider/metadata', protocol('html'), samlMetadata(deps));
  router.post('/saml/:provider/acs', ...page, countLoginRequest(deps.loginLimits), readBody(deps.maxBodyBytes), parseForm, samlAssertionConsumer(deps));
  router.post('/logout', ...page, readBody(deps.maxBodyBytes), parseForm, sameSiteOnly(deps), logout(deps));
  router.get('/v1/credentials', protocol('json'), noStore, browserCredentials(deps));
  router.get('/v1/targets', protocol('json'), noStore, grantedTargets(deps));
  router.get('/v1/targets/:name/token', protocol('json'), noStore, browserTargetToken(deps));
  return router;
}

async function asset(ctx: Context): Promise<void> {
  const file = ctx.params.file!;
  if (!Object.hasOwn(ASSETS, file)) return;
  const { type, body } = ASSETS[file]!;
  ctx.type = type;
  ctx.set('Cache-Control', 'public, max-age=300');
  ctx.body = body;
}

function sessionCookie(ctx: Context, deps: LoginRouteDependencies): string | undefined {
  return ctx.cookies.get(deps.login.cookieName) ?? undefined;
}

function setSessionCookie(ctx: Context, deps: LoginRouteDependencies, value: string, maxAgeSeconds: number): void {
  setCookie(ctx, deps.publicUrl, deps.login.cookieName, value, maxAgeSeconds);
}

function clearSessionCookie(ctx: Context, deps: LoginRouteDependencies): void {
  setSessionCookie(ctx, deps, '', 0);
}

/** `GET /login/:provider?return_to=&role=`: 302 to the provider (the transaction is stored by the engine). */
function startLogin(deps: LoginRouteDependencies) {
  return async function redirectToProvider(ctx: Context): Promise<void> {
    const providerId = ctx.params.provider!;
    try {
      const returnTo = queryParam(ctx, 'return_to');
      const role = queryParam(ctx, 'role');
      const location = await startBoundLogin(ctx, deps, providerId, { ...(returnTo !== undefined ? { returnTo } : {}), ...(role !== undefined ? { role } : {}) });
      ctx.redirect(location.href);
    } catch (err) {
      if (err instanceof LoginFailure && deps.login.provider(providerId)) deps.audit.session(ctx, 'login_failed', { provider: providerId, reason: err.reason });
      throw err;
    }
  };
}

/**
 * `GET /login/:provider/password?state=`: a directory provider's sign-in form, for a login started here
 * (`/login/:provider` or a terminal's confirmation) in this browser.
 */
function showPasswordForm(deps: LoginRouteDependencies) {
  return async function renderPasswordForm(ctx: Context): Promise<void> {
    const providerId = ctx.params.provider!;
    const provider = deps.login.requirePasswordProvider(providerId);
    const transaction = await deps.login.pendingPasswordLogin(providerId, queryParam(ctx, 'state'), (name) => ctx.cookies.get(name) ?? undefined);
    ctx.type = 'html';
    ctx.body = passwordPage({ providerId, providerName: provider.displayName, state: transaction.state, formToken: issueFormToken(ctx, deps) }, pageOptions(deps));
  };
}

/** The sign-in form must be posted from the gateway's own page in this browser (login CSRF): its form token, never cross-site. */
function formFromHere(deps: LoginRouteDependencies) {
  return async function checkFormToken(ctx: Context, next: Next): Promise<void> {
    const check = formTokenCheck(ctx, deps);
    if (check !== 'ok') {
      throw new GatewayError('AccessDenied', 'A sign-in form must be sent from this site’s own page. Start the sign-in again.', { debug: check === 'cross-site' ? 'cross-site sign-in form' : 'form token missing or not this browser’s' });
    }
    await next();
  };
}

/**
 * `POST /login/:provider/password` (`state`, `username`, `password`, `form_token`): the directory checks
 * the username and password; on success a 303 to `/callback/:provider` with a one-time code finishes the
 * login as every provider's does. A wrong password and an unknown user give the same form again, with
 * the same words (401); a directory that is down or slow gives the error page (503).
 */
function checkPassword(deps: LoginRouteDependencies) {
  return async function verifyPassword(ctx: Context): Promise<void> {
    const providerId = ctx.params.provider!;
    const provider = deps.login.requirePasswordProvider(providerId);
    const form = ctx.state.form as Map<string, string>;
    const username = form.get('username') ?? '';
    const state = form.get('state');
    const started = performance.now();
    let callback: string;
    try {
      callback = await deps.login.checkPassword(providerId, { state, username, password: form.get('password') ?? '' }, (name) => ctx.cookies.get(name) ?? undefined);
    } catch (err) {
      if (!(err instanceof LoginFailure)) throw err;
      deps.audit.session(ctx, 'login_failed', { provider: providerId, reason: err.reason });
      deps.metrics.loginSeconds.observe({ provider: providerId, outcome: 'failure' }, (performance.now() - started) / 1000);
      if (err.reason !== 'credentials_rejected' || state === undefined) throw err;
      // The form again, to try once more within the same login.
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = passwordPage({ providerId, providerName: provider.displayName, state, formToken: issueFormToken(ctx, deps), username: username.slice(0, 256), error: err.message }, pageOptions(deps));
      return;
    }
    ctx.status = 303;
    ctx.redirect(callback);
  };
}

/**
 * `GET /callback/:provider`: the login flow finishes the login (idp/login-flow.ts); this renders its
 * outcome: a new browser session's cookie, or a 303 to a terminal's loopback address, or the error page.
 */
function completeLogin(deps: LoginRouteDependencies) {
  return async function finishLogin(ctx: Context): Promise<void> {
    const providerId = ctx.params.provider!;
    deps.login.requireProvider(providerId);
    const started = performance.now();
    const parameters = new URLSearchParams(ctx.querystring);
    // The login cookie has done its job once the callback arrives, whatever happens next.
    const loginCookie = deps.login.loginCookieName(parameters.get('state'));
    if (loginCookie !== undefined && ctx.cookies.get(loginCookie) !== undefined) setCookie(ctx, deps.publicUrl, loginCookie, '', 0);
    const outcome = await deps.loginFlow.finish({
      providerId,
      parameters,
      cookie: (name) => ctx.cookies.get(name) ?? undefined,
      previousSessionCookie: sessionCookie(ctx, deps),
      requestId: String(ctx.state.requestId),
    });
    renderOutcome(ctx, deps, providerId, outcome, started);
  };
}

/** Renders how a login ended: the session cookie, the audit line, the login metric, then a 303 or the error page. */
function renderOutcome(ctx: Context, deps: LoginRouteDependencies, providerId: string, outcome: LoginOutcome, started: number): void {
  const succeeded = outcome.kind === 'browser_session' || outcome.kind === 'terminal_code' || outcome.kind === 'terminal_code_shown';
  const seconds = (performance.now() - started) / 1000;
  switch (outcome.kind) {
    case 'browser_session':
      setSessionCookie(ctx, deps, outcome.cookieValue, deps.login.browser.sessionTtlSeconds);
      deps.audit.session(ctx, 'login', { provider: providerId, subject: outcome.identity.subject });
      break;
    case 'terminal_code':
    case 'terminal_code_shown':
      // A terminal login: no cookie here; the command redeems the code for its own session.
      deps.audit.session(ctx, 'terminal_login', { provider: providerId, subject: outcome.identity.subject });
      break;
    default:
      deps.audit.session(ctx, 'login_failed', { provider: providerId, ...(outcome.identity ? { subject: outcome.identity.subject } : {}), reason: outcome.reason, ...(outcome.refusal ? { refusal: outcome.refusal } : {}) });
  }
  deps.metrics.loginSeconds.observe({ provider: providerId, outcome: succeeded ? 'success' : 'failure' }, seconds);
  if (outcome.kind === 'failed') throw outcome.error;
  if (outcome.kind === 'terminal_code_shown') {
    // Shown, never put in a URL: it would stay in the history and in logs on the way.
    ctx.type = 'html';
    ctx.body = terminalCodePage({ code: outcome.code, account: accountLabel(outcome.identity) }, pageOptions(deps));
    return;
  }
  // RFC 9110 §15.4.4: 303, so the browser GETs the next page whatever method brought it here.
  ctx.status = 303;
  ctx.redirect(outcome.redirectTo);
}

/** The SAML provider a `/saml/:provider/...` path names; a 404 for any other. */
function samlProvider(ctx: Context, deps: LoginRouteDependencies): SamlLoginProvider {
  const provider = deps.login.requireProvider(ctx.params.provider!);
  if (!(provider instanceof SamlLoginProvider)) throw new LoginFailure('unknown_provider', 'There is no such SAML identity provider here.', { code: 'NotFound' });
  return provider;
}

/** `GET /saml/:provider/metadata`: the SP metadata (entityID, ACS URL, signing certificate) to register at the IdP. */
function samlMetadata(deps: LoginRouteDependencies) {
  return async function serviceProviderMetadata(ctx: Context): Promise<void> {
    const provider = samlProvider(ctx, deps);
    ctx.type = 'application/samlmetadata+xml';
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = provider.serviceProviderMetadata();
  };
}

/**
 * `POST /saml/:provider/acs` (SAML 2.0 bindings §3.5, HTTP-POST): an answer to a login started here (its
 * RelayState is the transaction's state) is parked and the browser sent on, by a 303 GET that carries the
 * login cookie, to `/callback/:provider`, where it is matched and verified like any callback. Any other
 * answer is IdP-initiated: verified here when the provider allows that, else refused.
 */
function samlAssertionConsumer(deps: LoginRouteDependencies) {
  return async function consumeAssertion(ctx: Context): Promise<void> {
    const provider = samlProvider(ctx, deps);
    const started = performance.now();
    const form = ctx.state.form as Map<string, string>;
    const samlResponse = form.get('SAMLResponse');
    const relayState = form.get('RelayState') ?? '';
    if (samlResponse === undefined || samlResponse === '') {
      deps.audit.session(ctx, 'login_failed', { provider: provider.id, reason: 'bad_request' });
      throw new LoginFailure('bad_request', 'The sign-in answer carries no SAMLResponse.');
    }
    if (deps.login.loginCookieName(relayState) !== undefined) {
      ctx.status = 303;
      ctx.redirect(await deps.login.parkSamlResponse(provider.id, samlResponse, relayState));
      return;
    }
    const outcome = await deps.loginFlow.finishUnsolicited({ providerId: provider.id, samlResponse, previousSessionCookie: sessionCookie(ctx, deps), requestId: String(ctx.state.requestId) });
    renderOutcome(ctx, deps, provider.id, outcome, started);
  };
}

/**
 * Logout is a state change, so it must come from the gateway's own pages (cross-site request forgery):
 * a same-origin request (`requestSite`), or one that says nothing about its site and carries the form
 * token of the session being ended.
 */
function sameSiteOnly(deps: LoginRouteDependencies) {
  return async function checkSameSite(ctx: Context, next: Next): Promise<void> {
    const site = requestSite(ctx, deps.publicUrl);
    let allowed = site === 'same';
    if (site === 'unknown') {
      const token = (ctx.state.form as Map<string, string>).get('csrf_token');
      const session = token === undefined ? undefined : await deps.login.session(sessionCookie(ctx, deps));
      allowed = session !== undefined && equalSecretText(token!, session.csrfToken);
    }
    if (!allowed) throw new GatewayError('AccessDenied', 'Signing out must be done from this site’s own page.');
    await next();
  };
}

/** Where a logout sends the browser: the start page, saying what signing out did not end. */
const SIGNED_OUT_PAGE = '/?signed_out=1';

/** `POST /logout`: deletes the session record and clears the cookie, then 303 to the start page's signed-out notice. */
function logout(deps: LoginRouteDependencies) {
  return async function endSession(ctx: Context): Promise<void> {
    const ended = await deps.login.endSession(sessionCookie(ctx, deps));
    clearSessionCookie(ctx, deps);
    if (ended) deps.audit.session(ctx, 'logout', { provider: ended.provider, subject: ended.identity.subject });
    ctx.status = 303;
    ctx.redirect(SIGNED_OUT_PAGE);
  };
}

/** A role as the page lists it. */
function pageRole(role: { name: string; arn: string; maxSessionSeconds: number; description?: string }): PageRole {
  return { name: role.name, arn: role.arn, maxSessionSeconds: role.maxSessionSeconds, ...(role.description !== undefined ? { description: role.description } : {}) };
}

/** AWS RoleSessionName from the identity ([\w+=,.@-]{2,64}): the email, login or subject, with anything else replaced. */
function sessionNameFor(identity: Identity): string {
  const preferred = ['email', 'login', 'preferred_username', 'username'].map((k) => identity.claims[k]).find((v): v is string => typeof v === 'string' && v !== '');
  const name = (preferred ?? `${identity.source}-${identity.subject}`).replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
  return name.length >= 2 ? name : `${name}--`.slice(0, 2);
}

function parseDuration(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,6}$/.test(value)) throw new GatewayError('ValidationError', 'duration_seconds must be an integer number of seconds.');
  return Number(value);
}

async function issueFor(ctx: Context, deps: LoginRouteDependencies, session: { identity: Identity }, request: { role?: string; durationSeconds?: number; scopes?: string[] }) {
  return deps.audit.decision(ctx, 'BrowserCredentials', () =>
    deps.exchange.issueForIdentity(
      session.identity,
      {
        sessionName: sessionNameFor(session.identity),
        ...(request.role !== undefined ? { role: request.role } : {}),
        ...(request.durationSeconds !== undefined ? { durationSeconds: request.durationSeconds } : {}),
        ...(request.scopes !== undefined ? { scopes: request.scopes } : {}),
      },
      BROWSER_ACTION,
    ),
  );
}

/**
 * The session `/v1/credentials` is for: a terminal session's bearer token (RFC 6750 §2.1) when there is an
 * Authorization header (then never the cookie: one request, one credential), else the browser session cookie.
 */
async function credentialsSession(ctx: Context, deps: LoginRouteDependencies): Promise<{ identity: Identity; expiresAt: number }> {
  const authorization = ctx.get('authorization');
  if (authorization !== '') {
    const session = await deps.login.terminal.session(bearerToken(ctx));
    // RFC 6750 §3.1: invalid_token, with a challenge naming the scheme.
    if (!session) {
      throw new GatewayError('MissingAuthenticationToken', 'The terminal session is unknown or has expired: run stsgate login again.', {
        status: 401,
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      });
    }
    return session;
  }
  // The cookie is ambient: SameSite=Lax keeps it off other sites' subresource requests, and Fetch Metadata
  // and Origin refuse the rest (another origin of the same site, an opaque origin). No page but the
  // gateway's own ever gets a credential set with this browser's session, even one it could not read.
  const site = ctx.get('sec-fetch-site');
  const origin = ctx.get('origin');
  if ((site !== '' && site !== 'same-origin' && site !== 'none') || (origin !== '' && origin !== new URL(deps.publicUrl).origin)) {
    throw new GatewayError('AccessDenied', 'Credentials for a browser session are given to this site and to direct requests only, never to another site’s page.');
  }
  const session = await deps.login.session(sessionCookie(ctx, deps));
  if (!session) throw new GatewayError('MissingAuthenticationToken', 'No browser session: sign in first (or again: sessions expire).', { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } });
  return session;
}

/**
 * `GET /v1/credentials?role=&duration_seconds=&scope=` with the session cookie or a terminal session's
 * bearer token: AWS `credential_process` JSON (Version 1) plus `access_token`. The rules decide, exactly
 * as for a web-identity token.
 */
function browserCredentials(deps: LoginRouteDependencies) {
  return async function credentials(ctx: Context): Promise<void> {
    // Not even embeddable by another origin's page (no-cors loads, Spectre-style reads): Fetch §3.7 CORP.
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    const session = await credentialsSession(ctx, deps);
    for (const name of Object.keys(ctx.query)) {
      if (!['role', 'duration_seconds', 'scope', 'target'].includes(name)) throw new GatewayError('ValidationError', `Unknown parameter ${JSON.stringify(name.slice(0, 64))}.`);
      if (Array.isArray(ctx.query[name])) throw new GatewayError('ValidationError', `The parameter ${name} was given more than once.`);
    }
    const target = ctx.query.target as string | undefined;
    if (target !== undefined) {
      // A broker target: the cloud's own credentials, in the same credential_process shape.
      if (ctx.query.role !== undefined) throw new GatewayError('ValidationError', 'target takes no role: the target\'s configuration sets it.');
      const durationSeconds = parseDuration(ctx.query.duration_seconds as string | undefined);
      const scope = ctx.query.scope as string | undefined;
      const result = await deps.audit.targetDecision(
        ctx,
        target,
        deps.targets?.byName(target),
        () => deps.exchange.brokerForIdentity(session.identity, target, { notAfter: Math.floor(session.expiresAt / 1000), ...(durationSeconds !== undefined ? { durationSeconds } : {}), ...(scope !== undefined ? { scopes: scope.split(' ').filter((s) => s !== '') } : {}) }),
        'BrokeredCredentials',
      );
      ctx.body = brokeredCredentialsJson(result.credentials, result.target.name, result.role.name);
      return;
    }
    const role = ctx.query.role as string | undefined;
    const scope = ctx.query.scope as string | undefined;
    const durationSeconds = parseDuration(ctx.query.duration_seconds as string | undefined);
    const result = await issueFor(ctx, deps, session, {
      ...(role ? { role } : {}),
      ...(durationSeconds !== undefined ? { durationSeconds } : {}),
      ...(scope !== undefined ? { scopes: scope.split(' ').filter((s) => s !== '') } : {}),
    });
    ctx.body = sessionCredentialsJson(result.credentials, result.role);
  };
}

/** `GET /v1/targets`: the targets this session's identity may get a token for (the rules and the roles' `targets`). */
function grantedTargets(deps: LoginRouteDependencies) {
  return async function listTargets(ctx: Context): Promise<void> {
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    const session = await credentialsSession(ctx, deps);
    ctx.body = { targets: deps.exchange.grantedTargets(session.identity).map(({ target }) => ({ name: target.name, kind: target.kind, audience: target.audience })) };
  };
}

/**
 * `GET /v1/targets/:name/token` with the session cookie or a terminal session's bearer token: a token for
 * one target, through the same rules as every exchange, ending no later than the session.
 */
function browserTargetToken(deps: LoginRouteDependencies) {
  return async function targetToken(ctx: Context): Promise<void> {
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    const session = await credentialsSession(ctx, deps);
    if (Object.keys(ctx.query).length > 0) throw new GatewayError('ValidationError', 'This endpoint takes no parameters: the target\'s configuration sets the token.');
    const name = ctx.params.name!;
    const minted = await deps.audit.targetDecision(ctx, name, deps.targets?.byName(name), () =>
      deps.exchange.targetForIdentity(session.identity, name, Math.floor(session.expiresAt / 1000)),
    );
    ctx.body = targetTokenJson(minted);
  };
}

/**
 * Whether a GET came from one of the gateway's own pages (the role picker's form): Fetch Metadata says
 * `same-origin` (W3C Fetch Metadata §2; any cross-site hop in a redirect chain makes it `cross-site`), and
 * no Origin names another origin. A request without Fetch Metadata (browsers before 2023, tools) is not,
 * failing closed: the pages' no-referrer policy withholds the Referer that could have told.
 */
function fromOwnPage(ctx: Context, publicUrl: string): boolean {
  return ctx.get('sec-fetch-site') === 'same-origin' && requestSite(ctx, publicUrl) === 'same';
}

/**
 * `GET /`: sign-in buttons; or, signed in, the identity, its roles and targets, and (with `?role=`)
 * credentials for one role or (with `?target=`) a token for one target.
 */
function startPage(deps: LoginRouteDependencies) {
  return async function renderStartPage(ctx: Context): Promise<void> {
    const cookie = sessionCookie(ctx, deps);
    const session = await deps.login.session(cookie);
    const role = queryParam(ctx, 'role');
    ctx.type = 'html';
    if (!session) {
      // A stale cookie is dropped so the browser stops sending it.
      if (cookie !== undefined) clearSessionCookie(ctx, deps);
      const suffix = role !== undefined && /^[A-Za-z0-9+=,.@_-]{1,64}$/.test(role) ? `?role=${encodeURIComponent(role)}` : '';
      ctx.body = signInPage(
        deps.login.providers.map((p) => ({ id: p.id, displayName: p.displayName, href: `/login/${encodeURIComponent(p.id)}${suffix}` })),
        pageOptions(deps),
        { signedOut: queryParam(ctx, 'signed_out') !== undefined },
      );
      return;
    }
    const identity = session.identity;
    const provider = deps.login.provider(session.provider);
    const roles = deps.grantedRoles(identity).flatMap((name) => {
      const role = deps.roles.byName(name);
      return role ? [pageRole(role)] : [];
    });
    const targets = deps.exchange.grantedTargets(identity).map(({ target }) => ({ name: target.name, kind: target.kind, audience: target.audience }));
    const view = {
      identity: { source: identity.source, subject: identity.subject, claims: identity.claims, providerName: provider?.displayName ?? session.provider },
      csrfToken: session.csrfToken,
      gatewayUrl: deps.publicUrl,
      roles,
      targets,
    };
    const target = queryParam(ctx, 'target');
    if (role === undefined && target !== undefined) {
      // As for credentials: a token only when asked for on this page.
      if (!fromOwnPage(ctx, deps.publicUrl)) {
        ctx.body = accountPage({ ...view, ...(targets.some((t) => t.name === target) ? { pendingTarget: target } : {}) }, pageOptions(deps));
        return;
      }
      const known = deps.targets?.byName(target);
      const notAfter = Math.floor(session.expiresAt / 1000);
      if (known?.broker !== undefined) {
        // A broker target: the cloud's own credentials, as export lines.
        const result = await deps.audit.targetDecision(ctx, target, known, () => deps.exchange.brokerForIdentity(identity, target, { notAfter }), 'BrokeredCredentials');
        ctx.body = accountPage({ ...view, targetToken: { target: result.target.name, token: brokeredPageText(result.credentials), expiresAt: result.expiresAt, brokered: result.credentials.cloud } }, pageOptions(deps));
        return;
      }
      const minted = await deps.audit.targetDecision(ctx, target, known, () => deps.exchange.targetForIdentity(identity, target, notAfter));
      ctx.body = accountPage({ ...view, targetToken: { target: minted.target.name, token: minted.token, expiresAt: minted.expiresAt } }, pageOptions(deps));
      return;
    }
    if (role === undefined) {
      ctx.body = accountPage(view, pageOptions(deps));
      return;
    }
    // A role by name or ARN, as the exchange takes it; an unknown one is simply not among the granted.
    const wanted = deps.roles.resolve(role)?.name;
    const granted = roles.some((r) => r.name === wanted);
    if (!fromOwnPage(ctx, deps.publicUrl)) {
      // A link, redirect or embed from elsewhere (or a client that does not say) gets the page with the
      // role chosen in the picker: one press on this page shows the credentials. Nothing is issued, so
      // another site can neither spend the subject's rate limit nor make credentials nobody asked for.
      // A role the account lacks is said so in words (the list above already shows what it has).
      ctx.body = accountPage({ ...view, ...(granted ? { pendingRole: wanted } : { deniedRole: role }) }, pageOptions(deps));
      return;
    }
    let result;
    try {
      result = await issueFor(ctx, deps, session, { role });
    } catch (err) {
      // The exchange decides (and audits and counts) as for any request; its refusal of a role this
      // account lacks is the page, in words, with the roles it has, instead of the bare error page.
      if (granted || !(err instanceof GatewayError && err.code === 'AccessDenied')) throw err;
      ctx.status = 403;
      ctx.body = accountPage({ ...view, deniedRole: role }, pageOptions(deps));
      return;
    }
    ctx.body = accountPage({
      ...view,
      chosenRole: result.role.name,
      credentials: { role: result.role.name, set: result.credentials },
    }, pageOptions(deps));
  };
}
