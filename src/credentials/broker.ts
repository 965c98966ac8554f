/**
 * The broker (issue 13): for a target with a `broker` block, stsgate trades its own target token for the
 * cloud's real credentials with the cloud's own client library (AWS: AssumeRoleWithWebIdentity, GCP: the
 * STS token exchange and service account impersonation, Azure: the client assertion grant; one
 * `Upstream` per cloud), and caches them like its own: sealed in the store (AES-GCM bound to the record's
 * key), reused while at least half their lifetime remains, never past their expiry, shared by replicas,
 * dropped for a subject a revocation watermark covers.
 *
 * One call per set: identical concurrent requests in one process share a call, and across replicas the
 * first to take the store's fetch marker calls while the others wait for its cached result. A cloud
 * failing (down, slow, 5xx) opens a circuit per endpoint that fails fast for a while; what the cloud
 * refuses is relayed with the cloud's own code (each Upstream words it). Nothing is cached on failure.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Identity, Role } from '../domain/types.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { AwsBrokerSpec, AzureBrokerSpec, BrokerSpec, GcpBrokerSpec, TargetSpec } from '../rules/target-claims.js';
import { storeKeys } from '../store/keys.js';
import { RecentlyUsed } from '../util/recently-used.js';
import { guardStore } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { RevocationWatermarks } from './revocations.js';
import type { SecretBox } from './secret-box.js';
import type { TargetTokens } from './target-tokens.js';

interface BrokeredBase {
  expiresAt: Date;
  issuedAt: Date;
  /** The cloud's request id of the call that fetched them (the audit line names it), when it gives one. */
  upstreamRequestId?: string;
  cached: boolean;
}

/** Real AWS credentials. */
export interface BrokeredAwsKeys extends BrokeredBase {
  cloud: 'aws';
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** `arn:aws:sts::<account>:assumed-role/<role>/<session>`, as AWS answered. */
  assumedRoleArn?: string;
  assumedRoleId?: string;
}

/** A GCP or Azure OAuth access token (a bearer token for the cloud's APIs). */
export interface BrokeredAccessToken extends BrokeredBase {
  cloud: 'gcp' | 'azure';
  accessToken: string;
  /** The scopes it was asked for (space-separated in OAuth answers). */
  scopes: readonly string[];
  /** Who the cloud sees: a GCP service account, an Azure application (client id). */
  principal?: string;
}

/** Real cloud credentials for one identity and target. */
export type BrokeredCredentials = BrokeredAwsKeys | BrokeredAccessToken;

/** What an upstream call returns: the credentials without the cache's bookkeeping. */
export type Fetched = Omit<BrokeredAwsKeys, 'issuedAt' | 'cached'> | Omit<BrokeredAccessToken, 'issuedAt' | 'cached'>;

/** What a caller may ask of a broker: a shorter session, session policies (AWS), fewer scopes (GCP, Azure). */
export interface BrokerRequest {
  /** Epoch seconds: the end of the session the request came from. */
  notAfter?: number;
  durationSeconds?: number;
  /** AWS: a session policy (JSON text) and managed policy ARNs, which AWS intersects with the role's. */
  policy?: string;
  policyArns?: readonly string[];
  /** GCP: a subset of the target's scopes; Azure: one of them. */
  scopes?: readonly string[];
}

/**
 * One cloud's exchange. `prepare` checks a request against the target and returns the call's parameters
 * (they key the cache, with the token's claims), `call` trades the target token for credentials and
 * throws GatewayErrors: ServiceUnavailable when the cloud fails (that counts against its circuit), the
 * cloud's refusal otherwise.
 */
export interface Upstream<S extends BrokerSpec, P extends { lifetimeSeconds: number }> {
  prepare(target: TargetSpec, spec: S, role: Role, identity: Identity, request: BrokerRequest): P;
  call(target: TargetSpec, spec: S, token: string, params: P): Promise<Fetched>;
  /** Calls to one endpoint share a circuit. */
  endpointOf(spec: S): string;
}

