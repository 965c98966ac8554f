import type { Context } from 'koa';
import type { ExchangeResult } from '../credentials/exchange.js';
import type { TargetToken } from '../credentials/target-tokens.js';
import type { Watermark } from '../credentials/revocations.js';
import { toGatewayError, type DecisionContext, type GatewayError } from '../errors/gateway-error.js';
import type { Logger } from './logger.js';
import { deniedRoleLabel, type GatewayMetrics } from './metrics.js';

/** What a target decision hands out: a target token, or a broker's real cloud credentials. */
export type TargetOutcome = Pick<TargetToken, 'identity' | 'role' | 'target' | 'issuedAt' | 'expiresAt'> & { cached?: boolean; upstreamRequestId?: string };

/**
 * Where the access-log middleware (http/middleware/request.ts) keeps a request's audit events until the
 * request ends, to write each as one line with the request's own fields (method, path, status, time):
 * one log event per audited request instead of an audit line and an access line. Without it (no such
 * middleware ahead, e.g. the CLI) an event is written at once.
 */
export const PENDING_AUDIT = 'pendingAudit';

/** An audit event waiting for its request to end. */
export interface PendingAuditEvent {
  logger: Logger;
  fields: Record<string, unknown>;
}

/**
 * The audit log: one structured line per decision (issued, denied, revoked, login, logout), and the
 * matching metrics. It names who, what and why, never a token, secret, code or cookie value.
 */
export class AuditLog {
  readonly #logger: Logger;
  readonly #metrics: GatewayMetrics | undefined;

  readonly #includeAccountLabel: boolean;

  /** `includeAccountLabel` (`audit.include_account_label`, default true): denial lines name the account the person saw on the denial page. */
  constructor(logger: Logger, metrics?: GatewayMetrics, options: { includeAccountLabel?: boolean } = {}) {
    this.#logger = logger.child({ log: 'audit' });
    this.#metrics = metrics;
    this.#includeAccountLabel = options.includeAccountLabel ?? true;
  }

