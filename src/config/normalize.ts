/** Turns the validated file (snake_case, as written) into the `GatewayConfig` every module codes against. */
import type { GatewayConfig, IntrospectionClientConfig, IssuerConfig, ProviderConfig, StoreConfig } from './types.js';
import type { GatewayFile } from './schema.js';

type RawStore = NonNullable<GatewayFile['store']>;

function normalizeStore(store: RawStore | undefined): StoreConfig {
  if (store === undefined) return { kind: 'memory', prefix: 'stsgate:' };
  if (store.memory) return { kind: 'memory', prefix: store.memory.prefix };
  const redis = store.redis!;
  const common = { prefix: redis.prefix, commandTimeoutMs: redis.command_timeout_ms };
  if (redis.sentinel) {
    const s = redis.sentinel;
    return {
      kind: 'sentinel',
      sentinels: s.sentinels.map(({ host, port }) => ({ host, port })),
      name: s.name,
      ...(s.password !== undefined ? { password: s.password } : {}),
      ...(s.sentinel_password !== undefined ? { sentinelPassword: s.sentinel_password } : {}),
      ...(s.db !== undefined ? { db: s.db } : {}),
      tls: redis.tls ?? false,
      ...common,
    };
  }
  if (redis.cluster) {
    const c = redis.cluster;
    return {
      kind: 'cluster',
      nodes: c.nodes.map(({ host, port }) => ({ host, port })),
      ...(c.password !== undefined ? { password: c.password } : {}),
      tls: redis.tls ?? false,
      ...common,
    };
  }
  return { kind: 'standalone', url: redis.url!, ...common };
}

function normalizeIssuer(issuer: GatewayFile['issuers'][number]): IssuerConfig {
  const keys: IssuerConfig['keys'] =
    issuer.jwks_uri !== undefined
      ? { kind: 'jwks_uri', uri: issuer.jwks_uri }
      : issuer.keys !== undefined
        ? { kind: 'inline', jwks: { keys: issuer.keys.keys.map((k) => ({ ...k })) } }
        : { kind: 'discovery' };
  return {
    id: issuer.id,
    issuer: issuer.issuer,
    audiences: [...issuer.audiences],
    keys,
    algorithms: [...new Set(issuer.algorithms)],
    clockSkewSeconds: issuer.clock_skew_seconds,
    ...(issuer.max_token_age_seconds !== undefined ? { maxTokenAgeSeconds: issuer.max_token_age_seconds } : {}),
  };
}

const PROVIDER_URL_KEYS = ['base_url', 'api_url', 'graph_url'] as const;

function normalizeProvider(provider: GatewayFile['providers'][number]): ProviderConfig {
  const urls: Record<string, string> = {};
  for (const [key, value] of Object.entries(provider)) {
    if ((PROVIDER_URL_KEYS as readonly string[]).includes(key) && typeof value === 'string') urls[key] = value;
  }
  return {
    id: provider.id,
    use: provider.use,
    clientId: provider.client_id,
    clientSecret: provider.client_secret,
    ...(provider.scopes !== undefined ? { scopes: [...provider.scopes] } : {}),
    ...(provider.issuer !== undefined ? { issuer: provider.issuer } : {}),
    urls,
    endpoints: { ...provider.endpoints },
    ...(provider.display_name !== undefined ? { displayName: provider.display_name } : {}),
  };
}

function normalizeIntrospectionClient(client: GatewayFile['introspection']['clients'][number]): IntrospectionClientConfig {
  if (client.auth === 'private_key_jwt') return { id: client.id, auth: client.auth, jwks: { keys: client.jwks!.keys.map((k) => ({ ...k })) } };
  return { id: client.id, auth: client.auth, secret: client.secret! };
}

/** Builds `GatewayConfig` from a file that passed validation and the consistency checks. */
export function normalizeConfig(file: GatewayFile): GatewayConfig {
  return {
    // Stripped so that `<public_url>/callback/<id>` never has a double slash.
    publicUrl: file.public_url.replace(/\/+$/, ''),
    listen: { host: file.listen.host, port: file.listen.port, trustedProxies: [...file.listen.trusted_proxies] },
    admin: {
      listen: { host: file.admin.listen.host ?? file.listen.host, port: file.admin.listen.port },
      metricsOnPublicPort: file.admin.metrics_on_public_port,
      ...(file.admin.token !== undefined ? { token: file.admin.token } : {}),
    },
    store: normalizeStore(file.store),
    signing: {
      algorithm: file.signing.algorithm,
      ...(file.signing.keys_file !== undefined ? { keysFile: file.signing.keys_file } : {}),
      reloadIntervalSeconds: file.signing.reload_interval_seconds,
    },
    ...(file.credentials.encryption_key !== undefined ? { encryptionKey: file.credentials.encryption_key } : {}),
    accountId: file.account_id,
    dev: { allowInsecureHttp: file.dev.allow_insecure_http },
    limits: {
      maxBodyBytes: file.limits.max_body_bytes,
      exchangePerAddressPerMinute: file.limits.exchange_per_address_per_minute,
      exchangePerSubjectPerMinute: file.limits.exchange_per_subject_per_minute,
      loginPerAddressPerMinute: file.limits.login_per_address_per_minute,
      pendingLoginsPerAddress: file.limits.pending_logins_per_address,
      introspectionPerAddressPerMinute: file.limits.introspection_per_address_per_minute,
    },
    cache: { minRemainingFraction: file.credentials.cache_min_remaining_fraction },
    workers: file.workers,
    shutdown: { delaySeconds: file.shutdown.delay_seconds, graceSeconds: file.shutdown.grace_seconds },
    issuers: file.issuers.map(normalizeIssuer),
    roles: file.roles.map((role) => ({
      name: role.name,
      scopes: [...role.scopes],
      audiences: [...role.audiences],
      maxSessionSeconds: role.max_session_seconds,
      canAssume: [...role.can_assume],
      sessionTags: { ...role.session_tags },
    })),
    rules: file.rules,
    tests: file.tests.map((test) => ({
      ...(test.name !== undefined ? { name: test.name } : {}),
      identity: {
        source: test.identity.source,
        ...(test.identity.subject !== undefined ? { subject: test.identity.subject } : {}),
        claims: test.identity.claims,
      },
      expectRoles: [...test.expect_roles],
    })),
    providers: file.providers.map(normalizeProvider),
    introspection: { clients: file.introspection.clients.map(normalizeIntrospectionClient) },
    browser: {
      sessionTtlSeconds: file.browser.session_ttl_seconds,
      allowedReturnOrigins: [...new Set(file.browser.allowed_return_origins)],
      cookieName: file.browser.cookie_name,
    },
  };
}
