/**
 * The composition root: load config, build adapters and services, start the server. The only file that
 * knows every concrete part.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Router from '@koa/router';
import { DEFAULT_ADMIN_PORT, DEFAULT_KEYS_RELOAD_SECONDS, DEFAULT_SHUTDOWN } from './config/schema.js';
import { DEFAULT_BROWSER_CONFIG, type AdminConfig, type GatewayConfig } from './config/types.js';
import { CredentialService } from './credentials/credential-service.js';
import { TokenExchange } from './credentials/exchange.js';
import { longestCoveredLifetimeSeconds, RevocationWatermarks } from './credentials/revocations.js';
import { SecretBox } from './credentials/secret-box.js';
import { generateSigningKeys, SigningKeysFile, type SigningKeySource } from './credentials/signing-keys.js';
import { TargetTokens } from './credentials/target-tokens.js';
import { Broker, type Upstreams } from './credentials/broker.js';
import { GatewayError } from './errors/gateway-error.js';
import { openGatewayKeys } from './credentials/gateway-keys.js';
import { discoveryClaims } from './credentials/discovery.js';
import { RoleCatalog } from './domain/role-catalog.js';
import type { Identity } from './domain/types.js';
import { createAdminApp } from './http/admin-app.js';
import { revocationRoutes } from './http/admin-revocations.js';
import { createApp, type AppDependencies } from './http/app.js';
import { openIdProviderPages } from './http/pages.js';
import { TrustedProxies } from './http/middleware/client-address.js';
import { ClientAuthenticator } from './credentials/client-authentication.js';
import { BrowserLogin, createLoginProviders, LoginFlow, type BrowserLoginProvider } from './idp/index.js';
import { EndpointAddressLimit, ExchangeRateLimits, LoginRateLimits, PasswordAttemptLimits } from './limits/rate-limits.js';
import { TrustedIssuers } from './issuers/index.js';
import { AuditLog } from './observability/audit.js';
import { createLogger, type Logger } from './observability/logger.js';
import { GatewayMetrics } from './observability/metrics.js';
import { compileRules, refusalExplanation } from './rules/index.js';
import { createStore } from './store/index.js';
import type { RedisStoreEvent } from './store/redis/redis-store.js';
import { instrumentStore } from './store/instrumented-store.js';
import type { Store } from './store/store.js';

export interface GatewayOptions {
  logger?: Logger;
  /** Overrides `listen.port` (`stsgate serve --port`; 0 picks a free port: tests). */
  port?: number;
  /** Overrides `listen.host` (`stsgate serve --host`). */
  host?: string;
  /** Overrides `admin.listen.port`, the metrics and admin listener's (0 picks a free port; tests). */
  adminPort?: number;
  /** Further admin API route groups, mounted behind the admin token (tests). */
  adminRoutes?: Router[];
  /** How long in-flight requests may take to finish on shutdown. Default `shutdown.grace_seconds`. */
  shutdownGraceMs?: number;
  /** How long readiness fails before the port closes on shutdown. Default `shutdown.delay_seconds`. */
  shutdownDelayMs?: number;
  /** How often the signing keys file is re-read (rotation). Default `signing.reload_interval_seconds`. */
  keysReloadMs?: number;
  /** A metrics registry to use (tests); default: a new one with process metrics. */
  metrics?: GatewayMetrics;
  /** A warning shown on top of every page (`stsgate demo` marks itself with it). */
  pageNotice?: string;
  /** The keys file `openGatewayKeys` already opened for this configuration (`serve`); default: opened here, with the same checks. */
  keysFile?: SigningKeysFile;
}

/** A started gateway. */
export interface RunningGateway {
  /** The URL it listens on (not the public URL). */
  url: string;
  server: Server;
  /** The URL of the metrics and admin listener (`/metrics`, `/healthz`, `/readyz`, `/admin/*`). */
  adminUrl: string;
  adminServer: Server;
  store: Store;
  keys: SigningKeySource;
  /** Revocation watermarks on this gateway's store (the admin API's `revocationRoutes` writes through it). */
  revocations: RevocationWatermarks;
  /**
   * Fails readiness, keeps serving for the shutdown delay (load balancers stop routing here), closes the
   * port, lets in-flight requests finish within the grace period, closes the admin listener (metrics stay
   * scrapeable until the public port has drained), then closes the store.
   */
  close(): Promise<void>;
}

