/**
 * The AWS broker (issue 13, first slice): for an `aws` target with a `broker` block, stsgate trades its
 * own target token for real AWS credentials with AWS's own client (`@aws-sdk/client-sts`
 * AssumeRoleWithWebIdentity, which needs no AWS keys of stsgate's), and caches them like its own:
 * sealed in the store (AES-GCM bound to the record's key), reused while at least half their lifetime
 * remains, never past their expiry, shared by replicas, dropped for a subject a revocation watermark
 * covers. Concurrent identical requests in one process make one call to AWS.
 *
 * What AWS refuses is relayed with AWS's code (AccessDenied, InvalidIdentityToken, ...); a network
 * failure, a timeout or an AWS 5xx is ServiceUnavailable. Nothing is cached on failure. The SDK's
 * standard retry strategy retries only what AWS marks retryable (throttling, transient errors), with
 * jittered backoff, at most `maxAttempts` times.
 */
import { createHash } from 'node:crypto';
import { AssumeRoleWithWebIdentityCommand, STSClient, STSServiceException } from '@aws-sdk/client-sts';
import type { Identity, Role } from '../domain/types.js';
import { ERROR_CODES, GatewayError, type ErrorCode } from '../errors/gateway-error.js';
import { AWS_ROLE_SESSION_NAME, renderTemplate, TargetProblem, type AwsBrokerSpec, type TargetSpec } from '../rules/target-claims.js';
import { storeKeys } from '../store/keys.js';
import { guardStore } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { RevocationWatermarks } from './revocations.js';
import type { SecretBox } from './secret-box.js';
import type { TargetTokens } from './target-tokens.js';

/** Real AWS credentials for one identity and target. */
export interface BrokeredCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiresAt: Date;
  issuedAt: Date;
  /** `arn:aws:sts::<account>:assumed-role/<role>/<session>`, as AWS answered. */
  assumedRoleArn?: string;
  assumedRoleId?: string;
  /** AWS's request id of the call that fetched them (the audit line names it). */
  upstreamRequestId?: string;
  cached: boolean;
}

export interface AwsBrokerOptions {
  store: Store;
  box: SecretBox;
  targets: Pick<TargetTokens, 'mint' | 'preview'>;
  revocations?: RevocationWatermarks;
  /** Builds the STS client for a broker (tests may pass their own); default: the SDK's with bounded timeouts. */
  clientFor?: (broker: AwsBrokerSpec) => STSClient;
  now?: () => number;
}

/** What the cache holds (JSON), besides the sealed secrets. */
interface StoredBrokered {
  sealed: string;
  issuedAtMs: number;
  expiresAtMs: number;
}

/** The longest wait for a connection to AWS STS (the whole call: `broker.timeout_seconds`). */
const CONNECT_TIMEOUT_MS = 3_000;
/** Consecutive failed calls (AWS down, slow, 5xx) that open an endpoint's circuit, and how long it stays open. */
export const CIRCUIT_FAILURES = 5;
export const CIRCUIT_OPEN_MS = 30_000;

/** What a caller may ask of a broker: a shorter session, and session policies (AWS intersects them with the role's). */
export interface BrokerRequest {
  /** Epoch seconds: the end of the session the request came from. */
  notAfter?: number;
  durationSeconds?: number;
  /** A session policy (JSON text) and managed policy ARNs, passed to AWS. */
  policy?: string;
  policyArns?: readonly string[];
}

interface SessionPolicies {
  policy?: string;
  policyArns: readonly string[];
}

/**
 * The session policies AWS gets: the target's own when it fixes any (then a caller's are refused: AWS
 * combines several session policies, and a caller's could only be checked against the target's by AWS),
 * else the caller's.
 */
