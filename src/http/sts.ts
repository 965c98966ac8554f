import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { awsCredentialsXml } from '../credentials/credential-formats.js';
import type { CredentialService } from '../credentials/credential-service.js';
import { verifySigV4 } from '../credentials/sigv4.js';
import type { ExchangeResult, TokenExchange } from '../credentials/exchange.js';
import type { RoleCatalog } from '../domain/role-catalog.js';
import type { Identity } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { ExchangeRateLimits } from '../limits/rate-limits.js';
import { STS_NAMESPACE, xmlElement } from '../errors/serialize.js';
import type { Protocol } from './middleware/errors.js';
import { countedForm } from './middleware/rate-limit.js';
import type { AuditLog } from '../observability/audit.js';

/** The one STS API version there is. */
const STS_VERSION = '2011-06-15';

/** Parameters stsgate understands per action; anything else is refused rather than silently ignored. */
const ACTION_PARAMETERS: Record<string, ReadonlySet<string>> = {
  AssumeRoleWithWebIdentity: new Set(['RoleArn', 'RoleSessionName', 'WebIdentityToken', 'DurationSeconds']),
  AssumeRole: new Set(['RoleArn', 'RoleSessionName', 'DurationSeconds']),
  GetCallerIdentity: new Set(),
};

/** Parameters AWS accepts that stsgate cannot honour; refusing them beats granting more than they would. */
const UNSUPPORTED = /^(Policy|PolicyArns\..*|Tags\..*|TransitiveTagKeys\..*|ProviderId|SourceIdentity|ExternalId|SerialNumber|TokenCode|ProvidedContexts\..*)$/;

export interface StsRouteDependencies {
  exchange: TokenExchange;
  credentials: CredentialService;
  roles: RoleCatalog;
  audit: AuditLog;
  maxBodyBytes: number;
  /** Abuse limits; absent: none. */
  limits?: ExchangeRateLimits;
}

/** `POST /` and `POST /sts`: the AWS STS Query API. */
export function stsRoutes(deps: StsRouteDependencies): Router {
  const router = new Router();
  const handlers = [awsProtocol, countedForm(deps.limits, deps.maxBodyBytes), checkAction(deps), dispatch(deps)];
  router.post('/', ...handlers);
  router.post('/sts', ...handlers);
  return router;
}

/** Errors below in AWS's XML, and the request id under AWS's header name too. */
async function awsProtocol(ctx: Context, next: Next): Promise<void> {
  ctx.state.protocol = 'aws' satisfies Protocol;
  ctx.set('x-amzn-RequestId', String(ctx.state.requestId));
  await next();
}

/** Session policies: passed to AWS on a broker target's role, refused on stsgate's own credentials. */
const SESSION_POLICY = /^(Policy|PolicyArns\.member\.([1-9]|10)\.arn)$/;

/**
 * Action and Version first, then only the parameters the action takes. Session policies are taken only
 * by `AssumeRoleWithWebIdentity` for a broker target's role (AWS then intersects them with the role's);
 * stsgate's own credentials cannot honour them, and refusing beats granting more than they would.
 */
function checkAction(deps: StsRouteDependencies) {
  return async function checkParameters(ctx: Context, next: Next): Promise<void> {
    const form = ctx.state.form as Map<string, string>;
    const action = form.get('Action');
    const version = form.get('Version');
    const allowed = action === undefined ? undefined : ACTION_PARAMETERS[action];
    if (!allowed || !Object.hasOwn(ACTION_PARAMETERS, action!) || version !== STS_VERSION) {
      const shown = (action ?? '').slice(0, 64);
      throw new GatewayError('InvalidAction', `Could not find operation ${shown} for version ${(version ?? 'NO_VERSION_SPECIFIED').slice(0, 32)}`);
    }
    const brokered = action === 'AssumeRoleWithWebIdentity' && deps.exchange.isBrokeredRoleArn(form.get('RoleArn') ?? '');
    for (const name of form.keys()) {
      if (name === 'Action' || name === 'Version' || allowed.has(name) || (brokered && SESSION_POLICY.test(name))) continue;
      const shown = name.slice(0, 64);
      if (UNSUPPORTED.test(name)) throw new GatewayError('ValidationError', `The parameter ${shown} is not supported by stsgate${SESSION_POLICY.test(name) ? ' for this role (only for a broker target\'s AWS role)' : ''}.`);
      throw new GatewayError('ValidationError', `Unknown parameter ${shown} for ${action}.`);
    }
    await next();
  };
}

