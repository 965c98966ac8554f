/**
 * GCP for the broker, with Google's own client library (google-auth-library): workload identity
 * federation's STS token exchange with stsgate's target token as the subject token (an
 * `IdentityPoolClient` whose subject token supplier hands it over), then, with a service account, the
 * IAM Credentials API's `generateAccessToken` (scopes and lifetime); with an access boundary the token is
 * downscoped by one more STS exchange (Credential Access Boundary).
 *
 * A new client per call: the library caches its token per client, and a client shared across
 * identities would hand one identity's token to the next. Gaxios retries what Google documents as
 * retryable (429 and 5xx) with exponential backoff, twice at most; every request is bounded by the
 * broker's timeout. A 4xx is Google refusing: relayed with Google's own error; anything else is
 * ServiceUnavailable.
 */
import { IdentityPoolClient } from 'google-auth-library';
import { StsCredentials } from 'google-auth-library/build/src/auth/stscredentials.js';
import type { Identity, Role } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { GcpBrokerSpec, TargetSpec } from '../rules/target-claims.js';
import { brokerDuration, type BrokerRequest, type Fetched, type Upstream } from './broker.js';

const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** GCP's documented shortest generateAccessToken lifetime is one second; stsgate asks for at least a minute. */
const MIN_LIFETIME_SECONDS = 60;
/** A federated token (no service account) lives an hour at most. */
const FEDERATED_LIFETIME_SECONDS = 3_600;

interface GcpCall {
  lifetimeSeconds: number;
  scopes: readonly string[];
}

export class GcpUpstream implements Upstream<GcpBrokerSpec, GcpCall> {
  prepare(target: TargetSpec, spec: GcpBrokerSpec, role: Role, _identity: Identity, request: BrokerRequest): GcpCall {
    if (request.policy !== undefined || (request.policyArns?.length ?? 0) > 0) throw new GatewayError('ValidationError', `Session policies do not apply to GCP target ${target.name} (scopes do).`);
    const scopes = request.scopes ?? spec.scopes;
    const extra = scopes.filter((scope) => !spec.scopes.includes(scope));
    if (extra.length > 0) throw new GatewayError('invalid_scope', `Target ${target.name} does not grant the scope ${extra.join(' ')}.`);
    if (scopes.length === 0) throw new GatewayError('invalid_scope', `Ask target ${target.name} for at least one scope.`);
    const max = Math.min(spec.serviceAccount !== undefined ? spec.lifetimeSeconds : FEDERATED_LIFETIME_SECONDS, role.maxSessionSeconds);
    if (spec.serviceAccount === undefined && request.durationSeconds !== undefined) {
      throw new GatewayError('ValidationError', `Target ${target.name} hands out GCP's federated token, whose lifetime GCP sets; a duration needs a service account.`);
    }
    return { lifetimeSeconds: brokerDuration(request.durationSeconds, MIN_LIFETIME_SECONDS, max), scopes: [...new Set(scopes)].sort() };
  }

  endpointOf(spec: GcpBrokerSpec): string {
    return `gcp ${spec.tokenUrl}`;
  }

  async call(target: TargetSpec, spec: GcpBrokerSpec, token: string, call: GcpCall): Promise<Fetched> {
    const transporterOptions = {
      timeout: spec.timeoutSeconds * 1000,
      // Deep-merged with each request's own retry settings: twice at most, only what Google says to retry.
      retryConfig: { retry: 2, noResponseRetries: 1, statusCodesToRetry: [[429, 429], [500, 599]] },
    };
    const client = new IdentityPoolClient({
      type: 'external_account',
      audience: spec.audience,
      subject_token_type: JWT_TOKEN_TYPE,
      token_url: spec.tokenUrl,
      subject_token_supplier: { getSubjectToken: async () => token },
      scopes: [...call.scopes],
      ...(spec.serviceAccount !== undefined
        ? {
            service_account_impersonation_url: `${spec.iamCredentialsUrl}/v1/projects/-/serviceAccounts/${spec.serviceAccount}:generateAccessToken`,
            service_account_impersonation: { token_lifetime_seconds: call.lifetimeSeconds },
          }
        : {}),
      transporterOptions,
    });
    // The client's STS exchange has a transporter of its own, without these options (no timeout, three
    // retries of anything): it gets the client's.
    const exchange = (client as unknown as { stsCredential?: { transporter?: unknown } }).stsCredential;
    if (exchange?.transporter === undefined) throw new GatewayError('InternalFailure', 'An internal error occurred.', { debug: 'google-auth-library: IdentityPoolClient has no stsCredential.transporter' });
    exchange.transporter = client.transporter;
    let accessToken: string;
    let expiresAtMs: number | null | undefined;
    try {
      accessToken = (await client.getAccessToken()).token ?? '';
      expiresAtMs = client.credentials.expiry_date;
      if (spec.accessBoundary !== undefined && accessToken !== '') {
        const sts = new StsCredentials({ tokenExchangeEndpoint: spec.tokenUrl, transporter: client.transporter });
        const downscoped = await sts.exchangeToken(
          { grantType: TOKEN_EXCHANGE_GRANT, requestedTokenType: ACCESS_TOKEN_TYPE, subjectToken: accessToken, subjectTokenType: ACCESS_TOKEN_TYPE },
          undefined,
          spec.accessBoundary as unknown as Parameters<StsCredentials['exchangeToken']>[2],
        );
        accessToken = downscoped.access_token ?? '';
        // GCP returns the downscoped token's lifetime only for service accounts; it never outlives its source.
        if (downscoped.expires_in) expiresAtMs = Math.min(expiresAtMs ?? Infinity, Date.now() + downscoped.expires_in * 1000);
      }
    } catch (err) {
      throw gcpError(target, err);
    }
    if (accessToken === '' || typeof expiresAtMs !== 'number' || !Number.isFinite(expiresAtMs)) {
      throw new GatewayError('ServiceUnavailable', `GCP answered without an access token and its expiry for target ${target.name}.`);
    }
    return {
      cloud: 'gcp',
      accessToken,
      scopes: call.scopes,
      expiresAt: new Date(expiresAtMs),
      ...(spec.serviceAccount !== undefined ? { principal: spec.serviceAccount } : {}),
    };
  }
}

/** Google's 4xx with its own error (OAuth `error`, or the API's `status`); anything else ServiceUnavailable. */
function gcpError(target: TargetSpec, err: unknown): GatewayError {
  const response = (err as { response?: { status?: number; data?: unknown } }).response;
  const status = response?.status;
  const debug = `GCP for target ${target.name}: ${(err as Error).name}: ${(err as Error).message}`;
  if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
    const data = (response?.data ?? {}) as { error?: unknown; error_description?: unknown };
    // STS answers OAuth errors ({error, error_description}); the IAM Credentials API Google's ({error: {status, message}}).
    const apiError = typeof data.error === 'object' && data.error !== null ? (data.error as { status?: unknown; message?: unknown }) : undefined;
    const code = String(apiError?.status ?? data.error ?? 'refused').slice(0, 64);
    const description = String(apiError?.message ?? data.error_description ?? '').slice(0, 300);
    return new GatewayError('AccessDenied', `GCP refused the credentials for target ${target.name} (HTTP ${status} ${code})${description ? `: ${description}` : ''}`, {
      debug,
      oauthCode: 'invalid_grant',
    });
  }
  return new GatewayError('ServiceUnavailable', `GCP could not be reached for target ${target.name}.`, { debug, status: 503 });
}
