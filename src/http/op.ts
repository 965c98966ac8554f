/**
 * stsgate's OpenID Provider on the public port (src/op/): its endpoints are handed to oidc-provider as they
 * are (it answers them itself), `POST /oauth2/token` is shared with the RFC 8693 exchange and goes to the
 * provider only for its grant types, and `/oauth2/interaction/:uid` is stsgate's own page: it finishes the
 * provider's login prompt with the browser's stsgate session, or shows stsgate's sign-in page first.
 */
import { IncomingMessage } from 'node:http';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { GatewayError } from '../errors/gateway-error.js';
import type { BrowserLogin } from '../idp/index.js';
import type { OpenIdProvider } from '../op/openid-provider.js';
import { OP_ROUTES } from '../domain/oauth-identifiers.js';
import { INTERACTION_PATH, OP_GRANT_TYPES, SILENT_PARAMETER } from '../op/protocol.js';
import { noStore, pageHeaders, pageOptions } from './middleware/browser.js';
import { protocol } from './middleware/errors.js';
import { countLoginRequest } from './middleware/rate-limit.js';
import type { LoginRateLimits } from '../limits/rate-limits.js';
import type { AuditLog } from '../observability/audit.js';
import { readBody } from './middleware/request.js';
import { signInPage } from './pages.js';

export interface OpRouteDependencies {
  openIdProvider: OpenIdProvider;
  audit: AuditLog;
  /** Abuse limits on logins (the interaction page counts as one); absent: none. */
  loginLimits?: LoginRateLimits;
  login: BrowserLogin;
  publicUrl: string;
  maxBodyBytes: number;
  pageNotice?: string;
}

/** The path prefixes oidc-provider answers (each with what lies below it: resume, confirm, success). */
function providerPaths(op: OpenIdProvider): string[] {
  return [OP_ROUTES.authorization, OP_ROUTES.userinfo, OP_ROUTES.end_session, ...(op.deviceFlow ? [OP_ROUTES.device_authorization, OP_ROUTES.code_verification] : [])];
}

/**
 * Middleware ahead of the router: a request for one of the provider's paths, or a token request of one of
 * its grant types, is answered by oidc-provider; anything else goes on to the gateway's routes.
 */
export function openIdProviderMount(deps: OpRouteDependencies) {
  const prefixes = providerPaths(deps.openIdProvider);
  const readTokenBody = readBody(deps.maxBodyBytes);
  return async function mountOpenIdProvider(ctx: Context, next: Next): Promise<void> {
    const prefix = prefixes.find((candidate) => ctx.path === candidate || ctx.path.startsWith(`${candidate}/`));
    if (prefix !== undefined) {
      // Errors before oidc-provider answers (a rate limit, a store failure) are the gateway's: a page for
      // the browser's endpoints, OAuth JSON for the rest.
      ctx.state.protocol = prefix === OP_ROUTES.userinfo || prefix === OP_ROUTES.device_authorization ? 'oauth' : 'html';
      // Every authorization or device request may store an interaction for an unknown browser: counted
      // with the logins (limits.login_per_address_per_minute).
      if (prefix !== OP_ROUTES.userinfo && prefix !== OP_ROUTES.end_session && deps.loginLimits) await deps.loginLimits.countRequest(ctx.ip);
      if (ctx.path === OP_ROUTES.authorization) await silentWithSession(ctx, deps);
      await forward(ctx, deps);
      return;
    }
    if (ctx.path === OP_ROUTES.token && ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded')) {
      // The body is read once (the exchange route reuses it); its grant_type decides who answers.
      ctx.state.protocol = 'oauth';
      let body: Buffer | undefined;
      await readTokenBody(ctx, async () => {
        body = ctx.state.rawBody as Buffer;
      });
      const grantType = new URLSearchParams(body!.toString('utf8')).getAll('grant_type');
      if (grantType.length === 1 && OP_GRANT_TYPES.has(grantType[0]!)) {
        await forward(ctx, deps, body!.toString('utf8'));
        return;
      }
    }
    await next();
  };
}

/**
 * `prompt=none` from a browser whose stsgate session is live: sent on without the prompt and with
 * SILENT_PARAMETER, so that a browser with no provider session yet (signed in on stsgate's own page) is
 * answered from its stsgate session, silently, instead of login_required.
 */
