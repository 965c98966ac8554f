/**
 * AWS for the broker: AssumeRoleWithWebIdentity with AWS's own client (`@aws-sdk/client-sts`, which needs
 * no AWS keys of stsgate's). The SDK's standard retry strategy retries only what AWS marks retryable
 * (throttling, transient errors), with jittered backoff, at most MAX_ATTEMPTS times. What AWS refuses is
 * relayed with AWS's code (AccessDenied, InvalidIdentityToken, ...); a network failure, a timeout or an
 * AWS 5xx is ServiceUnavailable.
 */
import { AssumeRoleWithWebIdentityCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import type { Identity, Role } from '../domain/types.js';
import { ERROR_CODES, GatewayError, type ErrorCode } from '../errors/gateway-error.js';
import { AWS_ROLE_SESSION_NAME, renderTemplate, TargetProblem, type AwsBrokerSpec, type TargetSpec } from '../rules/target-claims.js';
import { brokerDuration, type BrokerRequest, type Fetched, type Upstream } from './broker.js';

/** The longest wait for a connection to AWS STS (the whole call: `broker.timeout_seconds`). */
const CONNECT_TIMEOUT_MS = 3_000;
/** One call and at most two retries of what AWS marks retryable. */
const MAX_ATTEMPTS = 3;
/** AWS's shortest role session. */
const MIN_DURATION_SECONDS = 900;

interface AwsCall {
  lifetimeSeconds: number;
  sessionName: string;
  policy?: string;
  policyArns: readonly string[];
}

export class AwsUpstream implements Upstream<AwsBrokerSpec, AwsCall> {
  readonly #clientFor: (spec: AwsBrokerSpec) => STSClient;
  readonly #clients = new Map<string, STSClient>();

  /** `clientFor`: builds the STS client for a broker (tests may pass their own); default: the SDK's with bounded timeouts. */
  constructor(clientFor: (spec: AwsBrokerSpec) => STSClient = defaultClient) {
    this.#clientFor = clientFor;
  }

  prepare(target: TargetSpec, spec: AwsBrokerSpec, role: Role, identity: Identity, request: BrokerRequest): AwsCall {
    if (request.scopes !== undefined) throw new GatewayError('ValidationError', `Scopes do not apply to AWS target ${target.name} (session policies do).`);
    return {
      lifetimeSeconds: brokerDuration(request.durationSeconds, MIN_DURATION_SECONDS, Math.min(spec.durationSeconds, role.maxSessionSeconds)),
      sessionName: roleSessionName(spec, target, identity, role),
      ...sessionPolicies(target, spec, request),
    };
  }

  endpointOf(spec: AwsBrokerSpec): string {
    return `aws ${spec.region} ${spec.endpoint ?? ''}`;
  }

  async call(target: TargetSpec, spec: AwsBrokerSpec, token: string, call: AwsCall): Promise<Fetched> {
    let answer;
    try {
      answer = await this.#client(spec).send(
        new AssumeRoleWithWebIdentityCommand({
          RoleArn: spec.roleArn,
          RoleSessionName: call.sessionName,
          WebIdentityToken: token,
          DurationSeconds: call.lifetimeSeconds,
          ...(call.policy !== undefined ? { Policy: call.policy } : {}),
          ...(call.policyArns.length > 0 ? { PolicyArns: call.policyArns.map((arn) => ({ arn })) } : {}),
        }),
      );
    } catch (err) {
      throw upstreamError(target, err);
    }
    const credentials = answer.Credentials;
    if (!credentials?.AccessKeyId || !credentials.SecretAccessKey || !credentials.SessionToken || !(credentials.Expiration instanceof Date)) {
      throw new GatewayError('ServiceUnavailable', `AWS STS answered without credentials for target ${target.name}.`, { debug: `request ${answer.$metadata.requestId ?? '?'}` });
    }
    return {
      cloud: 'aws',
      accessKeyId: credentials.AccessKeyId,
      secretAccessKey: credentials.SecretAccessKey,
      sessionToken: credentials.SessionToken,
      expiresAt: credentials.Expiration,
      ...(answer.AssumedRoleUser?.Arn ? { assumedRoleArn: answer.AssumedRoleUser.Arn } : {}),
      ...(answer.AssumedRoleUser?.AssumedRoleId ? { assumedRoleId: answer.AssumedRoleUser.AssumedRoleId } : {}),
      ...(answer.$metadata.requestId ? { upstreamRequestId: answer.$metadata.requestId } : {}),
    };
  }

  #client(spec: AwsBrokerSpec): STSClient {
    const key = `${spec.region} ${spec.endpoint ?? ''} ${spec.timeoutSeconds}`;
    let client = this.#clients.get(key);
    if (!client) {
      client = this.#clientFor(spec);
      this.#clients.set(key, client);
    }
    return client;
  }
}