/** Builds every part from a validated configuration and starts listening. */
export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<RunningGateway> {
  // A start that fails half-way (a bad keys file, a port in use) must not leave the store connected:
  // the process would print its error and then never exit.
  const opened: { close(): unknown }[] = [];
  try {
    return await start(config, options, opened);
  } catch (err) {
    await Promise.allSettled(opened.map(async (part) => part.close()));
    throw err;
  }
}

/** The parts a started gateway is built from, before any port is open. */
interface GatewayParts {
  logger: Logger;
  metrics: GatewayMetrics;
  store: Store;
  keys: SigningKeySource;
  keysFile: SigningKeysFile | undefined;
  revocations: RevocationWatermarks;
  audit: AuditLog;
  appDependencies: Omit<AppDependencies, 'accepting'>;
}

/** Whether the public port takes new requests: false from the moment a shutdown begins (readiness fails). */
interface Accepting {
  value: boolean;
}

/** The start in named steps: checks, store, signing keys, services (`wireServices`), servers (`startServers`). */
async function start(config: GatewayConfig, options: GatewayOptions, opened: { close(): unknown }[]): Promise<RunningGateway> {
  const logger = options.logger ?? createLogger({ buffered: true });
  // Before anything opens: a keys file check-config would refuse stops the start with the same problems.
  const keysFile = options.keysFile ?? (await openGatewayKeys(config));
  if (keysFile) opened.push({ close: () => keysFile.stop() });
  const metrics = options.metrics ?? new GatewayMetrics();
  const store = openStore(config, logger, metrics);
  opened.push(store);
  const keys = await signingKeys(config, keysFile, options, logger);
  // oidc-provider is loaded only when clients are configured: a gateway without them never pays for it.
  const op = (config.clients ?? []).length === 0 ? undefined : await import('./op/openid-provider.js');
  const upstreams = await cloudUpstreams(config);
  // Each login provider's protocol code (openid-client, ldapts, node-saml) is loaded only when one uses it.
  const loginProviders = await createLoginProviders(config.providers, { publicUrl: config.publicUrl, allowInsecureHttp: config.dev.allowInsecureHttp });
  const parts = wireServices(config, options, { logger, metrics, store, keys, keysFile, op, upstreams, loginProviders });
  const accepting: Accepting = { value: true };
  return startServers(config, options, parts, accepting, opened);
}

/**
 * The broker's upstream of each cloud some target brokers with, its client library loaded only then (the
 * AWS, Google and Azure libraries are 15 to 25 MB each); a cloud no target uses gets one that is never
 * called (the broker asks only a target's own cloud) and would fail closed if it were.
 */
async function cloudUpstreams(config: GatewayConfig): Promise<Upstreams> {
  const clouds = new Set((config.targets ?? []).flatMap((target) => (target.broker ? [target.broker.cloud] : [])));
  const unused = (cloud: string) => ({
    prepare(): never {
      throw new GatewayError('InternalFailure', 'An internal error occurred.', { debug: `no ${cloud} upstream: no target brokers with ${cloud}` });
    },
    call(): never {
      throw new GatewayError('InternalFailure', 'An internal error occurred.', { debug: `no ${cloud} upstream` });
    },
    endpointOf: () => `${cloud} (none)`,
  });
  return {
    aws: clouds.has('aws') ? new (await import('./credentials/aws-upstream.js')).AwsUpstream() : unused('aws'),
    gcp: clouds.has('gcp') ? new (await import('./credentials/gcp-upstream.js')).GcpUpstream() : unused('gcp'),
    azure: clouds.has('azure') ? new (await import('./credentials/azure-upstream.js')).AzureUpstream() : unused('azure'),
  };
}

/** The store (Redis or in-memory), with its calls timed and counted in the metrics. */
function openStore(config: GatewayConfig, logger: Logger, metrics: GatewayMetrics): Store {
  const redisEvents = (event: RedisStoreEvent) => {
    if (event.type === 'error') logger.warn({ store: event.message }, 'store connection error');
    else if (event.type !== 'closed') logger.info({ store: event.type }, 'store connection');
  };
  const store: Store = instrumentStore(createStore(config.store, { redis: { onEvent: redisEvents } }), {
    observe(operation, seconds, ok) {
      metrics.storeSecondsOf(operation).observe(seconds);
      if (!ok) metrics.storeErrors.inc({ operation });
    },
  });
  if (config.store.kind === 'memory') logger.warn('using the in-memory store: it serves this one process only; configure store.redis to run several');
  logger.info({ store: store.description }, 'store');
  return store;
}