async function silentWithSession(ctx: Context, deps: OpRouteDependencies): Promise<void> {
  const url = new URL(ctx.req.url ?? '/', deps.publicUrl);
  if (url.searchParams.getAll('prompt').length !== 1 || url.searchParams.get('prompt') !== 'none' || url.searchParams.has(SILENT_PARAMETER)) return;
  if ((await deps.login.session(ctx.cookies.get(deps.login.cookieName) ?? undefined)) === undefined) return;
  url.searchParams.delete('prompt');
  url.searchParams.set(SILENT_PARAMETER, '1');
  ctx.req.url = `${url.pathname}${url.search}`;
}

/**
 * Hands the request to oidc-provider, which writes the response itself. It is told the public URL's scheme
 * (its cookies are Secure under https, behind a proxy that ended TLS), never a client's claim of a host.
 */
async function forward(ctx: Context, deps: OpRouteDependencies, body?: string): Promise<void> {
  // Fetched first: a failure here is still the gateway's to answer (its error page, a 500).
  const handler = await deps.openIdProvider.requestHandler();
  ctx.respond = false;
  ctx.req.headers['x-forwarded-proto'] = new URL(deps.publicUrl).protocol.slice(0, -1);
  delete ctx.req.headers['x-forwarded-host'];
  await handler(body === undefined ? ctx.req : replayed(ctx.req, body), ctx.res);
}

/** The same request with its body readable again (it was read to find the grant type). */
function replayed(req: IncomingMessage, body: string): IncomingMessage {
  const copy = new IncomingMessage(req.socket);
  copy.method = req.method;
  copy.url = req.url;
  copy.headers = req.headers;
  copy.rawHeaders = req.rawHeaders;
  copy.httpVersion = req.httpVersion;
  copy.httpVersionMajor = req.httpVersionMajor;
  copy.httpVersionMinor = req.httpVersionMinor;
  // Complete, as the parser would mark it: an incomplete message destroys its socket when it is destroyed.
  copy.complete = true;
  copy.push(Buffer.from(body, 'utf8'));
  copy.push(null);
  return copy;
}

/** `GET /oauth2/interaction/:uid`: the provider's login prompt, answered with stsgate's browser session. */
export function openIdProviderRoutes(deps: OpRouteDependencies): Router {
  const router = new Router();
  router.get(`${INTERACTION_PATH}:uid`, protocol('html'), noStore, pageHeaders, countLoginRequest(deps.loginLimits), interaction(deps));
  return router;
}

function interaction(deps: OpRouteDependencies) {
  return async function answerInteraction(ctx: Context): Promise<void> {
    let view;
    try {
      view = await deps.openIdProvider.interaction(ctx.req, ctx.res);
    } catch {
      view = undefined;
    }
    if (view === undefined || view.uid !== ctx.params.uid) {
      throw new GatewayError('ValidationError', 'This sign-in request has expired or was already used. Start again from the application.', { status: 400 });
    }
    const session = await deps.login.session(ctx.cookies.get(deps.login.cookieName) ?? undefined);
    // Signed in already: not asked again (unless the client asked for a fresh sign-in, which only a
    // session begun since this interaction answers); on to the provider, which answers the client.
    const shownAt = view.freshLogin ? await deps.openIdProvider.signInShownAt(view.uid) : undefined;
    const answered = session !== undefined && (!view.freshLogin || (shownAt !== undefined && session.createdAt >= shownAt));
    if (view.silent && !answered) {
      // prompt=none: nothing is shown (OIDC Core §3.1.2.6).
      ctx.status = 303;
      ctx.redirect(await deps.openIdProvider.abort(ctx.req, ctx.res, 'login_required', 'End-User authentication is required'));
      return;
    }
    if (answered) {
      const resume = await deps.openIdProvider.finishLogin(ctx.req, ctx.res, session!);
      deps.audit.session(ctx, 'client_sign_in', { provider: session!.provider, subject: session!.identity.subject, clientId: view.clientId });
      ctx.status = 303;
      ctx.redirect(resume);
      return;
    }
    if (view.freshLogin) await deps.openIdProvider.markSignInShown(view.uid);
    const returnTo = encodeURIComponent(`${INTERACTION_PATH}${view.uid}`);
    ctx.type = 'html';
    ctx.body = signInPage(
      deps.login.providers.map((p) => ({ id: p.id, displayName: p.displayName, href: `/login/${encodeURIComponent(p.id)}?return_to=${returnTo}` })),
      pageOptions(deps),
      { continuingTo: view.clientName },
    );
  };
}