  /** Runs an issuing decision and records its outcome; rethrows a denial unchanged. */
  async decision(ctx: Context, action: string, decide: () => Promise<ExchangeResult>): Promise<ExchangeResult> {
    const started = performance.now();
    try {
      const result = await decide();
      const seconds = (performance.now() - started) / 1000;
      const info = result.credentials.session;
      this.#write(ctx, {
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
        ms: Math.round(seconds * 10_000) / 10,
      });
      this.#metrics?.issuedOf(action, result.identity.source, result.role.name, String(result.credentials.cached)).inc();
      this.#metrics?.exchangeSecondsOf(action, 'issued').observe(seconds);
      return result;
    } catch (thrown) {
      const seconds = (performance.now() - started) / 1000;
      this.#denied(ctx, action, toGatewayError(thrown), seconds);
      this.#metrics?.exchangeSecondsOf(action, 'denied').observe(seconds);
      throw thrown;
    }
  }

  /**
   * Runs a target-token decision and records its outcome (one line, granted or refused; never the token).
   * `knownTarget` says whether the name asked for is configured: only then may a metric label carry it.
   */
  async targetDecision<T extends TargetOutcome>(ctx: Context, targetName: string, knownTarget: { kind: string } | undefined, decide: () => Promise<T>, action: 'TargetToken' | 'BrokeredCredentials' = 'TargetToken'): Promise<T> {
    const started = performance.now();
    const label = knownTarget === undefined ? { target: 'unknown', kind: 'unknown' } : { target: targetName, kind: knownTarget.kind };
    try {
      const minted = await decide();
      this.#write(ctx, {
        event: 'issued',
        action,
        requestId: ctx.state.requestId,
        source: minted.identity.source,
        subject: minted.identity.subject,
        role: minted.role.name,
        target: minted.target.name,
        kind: minted.target.kind,
        durationSeconds: Math.round((minted.expiresAt.getTime() - minted.issuedAt.getTime()) / 1000),
        ...(minted.cached === undefined ? {} : { cached: minted.cached }),
        ...(minted.upstreamRequestId === undefined ? {} : { upstreamRequestId: minted.upstreamRequestId }),
        client: ctx.ip,
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
      this.#metrics?.targetTokens.inc({ ...label, outcome: 'issued' });
      return minted;
    } catch (thrown) {
      const err = toGatewayError(thrown);
      this.#denied(ctx, action, err, (performance.now() - started) / 1000, { target: targetName.slice(0, 64) });
      this.#metrics?.targetTokens.inc({ ...label, outcome: err.code });
      throw thrown;
    }
  }

  /** The audit line and the denial metric of a refused issuing request. */
  #denied(ctx: Context, action: string, err: GatewayError, seconds: number, extra: Record<string, unknown> = {}): void {
    this.#write(ctx, {
      event: 'denied',
      action,
      requestId: ctx.state.requestId,
      code: err.code,
      reason: err.debug ?? err.publicMessage,
      source: err.context.source,
      subject: err.context.subject,
      role: err.context.role,
      ...this.#refusal(err.context),
      ...extra,
      client: ctx.ip,
      ms: Math.round(seconds * 10_000) / 10,
    });
    this.#metrics?.denied.inc({ action, source: err.context.source ?? 'unknown', role: deniedRoleLabel(err.context), reason: err.code });
  }

  /** Writes an event, or hands it to the request's access-log middleware to write with the request's fields. */
  #write(ctx: Context, fields: Record<string, unknown>): void {
    const pending = ctx.state[PENDING_AUDIT] as PendingAuditEvent[] | undefined;
    if (pending) pending.push({ logger: this.#logger, fields });
    else this.#logger.info(fields);
  }

  /** A refusal by the rules: the closest rule and its failing conditions, and the account unless the config leaves it out. */
  #refusal(fields: Pick<DecisionContext, 'closestRule' | 'failing' | 'account'>): Record<string, unknown> {
    return {
      ...(fields.closestRule === undefined ? {} : { closestRule: fields.closestRule, failing: fields.failing }),
      ...(fields.account === undefined || !this.#includeAccountLabel ? {} : { account: fields.account }),
    };
  }

  /** Records a revocation. */
  revoked(ctx: Context, sessionId: string | undefined, found: boolean): void {
    this.#write(ctx, { event: 'revoked', requestId: ctx.state.requestId, sid: sessionId, found, client: ctx.ip });
  }

  /** Records a revocation watermark written (`stsgate revoke`, the admin API): who, what, until when, why. */
  watermark(watermark: Watermark, ttlMs: number, fields: { requestId?: unknown; client?: string } = {}): void {
    this.#logger.info({
      event: 'revocation_watermark',
      ...(fields.requestId === undefined ? {} : { requestId: fields.requestId }),
      kind: watermark.kind,
      role: watermark.role,
      source: watermark.source,
      subject: watermark.subject,
      issuedBefore: watermark.issued_before,
      by: watermark.by,
      reason: watermark.reason,
      ttlSeconds: Math.ceil(ttlMs / 1000),
      ...(fields.client === undefined ? {} : { client: fields.client }),
    });
  }

  /** Records a browser or terminal login or logout (`terminal_login`: a code went to `stsgate login`; `terminal_session`: it was redeemed). */
  session(
    ctx: Context,
    event: 'login' | 'logout' | 'login_failed' | 'terminal_login' | 'terminal_session' | 'client_sign_in',
    fields: { provider?: string; subject?: string; reason?: string; clientId?: string; refusal?: Pick<DecisionContext, 'closestRule' | 'failing' | 'account'> },
  ): void {
    const { refusal, ...rest } = fields;
    this.#write(ctx, { event, requestId: ctx.state.requestId, ...rest, ...(refusal ? this.#refusal(refusal) : {}), client: ctx.ip });
  }
}
