import Router, { type Layer } from '@koa/router';
import Koa, { type Middleware } from 'koa';
import compose from 'koa-compose';
import type { CredentialService } from '../credentials/credential-service.js';
import type { TokenExchange } from '../credentials/exchange.js';
import type { Identity } from '../domain/types.js';
import type { SigningKeySource } from '../credentials/signing-keys.js';
import type { RoleCatalog } from '../domain/role-catalog.js';
import type { BrowserLogin, LoginFlow } from '../idp/index.js';
import type { AddressCounter, ExchangeRateLimits, LoginRateLimits, PasswordAttemptLimits } from '../limits/rate-limits.js';
import type { AuditLog } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Store } from '../store/store.js';
import { healthRoutes } from './health.js';
import { loginRoutes } from './login.js';
import type { TrustedProxies } from './middleware/client-address.js';
import type { ClientAuthenticator } from '../credentials/client-authentication.js';
import { frontDoor } from './middleware/request.js';
import { oauthRoutes } from './oauth.js';
import type { TargetTokens } from '../credentials/target-tokens.js';
import type { DiscoveryOptions } from '../credentials/discovery.js';
import type { OpenIdProvider } from '../op/openid-provider.js';
import { openIdProviderMount, openIdProviderRoutes } from './op.js';
import { stsRoutes } from './sts.js';
import { terminalRoutes } from './terminal.js';
import { wellKnownRoutes } from './wellknown.js';

/** Everything the HTTP layer needs; built by main.ts. */
export interface AppDependencies {
  publicUrl: string;
  maxBodyBytes: number;
  /** Abuse limits on the exchange endpoints; absent: none. */
  limits?: ExchangeRateLimits;
  /** Who may introspect, and the per-address limit on introspection; absent: open, unlimited. */
  introspectionClients?: ClientAuthenticator;
  introspectionLimits?: AddressCounter;
  /** Abuse limits on browser and terminal logins; absent: none. */
  loginLimits?: LoginRateLimits;
  /** Limits on username-and-password attempts at a directory provider's form; absent: none. */
  passwordLimits?: PasswordAttemptLimits;
  /** The proxies whose X-Forwarded-For is believed (`listen.trusted_proxies`). */
  trustedProxies: TrustedProxies;
  store: Store;
  keys: SigningKeySource;
  roles: RoleCatalog;
  credentials: CredentialService;
  exchange: TokenExchange;
  /** Browser logins and sessions. */
  login: BrowserLogin;
  /** Finishes logins at the callback (idp/login-flow.ts). */
  loginFlow: LoginFlow;
  /** Every role the rules grant an identity (the page's role picker). */
  grantedRoles(identity: Identity): string[];
  audit: AuditLog;
  logger: Logger;
  metrics: GatewayMetrics;
  accepting: () => boolean;
  /** Serve `/metrics` on this (public) port too; otherwise only the admin listener does (admin-app.ts). */
  metricsOnPublicPort?: boolean;
  /** A warning on top of every page (`stsgate demo`). */
  pageNotice?: string;
  /** The configured targets (relying parties trusting stsgate as an issuer); absent: none. */
  targets?: TargetTokens;
  /** What discovery lists besides the access token's claims: targets' claims, session tags, roles' scopes. */
  discovery?: Pick<DiscoveryOptions, 'claimsSupported' | 'scopesSupported' | 'openIdProvider'>;
  /** stsgate as an OpenID Provider for the configured `clients:`; absent: none configured. */
  openIdProvider?: OpenIdProvider;
}