function dispatch(deps: StsRouteDependencies) {
  return async function runAction(ctx: Context): Promise<void> {
    const form = ctx.state.form as Map<string, string>;
    switch (form.get('Action')) {
      case 'AssumeRoleWithWebIdentity':
        return assumeRoleWithWebIdentity(ctx, form, deps);
      case 'AssumeRole':
        return assumeRole(ctx, form, deps);
      case 'GetCallerIdentity':
        return getCallerIdentity(ctx, deps);
    }
  };
}

async function assumeRoleWithWebIdentity(ctx: Context, form: Map<string, string>, deps: StsRouteDependencies): Promise<void> {
  const roleArn = requireParam(form, 'RoleArn', 'roleArn', 20, 2048);
  const sessionName = requireSessionName(form);
  const token = requireParam(form, 'WebIdentityToken', 'webIdentityToken', 4, 20000, { echo: false });
  const durationSeconds = optionalDuration(form);
  if (deps.exchange.isBrokeredRoleArn(roleArn)) return brokeredWebIdentity(ctx, deps, { roleArn, token, durationSeconds, ...sessionPoliciesOf(form) });
  const result = await deps.audit.decision(ctx, 'AssumeRoleWithWebIdentity', () =>
    deps.exchange.exchangeWebIdentity(token, { role: roleArn, sessionName, ...(durationSeconds === undefined ? {} : { durationSeconds }) }),
  );
  const identity = result.identity;
  respond(
    ctx,
    'AssumeRoleWithWebIdentity',
    xmlElement('SubjectFromWebIdentityToken', identity.subject) +
      (result.audience === undefined ? '' : xmlElement('Audience', result.audience)) +
      assumedRoleUser(result, deps) +
      awsCredentialsXml(result.credentials) +
      xmlElement('Provider', providerOf(identity)),
  );
}

/**
 * `AssumeRoleWithWebIdentity` whose RoleArn is a broker target's real AWS role: the rules decide as for
 * any target, then stsgate's broker asks AWS, and the answer carries AWS's own credentials. A workload
 * whose SDK has `AWS_ENDPOINT_URL_STS` pointed at stsgate thus gets real keys, with stsgate's rules and
 * tags in between. (The caller's RoleSessionName is not passed on: the broker's session_name template
 * names the session, so that AWS's CloudTrail shows what stsgate vouches for.)
 */
async function brokeredWebIdentity(
  ctx: Context,
  deps: StsRouteDependencies,
  request: { roleArn: string; token: string; durationSeconds: number | undefined; policy?: string; policyArns?: string[] },
): Promise<void> {
  const { roleArn, token, durationSeconds, ...policies } = request;
  const result = await deps.audit.targetDecision(
    ctx,
    roleArn,
    undefined,
    () => deps.exchange.brokerForWebIdentity(token, roleArn, { ...(durationSeconds === undefined ? {} : { durationSeconds }), ...policies }),
    'BrokeredCredentials',
  );
  const { credentials, identity } = result;
  // Only aws targets are found by RoleArn; anything else here is a bug, refused rather than rendered.
  if (credentials.cloud !== 'aws') throw new GatewayError('InternalFailure', 'An internal error occurred.', { debug: `target ${result.target.name} answered ${credentials.cloud} credentials to the STS API` });
  respond(
    ctx,
    'AssumeRoleWithWebIdentity',
    xmlElement('SubjectFromWebIdentityToken', identity.subject) +
      (credentials.assumedRoleArn !== undefined ? `<AssumedRoleUser>${xmlElement('Arn', credentials.assumedRoleArn)}${xmlElement('AssumedRoleId', credentials.assumedRoleId ?? '')}</AssumedRoleUser>` : '') +
      awsCredentialsXml(credentials) +
      xmlElement('Provider', providerOf(identity)),
  );
}

async function assumeRole(ctx: Context, form: Map<string, string>, deps: StsRouteDependencies): Promise<void> {
  const roleArn = requireParam(form, 'RoleArn', 'roleArn', 20, 2048);
  const sessionName = requireSessionName(form);
  const durationSeconds = optionalDuration(form);
  const result = await deps.audit.decision(ctx, 'AssumeRole', async () => {
    const caller = await verifySigV4(signedRequest(ctx), deps.credentials);
    return deps.exchange.chain(caller, { role: roleArn, sessionName, ...(durationSeconds === undefined ? {} : { durationSeconds }) });
  });
  respond(ctx, 'AssumeRole', assumedRoleUser(result, deps) + awsCredentialsXml(result.credentials));
}

