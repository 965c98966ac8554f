import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import getRawBody from 'raw-body';
import { GatewayError } from '../../errors/gateway-error.js';
import type { Logger } from '../../observability/logger.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { PENDING_AUDIT, type PendingAuditEvent } from '../../observability/audit.js';
import type { PageOptions } from '../pages.js';
import type { TrustedProxies } from './client-address.js';
import { renderError } from './errors.js';

/** A request id for every request, returned to the client (AWS RequestId, `x-request-id`) and logged. */
export async function assignRequestId(ctx: Context, next: Next): Promise<void> {
  const requestId = randomUUID();
  ctx.state.requestId = requestId;
  ctx.set('x-request-id', requestId);
  await next();
}

/** What frontDoor needs. */
export interface FrontDoorOptions {
  logger: Logger;
  metrics: GatewayMetrics;
  /** The proxies whose X-Forwarded-For is believed; absent: the connection's address is the client's. */
  trustedProxies?: TrustedProxies;
  /** How error pages look (`stsgate demo`'s notice). */
  pages?: PageOptions;
}

/**
 * Everything a request meets before its routes, as one middleware (one closure and one promise per
 * request instead of six), in this order: the client address (`ctx.ip`, see TrustedProxies), a request
 * id returned to the client (AWS RequestId, `x-request-id`), the headers every response carries, then
 * the routes; a request no route answered becomes a 404, or the router's 405 / 501 with its Allow header;
 * anything thrown is answered in the protocol's error format (renderError). At the end one log line and
 * a request count: the access line (no query string, body, header or cookie values), or for an audited
 * request its audit lines, each carrying the request's fields too (PENDING_AUDIT): one event per request.
 */
export function frontDoor(options: FrontDoorOptions) {
  const { logger, metrics, trustedProxies } = options;
  const pages = options.pages ?? {};
  return async function front(ctx: Context, next: Next): Promise<void> {
    const started = performance.now();
    if (trustedProxies) {
      const forwardedFor = ctx.req.headers['x-forwarded-for'];
      ctx.request.ip = trustedProxies.clientAddress(ctx.req.socket.remoteAddress ?? '', Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor);
    }
    const requestId = randomUUID();
    ctx.state.requestId = requestId;
    const pending: PendingAuditEvent[] = [];
    ctx.state[PENDING_AUDIT] = pending;
    const { res } = ctx;
    res.setHeader('x-request-id', requestId);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    try {
      await next();
      unanswered(ctx);
    } catch (thrown) {
      renderError(ctx, thrown, logger, pages);
    } finally {
      // From here an event is written at once: nobody would write it later.
      ctx.state[PENDING_AUDIT] = undefined;
      metrics.requestsOf(routeGroup(ctx.path), STATUS_CLASSES[Math.floor(ctx.status / 100)] ?? 'other').inc();
      const request = {
        requestId,
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        ms: Math.round((performance.now() - started) * 10) / 10,
        client: ctx.ip,
        ...(ctx.state.errorCode ? { code: ctx.state.errorCode } : {}),
      };
      if (pending.length === 0) logger.info(request, 'request');
      // The audit line's own fields first (its code, client, request id are the request's anyway), then the
      // request's. Object.assign, not a spread: spreading the request's fields over keys the event already
      // has made V8 build a dictionary-mode object (2.2 KB against 0.65 per line, `npm run bench:gc`).
      else for (const event of pending) event.logger.info(Object.assign({}, event.fields, request));
    }
  };
}

const STATUS_CLASSES: readonly string[] = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** No route answered: a 404, or the router's 405 / 501, in the error format (thrown for renderError). */
function unanswered(ctx: Context): void {
  // `respond = false`: someone else (oidc-provider) answered on the raw response.
  if (ctx.body != null || ctx.respond === false) return;
  if (ctx.status === 404) throw new GatewayError('NotFound', 'Not found.');
  const allow = ctx.response.get('Allow');
  if (ctx.status === 405) throw new GatewayError('NotFound', 'Method not allowed.', { status: 405, headers: { Allow: allow } });
  if (ctx.status === 501) throw new GatewayError('NotFound', 'Not implemented.', { status: 501, headers: { Allow: allow } });
}

/** A bounded label for a path: its first segment when it is one of the gateway's, else "other". */
function routeGroup(path: string): string {
  if (path === '/' || path === '/sts') return 'sts';
  if (!path.startsWith('/')) return 'other';
  const end = path.indexOf('/', 1);
  const first = path.slice(1, end === -1 ? undefined : end);
  return ROUTE_GROUPS.has(first) ? first : 'other';
}

const ROUTE_GROUPS: ReadonlySet<string> = new Set(['oauth2', '.well-known', 'healthz', 'readyz', 'metrics', 'admin', 'login', 'callback', 'logout', 'v1', 'cli']);

/**
 * Reads the raw body into `ctx.state.rawBody`, refusing it before buffering when the declared length
 * is over the cap, and stopping as soon as a streamed body passes it.
 */
export function readBody(maxBytes: number) {
  return async function readRawBody(ctx: Context, next: Next): Promise<void> {
    await readBodyOf(ctx, maxBytes);
    await next();
  };
}

/** readBody's work, for middleware that does more around it (rate-limit.ts's countedForm). */
export async function readBodyOf(ctx: Context, maxBytes: number): Promise<void> {
  // Already read by middleware ahead (the token endpoint's dispatch to the OpenID Provider): read once.
  if (ctx.state.rawBody !== undefined) return;
  const declared = ctx.get('content-length');
  if (declared !== '' && Number(declared) > maxBytes) {
    throw new GatewayError('PayloadTooLarge', `The request body is larger than ${maxBytes} bytes.`);
  }
  try {
    ctx.state.rawBody = await getRawBody(ctx.req, { limit: maxBytes, length: declared === '' ? null : declared });
  } catch (err) {
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') throw new GatewayError('PayloadTooLarge', `The request body is larger than ${maxBytes} bytes.`);
    throw new GatewayError('ValidationError', 'The request body could not be read.', { debug: type ?? String(err) });
  }
}

/**
 * Parses an `application/x-www-form-urlencoded` body into `ctx.state.form`. A parameter given twice,
 * or given in the query string of a POST, is refused: which copy wins is exactly what an attacker
 * splitting parameters between parsers hopes to choose.
 */
export async function parseForm(ctx: Context, next: Next): Promise<void> {
  parseFormOf(ctx);
  await next();
}

/** parseForm's work, for middleware that does more around it (rate-limit.ts's countedForm). */
export function parseFormOf(ctx: Context): void {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new GatewayError('UnsupportedMediaType', 'The request body must be application/x-www-form-urlencoded.');
  }
  if (ctx.querystring !== '') {
    throw new GatewayError('ValidationError', 'Parameters must be sent in the request body, not the query string.');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(ctx.state.rawBody as Buffer);
  } catch {
    throw new GatewayError('ValidationError', 'The request body is not valid UTF-8.');
  }
  const form = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(text)) {
    if (form.has(key)) throw new GatewayError('ValidationError', `The parameter ${JSON.stringify(key.slice(0, 64))} was given more than once.`);
    form.set(key, value);
  }
  ctx.state.form = form;
}