/** Builds the Koa application: middleware in order, then the routes of every group. */
export function createApp(deps: AppDependencies): Koa {
  // Koa's `proxy` stays off: it would believe X-Forwarded-For (and -Host, -Proto) from any connection.
  const app = new Koa({ proxy: false });
  // Koa's own error printing would bypass the logger (and could print details); errors are handled below.
  app.silent = true;
  // The client address comes from the trusted proxies only; then the request id, the headers every
  // response carries, the error format, 404/405/501, and the request's log line (frontDoor).
  app.use(frontDoor({ logger: deps.logger, metrics: deps.metrics, trustedProxies: deps.trustedProxies, pages: deps.pageNotice !== undefined ? { notice: deps.pageNotice } : {} }));
  // Its endpoints (and its grant types at the token endpoint) are oidc-provider's own; the rest goes on.
  if (deps.openIdProvider) app.use(openIdProviderMount({ ...deps, openIdProvider: deps.openIdProvider }));
  // One router for every route group: one path match and one allowedMethods per request, instead of
  // every group's router trying the path in turn.
  const routes = new Router();
  for (const group of [
    healthRoutes({ ...deps, serveMetrics: deps.metricsOnPublicPort ?? false }),
    wellKnownRoutes(deps),
    stsRoutes(deps),
    oauthRoutes(deps),
    loginRoutes(deps),
    terminalRoutes(deps),
    ...(deps.openIdProvider ? [openIdProviderRoutes({ ...deps, openIdProvider: deps.openIdProvider })] : []),
  ]) {
    routes.use(group.routes());
  }
  app.use(routed(routes));
  // Sets 405 or 501 with the Allow header (RFC 9110 §15.5.6 requires it on a 405); notFound below turns
  // those into errors in the protocol's format, Allow kept.
  app.use(routes.allowedMethods());
  return app;
}

/**
 * The router's middleware, with the routes whose path has no parameter (`/sts`, `/oauth2/token`,
 * `/healthz`: nearly every request) found by one map lookup and run as a chain composed once, instead of
 * @koa/router testing every route's pattern and composing the chain anew on each request. The chain is the
 * router's own answer for that exact method and path (`router.match`, computed here, at start): the same
 * layers, the same context fields. Any other spelling of a path (another case, a trailing slash, a
 * parameter) goes to the router as before.
 */
export function routed(router: Router): Middleware {
  const dispatch = router.routes() as unknown as Middleware;
  const exact = exactRoutes(router);
  return function route(ctx, next) {
    const found = exact.get(`${ctx.method} ${ctx.path}`);
    if (found === undefined) return dispatch(ctx, next);
    const routing = ctx as unknown as RoutingContext;
    routing.matched = found.matched;
    routing.router = router;
    routing.routeMatched = true;
    routing.captures = [];
    routing.params = {};
    routing.request.params = routing.params;
    routing._matchedRoute = found.path;
    routing.routerPath = found.path;
    routing.routerName = undefined;
    return found.chain(ctx, next);
  };
}

/** The context fields @koa/router sets on a request it routes (RouterContext, which Koa's Context does not declare). */
interface RoutingContext {
  matched: Layer[];
  router: Router;
  routeMatched: boolean;
  captures: string[];
  params: Record<string, string>;
  request: { params: Record<string, string> };
  _matchedRoute: string;
  routerPath: string;
  routerName: string | undefined;
}

/** `METHOD path` -> the chain the router runs for it, for each route with a literal path and no parameter middleware. */
export function exactRoutes(router: Router): Map<string, { path: string; matched: Layer[]; chain: Middleware }> {
  const exact = new Map<string, { path: string; matched: Layer[]; chain: Middleware }>();
  for (const layer of router.stack) {
    if (typeof layer.path !== 'string' || layer.paramNames.length > 0 || layer.methods.length === 0) continue;
    for (const method of layer.methods) {
      const key = `${method} ${layer.path}`;
      if (exact.has(key)) continue;
      const match = router.match(layer.path, method);
      // Only a route the router itself would run alone, with nothing but plain middleware (no parameter handlers).
      if (!match.route || match.pathAndMethod.length !== 1 || match.pathAndMethod[0] !== layer) continue;
      if (layer.stack.some((fn) => 'param' in fn)) continue;
      exact.set(key, { path: layer.path, matched: match.path, chain: compose(layer.stack as unknown as Middleware[]) });
    }
  }
  return exact;
}
