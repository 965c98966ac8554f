import Router from '@koa/router';
import Koa from 'koa';
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
  app.use(routes.routes());
  // Sets 405 or 501 with the Allow header (RFC 9110 §15.5.6 requires it on a 405); notFound below turns
  // those into errors in the protocol's format, Allow kept.
  app.use(routes.allowedMethods());
  return app;
}
