import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { brokeredExchangeJson, targetTokenExchangeJson, tokenExchangeJson } from '../credentials/credential-formats.js';
import type { CredentialService, LiveSession } from '../credentials/credential-service.js';
import type { Identity } from '../domain/types.js';
import type { ExchangeResult, TokenExchange } from '../credentials/exchange.js';
import type { TargetTokens } from '../credentials/target-tokens.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { AuditLog } from '../observability/audit.js';
import { noStore } from './middleware/browser.js';
import { protocol } from './middleware/errors.js';
import type { ClientAuthenticator } from '../credentials/client-authentication.js';
import type { AddressCounter, ExchangeRateLimits } from '../limits/rate-limits.js';
import { countedForm } from './middleware/rate-limit.js';
import { parseForm, readBody } from './middleware/request.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../domain/oauth-identifiers.js';

/** Also exported from here: clients and tests name the identifiers with the endpoint they belong to. */
export { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE };

const TOKEN_PARAMETERS = new Set([
  'grant_type', 'subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope', 'duration_seconds', 'session_name',
  'resource', 'actor_token', 'actor_token_type',
]);

export interface OAuthRouteDependencies {
  exchange: TokenExchange;
  credentials: CredentialService;
  audit: AuditLog;
  maxBodyBytes: number;
  /** Abuse limits on `/oauth2/token`; absent: none. */
  limits?: ExchangeRateLimits;
  /** Who may introspect; absent or without clients: anyone (RFC 7662 §2.1 then relies on the network). */
  introspectionClients?: ClientAuthenticator;
  /** Per-address limit on `/oauth2/introspect`; absent: none. */
  introspectionLimits?: AddressCounter;
  /** The configured targets (an `audience` naming one asks for its token); absent: none. */
  targets?: Pick<TargetTokens, 'byName'>;
}

/** `POST /oauth2/token` (RFC 8693), `/oauth2/introspect` (RFC 7662), `/oauth2/revoke` (RFC 7009). */
export function oauthRoutes(deps: OAuthRouteDependencies): Router {
  const router = new Router({ prefix: '/oauth2' });
  const form = [protocol('oauth'), noStore, readBody(deps.maxBodyBytes), parseForm] as const;
  router.post('/token', protocol('oauth'), noStore, countedForm(deps.limits, deps.maxBodyBytes), tokenExchange(deps));
  // Counted before anything else (unauthenticated requests too: guessing secrets and scanning tokens both
  // cost requests), then the client authenticates (RFC 7662 §2.1), then the token is looked at.
  router.post('/introspect', protocol('oauth'), noStore, countedForm(deps.introspectionLimits, deps.maxBodyBytes), authenticateClient(deps.introspectionClients), introspect(deps));
  // RFC 7009 §2.1 has the client authenticate too; stsgate does not ask it to: revoking needs the token
  // itself, and whoever holds a token may end it (SECURITY.md, "Introspection and revocation").
  router.post('/revoke', ...form, revoke(deps));
  return router;
}