function sessionPolicies(target: TargetSpec, broker: AwsBrokerSpec, request: BrokerRequest): SessionPolicies {
  const fixed = broker.policy !== undefined || broker.policyArns.length > 0;
  const asked = request.policy !== undefined || (request.policyArns?.length ?? 0) > 0;
  if (fixed && asked) throw new GatewayError('ValidationError', `Target ${target.name} fixes the session policy; a request may not add one.`);
  if (fixed) return { ...(broker.policy !== undefined ? { policy: broker.policy } : {}), policyArns: broker.policyArns };
  return { ...(request.policy !== undefined ? { policy: request.policy } : {}), policyArns: request.policyArns ?? [] };
}

/**
 * A circuit breaker: after CIRCUIT_FAILURES failed calls in a row it opens, and calls fail at once
 * (ServiceUnavailable with Retry-After) for CIRCUIT_OPEN_MS; then one call is let through, and its
 * outcome closes it or opens it again.
 */
class Circuit {
  #failures = 0;
  #openUntil = 0;
  #trial = false;
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  admit(target: TargetSpec): void {
    const now = this.#now();
    if (this.#failures < CIRCUIT_FAILURES) return;
    if (now < this.#openUntil || this.#trial) {
      const seconds = Math.max(1, Math.ceil((this.#openUntil - now) / 1000));
      throw new GatewayError('ServiceUnavailable', `AWS STS is failing for target ${target.name}; not asked again for ${seconds} s.`, { status: 503, headers: { 'Retry-After': String(seconds) }, debug: 'circuit open' });
    }
    this.#trial = true;
  }

  failed(now: number): void {
    this.#failures++;
    this.#trial = false;
    if (this.#failures >= CIRCUIT_FAILURES) this.#openUntil = now + CIRCUIT_OPEN_MS;
  }

  succeeded(): void {
    this.#failures = 0;
    this.#trial = false;
  }
}
/** One call and at most two retries of what AWS marks retryable. */
const MAX_ATTEMPTS = 3;

export class AwsBroker {
  readonly #store: Store;
  readonly #box: SecretBox;
  readonly #targets: Pick<TargetTokens, 'mint' | 'preview'>;
  readonly #revocations: RevocationWatermarks | undefined;
  readonly #clientFor: (broker: AwsBrokerSpec) => STSClient;
  readonly #clients = new Map<string, STSClient>();
  /** Per STS endpoint: fails fast while AWS is down, instead of every request waiting out its timeouts. */
  readonly #circuits = new Map<string, Circuit>();
  readonly #now: () => number;
  /** Calls to AWS in flight, by cache key: identical concurrent requests share one. */
  readonly #inflight = new Map<string, Promise<BrokeredCredentials>>();

  constructor(options: AwsBrokerOptions) {
    this.#store = options.store;
    this.#box = options.box;
    this.#targets = options.targets;
    this.#revocations = options.revocations;
    this.#clientFor = options.clientFor ?? defaultClient;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Real AWS credentials for `identity` through `target` (which `role` lists and the rules grant: the
   * caller checked), from the cache while at least half their lifetime remains, else from AWS.
   * `notAfter` (epoch seconds): the end of the session the request came from, if any.
   */
  async credentials(target: TargetSpec, identity: Identity, role: Role, options: BrokerRequest = {}): Promise<BrokeredCredentials> {
    const broker = target.broker;
    if (!broker) throw new GatewayError('InternalFailure', 'An internal error occurred.', { debug: `target ${target.name} has no broker` });
    const durationSeconds = this.#duration(broker, role, options.durationSeconds);
    const policies = sessionPolicies(target, broker, options);
    // Keyed by everything AWS sees: the token's claims (sub, tags, source identity) and the session's name
    // and length, so two identities whose claims differ never share a set, even under one subject.
    const preview = this.#targets.preview(target, identity, role);
    if ('problem' in preview) throw new GatewayError('ValidationError', preview.problem);
    const sessionName = roleSessionName(broker, target, identity, role);
    const cacheKey = createHash('sha256')
      .update(JSON.stringify([identity.source, identity.subject, role.name, target.name, durationSeconds, sessionName, policies, preview.claims]))
      .digest('base64url');
    const cached = await this.#cached(cacheKey, identity, role);
    if (cached) return cached;
    const pending = this.#inflight.get(cacheKey);
    if (pending) return pending;
    const call = this.#fetch(cacheKey, target, broker, { identity, role, durationSeconds, sessionName, policies, notAfter: options.notAfter }).finally(() => this.#inflight.delete(cacheKey));
    this.#inflight.set(cacheKey, call);
    return call;
  }

  /** DurationSeconds asked of AWS: the caller's, within 900..the broker's and the role's maximum; the broker's maximum by default. */
  #duration(broker: AwsBrokerSpec, role: Role, requested: number | undefined): number {
    const max = Math.min(broker.durationSeconds, role.maxSessionSeconds);
    if (requested === undefined) return max;
    if (!Number.isInteger(requested) || requested < 900 || requested > max) {
      throw new GatewayError('ValidationError', `DurationSeconds must be 900..${max} for this target.`);
    }
    return requested;
  }

  async #cached(cacheKey: string, identity: Identity, role: Role): Promise<BrokeredCredentials | undefined> {
    const raw = await guardStore('credential', () => this.#store.get(storeKeys.brokered(cacheKey)));
    if (raw === undefined) return undefined;
    let stored: StoredBrokered;
    try {
      stored = JSON.parse(raw) as StoredBrokered;
    } catch {
      return undefined;
    }
    const now = this.#now();
    const lifetime = stored.expiresAtMs - stored.issuedAtMs;
    if (stored.expiresAtMs - now < lifetime / 2) return undefined;
    const plain = this.#box.open(stored.sealed, sealContext(cacheKey, stored));
    if (plain === undefined) return undefined;
    const covered = await guardStore('revocation', async () => this.#revocations?.covering({ source: identity.source, subject: identity.subject, role: role.name, issuedAtMs: stored.issuedAtMs }));
    if (covered) {
      await guardStore('credential', () => this.#store.delete(storeKeys.brokered(cacheKey)));
      return undefined;
    }
    const secrets = JSON.parse(plain) as Omit<BrokeredCredentials, 'expiresAt' | 'issuedAt' | 'cached'>;
    return { ...secrets, issuedAt: new Date(stored.issuedAtMs), expiresAt: new Date(stored.expiresAtMs), cached: true };
  }

  async #fetch(
    cacheKey: string,
    target: TargetSpec,
    broker: AwsBrokerSpec,
    request: { identity: Identity; role: Role; durationSeconds: number; sessionName: string; policies: SessionPolicies; notAfter: number | undefined },
  ): Promise<BrokeredCredentials> {
    const { identity, role, durationSeconds, sessionName, policies } = request;
    const token = this.#targets.mint(target, identity, role, request.notAfter);
    const circuit = this.#circuit(broker);
    circuit.admit(target);
    let answer;
    try {
      answer = await this.#client(broker).send(
        new AssumeRoleWithWebIdentityCommand({
          RoleArn: broker.roleArn,
          RoleSessionName: sessionName,
          WebIdentityToken: token.token,
          DurationSeconds: durationSeconds,
          ...(policies.policy !== undefined ? { Policy: policies.policy } : {}),
          ...(policies.policyArns.length > 0 ? { PolicyArns: policies.policyArns.map((arn) => ({ arn })) } : {}),
        }),
      );
    } catch (err) {
      const error = upstreamError(target, err);
      // Only AWS failing (down, slow, 5xx) opens the circuit; AWS refusing a request is an answer.
      if (error.code === 'ServiceUnavailable') circuit.failed(this.#now());
      else circuit.succeeded();
      throw error;
    }
    circuit.succeeded();
    const credentials = answer.Credentials;
    if (!credentials?.AccessKeyId || !credentials.SecretAccessKey || !credentials.SessionToken || !(credentials.Expiration instanceof Date)) {
      throw new GatewayError('ServiceUnavailable', `AWS STS answered without credentials for target ${target.name}.`, { debug: `request ${answer.$metadata.requestId ?? '?'}` });
    }
    const issuedAtMs = this.#now();
    const expiresAtMs = credentials.Expiration.getTime();
    // What is handed out must end within what was asked; anything else fails closed.
    if (expiresAtMs <= issuedAtMs || expiresAtMs > issuedAtMs + (durationSeconds + 300) * 1000) {
      throw new GatewayError('ServiceUnavailable', `AWS STS answered credentials with an unexpected expiry for target ${target.name}.`, { debug: credentials.Expiration.toISOString() });
    }
    const result: BrokeredCredentials = {
      accessKeyId: credentials.AccessKeyId,
      secretAccessKey: credentials.SecretAccessKey,
      sessionToken: credentials.SessionToken,
      issuedAt: new Date(issuedAtMs),
      expiresAt: credentials.Expiration,
      ...(answer.AssumedRoleUser?.Arn ? { assumedRoleArn: answer.AssumedRoleUser.Arn } : {}),
      ...(answer.AssumedRoleUser?.AssumedRoleId ? { assumedRoleId: answer.AssumedRoleUser.AssumedRoleId } : {}),
      ...(answer.$metadata.requestId ? { upstreamRequestId: answer.$metadata.requestId } : {}),
      cached: false,
    };
    const stored: Omit<StoredBrokered, 'sealed'> = { issuedAtMs, expiresAtMs };
    const { cached: _cached, issuedAt: _issued, expiresAt: _expires, ...secrets } = result;
    const record: StoredBrokered = { ...stored, sealed: this.#box.seal(JSON.stringify(secrets), sealContext(cacheKey, stored)) };
    await guardStore('credential', () => this.#store.set(storeKeys.brokered(cacheKey), JSON.stringify(record), expiresAtMs - issuedAtMs));
    return result;
  }

  #circuit(broker: AwsBrokerSpec): Circuit {
    const key = `${broker.region} ${broker.endpoint ?? ''}`;
    let circuit = this.#circuits.get(key);
    if (!circuit) {
      circuit = new Circuit(this.#now);
      this.#circuits.set(key, circuit);
    }
    return circuit;
  }

  #client(broker: AwsBrokerSpec): STSClient {
    const key = `${broker.region} ${broker.endpoint ?? ''} ${broker.timeoutSeconds}`;
    let client = this.#clients.get(key);
    if (!client) {
      client = this.#clientFor(broker);
      this.#clients.set(key, client);
    }
    return client;
  }
}

/** The sealed secrets are bound to their cache key and their times: moved or re-dated, they do not open. */
function sealContext(cacheKey: string, stored: Pick<StoredBrokered, 'issuedAtMs' | 'expiresAtMs'>): string {
  return `stsgate-brokered:${cacheKey}:${stored.issuedAtMs}:${stored.expiresAtMs}`;
}

/** The SDK's STS client for a broker: its region and endpoint, bounded timeouts, the standard retry strategy. */
function defaultClient(broker: AwsBrokerSpec): STSClient {
  return new STSClient({
    region: broker.region,
    ...(broker.endpoint !== undefined ? { endpoint: broker.endpoint } : {}),
    maxAttempts: MAX_ATTEMPTS,
    // throwOnRequestTimeout: without it the SDK only warns and keeps waiting.
    requestHandler: { connectionTimeout: Math.min(CONNECT_TIMEOUT_MS, broker.timeoutSeconds * 1000), requestTimeout: broker.timeoutSeconds * 1000, throwOnRequestTimeout: true },
  });
}

/** RoleSessionName: the template rendered, characters AWS refuses replaced by "-", cut to 64. */
function roleSessionName(broker: AwsBrokerSpec, target: TargetSpec, identity: Identity, role: Role): string {
  let name: string;
  try {
    name = renderTemplate(broker.sessionName, { identity, role: role.name }, `target ${target.name}: broker.session_name`);
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