/** The upstream of each cloud. */
export interface Upstreams {
  aws: Upstream<AwsBrokerSpec, { lifetimeSeconds: number }>;
  gcp: Upstream<GcpBrokerSpec, { lifetimeSeconds: number }>;
  azure: Upstream<AzureBrokerSpec, { lifetimeSeconds: number }>;
}

export interface BrokerOptions {
  store: Store;
  box: SecretBox;
  targets: Pick<TargetTokens, 'mint' | 'preview'>;
  upstreams: Upstreams;
  revocations?: RevocationWatermarks;
  now?: () => number;
}

/** What the cache holds (JSON), besides the sealed secrets. */
interface StoredBrokered {
  sealed: string;
  issuedAtMs: number;
  expiresAtMs: number;
}

/** A cached record opened. */
interface OpenedBrokered {
  issuedAtMs: number;
  expiresAtMs: number;
  secrets: Fetched;
}

/** Consecutive failed calls (the cloud down, slow, 5xx) that open an endpoint's circuit, and how long it stays open. */
export const CIRCUIT_FAILURES = 5;
export const CIRCUIT_OPEN_MS = 30_000;
/** How often a replica waiting for another's call looks for its result. */
const FETCH_POLL_MS = 20;
/** Slack over the asked lifetime a cloud's expiry may show (clock skew, rounding); more fails closed. */
const EXPIRY_SLACK_SECONDS = 300;
/** The longest one call may take, retries included, per second of the broker's timeout. */
const CALL_BUDGET_FACTOR = 3;

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
      throw new GatewayError('ServiceUnavailable', `The cloud is failing for target ${target.name}; not asked again for ${seconds} s.`, { status: 503, headers: { 'Retry-After': String(seconds) }, debug: 'circuit open' });
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

export class Broker {
  readonly #store: Store;
  readonly #box: SecretBox;
  readonly #targets: Pick<TargetTokens, 'mint' | 'preview'>;
  readonly #upstreams: Upstreams;
  readonly #revocations: RevocationWatermarks | undefined;
  /** Per cloud endpoint: fails fast while the cloud is down, instead of every request waiting out its timeouts. */
  readonly #circuits = new Map<string, Circuit>();
  readonly #now: () => number;
  /** Calls in flight in this process, by cache key: identical concurrent requests share one. */
  readonly #inflight = new Map<string, Promise<BrokeredCredentials>>();
  /** Records opened recently, by their stored text: a cache hit decrypts nothing. */
  readonly #opened = new RecentlyUsed<string, OpenedBrokered>(256);

  constructor(options: BrokerOptions) {
    this.#store = options.store;
    this.#box = options.box;
    this.#targets = options.targets;
    this.#upstreams = options.upstreams;
    this.#revocations = options.revocations;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The cloud's credentials for `identity` through `target` (which `role` lists and the rules grant: the
   * caller checked), from the cache while at least half their lifetime remains, else from the cloud.
   */
  async credentials(target: TargetSpec, identity: Identity, role: Role, request: BrokerRequest = {}): Promise<BrokeredCredentials> {
    const spec = target.broker;
    if (!spec) throw new GatewayError('InternalFailure', 'An internal error occurred.', { debug: `target ${target.name} has no broker` });
    const upstream = this.#upstreams[spec.cloud] as Upstream<BrokerSpec, { lifetimeSeconds: number }>;
    const params = upstream.prepare(target, spec, role, identity, request);
    // Keyed by everything the cloud sees: the token's claims and the call's parameters, so two identities
    // whose claims differ never share a set, even under one subject.
    const preview = this.#targets.preview(target, identity, role);
    if ('problem' in preview) throw new GatewayError('ValidationError', preview.problem);
    const cacheKey = createHash('sha256')
      .update(JSON.stringify([identity.source, identity.subject, role.name, target.name, params, preview.claims]))
      .digest('base64url');
    const cached = await this.#cached(cacheKey, identity, role);
    if (cached) return cached;
    const pending = this.#inflight.get(cacheKey);
    if (pending) return pending;
    const call = this.#fetchOnce(cacheKey, target, spec, upstream, { identity, role, params, notAfter: request.notAfter }).finally(() => this.#inflight.delete(cacheKey));
    this.#inflight.set(cacheKey, call);
    return call;
  }

