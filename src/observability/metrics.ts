import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DecisionContext } from '../errors/gateway-error.js';
import { droppedLogLines } from './logger.js';

/** The `role` label of a refusal whose role the rules did not grant to the identity asking (or that does not exist). */
export const NOT_GRANTED_ROLE = 'not_granted';

/**
 * The `role` label for a refusal: the role only when the rules granted it to this identity (a throttled
 * request, a duration over the role's maximum). A role that exists but is not granted and one that does
 * not exist get the same AccessDenied, and must get the same label too, or a scrape tells them apart.
 */
export function deniedRoleLabel(context: DecisionContext): string {
  return context.granted === true && context.role !== undefined ? context.role : NOT_GRANTED_ROLE;
}

/**
 * A labelled metric's child for some label values (in the metric's `labelNames` order), each looked up in
 * prom-client once: its `inc(labels)` and `observe(labels, value)` otherwise check, sort and join the
 * labels on every call, a few per request. Holds one entry per distinct set of values, as prom-client
 * itself does; every label value here comes from a bounded set (below). The metrics are never reset,
 * which would leave a remembered child detached.
 */
export function labelled<Child>(metric: { labels(...values: string[]): Child }): (...values: string[]) => Child {
  const children = new Map<string, Child>();
  return (...values) => {
    const key = values.join('\n');
    let child = children.get(key);
    if (child === undefined) {
      child = metric.labels(...values);
      children.set(key, child);
    }
    return child;
  };
}

/**
 * Prometheus metrics. Every label value comes from a bounded set (configured sources and roles, error
 * codes, action names): never a subject, a token or anything else a client chooses.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly issued = new Counter({ name: 'stsgate_credentials_issued_total', help: 'Credential sets handed out, by source, role and whether the cache answered.', labelNames: ['action', 'source', 'role', 'cached'], registers: [this.registry] });
  readonly denied = new Counter({ name: 'stsgate_denials_total', help: 'Refused requests, by source, role and reason code.', labelNames: ['action', 'source', 'role', 'reason'], registers: [this.registry] });
  readonly exchangeSeconds = new Histogram({ name: 'stsgate_exchange_duration_seconds', help: 'Time to answer an issuing request.', labelNames: ['action', 'outcome'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry] });
  readonly loginSeconds = new Histogram({ name: 'stsgate_login_duration_seconds', help: 'Time to complete a browser login callback.', labelNames: ['provider', 'outcome'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry] });
  readonly cache = new Counter({ name: 'stsgate_credential_cache_total', help: 'Credential cache lookups, by result.', labelNames: ['result'], registers: [this.registry] });
  readonly storeErrors = new Counter({ name: 'stsgate_store_errors_total', help: 'Store operations that failed.', labelNames: ['operation'], registers: [this.registry] });
  readonly storeSeconds = new Histogram({ name: 'stsgate_store_operation_duration_seconds', help: 'Store operation latency.', labelNames: ['operation'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1], registers: [this.registry] });
  readonly jwksFetches = new Counter({ name: 'stsgate_jwks_fetches_total', help: 'Discovery and JWKS fetches from trusted issuers, by issuer and outcome.', labelNames: ['issuer', 'kind', 'outcome'], registers: [this.registry] });
  readonly jwksKeysDropped = new Counter({ name: 'stsgate_jwks_keys_dropped_total', help: 'Unusable keys found in trusted issuers\' JWKS and never tried (each key counted once), by issuer and reason.', labelNames: ['issuer', 'reason'], registers: [this.registry] });
  readonly targetTokens = new Counter({ name: 'stsgate_target_tokens_total', help: 'Target tokens asked for, by target (configured names only, else unknown), kind and outcome (issued or the refusal code).', labelNames: ['target', 'kind', 'outcome'], registers: [this.registry] });
  readonly requests = new Counter({ name: 'stsgate_http_requests_total', help: 'HTTP requests, by route group and status class.', labelNames: ['route', 'status'], registers: [this.registry] });

  /** The children of the metrics counted on every request (labelled, above), by their label values in `labelNames` order. */
  readonly requestsOf = labelled(this.requests);
  readonly issuedOf = labelled(this.issued);
  readonly exchangeSecondsOf = labelled(this.exchangeSeconds);
  readonly cacheOf = labelled(this.cache);
  readonly storeSecondsOf = labelled(this.storeSeconds);

  readonly logLinesDropped: Counter = new Counter({
    name: 'stsgate_log_lines_dropped_total',
    help: 'Log lines dropped because stdout stopped draining (more than 16 MiB waiting); any is worth an alert.',
    registers: [this.registry],
    collect: () => this.#countDroppedLines(),
  });
  #droppedLinesCounted = 0;

  #exposition: () => Promise<string> = () => this.registry.metrics();

  constructor({ defaultMetrics = true }: { defaultMetrics?: boolean } = {}) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'stsgate_' });
  }

  #countDroppedLines(): void {
    const total = droppedLogLines();
    if (total > this.#droppedLinesCounted) this.logLinesDropped.inc(total - this.#droppedLinesCounted);
    this.#droppedLinesCounted = total;
  }

  /** The text `/metrics` serves: this process's registry, unless `exposeFrom` replaced it. */
  exposition(): Promise<string> {
    return this.#exposition();
  }

  /** Serves `/metrics` from `source` instead: with `workers`, the sum over every worker, which the primary gathers. */
  exposeFrom(source: () => Promise<string>): void {
    this.#exposition = source;
  }
}
