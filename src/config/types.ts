/**
 * The configuration types every module codes against, all inferred from the zod schema (`schema.ts`,
 * whose transforms produce them) and the rule vocabulary (`rules/vocabulary.ts`): nothing here is
 * declared a second time. This file stays so that importers keep one stable path.
 */
import type { LoadedConfig } from './schema.js';

export type { IssuerAlgorithm, LoadedConfig, SigningAlgorithm } from './schema.js';
export type { ClaimCondition, ClaimOperator, Condition, RuleConfig } from '../rules/vocabulary.js';

/** `store:` as loaded; no store section means the in-memory store. */
export type StoreConfig = LoadedConfig['store'];
export type RedisStoreConfig = Exclude<StoreConfig, { kind: 'memory' }>;
/** One trusted issuer of `issuers:`. */
export type IssuerConfig = LoadedConfig['issuers'][number];
/** One target of `targets:`: a relying party that trusts stsgate as its OIDC issuer. */
export type TargetConfig = LoadedConfig['targets'][number];
/** One role of `roles:` (`targets` optional for roles built in code: none). */
export type RoleConfig = Omit<LoadedConfig['roles'][number], 'targets'> & Partial<Pick<LoadedConfig['roles'][number], 'targets'>>;
/** One case of `tests:`, run by `stsgate check-config`. */
export type ConfigTestCase = LoadedConfig['tests'][number];
/** One configured browser-login provider of any kind: a definition from `providers/` (`use`) plus this instance's settings. */
export type AnyProviderConfig = LoadedConfig['providers'][number];
/** A configured OAuth 2 or OpenID Connect provider. */
export type ProviderConfig = Exclude<AnyProviderConfig, { ldap: unknown }>;
/** A configured directory provider (`use: ldap`): a sign-in form served by stsgate, checked by LDAP. */
export type LdapProviderConfig = Extract<AnyProviderConfig, { ldap: unknown }>;
/** How a directory provider reaches and reads its directory. */
export type LdapSettings = LdapProviderConfig['ldap'];
/** A resource server allowed to call `/oauth2/introspect`, and how it authenticates (RFC 7662 §2.1). */
export type IntrospectionClientConfig = LoadedConfig['introspection']['clients'][number];
/** One application of `clients:` that signs people in through stsgate as its OpenID Provider (src/op/). */
export type OidcClientConfig = LoadedConfig['clients'][number];
/** The browser login session and where a login may send the browser afterwards. */
export type BrowserConfig = LoadedConfig['browser'];
/** The operators' listener: `/metrics`, `/healthz`, `/readyz` and, with a token, the admin API under `/admin/`. */
export type AdminConfig = LoadedConfig['admin'];

/** The `browser:` defaults: an 8-hour session, no origin but the gateway's own, cookie `stsgate_session`. */
export const DEFAULT_BROWSER_CONFIG: Readonly<BrowserConfig> = Object.freeze({ sessionTtlSeconds: 28_800, allowedReturnOrigins: [], cookieName: 'stsgate_session' });

type Limits = LoadedConfig['limits'];

/**
 * The runtime configuration: what the loader returns (`LoadedConfig`), with the parts the loader always
 * sets optional for configurations built in code (tests, embedding), where they take their defaults:
 * no targets (and roles listing none), no trusted proxies, the admin listener on `listen.host`:9090 without admin API, the exchange, login and
 * introspection limits off, one worker, the default shutdown and keys reload, DEFAULT_BROWSER_CONFIG, and
 * an open introspection endpoint, the `auto` log format, and account labels in denial lines.
 */
export type GatewayConfig = Omit<LoadedConfig, 'listen' | 'admin' | 'signing' | 'limits' | 'workers' | 'shutdown' | 'browser' | 'introspection' | 'roles' | 'targets' | 'log' | 'audit' | 'clients'> & {
  roles: RoleConfig[];
  targets?: LoadedConfig['targets'];
  /** Absent: no OpenID Provider clients (the provider is not mounted). */
  clients?: LoadedConfig['clients'];
  listen: Omit<LoadedConfig['listen'], 'trustedProxies'> & Partial<Pick<LoadedConfig['listen'], 'trustedProxies'>>;
  admin?: AdminConfig;
  signing: Omit<LoadedConfig['signing'], 'reloadIntervalSeconds'> & Partial<Pick<LoadedConfig['signing'], 'reloadIntervalSeconds'>>;
  limits: Pick<Limits, 'maxBodyBytes'> & Partial<Omit<Limits, 'maxBodyBytes'>>;
  workers?: LoadedConfig['workers'];
  shutdown?: LoadedConfig['shutdown'];
  browser?: BrowserConfig;
  introspection?: LoadedConfig['introspection'];
  log?: LoadedConfig['log'];
  audit?: LoadedConfig['audit'];
};