/** The signing keys: the keys file (opened by `openGatewayKeys`), re-read for rotation, or keys generated for this process (development). */
async function signingKeys(config: GatewayConfig, keysFile: SigningKeysFile | undefined, options: GatewayOptions, logger: Logger): Promise<SigningKeySource> {
  if (!keysFile) {
    logger.warn('signing keys were generated at start (development only): tokens stop verifying when this process ends; set signing.keys_file');
    // One key per algorithm a target signs with; the access token's algorithm last, so that it is the
    // newest key (what signs when no algorithm is named).
    const algorithms = [...new Set([...(config.targets ?? []).map((target) => target.algorithm), config.signing.algorithm].reverse())].reverse();
    return { set: await generateSigningKeys(algorithms) };
  }
  keysFile.watch(options.keysReloadMs ?? (config.signing.reloadIntervalSeconds ?? DEFAULT_KEYS_RELOAD_SECONDS) * 1000, (outcome) => {
    if ('error' in outcome) logger.error({ err: outcome.error.message }, 'signing keys file could not be reloaded; keeping the last good keys');
    else if (outcome.changed) logger.info({ kids: keysFile.set.keys.map((k) => k.kid), signing: keysFile.set.current(Date.now(), config.signing.algorithm).kid }, 'signing keys reloaded');
  });
  return keysFile;
}