function tokenExchange(deps: OAuthRouteDependencies) {
  return async function exchangeToken(ctx: Context): Promise<void> {
    const form = ctx.state.form as Map<string, string>;
    const grantType = form.get('grant_type');
    if (grantType === undefined) throw new GatewayError('invalid_request', 'grant_type is required.');
    if (grantType !== TOKEN_EXCHANGE_GRANT) throw new GatewayError('unsupported_grant_type', `Only ${TOKEN_EXCHANGE_GRANT} is supported.`);
    for (const name of form.keys()) {
      if (!TOKEN_PARAMETERS.has(name)) throw new GatewayError('invalid_request', `Unknown parameter ${JSON.stringify(name.slice(0, 64))}.`);
    }
    if (form.has('actor_token') || form.has('actor_token_type')) {
      throw new GatewayError('invalid_request', 'Delegation (actor_token) is not supported.');
    }
    // RFC 8693 §2.2.2: invalid_target when the resource is not one stsgate issues for.
    if (form.has('resource')) throw new GatewayError('invalid_target', 'The resource parameter is not supported; name the role as the audience.');
    const subjectToken = form.get('subject_token');
    const subjectTokenType = form.get('subject_token_type');
    if (!subjectToken) throw new GatewayError('invalid_request', 'subject_token is required.');
    if (!subjectTokenType) throw new GatewayError('invalid_request', 'subject_token_type is required.');
    if (subjectToken.length > 20000) throw new GatewayError('invalid_request', 'subject_token is too long.');
    const requested = form.get('requested_token_type');
    if (requested !== undefined && requested !== TOKEN_TYPE.accessToken && requested !== TOKEN_TYPE.jwt && requested !== TOKEN_TYPE.idToken) {
      throw new GatewayError('invalid_request', `requested_token_type must be ${TOKEN_TYPE.accessToken}, ${TOKEN_TYPE.jwt} or ${TOKEN_TYPE.idToken}.`);
    }
    const audience = form.get('audience');
    // A target's token: asked for as an ID token, or as a JWT whose audience names a target (a role named
    // so keeps today's meaning: stsgate's access token as a JWT). Names of roles and targets never clash.
    if (requested === TOKEN_TYPE.idToken || (requested === TOKEN_TYPE.jwt && audience !== undefined && deps.targets?.byName(audience))) {
      await targetTokenExchange(ctx, deps, { subjectToken, subjectTokenType, requested, audience, form });
      return;
    }
    // A broker target as the audience, asked for an access token: the cloud's own credentials.
    const brokerTarget = audience === undefined ? undefined : deps.targets?.byName(audience);
    if (brokerTarget?.broker !== undefined && (requested === undefined || requested === TOKEN_TYPE.accessToken)) {
      await brokeredExchange(ctx, deps, { subjectToken, subjectTokenType, target: brokerTarget.name, form });
      return;
    }
    const scope = form.get('scope');
    const scopes = scope === undefined ? undefined : scope.split(' ').filter((s) => s !== '');
    const role = audience;
    const durationSeconds = parseDuration(form.get('duration_seconds'));
    const sessionName = parseSessionName(form.get('session_name'));

    let result: ExchangeResult;
    if (subjectTokenType === TOKEN_TYPE.idToken || subjectTokenType === TOKEN_TYPE.jwt) {
      result = await deps.audit.decision(ctx, 'TokenExchange', () =>
        deps.exchange.exchangeWebIdentity(subjectToken, {
          ...(role === undefined ? {} : { role }),
          sessionName: sessionName ?? 'oauth-token-exchange',
          ...(durationSeconds === undefined ? {} : { durationSeconds }),
          ...(scopes === undefined ? {} : { scopes }),
        }),
      );
    } else if (subjectTokenType === TOKEN_TYPE.accessToken) {
      result = await deps.audit.decision(ctx, 'TokenExchange', async () => {
        const { session } = await deps.credentials.verifyAccessToken(subjectToken);
        return deps.exchange.chain(session, {
          ...(role === undefined ? {} : { role }),
          sessionName: sessionName ?? session.info.sessionName,
          ...(durationSeconds === undefined ? {} : { durationSeconds }),
          ...(scopes === undefined ? {} : { scopes }),
        });
      });
    } else {
      throw new GatewayError('invalid_request', 'subject_token_type must be an id_token, jwt or access_token token type URI.');
    }
    ctx.body = tokenExchangeJson(result.credentials, result.role, requested ?? TOKEN_TYPE.accessToken);
  };
}

/**
 * RFC 8693 for a target: `audience` names the target, the subject token is any token stsgate accepts.
 * The rules decide as for any exchange (exchange.ts); an unknown target and one not granted are the same
 * invalid_target. Scope, duration and session name belong to stsgate's own sessions: refused here.
 */
async function targetTokenExchange(
  ctx: Context,
  deps: OAuthRouteDependencies,
  request: { subjectToken: string; subjectTokenType: string; requested: string; audience: string | undefined; form: Map<string, string> },
): Promise<void> {
  const { subjectToken, subjectTokenType, requested, audience, form } = request;
  if (audience === undefined) throw new GatewayError('invalid_target', 'audience is required: name the target the token is for.');
  for (const name of ['scope', 'duration_seconds', 'session_name']) {
    if (form.has(name)) throw new GatewayError('invalid_request', `${name} does not apply to a target token (its target's configuration sets its claims and lifetime).`);
  }
  const minted = await deps.audit.targetDecision(ctx, audience, deps.targets?.byName(audience), async () => {
    const subject = await verifiedSubject(deps, subjectToken, subjectTokenType);
    return 'session' in subject ? deps.exchange.targetForSession(subject.session, audience) : deps.exchange.targetForIdentity(subject.identity, audience);
  });
  ctx.body = targetTokenExchangeJson(minted, requested);
}

