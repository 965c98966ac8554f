/**
 * Azure for the broker, with Microsoft's own client library (@azure/identity's
 * `ClientAssertionCredential`, MSAL underneath): Entra ID's client credentials grant with stsgate's target
 * token as the client assertion, for one `.default` scope. Entra ID matches the token's issuer, subject
 * and audience against the application's federated identity credential.
 *
 * A new credential per call: MSAL caches tokens per client application, not per assertion, and a
 * credential shared across identities would hand one identity's token to the next. The pipeline's
 * retry policy honours Retry-After on 429 and backs off on 5xx, twice at most; the whole call is bounded
 * by the broker's timeout. Entra ID's refusal (AADSTS codes) is relayed; anything else is ServiceUnavailable.
 */
import { AuthenticationError, ClientAssertionCredential } from '@azure/identity';
import type { Identity, Role } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { AzureBrokerSpec, TargetSpec } from '../rules/target-claims.js';
import { withDeadline, type BrokerRequest, type Fetched, type Upstream } from './broker.js';

/** Microsoft's public authority hosts, where MSAL's instance discovery applies; any other host is trusted as configured. */
const MICROSOFT_AUTHORITY_HOSTS = new Set(['https://login.microsoftonline.com', 'https://login.microsoftonline.us', 'https://login.chinacloudapi.cn']);
/** Entra ID's access tokens live 60 to 90 minutes (a day with a token lifetime policy); longer fails closed. */
const AZURE_MAX_LIFETIME_SECONDS = 86_400;

interface AzureCall {
  lifetimeSeconds: number;
  scope: string;
}

export class AzureUpstream implements Upstream<AzureBrokerSpec, AzureCall> {
  prepare(target: TargetSpec, spec: AzureBrokerSpec, _role: Role, _identity: Identity, request: BrokerRequest): AzureCall {
    if (request.policy !== undefined || (request.policyArns?.length ?? 0) > 0) throw new GatewayError('ValidationError', `Session policies do not apply to Azure target ${target.name} (scopes do).`);
    if (request.durationSeconds !== undefined) throw new GatewayError('ValidationError', `Entra ID sets the lifetime of target ${target.name}'s tokens; a duration does not apply.`);
    const scopes = request.scopes ?? [spec.scopes[0]!];
    if (scopes.length !== 1) throw new GatewayError('invalid_scope', `Ask target ${target.name} for one scope (a resource's .default scope), not ${scopes.length}.`);
    if (!spec.scopes.includes(scopes[0]!)) throw new GatewayError('invalid_scope', `Target ${target.name} does not grant the scope ${scopes[0]}.`);
    return { lifetimeSeconds: AZURE_MAX_LIFETIME_SECONDS, scope: scopes[0]! };
  }

  endpointOf(spec: AzureBrokerSpec): string {
    return `azure ${spec.authorityHost}`;
  }

  async call(target: TargetSpec, spec: AzureBrokerSpec, token: string, call: AzureCall): Promise<Fetched> {
    const credential = new ClientAssertionCredential(spec.tenantId, spec.clientId, async () => token, {
      authorityHost: spec.authorityHost,
      disableInstanceDiscovery: !MICROSOFT_AUTHORITY_HOSTS.has(spec.authorityHost),
      retryOptions: { maxRetries: 2, maxRetryDelayInMs: spec.timeoutSeconds * 1000 },
      ...(spec.ca !== undefined ? { tlsOptions: { ca: spec.ca } } : {}),
    });
    let answer;
    try {
      // MSAL's requests do not take the abort signal: the deadline is kept here as well.
      answer = await withDeadline(credential.getToken(call.scope, { abortSignal: AbortSignal.timeout(spec.timeoutSeconds * 1000) }), spec.timeoutSeconds * 1000);
    } catch (err) {
      throw azureError(target, err);
    }
    if (!answer?.token || !Number.isFinite(answer.expiresOnTimestamp)) {
      throw new GatewayError('ServiceUnavailable', `Entra ID answered without an access token for target ${target.name}.`);
    }
    return { cloud: 'azure', accessToken: answer.token, scopes: [call.scope], expiresAt: new Date(answer.expiresOnTimestamp), principal: spec.clientId };
  }
}

/** OAuth errors that mean Entra ID refused the request (RFC 6749 §5.2); any other answer is Entra ID failing. */
const REFUSALS = new Set(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'invalid_target']);

/**
 * Entra ID's refusal relayed with its OAuth error and AADSTS code; anything else ServiceUnavailable.
 * @azure/identity hands MSAL's server errors on as AuthenticationRequiredError whose message is MSAL's
 * `<error>: Error(s): <AADSTS codes> - Timestamp: … - Description: … - Correlation ID: …` (no status):
 * that text is all there is to read.
 */
function azureError(target: TargetSpec, err: unknown): GatewayError {
  const message = err instanceof Error ? err.message : String(err);
  const debug = `Entra ID for target ${target.name}: ${err instanceof Error ? err.name : 'error'}: ${message}`.slice(0, 2_000);
  const refusal = /^(\w+): Error\(s\): ([\d, ]+) - .*?Description: (AADSTS\d+: [^\n]*?)(?: Trace ID: | - Correlation ID: |$)/s.exec(message);
  const structured = err instanceof AuthenticationError && err.statusCode >= 400 && err.statusCode < 500 && err.statusCode !== 429 ? err.errorResponse : undefined;
  const code = refusal?.[1] ?? structured?.error;
  if (code !== undefined && REFUSALS.has(code)) {
    const description = (refusal?.[3] ?? structured?.errorDescription ?? '').split(/\r?\n/)[0]!.slice(0, 300);
    return new GatewayError('AccessDenied', `Entra ID refused the credentials for target ${target.name} (${code})${description ? `: ${description}` : ''}`, { debug, oauthCode: 'invalid_grant' });
  }
  return new GatewayError('ServiceUnavailable', `Entra ID could not be reached for target ${target.name}.`, { debug, status: 503 });
}
