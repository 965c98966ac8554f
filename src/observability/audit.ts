import type { Context } from 'koa';
import type { ExchangeResult } from '../credentials/exchange.js';
import { toGatewayError } from '../errors/gateway-error.js';
import type { Logger } from './logger.js';

/**
 * The audit log: one structured line per decision (issued, denied, revoked). It names who, what and
 * why, never a token, secret, code or cookie value.
 */
export class AuditLog {
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger.child({ log: 'audit' });
  }

  /** Runs an issuing decision and records its outcome; rethrows a denial unchanged. */
  async decision(ctx: Context, action: string, decide: () => Promise<ExchangeResult>): Promise<ExchangeResult> {
    const started = performance.now();
    try {
      const result = await decide();
      const info = result.credentials.session;
      this.#logger.info({
        event: 'issued',
        action,
        requestId: ctx.state.requestId,
        source: result.identity.source,
        subject: result.identity.subject,
        role: result.role.name,
        rule: result.matchedRule,
        sid: info.sessionId,
        parentSid: info.parentSessionId,
        scope: info.scopes.join(' '),
        durationSeconds: info.exp - info.iat,
        cached: result.credentials.cached,
        client: ctx.ip,
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
      return result;
    } catch (thrown) {
      const err = toGatewayError(thrown);
      this.#logger.info({
        event: 'denied',
        action,
        requestId: ctx.state.requestId,
        code: err.code,
        reason: err.debug ?? err.publicMessage,
        client: ctx.ip,
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
      throw thrown;
    }
  }

  /** Records a revocation. */
  revoked(ctx: Context, sessionId: string | undefined, found: boolean): void {
    this.#logger.info({ event: 'revoked', requestId: ctx.state.requestId, sid: sessionId, found, client: ctx.ip });
  }
}