async function getCallerIdentity(ctx: Context, deps: StsRouteDependencies): Promise<void> {
  const caller = await verifySigV4(signedRequest(ctx), deps.credentials);
  const role = deps.roles.byName(caller.info.role);
  respond(
    ctx,
    'GetCallerIdentity',
    xmlElement('Arn', deps.credentials.assumedRoleArn(caller.info)) +
      xmlElement('UserId', `${role?.id ?? 'AROA'}:${caller.info.sessionName}`) +
      xmlElement('Account', deps.roles.accountId),
  );
}

function signedRequest(ctx: Context) {
  return { method: ctx.method, path: ctx.path, querystring: ctx.querystring, headers: ctx.headers, body: ctx.state.rawBody as Buffer };
}

function assumedRoleUser(result: ExchangeResult, deps: StsRouteDependencies): string {
  const info = result.credentials.session;
  return `<AssumedRoleUser>${xmlElement('Arn', deps.credentials.assumedRoleArn(info))}${xmlElement('AssumedRoleId', `${result.role.id}:${info.sessionName}`)}</AssumedRoleUser>`;
}

function respond(ctx: Context, action: string, resultXml: string): void {
  ctx.type = 'text/xml';
  ctx.set('Cache-Control', 'no-store');
  ctx.body =
    `<${action}Response xmlns="${STS_NAMESPACE}">\n` +
    `  <${action}Result>${resultXml}</${action}Result>\n` +
    `  <ResponseMetadata>${xmlElement('RequestId', String(ctx.state.requestId))}</ResponseMetadata>\n` +
    `</${action}Response>\n`;
}

/** `<Provider>`: the issuer of the web identity token (its `iss`), else the configured source id. */
function providerOf(identity: Identity): string {
  return typeof identity.claims.iss === 'string' ? identity.claims.iss : identity.source;
}

/** `Policy` and `PolicyArns.member.N.arn` as AWS's Query API sends them (AWS checks their content). */
function sessionPoliciesOf(form: Map<string, string>): { policy?: string; policyArns?: string[] } {
  const policy = form.get('Policy');
  if (policy !== undefined && (policy.length < 1 || policy.length > 2048)) throw validationError('policy', `<${policy.length} characters>`, 'Member must have length between 1 and 2048');
  const policyArns: string[] = [];
  for (let n = 1; n <= 10; n++) {
    const arn = form.get(`PolicyArns.member.${n}.arn`);
    if (arn === undefined) continue;
    if (arn.length < 20 || arn.length > 2048) throw validationError('policyArns', arn.slice(0, 64), 'Member must have length between 20 and 2048');
    policyArns.push(arn);
  }
  return { ...(policy !== undefined ? { policy } : {}), ...(policyArns.length > 0 ? { policyArns } : {}) };
}

/** AWS's validation messages: "1 validation error detected: Value ... at 'field' failed to satisfy constraint: ...". */
function validationError(field: string, value: string | undefined, constraint: string): GatewayError {
  const shown = value === undefined ? 'null' : `'${value}'`;
  return new GatewayError('ValidationError', `1 validation error detected: Value ${shown} at '${field}' failed to satisfy constraint: ${constraint}`);
}

function requireParam(form: Map<string, string>, name: string, field: string, min: number, max: number, { echo = true } = {}): string {
  const value = form.get(name);
  if (value === undefined) throw validationError(field, undefined, 'Member must not be null');
  if (value.length < min || value.length > max) {
    // A token is never echoed back, not even a malformed one.
    const shown = echo && value.length <= 256 ? value : `<${value.length} characters>`;
    throw validationError(field, shown, `Member must have length between ${min} and ${max}`);
  }
  return value;
}

const SESSION_NAME = /^[\w+=,.@-]*$/;

function requireSessionName(form: Map<string, string>): string {
  const value = requireParam(form, 'RoleSessionName', 'roleSessionName', 2, 64);
  if (!SESSION_NAME.test(value)) throw validationError('roleSessionName', value, 'Member must satisfy regular expression pattern: [\\w+=,.@-]*');
  return value;
}

function optionalDuration(form: Map<string, string>): number | undefined {
  const value = form.get('DurationSeconds');
  if (value === undefined) return undefined;
  if (!/^\d{1,6}$/.test(value)) throw validationError('durationSeconds', value.slice(0, 32), 'Member must be an integer');
  const seconds = Number(value);
  if (seconds < 900 || seconds > 43200) throw validationError('durationSeconds', value, 'Member must have value between 900 and 43200');
  return seconds;
}