/** Builds the services (credentials, exchange, limits, logins) and what the HTTP layer is given. */
function wireServices(
  config: GatewayConfig,
  options: GatewayOptions,
  base: { logger: Logger; metrics: GatewayMetrics; store: Store; keys: SigningKeySource; keysFile: SigningKeysFile | undefined; op: typeof import('./op/openid-provider.js') | undefined; upstreams: Upstreams; loginProviders: BrowserLoginProvider[] },
): GatewayParts {
  const { logger, metrics, store, keys } = base;
  let encryptionKey = config.encryptionKey;
  if (!encryptionKey) {
    encryptionKey = randomBytes(32);
    logger.warn('no credentials.encryption_key: a random key was generated (development only)');
  }

  const roles = new RoleCatalog(config.accountId, config.roles);
  const rules = compileRules(config);
  const grantedRoles = (identity: Identity) => rules.evaluate(identity).roles;
  // Only on a refusal: the same explanation `stsgate explain` prints, for the audit line.
  const explainRefusal = (identity: Identity, role?: string) => refusalExplanation(rules.explain(identity), role);
  const issuers = new TrustedIssuers(config.issuers, {
    allowInsecureHttp: config.dev.allowInsecureHttp,
    onFetch: (issuer, kind, ok) => metrics.jwksFetches.inc({ issuer, kind, outcome: ok ? 'ok' : 'failed' }),
    onKeyDropped: (issuer, { kid, index, reason, detail }) => {
      // kid, position and reason only: never the key's members.
      logger.warn({ issuer, kid, index, reason, detail }, 'unusable key in a trusted issuer JWKS ignored');
      metrics.jwksKeysDropped.inc({ issuer, reason });
    },
  });
  const revocations = new RevocationWatermarks({ store, maxLifetimeSeconds: longestCoveredLifetimeSeconds(config) });
  const box = new SecretBox(encryptionKey);
  const credentials = new CredentialService({
    store,
    keys,
    box,
    issuer: config.publicUrl,
    algorithm: config.signing.algorithm,
    accountId: config.accountId,
    cacheMinRemainingFraction: config.cache.minRemainingFraction,
    onCacheLookup: (hit) => metrics.cacheOf(hit ? 'hit' : 'miss').inc(),
    revocations,
  });
  const limits = new ExchangeRateLimits(store, {
    perAddressPerMinute: config.limits.exchangePerAddressPerMinute ?? 0,
    perSubjectPerMinute: config.limits.exchangePerSubjectPerMinute ?? 0,
  });
  const targets = new TargetTokens({ keys, issuer: config.publicUrl, targets: config.targets ?? [] });
  const broker = new Broker({ store, box, targets, revocations, upstreams: base.upstreams });
  const exchange = new TokenExchange({
    roles,
    credentials,
    targets,
    broker,
    admit: (identity) => limits.countSubject(identity),
    verifyWebIdentityToken: (token) => issuers.verifyWebIdentityToken(token),
    grant: (identity, role) => rules.grant(identity, role),
    grantedRoles,
    explainRefusal,
  });

  const loginLimits = new LoginRateLimits(store, {
    requestsPerAddressPerMinute: config.limits.loginPerAddressPerMinute ?? 0,
    pendingPerAddress: config.limits.pendingLoginsPerAddress ?? 0,
  });
  const passwordLimits = new PasswordAttemptLimits(store, {
    perAddressPerMinute: config.limits.passwordAttemptsPerAddressPerMinute ?? 0,
    perUsernamePerMinute: config.limits.passwordAttemptsPerUsernamePerMinute ?? 0,
  });
  const login = new BrowserLogin({
    store,
    providers: base.loginProviders,
    publicUrl: config.publicUrl,
    browser: config.browser ?? DEFAULT_BROWSER_CONFIG,
    admitLogin: (address) => loginLimits.countPendingLogin(address),
    revocations,
  });

  const introspectionClients = new ClientAuthenticator(config.introspection?.clients ?? [], {
    store,
    endpointUrl: `${config.publicUrl.replace(/\/+$/, '')}/oauth2/introspect`,
    issuer: config.publicUrl,
  });
  if (!introspectionClients.required) logger.warn('introspection.clients is empty: /oauth2/introspect answers anyone who can reach it');
  const introspectionLimits = new EndpointAddressLimit(store, { endpoint: 'introspect', perAddressPerMinute: config.limits.introspectionPerAddressPerMinute ?? 0 });

  // stsgate as an OpenID Provider, when clients are configured: its people are the browser sessions above.
  const openIdProvider =
    base.op === undefined || (config.clients ?? []).length === 0
      ? undefined
      : new base.op.OpenIdProvider({
          publicUrl: config.publicUrl,
          clients: config.clients!,
          store,
          box,
          cookieSecret: encryptionKey,
          keys,
          algorithm: config.signing.algorithm,
          login,
          grantedRoles,
          browserSessionTtlSeconds: (config.browser ?? DEFAULT_BROWSER_CONFIG).sessionTtlSeconds,
          pages: openIdProviderPages(options.pageNotice !== undefined ? { notice: options.pageNotice } : {}),
          logger,
        });
  if (openIdProvider && config.providers.length === 0) logger.warn('clients: are configured but no providers: nobody can sign in to them');

  const audit = new AuditLog(logger, metrics, { includeAccountLabel: config.audit?.includeAccountLabel ?? true });
  return {
    ...base,
    revocations,
    audit,
    appDependencies: {
      publicUrl: config.publicUrl,
      maxBodyBytes: config.limits.maxBodyBytes,
      limits,
      introspectionClients,
      introspectionLimits,
      loginLimits,
      passwordLimits,
      trustedProxies: new TrustedProxies(config.listen.trustedProxies ?? []),
      store,
      keys,
      roles,
      credentials,
      exchange,
      login,
      loginFlow: new LoginFlow({ login, grantedRoles, explainRefusal }),
      grantedRoles,
      targets,
      discovery: discoveryClaims(config),
      audit,
      logger,
      metrics,
      metricsOnPublicPort: adminConfig(config).metricsOnPublicPort,
      ...(options.pageNotice !== undefined ? { pageNotice: options.pageNotice } : {}),
      ...(openIdProvider ? { openIdProvider } : {}),
    },
  };
}

