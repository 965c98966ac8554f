/**
 * A gateway wired to one of each kind of browser-login provider, all on loopback, with rules that grant
 * some of their users roles and not others. The building block of the browser-login tests; a Chromium
 * test or a demo can start the same thing.
 *
 *   const env = await startLoginEnvironment({ store: redisStoreConfig() });
 *   const browser = new TestBrowser();
 *   await loginAs(browser, env.gateway.url, 'google', env.google, 'alice');      // 303 to /
 *   await browser.get(`${env.gateway.url}/v1/credentials?role=deployer`);
 *   await env.close();
 *
 * | provider id | what                                      | granted users (roles)                             | refused |
 * | google      | oidc-provider standing in for Google      | alice (deployer, reader)                          | bob     |
 * | okta        | oidc-provider as a generic oidc provider  | carol (admin: `groups` only in userinfo)          | dan     |
 * | github      | GitHubDouble (orgs/teams paginated by 2)  | octocat (deployer, reader), dave (reader)         | eve     |
 * | facebook    | FacebookDouble (appsecret_proof checked)  | alice (reader)                                    | mallory |
 * | forged      | OidcDouble: ID tokens can be forged       | mallory (reader) while it behaves                 |         |
 * | down        | an oidc provider nobody listens for       |                                                   |         |
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import type { BrowserConfig, GatewayConfig, ProviderConfig, RuleConfig, SigningAlgorithm, StoreConfig } from '../../src/config/types.js';
import { providerConfig, reservePublicUrl } from './browser-login.js';
import { FacebookDouble } from './facebook-double.js';
import { REDIS_URL, redisStoreConfig, startTestGateway, standardRoles, type TestGateway } from './gateway.js';
import { GitHubDouble } from './github-double.js';
import { OidcDouble } from './oidc-double.js';
import { OidcTestProvider } from './oidc-provider.js';
import { freePort } from './common.js';

export interface LoginEnvironment {
  gateway: TestGateway;
  publicUrl: string;
  google: OidcTestProvider;
  okta: OidcTestProvider;
  github: GitHubDouble;
  facebook: FacebookDouble;
  forged: OidcDouble;
  close(): Promise<void>;
}

const condition = (claim: string, op: 'equals' | 'contains' | 'ends_with', value: unknown) => ({ claim, op, value, ignoreCase: false });

/** Rules: who of the environment's users gets which role. */
export function loginRules(): RuleConfig[] {
  return [
    { name: 'the acme Workspace may deploy and read', match: { source: 'google', conditions: [condition('hd', 'equals', 'acme.com'), condition('email_verified', 'equals', true)] }, roles: ['deployer', 'reader'] },
    { name: 'sts-admins in okta administer', match: { source: 'okta', conditions: [condition('groups', 'contains', 'sts-admins')] }, roles: ['admin'] },
    { name: 'the acme deployers team deploys', match: { source: 'github', conditions: [condition('teams', 'contains', 'acme/deployers')] }, roles: ['deployer'] },
    { name: 'members of the acme org read', match: { source: 'github', conditions: [condition('orgs', 'contains', 'acme')] }, roles: ['reader'] },
    { name: 'alice on facebook reads', match: { source: 'facebook', conditions: [condition('email', 'equals', 'alice@example.com')] }, roles: ['reader'] },
    { name: 'mallory at the forging provider reads', match: { source: 'forged', conditions: [condition('sub', 'equals', 'm-1')] }, roles: ['reader'] },
  ];
}

/**
 * Starts the providers, then the gateway (its public URL is reserved first: the providers register its
 * redirect URIs). `gateway` overrides more of the gateway's configuration (`limits`, `listen`...).
 */
