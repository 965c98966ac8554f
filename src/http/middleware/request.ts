import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import getRawBody from 'raw-body';
import { GatewayError } from '../../errors/gateway-error.js';
import type { Logger } from '../../observability/logger.js';
import type { GatewayMetrics } from '../../observability/metrics.js';

/** A request id for every request, returned to the client (AWS RequestId, `x-request-id`) and logged. */
export async function assignRequestId(ctx: Context, next: Next): Promise<void> {
  const requestId = randomUUID();
  ctx.state.requestId = requestId;
  ctx.set('x-request-id', requestId);
  await next();
}

/** One access-log line per request (no query string, body, header or cookie values), and a request count. */
export function accessLog(logger: Logger, metrics: GatewayMetrics) {
  return async function logRequest(ctx: Context, next: Next): Promise<void> {
    const started = performance.now();
    try {
      await next();
    } finally {
      metrics.requests.inc({ route: routeGroup(ctx.path), status: `${Math.floor(ctx.status / 100)}xx` });
      logger.info(
        {
          requestId: ctx.state.requestId,
          method: ctx.method,
          path: ctx.path,
          status: ctx.status,
          ms: Math.round((performance.now() - started) * 10) / 10,
          client: ctx.ip,
          ...(ctx.state.errorCode ? { code: ctx.state.errorCode } : {}),
        },
        'request',
      );
    }
  };
}

/** A bounded label for a path: its first segment when it is one of the gateway's, else "other". */
function routeGroup(path: string): string {
  if (path === '/' || path === '/sts') return 'sts';
  const first = path.split('/')[1] ?? '';
  return ['oauth2', '.well-known', 'healthz', 'readyz', 'metrics', 'admin', 'login', 'callback', 'logout', 'v1', 'cli'].includes(first) ? first : 'other';
}

/**
 * Reads the raw body into `ctx.state.rawBody`, refusing it before buffering when the declared length
 * is over the cap, and stopping as soon as a streamed body passes it.
 */
export function readBody(maxBytes: number) {
  return async function readRawBody(ctx: Context, next: Next): Promise<void> {
    // Already read by middleware ahead (the token endpoint's dispatch to the OpenID Provider): read once.
    if (ctx.state.rawBody !== undefined) {
      await next();
      return;
    }
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
    await next();
  };
}

/**
 * Parses an `application/x-www-form-urlencoded` body into `ctx.state.form`. A parameter given twice,
 * or given in the query string of a POST, is refused: which copy wins is exactly what an attacker
 * splitting parameters between parsers hopes to choose.
 */
export async function parseForm(ctx: Context, next: Next): Promise<void> {
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
  await next();
}