  /**
   * The cached set while at least half its lifetime remains and no watermark covers it. The record and
   * the watermarks that could cover it come in one store round trip; a record's opened form is kept in a
   * small memo by its stored text (as CredentialService does), so a hit decrypts nothing.
   */
  async #cached(cacheKey: string, identity: Identity, role: Role): Promise<BrokeredCredentials | undefined> {
    const watermarkKeys = this.#revocations?.keysCovering({ source: identity.source, subject: identity.subject, role: role.name }) ?? [];
    const [raw, ...watermarks] = await guardStore('credential', () => this.#store.getMany([storeKeys.brokered(cacheKey), ...watermarkKeys]));
    if (raw === undefined) return undefined;
    const opened = this.#opened.get(raw) ?? this.#open(cacheKey, raw);
    if (opened === undefined) return undefined;
    const lifetime = opened.expiresAtMs - opened.issuedAtMs;
    if (opened.expiresAtMs - this.#now() < lifetime / 2) return undefined;
    if (this.#revocations?.coveringAmong(watermarks, opened.issuedAtMs)) {
      this.#opened.delete(raw);
      await guardStore('credential', () => this.#store.delete(storeKeys.brokered(cacheKey)));
      return undefined;
    }
    return { ...opened.secrets, issuedAt: new Date(opened.issuedAtMs), expiresAt: new Date(opened.expiresAtMs), cached: true } as BrokeredCredentials;
  }

  /** A stored record opened (its seal checked against its key and times), or undefined when it does not open. */
  #open(cacheKey: string, raw: string): OpenedBrokered | undefined {
    let stored: StoredBrokered;
    try {
      stored = JSON.parse(raw) as StoredBrokered;
    } catch {
      return undefined;
    }
    if (!Number.isSafeInteger(stored.issuedAtMs) || !Number.isSafeInteger(stored.expiresAtMs)) return undefined;
    const plain = this.#box.open(stored.sealed, sealContext(cacheKey, stored));
    if (plain === undefined) return undefined;
    const opened = { issuedAtMs: stored.issuedAtMs, expiresAtMs: stored.expiresAtMs, secrets: JSON.parse(plain) as Fetched };
    this.#opened.set(raw, opened);
    return opened;
  }

  /**
   * One call across replicas: the replica that takes the fetch marker calls the cloud; the others wait
   * for its result in the cache, and call themselves only when the marker goes without one (its call
   * failed) or the wait outlasts the call's budget.
   */
  async #fetchOnce(cacheKey: string, target: TargetSpec, spec: BrokerSpec, upstream: Upstream<BrokerSpec, { lifetimeSeconds: number }>, call: FetchCall): Promise<BrokeredCredentials> {
    const marker = storeKeys.brokeredFetch(cacheKey);
    const budgetMs = spec.timeoutSeconds * 1000 * CALL_BUDGET_FACTOR;
    const value = await guardStore('credential', () => this.#store.increment(marker, budgetMs));
    if (value !== 1) {
      const deadline = this.#now() + budgetMs;
      while (this.#now() < deadline) {
        await sleep(FETCH_POLL_MS);
        const cached = await this.#cached(cacheKey, call.identity, call.role);
        if (cached) return cached;
        if ((await guardStore('credential', () => this.#store.get(marker))) === undefined) break;
      }
    }
    try {
      if (value === 1) {
        // The marker is free again as soon as another replica's call has stored its answer: a request
        // that missed the cache just before that takes the marker just after, and the answer is there.
        const cached = await this.#cached(cacheKey, call.identity, call.role);
        if (cached) return cached;
      }
      return await this.#fetch(cacheKey, target, spec, upstream, call);
    } finally {
      if (value === 1) await this.#store.delete(marker).catch(() => undefined);
    }
  }

  async #fetch(cacheKey: string, target: TargetSpec, spec: BrokerSpec, upstream: Upstream<BrokerSpec, { lifetimeSeconds: number }>, call: FetchCall): Promise<BrokeredCredentials> {
    // Stamped when the call starts: a revocation written while it was in flight covers what it returns.
    const issuedAtMs = this.#now();
    const token = this.#targets.mint(target, call.identity, call.role, call.notAfter);
    const circuit = this.#circuit(upstream.endpointOf(spec));
    circuit.admit(target);
    let fetched: Fetched;
    try {
      // Each client bounds its own calls; this bounds them all, retries included, whatever a client does.
      fetched = await withDeadline(upstream.call(target, spec, token.token, call.params), spec.timeoutSeconds * 1000 * CALL_BUDGET_FACTOR).catch((err: unknown) => {
        throw err instanceof GatewayError ? err : new GatewayError('ServiceUnavailable', `The cloud did not answer in time for target ${target.name}.`, { debug: (err as Error).message });
      });
    } catch (err) {
      // Only the cloud failing (down, slow, 5xx) opens the circuit; the cloud refusing a request is an answer.
      if (err instanceof GatewayError && err.code === 'ServiceUnavailable') circuit.failed(this.#now());
      else circuit.succeeded();
      throw err;
    }
    circuit.succeeded();
    const expiresAtMs = fetched.expiresAt.getTime();
    // Kept only for what is left of the credentials' life now, after the call, so that the record never
    // outlives them (measured from before the call, it did by the call's own duration).
    const remainingMs = expiresAtMs - this.#now();
    // What is handed out must end within what was asked; anything else fails closed.
    if (!(expiresAtMs > issuedAtMs) || remainingMs < 1 || expiresAtMs > issuedAtMs + (call.params.lifetimeSeconds + EXPIRY_SLACK_SECONDS) * 1000) {
      throw new GatewayError('ServiceUnavailable', `The cloud answered credentials with an unexpected expiry for target ${target.name}.`, { debug: `expires ${fetched.expiresAt.toISOString()}` });
    }
    const stored = { issuedAtMs, expiresAtMs };
    const record: StoredBrokered = { ...stored, sealed: this.#box.seal(JSON.stringify({ ...fetched, expiresAt: undefined }), sealContext(cacheKey, stored)) };
    await guardStore('credential', () => this.#store.set(storeKeys.brokered(cacheKey), JSON.stringify(record), remainingMs));
    return { ...fetched, issuedAt: new Date(issuedAtMs), cached: false } as BrokeredCredentials;
  }

  #circuit(endpoint: string): Circuit {
    let circuit = this.#circuits.get(endpoint);
    if (!circuit) {
      circuit = new Circuit(this.#now);
      this.#circuits.set(endpoint, circuit);
    }
    return circuit;
  }
}

interface FetchCall {
  identity: Identity;
  role: Role;
  params: { lifetimeSeconds: number };
  notAfter: number | undefined;
}

/** The sealed secrets are bound to their cache key and their times: moved or re-dated, they do not open. */
function sealContext(cacheKey: string, stored: Pick<StoredBrokered, 'issuedAtMs' | 'expiresAtMs'>): string {
  return `stsgate-brokered:${cacheKey}:${stored.issuedAtMs}:${stored.expiresAtMs}`;
}

/** A duration a caller asked for, within min..max; `max` by default. */
export function brokerDuration(requested: number | undefined, min: number, max: number): number {
  if (requested === undefined) return max;
  if (!Number.isInteger(requested) || requested < min || requested > max) {
    throw new GatewayError('ValidationError', `DurationSeconds must be ${min}..${max} for this target.`);
  }
  return requested;
}

/** `promise`, or a rejection once `ms` have passed (for clients whose own timeouts do not cover every wait). */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