/** Opens the public port and the admin listener; the returned gateway's `close` drains them (`drain`). */
async function startServers(config: GatewayConfig, options: GatewayOptions, parts: GatewayParts, accepting: Accepting, opened: { close(): unknown }[]): Promise<RunningGateway> {
  const { logger, metrics, store, keys, revocations, audit } = parts;
  const admin = adminConfig(config);
  const app = createApp({ ...parts.appDependencies, accepting: () => accepting.value });

  // Responses not yet started, so that a shutdown can ask them to end their connection.
  const unanswered = new Set<ServerResponse>();
  // One listener function for every response (a response closes once), not a closure per request.
  function answered(this: ServerResponse): void {
    unanswered.delete(this);
  }
  const handle = app.callback();
  const server = boundedServer((req, res) => {
    if (accepting.value) {
      unanswered.add(res);
      res.on('close', answered);
    } else {
      // Draining: Node would otherwise keep the connection alive, and a client reusing it just as the
      // port closes has its request dropped unanswered (and `server.close` waits for the idle timeout).
      res.setHeader('Connection', 'close');
    }
    void handle(req, res);
  });
  const url = await listen(server, options.port ?? config.listen.port, options.host ?? config.listen.host);
  opened.push({ close: () => server.close() });

  const adminApp = createAdminApp({
    store,
    metrics,
    logger,
    accepting: () => accepting.value,
    ...(admin.token !== undefined ? { token: admin.token } : {}),
    adminRoutes: [revocationRoutes({ revocations, config, audit, maxBodyBytes: config.limits.maxBodyBytes }), ...(options.adminRoutes ?? [])],
  });
  const adminHandle = adminApp.callback();
  const adminServer = boundedServer((req, res) => void adminHandle(req, res));
  const adminUrl = await listen(adminServer, options.adminPort ?? admin.listen.port, admin.listen.host);
  const signing = keys.set.current(Date.now(), config.signing.algorithm);
  logger.info({ url, adminUrl, adminApi: admin.token !== undefined, publicUrl: config.publicUrl, kid: signing.kid, alg: signing.alg }, 'stsgate listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    server,
    adminUrl,
    adminServer,
    store,
    keys,
    revocations,
    close() {
      closing ??= drain(config, options, { ...parts, server, adminServer, unanswered }, accepting);
      return closing;
    },
  };
}

/**
 * The shutdown: readiness fails at once, the public port keeps serving for the shutdown delay (load
 * balancers stop routing here), closes, lets in-flight requests finish within the grace period; then the
 * admin listener closes (metrics stay scrapeable until the public port has drained), then the store.
 */
async function drain(
  config: GatewayConfig,
  options: GatewayOptions,
  running: GatewayParts & { server: Server; adminServer: Server; unanswered: ReadonlySet<ServerResponse> },
  accepting: Accepting,
): Promise<void> {
  const { logger, server, adminServer, store, keysFile } = running;
  accepting.value = false;
  for (const res of running.unanswered) if (!res.headersSent) res.setHeader('Connection', 'close');
  const shutdown = config.shutdown ?? DEFAULT_SHUTDOWN;
  const delay = options.shutdownDelayMs ?? shutdown.delaySeconds * 1000;
  const grace = options.shutdownGraceMs ?? shutdown.graceSeconds * 1000;
  if (delay > 0) {
    logger.info({ delaySeconds: delay / 1000 }, 'shutdown: readiness fails; still serving until load balancers stop sending');
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  keysFile?.stop();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => {
    logger.warn({ graceSeconds: grace / 1000 }, 'shutdown: requests still running after the grace period are cut off');
    server.closeAllConnections();
  }, grace);
  await closed;
  clearTimeout(timer);
  await closeNow(adminServer);
  await store.close();
  logger.info('stsgate stopped');
}

/** The `admin:` section, with its defaults for configurations built in code. */
function adminConfig(config: GatewayConfig): AdminConfig {
  return config.admin ?? { listen: { host: config.listen.host, port: DEFAULT_ADMIN_PORT }, metricsOnPublicPort: false };
}

/** An HTTP server whose slow clients cannot hold connections open forever. */
function boundedServer(handle: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer(handle);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  // Node enforces both deadlines only when it checks its connections, every 30 s by default, so a slowloris
  // client could hold a connection for 40 s; checking every second keeps the cut-off near the deadline.
  // (Read when the server starts listening; @types/node declares it only as a createServer option.)
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = 1_000;
  return server;
}

/** Starts listening; resolves the URL to reach it on (loopback for a wildcard address). */
async function listen(server: Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      // The most common first-run failure: say what to do about it.
      if (err.code === 'EADDRINUSE') reject(new Error(`${host}:${port} is already in use (EADDRINUSE: another stsgate, or another program): stop it, or choose another port (serve --port N, or listen.port / admin.listen.port in the config; demo --port N)`, { cause: err }));
      else reject(err);
    });
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shown === '0.0.0.0' ? '127.0.0.1' : shown === '[::]' ? '[::1]' : shown}:${address.port}`;
}

/**
 * Closes a server whose requests are short (scrapes, probes, admin calls): idle keep-alive connections
 * at once, a request still running after a second cut off.
 */
async function closeNow(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), 1_000);
  await closed;
  clearTimeout(timer);
}