export async function startLoginEnvironment(
  options: { store?: StoreConfig; browser?: Partial<BrowserConfig>; port?: number; gateway?: Partial<GatewayConfig>; keyAlgorithms?: SigningAlgorithm[] } = {},
): Promise<LoginEnvironment> {
  const { port, publicUrl } = options.port !== undefined ? { port: options.port, publicUrl: `http://127.0.0.1:${options.port}` } : await reservePublicUrl();
  const client = (id: string) => ({ clientId: `${id}-client`, clientSecret: `${id}-secret`, redirectUri: `${publicUrl}/callback/${id}` });

  const google = await OidcTestProvider.start({
    users: {
      alice: { sub: '1001', email: 'alice@acme.com', email_verified: true, hd: 'acme.com', name: 'Alice Liddell' },
      bob: { sub: '1002', email: 'bob@other.com', email_verified: true, hd: 'other.com', name: 'Bob' },
    },
    clients: [client('google')],
  });
  const okta = await OidcTestProvider.start({
    users: {
      carol: { sub: 'c-1', email: 'carol@acme.com', email_verified: true, name: 'Carol', preferred_username: 'carol', userinfoOnly: { groups: ['sts-admins', 'staff'] } },
      dan: { sub: 'd-1', email: 'dan@acme.com', email_verified: true, name: 'Dan', userinfoOnly: { groups: ['staff'] } },
    },
    clients: [{ ...client('okta'), authMethod: 'client_secret_post' }],
  });
  const github = await GitHubDouble.start({
    octocat: {
      id: 583231,
      login: 'octocat',
      name: 'The Octocat',
      email: 'public@octocat.example',
      emails: [
        { email: 'octo@acme.com', primary: true, verified: true },
        { email: 'old@octocat.example', primary: false, verified: false },
      ],
      orgs: ['a-org', 'b-org', 'c-org', 'acme', 'z-org'],
      teams: ['a-org/x', 'b-org/y', 'acme/deployers'],
    },
    dave: {
      id: 9001,
      login: 'dave',
      emails: [
        { email: 'dave@unverified.example', primary: true, verified: false },
        { email: 'dave@verified.example', primary: false, verified: true },
      ],
      orgs: ['acme'],
      teams: [],
    },
    eve: { id: 666, login: 'eve', emails: [{ email: 'eve@evil.example', primary: true, verified: true }], orgs: ['evilcorp'], teams: ['evilcorp/deployers'] },
  });
  github.addClient(client('github'));
  const facebook = await FacebookDouble.start(
    { alice: { id: '10001', name: 'Alice', email: 'alice@example.com' }, mallory: { id: '10002', name: 'Mallory', email: 'mallory@example.com' } },
    { appSecret: 'facebook-secret' },
  );
  facebook.addClient(client('facebook'));
  const forged = await OidcDouble.start({ mallory: { sub: 'm-1', email: 'mallory@forged.example' } });
  forged.addClient(client('forged'));
  const nobody = await freePort();

  const providers: ProviderConfig[] = [
    providerConfig('google', 'google', { issuer: google.issuer }),
    providerConfig('okta', 'oidc', { issuer: okta.issuer, displayName: 'Okta' }),
    providerConfig('github', 'github', { urls: { base_url: github.url, api_url: github.apiUrl } }),
    providerConfig('facebook', 'facebook', { urls: { base_url: facebook.url, graph_url: facebook.url } }),
    providerConfig('forged', 'oidc', { issuer: forged.issuer, displayName: 'Forgery Inc.' }),
    providerConfig('down', 'oidc', { issuer: `http://127.0.0.1:${nobody}`, displayName: 'Down Ltd.' }),
  ];
  const gateway = await startTestGateway({
    issuers: [],
    port,
    roles: standardRoles(),
    rules: loginRules(),
    ...(options.store ? { store: options.store } : {}),
    ...(options.keyAlgorithms ? { keyAlgorithms: options.keyAlgorithms } : {}),
    config: {
      publicUrl,
      providers,
      browser: { sessionTtlSeconds: 3600, allowedReturnOrigins: ['https://app.example.com'], cookieName: 'stsgate_session', ...options.browser },
      ...options.gateway,
    },
  });
  return {
    gateway,
    publicUrl,
    google,
    okta,
    github,
    facebook,
    forged,
    async close() {
      await gateway.close();
      await Promise.all([google.close(), okta.close(), github.close(), facebook.close(), forged.close()]);
    },
  };
}

/** A file's login environment on the real Redis, with a raw client and the key prefix to look into the store. */
export interface LoginTestSetup {
  env: LoginEnvironment;
  redis: Redis;
  prefix: string;
}

/** Starts a login environment on the real Redis (fresh prefix) before the file's tests and stops it after; fields are set once beforeAll ran. */
export function useLoginEnvironment(): LoginTestSetup {
  const setup = {} as LoginTestSetup;
  beforeAll(async () => {
    const store = redisStoreConfig();
    setup.prefix = store.prefix;
    setup.env = await startLoginEnvironment({ store });
    setup.redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await setup.env?.close();
    setup.redis?.disconnect();
  });
  return setup;
}

/** A Redis topology for two login replicas: its store configuration, and how to take it down. */
export type LoginStoreTopology = () => Promise<{ store: StoreConfig; stop(): Promise<void> }>;

/** Two gateways on one store: `a` is the environment's own, `b` a second replica with the same configuration. */
export interface LoginReplicas {
  env: LoginEnvironment;
  a: TestGateway;
  b: TestGateway;
}

/**
 * Before the enclosing suite's tests: the store, a login environment on it and a second replica (same
 * store prefix, keys file, encryption key and public URL, another port); after them, all stopped. The
 * fields are set once beforeAll ran.
 */
export function useLoginReplicas(topology: LoginStoreTopology): LoginReplicas {
  const replicas = {} as LoginReplicas;
  let redis: { store: StoreConfig; stop(): Promise<void> } | undefined;
  beforeAll(async () => {
    redis = await topology();
    replicas.env = await startLoginEnvironment({ store: redis.store });
    const a = (replicas.a = replicas.env.gateway);
    replicas.b = await startTestGateway({ issuers: a.config.issuers, roles: a.config.roles, rules: a.config.rules, store: a.config.store, config: a.config });
  });
  afterAll(async () => {
    await replicas.b?.close();
    await replicas.env?.close();
    await redis?.stop();
  });
  return replicas;
}
