import Koa from 'koa';
import type { CredentialService } from '../credentials/credential-service.js';
import type { TokenExchange } from '../credentials/exchange.js';
import type { Identity } from '../domain/types.js';
import type { SigningKeySource } from '../credentials/signing-keys.js';
import type { RoleCatalog } from '../domain/role-catalog.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { BrowserLogin } from '../idp/index.js';
import type { AuditLog } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Store } from '../store/store.js';
import { healthRoutes } from './health.js';
import { loginRoutes } from './login.js';
import { errorHandler } from './middleware/errors.js';
import type { ExchangeRateLimits, LoginRateLimits } from './middleware/rate-limit.js';
import { accessLog, assignRequestId } from './middleware/request.js';
import { oauthRoutes } from './oauth.js';
import { stsRoutes } from './sts.js';
import { terminalRoutes } from './terminal.js';
import { wellKnownRoutes } from './wellknown.js';

/** Everything the HTTP layer needs; built by main.ts. */
export interface AppDependencies {
  publicUrl: string;
  maxBodyBytes: number;
  /** Abuse limits on the exchange endpoints; absent: none. */
  limits?: ExchangeRateLimits;
  /** Abuse limits on browser and terminal logins; absent: none. */
  loginLimits?: LoginRateLimits;
  /** Trust X-Forwarded-For (behind a load balancer). */
  trustProxy: boolean;
  /** With trustProxy: how many X-Forwarded-For entries, from the right, come from trusted proxies (0: all). */
  trustedProxies?: number;
  store: Store;
  keys: SigningKeySource;
  roles: RoleCatalog;
  credentials: CredentialService;
  exchange: TokenExchange;
  /** Browser logins and sessions. */
  login: BrowserLogin;
  /** Every role the rules grant an identity (the page's role picker). */
  grantedRoles(identity: Identity): string[];
  audit: AuditLog;
  logger: Logger;
  metrics: GatewayMetrics;
  accepting: () => boolean;
  /** A warning on top of every page (`stsgate demo`). */
  pageNotice?: string;
}

/** Builds the Koa application: middleware in order, then one router per route group. */
export function createApp(deps: AppDependencies): Koa {
  // Koa takes the leftmost of the last `maxIpsCount` X-Forwarded-For entries: the address the outermost
  // trusted proxy saw, never one the client wrote in front of them.
  const app = new Koa({ proxy: deps.trustProxy, ...(deps.trustedProxies ? { maxIpsCount: deps.trustedProxies } : {}) });
  // Koa's own error printing would bypass the logger (and could print details); errors are handled below.
  app.silent = true;
  app.use(assignRequestId);
  app.use(accessLog(deps.logger, deps.metrics));
  app.use(errorHandler(deps.logger, deps.pageNotice !== undefined ? { notice: deps.pageNotice } : {}));
  app.use(securityHeaders);
  app.use(notFound);
  for (const router of [
    healthRoutes(deps),
    wellKnownRoutes(deps),
    stsRoutes(deps),
    oauthRoutes(deps),
    loginRoutes(deps),
    terminalRoutes(deps),
  ]) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: true, notImplemented: () => new GatewayError('NotFound', 'Not implemented.', { status: 501 }), methodNotAllowed: () => new GatewayError('NotFound', 'Method not allowed.', { status: 405 }) }));
  }
  return app;
}

/** No route answered: a 404 in the error format (405 and 501 come from the routers' allowedMethods). */
async function notFound(ctx: Koa.Context, next: Koa.Next): Promise<void> {
  await next();
  if (ctx.status === 404 && ctx.body == null) throw new GatewayError('NotFound', 'Not found.');
}

async function securityHeaders(ctx: Koa.Context, next: Koa.Next): Promise<void> {
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  await next();
}