/** RFC 8693 with a broker target as the audience: the cloud's own credentials (AWS keys, a GCP or Azure access token), from a trusted issuer's JWT or an stsgate access token. */
async function brokeredExchange(ctx: Context, deps: OAuthRouteDependencies, request: { subjectToken: string; subjectTokenType: string; target: string; form: Map<string, string> }): Promise<void> {
  const { subjectToken, subjectTokenType, target, form } = request;
  if (form.has('session_name')) throw new GatewayError('invalid_request', 'session_name does not apply to a broker target (its configuration sets the session).');
  const durationSeconds = parseDuration(form.get('duration_seconds'));
  const scope = form.get('scope');
  const result = await deps.audit.targetDecision(
    ctx,
    target,
    deps.targets?.byName(target),
    async () => {
      const request = { ...(durationSeconds === undefined ? {} : { durationSeconds }), ...(scope === undefined ? {} : { scopes: scope.split(' ').filter((s) => s !== '') }) };
      const subject = await verifiedSubject(deps, subjectToken, subjectTokenType);
      return 'session' in subject ? deps.exchange.brokerForSession(subject.session, target, request) : deps.exchange.brokerForIdentity(subject.identity, target, request);
    },
    'BrokeredCredentials',
  );
  ctx.body = brokeredExchangeJson(result.credentials, target);
}

/** An RFC 8693 subject token for a target: a trusted issuer's JWT (its identity) or an stsgate access token (its live session). */
async function verifiedSubject(deps: OAuthRouteDependencies, token: string, type: string): Promise<{ identity: Identity } | { session: LiveSession }> {
  if (type === TOKEN_TYPE.idToken || type === TOKEN_TYPE.jwt) return { identity: await deps.exchange.verifyWebIdentity(token) };
  if (type === TOKEN_TYPE.accessToken) return { session: (await deps.credentials.verifyAccessToken(token)).session };
  throw new GatewayError('invalid_request', 'subject_token_type must be an id_token, jwt or access_token token type URI.');
}

/** With clients configured, the request's client must authenticate (401 invalid_client otherwise). */
function authenticateClient(clients: ClientAuthenticator | undefined) {
  return async function requireClient(ctx: Context, next: Next): Promise<void> {
    if (clients?.required) {
      ctx.state.client = await clients.authenticate({ authorization: ctx.get('authorization') || undefined, form: ctx.state.form as Map<string, string> });
    }
    await next();
  };
}

function introspect(deps: OAuthRouteDependencies) {
  return async function introspectToken(ctx: Context): Promise<void> {
    const token = (ctx.state.form as Map<string, string>).get('token');
    if (!token) throw new GatewayError('invalid_request', 'token is required.');
    let verified;
    try {
      verified = await deps.credentials.verifyAccessToken(token);
    } catch (err) {
      // RFC 7662 §2.2: anything not a live token is just inactive; store failures still fail as 503.
      if (err instanceof GatewayError && err.status < 500) {
        ctx.body = { active: false };
        return;
      }
      throw err;
    }
    const { payload, session } = verified;
    ctx.body = {
      active: true,
      scope: session.info.scopes.join(' '),
      token_type: 'Bearer',
      sub: payload.sub,
      aud: payload.aud,
      iss: payload.iss,
      exp: payload.exp,
      iat: payload.iat,
      nbf: payload.nbf,
      jti: payload.jti,
      sid: session.info.sessionId,
      role: session.info.role,
      idp: session.info.source,
      username: session.info.sessionName,
    };
  };
}

function revoke(deps: OAuthRouteDependencies) {
  return async function revokeToken(ctx: Context): Promise<void> {
    const token = (ctx.state.form as Map<string, string>).get('token');
    if (!token) throw new GatewayError('invalid_request', 'token is required.');
    const sessionId = await deps.credentials.sessionIdOf(token);
    const found = sessionId === undefined ? false : await deps.credentials.revoke(sessionId);
    deps.audit.revoked(ctx, sessionId, found);
    // RFC 7009 §2.2: 200 whether or not the token was valid, so the endpoint reveals nothing.
    ctx.status = 200;
    ctx.body = '';
  };
}

function parseDuration(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,6}$/.test(value)) throw new GatewayError('invalid_request', 'duration_seconds must be an integer.');
  return Number(value);
}

function parseSessionName(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[\w+=,.@-]{2,64}$/.test(value)) throw new GatewayError('invalid_request', 'session_name must be 2 to 64 characters of [\\w+=,.@-].');
  return value;
}
