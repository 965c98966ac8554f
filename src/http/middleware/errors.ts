import type { Context, Next } from 'koa';
import { toGatewayError } from '../../errors/gateway-error.js';
import { toAwsErrorXml, toOAuthErrorJson } from '../../errors/serialize.js';
import type { Logger } from '../../observability/logger.js';
import { PAGE_CSP, errorPage, type PageOptions } from '../pages.js';

/** The wire format a route group answers errors in. */
export type Protocol = 'aws' | 'oauth' | 'json' | 'html';

/** Marks the protocol of the routes below, so that errors are written in their format. */
export function protocol(name: Protocol) {
  return async function setProtocol(ctx: Context, next: Next): Promise<void> {
    ctx.state.protocol = name;
    await next();
  };
}

/**
 * Turns anything thrown into the protocol's error format. Handlers throw; only this sets error statuses.
 * 5xx bodies carry no detail (node-oidc-provider's err_out); the private detail goes to the log only.
 */
export function errorHandler(logger: Logger, pages: PageOptions = {}) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (thrown) {
      renderError(ctx, thrown, logger, pages);
    }
  };
}

/** Answers with `thrown` in the format of the request's protocol (see errorHandler), and logs its private detail. */
export function renderError(ctx: Context, thrown: unknown, logger: Logger, pages: PageOptions): void {
  const err = toGatewayError(thrown);
  const requestId = String(ctx.state.requestId ?? '');
  const protocolName = (ctx.state.protocol as Protocol | undefined) ?? 'json';
  ctx.status = protocolName === 'oauth' ? err.oauthStatus : err.status;
  ctx.set(err.headers);
  ctx.state.errorCode = err.code;
  if (protocolName === 'aws') {
    ctx.type = 'text/xml';
    ctx.body = toAwsErrorXml(err, requestId);
  } else if (protocolName === 'html') {
    // Browser pages: an HTML page with the status, never a redirect (so never off-site), and never
    // framed, whichever middleware failed before the page's own headers were set.
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Security-Policy', PAGE_CSP);
    ctx.set('X-Frame-Options', 'DENY');
    ctx.remove('Location');
    ctx.type = 'html';
    ctx.body = errorPage(err, requestId, pages);
  } else {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = protocolName === 'oauth' ? toOAuthErrorJson(err) : { error: err.code, message: err.publicMessage, request_id: requestId };
  }
  const entry = { requestId, code: err.code, status: err.status, debug: err.debug };
  if (err.status >= 500) logger.error({ ...entry, err: thrown instanceof Error ? { name: thrown.name, message: err.debug } : undefined }, 'request failed');
  else logger.debug(entry, 'request refused');
  // A body we stopped reading must not be parsed as the next request on this connection.
  if (err.code === 'PayloadTooLarge') ctx.set('Connection', 'close');
}
