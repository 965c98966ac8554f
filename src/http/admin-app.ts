/**
 * The operators' listener, on its own host and port (`admin.listen`): `/metrics`, `/healthz` and
 * `/readyz` (so probes may use either port), and the admin API under `/admin/`, mounted from
 * `adminRoutes` behind a bearer token. Kept off the public port so that metrics, which describe every
 * caller's traffic, and the admin API are reachable only where operators allow (a NetworkPolicy, a
 * Service the Ingress never routes to).
 */
import Router from '@koa/router';
import Koa from 'koa';
import { GatewayError } from '../errors/gateway-error.js';
import { equalSecretText } from '../util/secret-text.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { healthRoutes, type HealthDependencies } from './health.js';
import { frontDoor } from './middleware/request.js';

/** What the admin listener needs; built by main.ts. */
export interface AdminAppDependencies extends Omit<HealthDependencies, 'serveMetrics'> {
  logger: Logger;
  metrics: GatewayMetrics;
  /** The bearer token of `/admin/*` (`admin.token` / `admin.token_file`); absent: the admin API is off. */
  token?: string;
  /** The admin API's route groups, mounted as they are (their paths start with `/admin/`). */
  adminRoutes: Router[];
}

/** The paths anyone who reaches the admin port may read; every other one is the admin API's. */
const OPEN_PATHS: ReadonlySet<string> = new Set(['/metrics', '/healthz', '/readyz']);

/** `realm` of the challenge (RFC 6750 §3). */
const REALM = 'stsgate admin';

/** RFC 6750 §2.1: `Authorization: Bearer <b64token>`; the scheme is case-insensitive (RFC 9110 §11.1). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** Builds the admin listener's Koa application. */
export function createAdminApp(deps: AdminAppDependencies): Koa {
  const app = new Koa();
  app.silent = true;
  app.use(frontDoor({ logger: deps.logger, metrics: deps.metrics }));
  app.use(adminGate(deps.token));
  const routes = new Router();
  routes.use(healthRoutes({ ...deps, serveMetrics: true }).routes());
  if (deps.token !== undefined) for (const group of deps.adminRoutes) routes.use(group.routes());
  app.use(routes.routes());
  app.use(routes.allowedMethods());
  return app;
}

/**
 * Everything but the open paths needs the bearer token, decided before any route is matched: a route
 * matched case-insensitively or with a trailing slash cannot slip past a check on the path's spelling,
 * and a caller without the token cannot tell which admin paths exist (every one is 401 alike). With no
 * token configured the admin API does not exist: 404.
 */
export function adminGate(token: string | undefined) {
  return async function requireAdminToken(ctx: Koa.Context, next: Koa.Next): Promise<void> {
    if (OPEN_PATHS.has(ctx.path)) return next();
    if (token === undefined) throw new GatewayError('NotFound', 'Not found.');
    const header = ctx.get('Authorization');
    // RFC 6750 §3.1: no credentials at all gets the bare challenge; wrong ones say invalid_token.
    if (header === '') throw unauthorized(`Bearer realm="${REALM}"`);
    const presented = BEARER.exec(header)?.[1];
    if (presented === undefined || !equalSecretText(presented, token)) {
      throw unauthorized(`Bearer realm="${REALM}", error="invalid_token", error_description="The admin token is missing or wrong."`);
    }
    ctx.set('Cache-Control', 'no-store');
    // Who acted, for the audit line of whatever the admin API does: the one admin token, and from where.
    ctx.state.adminCaller = `admin-token from ${ctx.ip}`;
    return next();
  };
}

function unauthorized(challenge: string): GatewayError {
  return new GatewayError('InvalidClientTokenId', 'A valid admin bearer token is required.', { status: 401, headers: { 'WWW-Authenticate': challenge } });
}
