/**
 * The admin API's revocations, for automation (an incident playbook, an HR offboarding hook):
 * `POST /admin/revocations` writes a revocation watermark, `GET /admin/revocations` lists the live ones.
 * Mounted on the admin listener, behind its bearer-token authentication (src/http/admin-app.ts); this
 * router authenticates nothing itself.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { GatewayConfig } from '../config/types.js';
import { checkReason, parseIssuedBefore, RevocationRequestError, revocationTarget, type LiveWatermark, type RevocationWatermarks } from '../credentials/revocations.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { AuditLog } from '../observability/audit.js';
import { storeFailure } from '../store/records.js';
import { protocol } from './middleware/errors.js';
import { readBody } from './middleware/request.js';

export interface RevocationRouteDependencies {
  revocations: RevocationWatermarks;
  /** The configured roles, providers and issuers a request may name. */
  config: Pick<GatewayConfig, 'roles' | 'providers' | 'issuers'>;
  audit: AuditLog;
  maxBodyBytes: number;
  /**
   * The caller as the admin listener's authentication identified it (its token's name), for the audit
   * line; default `ctx.state.adminCaller`.
   */
  callerOf?: (ctx: Context) => string | undefined;
}

/** The POST body: exactly one target (checked after parsing, with the configuration), and the optional rest. */
const RevocationBody = z.strictObject({
  subject: z.string().optional(),
  source: z.string().optional(),
  role: z.string().optional(),
  all: z.literal(true).optional(),
  issued_before: z.string().optional(),
  reason: z.string().optional(),
});

/** `POST /admin/revocations` and `GET /admin/revocations`. */
export function revocationRoutes(deps: RevocationRouteDependencies): Router {
  const router = new Router({ prefix: '/admin/revocations' });
  router.post('/', protocol('json'), readBody(deps.maxBodyBytes), writeWatermark(deps));
  router.get('/', protocol('json'), listWatermarks(deps));
  return router;
}

function writeWatermark(deps: RevocationRouteDependencies) {
  return async function revoke(ctx: Context): Promise<void> {
    if (!ctx.is('application/json')) throw new GatewayError('UnsupportedMediaType', 'The request body must be application/json.');
    let json: unknown;
    try {
      json = JSON.parse((ctx.state.rawBody as Buffer).toString('utf8'));
    } catch {
      throw new GatewayError('ValidationError', 'The request body is not JSON.');
    }
    const parsed = RevocationBody.safeParse(json);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`);
      throw new GatewayError('ValidationError', problems.join('; '));
    }
    const body = parsed.data;
    let written: LiveWatermark;
    try {
      const target = revocationTarget(deps.config, body);
      const issuedBeforeMs = parseIssuedBefore(body.issued_before);
      const reason = checkReason(body.reason);
      const caller = (deps.callerOf ?? defaultCaller)(ctx);
      written = await deps.revocations.revoke(target, {
        ...(issuedBeforeMs === undefined ? {} : { issuedBeforeMs }),
        by: caller === undefined ? 'admin-api' : `admin-api:${caller}`,
        ...(reason === undefined ? {} : { reason }),
      });
    } catch (err) {
      if (err instanceof RevocationRequestError) throw new GatewayError('ValidationError', err.message);
      throw storeFailure(err, 'revocation');
    }
    deps.audit.watermark(written.watermark, written.ttlMs, { requestId: ctx.state.requestId, client: ctx.ip });
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...written.watermark, ttl_seconds: Math.ceil(written.ttlMs / 1000) };
  };
}

function listWatermarks(deps: RevocationRouteDependencies) {
  return async function list(ctx: Context): Promise<void> {
    let live: LiveWatermark[];
    try {
      live = await deps.revocations.list();
    } catch (err) {
      throw storeFailure(err, 'revocation');
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { revocations: live.map(({ watermark, ttlMs }) => ({ ...watermark, ttl_seconds: Math.ceil(ttlMs / 1000) })) };
  };
}

function defaultCaller(ctx: Context): string | undefined {
  const caller = ctx.state.adminCaller as unknown;
  return typeof caller === 'string' && caller !== '' ? caller : undefined;
}
