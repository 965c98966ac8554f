/**
 * The validated, normalized gateway configuration: what `loadConfig` returns after the zod schema,
 * environment interpolation and `<name>_file` secrets. Every other module codes against these types.
 */

export type SigningAlgorithm = 'ES256' | 'EdDSA' | 'RS256';
export type IssuerAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

export type RedisStoreConfig =
  | { kind: 'standalone'; url: string; prefix: string; commandTimeoutMs: number }
  | {
      kind: 'sentinel';
      sentinels: { host: string; port: number }[];
      name: string;
      password?: string;
      sentinelPassword?: string;
      db?: number;
      tls: boolean;
      prefix: string;
      commandTimeoutMs: number;
    }
  | {
      kind: 'cluster';
      nodes: { host: string; port: number }[];
      password?: string;
      tls: boolean;
      prefix: string;
      commandTimeoutMs: number;
    };

/** `undefined` store means the in-memory store. */
export type StoreConfig = { kind: 'memory'; prefix: string } | RedisStoreConfig;

export interface IssuerConfig {
  id: string;
  /** Compared exactly with the token's `iss`. */
  issuer: string;
  audiences: string[];
  /** Where keys come from: discovery (`<issuer>/.well-known/openid-configuration`), a JWKS URL, or inline. */
  keys: { kind: 'discovery' } | { kind: 'jwks_uri'; uri: string } | { kind: 'inline'; jwks: { keys: Record<string, unknown>[] } };
  algorithms: IssuerAlgorithm[];
  clockSkewSeconds: number;
  maxTokenAgeSeconds?: number;
}

export interface RoleConfig {
  name: string;
  scopes: string[];
  audiences: string[];
  maxSessionSeconds: number;
  canAssume: string[];
  sessionTags: Record<string, string>;
}

import type { RuleConfig } from '../rules/vocabulary.js';

export type { ClaimCondition, ClaimOperator, Condition, RuleConfig } from '../rules/vocabulary.js';

export interface ConfigTestCase {
  /** Optional label shown by `stsgate check-config`. */
  name?: string;
  identity: { source: string; subject?: string; claims: Record<string, unknown> };
  expectRoles: string[];
}

/** One configured browser-login provider: a definition from `providers/` (`use`) plus this instance's settings. */
export interface ProviderConfig {
  /** Appears in `/login/<id>`, `/callback/<id>` and as the identity's `source`. */
  id: string;
  /** The definition's name (`providers/<use>.yaml`): google, github, facebook, oidc. */
  use: string;
  clientId: string;
  clientSecret: string;
  /** Replaces the definition's default scopes when given. */
  scopes?: string[];
  /** oidc kinds: the issuer to discover (replaces the definition's default). */
  issuer?: string;
  /** Overrides of the definition's named base URLs (`base_url`, `api_url`, `graph_url`). */
  urls: Record<string, string>;
  /** Overrides of single endpoints by name (`authorization`, `token`, `userinfo`, `user`...). */
  endpoints: Record<string, string>;
  displayName?: string;
}

/**
 * A resource server allowed to call `/oauth2/introspect`, and how it authenticates (RFC 7662 §2.1):
 * a shared secret (RFC 6749 §2.3.1) or a JWT signed with its own key (RFC 7523 §2.2).
 */
export type IntrospectionClientConfig =
  | { id: string; auth: 'client_secret_basic' | 'client_secret_post'; secret: string }
  | { id: string; auth: 'private_key_jwt'; jwks: { keys: Record<string, unknown>[] } };

/** The browser login session and where a login may send the browser afterwards. */
export interface BrowserConfig {
  sessionTtlSeconds: number;
  /** Origins (`https://app.example.com`) besides the gateway's own that `return_to` may lead to. */
  allowedReturnOrigins: string[];
  cookieName: string;
}

/** The `browser:` defaults: an 8-hour session, no origin but the gateway's own, cookie `stsgate_session`. */
export const DEFAULT_BROWSER_CONFIG: Readonly<BrowserConfig> = Object.freeze({ sessionTtlSeconds: 28_800, allowedReturnOrigins: [], cookieName: 'stsgate_session' });

/** The operators' listener: `/metrics`, `/healthz`, `/readyz` and, with a token, the admin API under `/admin/`. */
export interface AdminConfig {
  listen: { host: string; port: number };
  /** Also serve `/metrics` on the public port (off: 404 there like any unknown path). */
  metricsOnPublicPort: boolean;
  /** Bearer token of `/admin/*`; absent: the admin API is off (every `/admin/*` path is 404). */
  token?: string;
}

export interface GatewayConfig {
  publicUrl: string;
  /**
   * `trustedProxies`: the addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`) of the proxies in front of
   * stsgate (load balancer, ingress); X-Forwarded-For is believed only from a connection of one of them,
   * and the client address used by rate limits and logs is its rightmost entry that is not one of them.
   * Empty: the connection's own address. Optional only for configurations built in code (empty).
   */
  listen: { host: string; port: number; trustedProxies?: string[] };
  /** Optional only for configurations built in code: `listen.host`, port 9090, metrics not on the public port, no admin API. */
  admin?: AdminConfig;
  store: StoreConfig;
  /** `reloadIntervalSeconds`: how often the keys file is re-read (rotation); the loader always sets it. */
  signing: { algorithm: SigningAlgorithm; keysFile?: string; reloadIntervalSeconds?: number };
  /** 32-byte key for encrypting secrets at rest; generated at start when absent (dev only). */
  encryptionKey?: Buffer;
  accountId: string;
  dev: { allowInsecureHttp: boolean };
  /**
   * Request size and abuse limits. The exchange and login limits are requests per minute, and
   * `pendingLoginsPerAddress` login transactions per ten minutes (0: off); they are optional only for
   * configurations built in code, where they are off; the loader always sets them.
   */
  limits: {
    maxBodyBytes: number;
    exchangePerAddressPerMinute?: number;
    exchangePerSubjectPerMinute?: number;
    loginPerAddressPerMinute?: number;
    pendingLoginsPerAddress?: number;
    /** `/oauth2/introspect` requests per minute per client address, authenticated or not (0: off). */
    introspectionPerAddressPerMinute?: number;
  };
  cache: { minRemainingFraction: number };
  /**
   * Processes serving the port (node:cluster); "auto": one per core. Several need a shared store and keys.
   * This and `shutdown` are optional only for configurations built in code; the loader always sets them.
   */
  workers?: number | 'auto';
  /** On SIGTERM: `delaySeconds` of failing readiness while still serving, then up to `graceSeconds` for in-flight requests. */
  shutdown?: { delaySeconds: number; graceSeconds: number };
  issuers: IssuerConfig[];
  roles: RoleConfig[];
  rules: RuleConfig[];
  tests: ConfigTestCase[];
  /** Browser-login providers. */
  providers: ProviderConfig[];
  /** Omitted (configs built in code): DEFAULT_BROWSER_CONFIG. */
  browser?: BrowserConfig;
  /** Who may introspect; no clients (or omitted): the endpoint is open, as RFC 7662 §2.1 allows only behind other protection. */
  introspection?: { clients: IntrospectionClientConfig[] };
}