/**
 * The session policies AWS gets: the target's own when it fixes any (then a caller's are refused: AWS
 * combines several session policies, and a caller's could only be checked against the target's by AWS),
 * else the caller's.
 */
function sessionPolicies(target: TargetSpec, spec: AwsBrokerSpec, request: BrokerRequest): { policy?: string; policyArns: readonly string[] } {
  const fixed = spec.policy !== undefined || spec.policyArns.length > 0;
  const asked = request.policy !== undefined || (request.policyArns?.length ?? 0) > 0;
  if (fixed && asked) throw new GatewayError('ValidationError', `Target ${target.name} fixes the session policy; a request may not add one.`);
  if (fixed) return { ...(spec.policy !== undefined ? { policy: spec.policy } : {}), policyArns: spec.policyArns };
  return { ...(request.policy !== undefined ? { policy: request.policy } : {}), policyArns: request.policyArns ?? [] };
}

/** The SDK's STS client for a broker: its region and endpoint, bounded timeouts, the standard retry strategy. */
function defaultClient(spec: AwsBrokerSpec): STSClient {
  return new STSClient({
    region: spec.region,
    ...(spec.endpoint !== undefined ? { endpoint: spec.endpoint } : {}),
    maxAttempts: MAX_ATTEMPTS,
    // throwOnRequestTimeout: without it the SDK only warns and keeps waiting.
    requestHandler: { connectionTimeout: Math.min(CONNECT_TIMEOUT_MS, spec.timeoutSeconds * 1000), requestTimeout: spec.timeoutSeconds * 1000, throwOnRequestTimeout: true },
  });
}

/** RoleSessionName: the template rendered, characters AWS refuses replaced by "-", cut to 64. */
function roleSessionName(spec: AwsBrokerSpec, target: TargetSpec, identity: Identity, role: Role): string {
  let name: string;
  try {
    name = renderTemplate(spec.sessionName, { identity, role: role.name }, `target ${target.name}: broker.session_name`);
  } catch (err) {
    if (err instanceof TargetProblem) throw new GatewayError('ValidationError', err.message);
    throw err;
  }
  const cleaned = name.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
  if (!AWS_ROLE_SESSION_NAME.test(cleaned)) throw new GatewayError('ValidationError', `target ${target.name}: the role session name must be 2..64 characters of [\\w+=,.@-]`);
  return cleaned;
}

/** AWS's refusal with AWS's code and status; anything else (network, timeout, 5xx) ServiceUnavailable. */
function upstreamError(target: TargetSpec, err: unknown): GatewayError {
  const requestId = (err as { $metadata?: { requestId?: string } }).$metadata?.requestId;
  const debug = `AWS STS for target ${target.name}${requestId ? ` (request ${requestId})` : ''}: ${(err as Error).name}: ${(err as Error).message}`;
  if (err instanceof STSServiceException && err.$fault === 'client') {
    // The SDK names modeled errors `<Code>Exception` (InvalidIdentityTokenException); AccessDenied stays as is.
    const code = [err.name, err.name.replace(/Exception$/, '')].find((name): name is ErrorCode => Object.hasOwn(ERROR_CODES, name)) ?? 'AccessDenied';
    // Under RFC 8693 the cloud refusing the grant stsgate vouched for is invalid_grant (RFC 6749 §5.2).
    return new GatewayError(code, `AWS refused the credentials for target ${target.name}: ${err.message}`, {
      debug,
      oauthCode: 'invalid_grant',
      ...(err.$metadata.httpStatusCode ? { status: err.$metadata.httpStatusCode } : {}),
    });
  }
  return new GatewayError('ServiceUnavailable', `AWS STS could not be reached for target ${target.name}.`, { debug, status: 503 });
}
