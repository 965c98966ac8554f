import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { configErrorMap, gatewaySchema } from '../../src/config/schema.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { PROVIDERS_DIR, providerDefinitions } from '../../src/config/provider-definitions.js';
import { ACCOUNT_ID } from '../support/common.js';

type Tree = Record<string, unknown>;

const dir = mkdtempSync(join(tmpdir(), 'stsgate-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function base(): Tree {
  return {
    public_url: 'https://sts.example.com',
    account_id: ACCOUNT_ID,
    issuers: [{ id: 'gha', issuer: 'https://token.actions.githubusercontent.com', audiences: ['sts.example.com'] }],
    roles: [{ name: 'deployer' }, { name: 'reader' }],
    rules: [{ name: 'r0', match: { source: 'gha', claim: 'repository', equals: 'acme/app' }, roles: ['deployer'] }],
  };
}

function parse(tree: Tree, env: Record<string, string> = {}): GatewayConfig {
  return parseConfig(stringify(tree), env, dir);
}

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

function with_(change: (t: Tree) => void): Tree {
  const tree = base();
  change(tree);
  return tree;
}

// Test-only shorthands into the base tree.
const client = { client_id: 'client-1', client_secret: 'secret-1' };
/** Real public keys for inline JWKS rows (a key that is not a valid point or modulus is refused). */
const ecJwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
const rsaJwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
const weakRsaJwk = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
const KEY_EXPECTED = 'expected a public signing key for one of RS256, ES256';
const issuer = (t: Tree) => (t.issuers as Tree[])[0]!;
const role = (t: Tree) => (t.roles as Tree[])[0]!;
const rule = (t: Tree) => (t.rules as Tree[])[0]!;

describe('a valid configuration', () => {
  it('gets every default', () => {
    const config = parse(base());
    expect(config).toEqual({
      publicUrl: 'https://sts.example.com',
      listen: { host: '0.0.0.0', port: 8080, trustedProxies: [] },
      admin: { listen: { host: '0.0.0.0', port: 9090 }, metricsOnPublicPort: false },
      store: { kind: 'memory', prefix: 'stsgate:' },
      signing: { algorithm: 'ES256', reloadIntervalSeconds: 10 },
      accountId: ACCOUNT_ID,
      dev: { allowInsecureHttp: false },
      limits: { maxBodyBytes: 65536, exchangePerAddressPerMinute: 600, exchangePerSubjectPerMinute: 300, loginPerAddressPerMinute: 60, pendingLoginsPerAddress: 20, passwordAttemptsPerAddressPerMinute: 20, passwordAttemptsPerUsernamePerMinute: 10, introspectionPerAddressPerMinute: 3000 },
      introspection: { clients: [] },
      cache: { minRemainingFraction: 0.5 },
      clients: [],
      workers: 1,
      shutdown: { delaySeconds: 0, graceSeconds: 10 },
      log: { format: 'auto', sync: false },
      audit: { includeAccountLabel: true },
      issuers: [
        {
          id: 'gha',
          issuer: 'https://token.actions.githubusercontent.com',
          audiences: ['sts.example.com'],
          keys: { kind: 'discovery' },
          algorithms: ['RS256', 'ES256'],
          clockSkewSeconds: 60,
        },
      ],
      roles: [
        { name: 'deployer', scopes: [], audiences: [], maxSessionSeconds: 3600, canAssume: [], sessionTags: {}, targets: [] },
        { name: 'reader', scopes: [], audiences: [], maxSessionSeconds: 3600, canAssume: [], sessionTags: {}, targets: [] },
      ],
      targets: [],
      rules: [{ name: 'r0', match: { source: 'gha', conditions: [{ claim: 'repository', op: 'equals', value: 'acme/app', ignoreCase: false }] }, roles: ['deployer'] }],
      tests: [],
      providers: [],
      browser: { sessionTtlSeconds: 28800, allowedReturnOrigins: [], cookieName: 'stsgate_session' },
    } satisfies GatewayConfig);
  });

  it('converts every field to camelCase', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const config = parse(
      with_((t) => {
        t.public_url = 'https://sts.example.com/base/';
        t.listen = { host: '127.0.0.1', port: 9000 };
        t.signing = { algorithm: 'EdDSA', keys_file: '/etc/stsgate/keys.json', reload_interval_seconds: 2 };
        t.credentials = { encryption_key: key, cache_min_remaining_fraction: 0.25 };
        t.limits = { max_body_bytes: 4096 };
        t.dev = { allow_insecure_http: true };
        t.store = { redis: { url: 'redis://localhost:6379' } };
        t.workers = 4;
        t.shutdown = { delay_seconds: 5, grace_seconds: 20 };
        t.log = { format: 'text', sync: true };
        t.audit = { include_account_label: false };
        Object.assign(issuer(t), { algorithms: ['ES384', 'EdDSA'], clock_skew_seconds: 5, max_token_age_seconds: 600 });
        Object.assign(role(t), {
          description: 'Deploys acme/app from its main branch',
          scopes: ['deploy:write'],
          audiences: ['api'],
          max_session_seconds: 43200,
          can_assume: ['reader'],
          session_tags: { repo: 'claims.repository', who: 'subject', from: 'source' },
        });
        t.providers = [{ id: 'github', use: 'github', client_id: 'abc', client_secret: 'def', api_url: 'https://ghe.example.com/api/v3', scopes: ['read:user'], endpoints: { token: 'https://ghe.example.com/token' }, display_name: 'GHE' }];
        t.browser = { session_ttl_seconds: 3600, allowed_return_origins: ['https://app.example.com/', 'https://app.example.com'], cookie_name: '__Host-stsgate' };
        t.tests = [{ name: 'case', identity: { source: 'gha', subject: 's', claims: { repository: 'acme/app' } }, expect_roles: ['deployer'] }];
      }),
    );
    expect(config.publicUrl).toBe('https://sts.example.com/base');
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 9000, trustedProxies: [] });
    expect(config.signing).toEqual({ algorithm: 'EdDSA', keysFile: '/etc/stsgate/keys.json', reloadIntervalSeconds: 2 });
    expect(config.workers).toBe(4);
    expect(config.shutdown).toEqual({ delaySeconds: 5, graceSeconds: 20 });
    expect(config.log).toEqual({ format: 'text', sync: true });
    expect(config.audit).toEqual({ includeAccountLabel: false });
    expect(config.encryptionKey).toEqual(Buffer.alloc(32, 7));
    expect(config.cache).toEqual({ minRemainingFraction: 0.25 });
    expect(config.limits).toEqual({ maxBodyBytes: 4096, exchangePerAddressPerMinute: 600, exchangePerSubjectPerMinute: 300, loginPerAddressPerMinute: 60, pendingLoginsPerAddress: 20, passwordAttemptsPerAddressPerMinute: 20, passwordAttemptsPerUsernamePerMinute: 10, introspectionPerAddressPerMinute: 3000 });
    expect(config.dev).toEqual({ allowInsecureHttp: true });
    expect(config.issuers[0]).toMatchObject({ algorithms: ['ES384', 'EdDSA'], clockSkewSeconds: 5, maxTokenAgeSeconds: 600 });
    expect(config.roles[0]).toEqual({
      name: 'deployer',
      description: 'Deploys acme/app from its main branch',
      scopes: ['deploy:write'],
      audiences: ['api'],
      maxSessionSeconds: 43200,
      canAssume: ['reader'],
      sessionTags: { repo: 'claims.repository', who: 'subject', from: 'source' },
      targets: [],
    });
    expect(config.providers).toEqual([
      {
        id: 'github',
        use: 'github',
        clientId: 'abc',
        clientSecret: 'def',
        scopes: ['read:user'],
        urls: { api_url: 'https://ghe.example.com/api/v3' },
        endpoints: { token: 'https://ghe.example.com/token' },
        displayName: 'GHE',
      },
    ]);
    expect(config.browser).toEqual({ sessionTtlSeconds: 3600, allowedReturnOrigins: ['https://app.example.com'], cookieName: '__Host-stsgate' });
    expect(config.tests).toEqual([{ name: 'case', identity: { source: 'gha', subject: 's', claims: { repository: 'acme/app' } }, expectRoles: ['deployer'] }]);
  });

  it.each<[string, unknown, GatewayConfig['store']]>([
    ['memory with prefix', { memory: { prefix: 'x:' } }, { kind: 'memory', prefix: 'x:' }],
    ['standalone', { redis: { url: 'redis://localhost:6379/0' } }, { kind: 'standalone', url: 'redis://localhost:6379/0', prefix: 'stsgate:', commandTimeoutMs: 1000 }],
    ['standalone tls url', { redis: { url: 'rediss://r:6380', prefix: 'p:', command_timeout_ms: 250 } }, { kind: 'standalone', url: 'rediss://r:6380', prefix: 'p:', commandTimeoutMs: 250 }],
    [
      'sentinel',
      { redis: { sentinel: { sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster', password: 'pw', sentinel_password: 'spw', db: 2 }, tls: true } },
      { kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster', password: 'pw', sentinelPassword: 'spw', db: 2, tls: true, prefix: 'stsgate:', commandTimeoutMs: 1000 },
    ],
    [
      'cluster',
      { redis: { cluster: { nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }] }, prefix: 'c:' } },
      { kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }], tls: false, prefix: 'c:', commandTimeoutMs: 1000 },
    ],
  ])('store: %s', (_name, store, expected) => {
    expect(parse(with_((t) => (t.store = store))).store).toEqual(expected);
  });

  it.each<[string, Tree, GatewayConfig['issuers'][number]['keys']]>([
    ['discovery', {}, { kind: 'discovery' }],
    ['jwks_uri', { jwks_uri: 'https://x.example.com/jwks' }, { kind: 'jwks_uri', uri: 'https://x.example.com/jwks' }],
    ['inline', { keys: { keys: [{ ...ecJwk, kid: 'k1' }] } }, { kind: 'inline', jwks: { keys: [{ ...ecJwk, kid: 'k1' }] } }],
  ])('issuer keys: %s', (_name, extra, expected) => {
    expect(parse(with_((t) => Object.assign(issuer(t), extra))).issuers[0]!.keys).toEqual(expected);
  });

  it.each<[string, unknown, unknown[]]>([
    ['single condition', { claim: 'a', equals: 1 }, [{ claim: 'a', op: 'equals', value: 1, ignoreCase: false }]],
    ['all flattens', { all: [{ claim: 'a', equals: 'x' }, { claim: 'b', in: ['y', null], ignore_case: true }] }, [
      { claim: 'a', op: 'equals', value: 'x', ignoreCase: false },
      { claim: 'b', op: 'in', value: ['y', null], ignoreCase: true },
    ]],
    ['any', { any: [{ claim: 'a', exists: true }, { claim: 'b', glob: 'x*' }] }, [{ any: [{ claim: 'a', op: 'exists', value: true, ignoreCase: false }, { claim: 'b', op: 'glob', value: 'x*', ignoreCase: false }] }]],
    ['not', { not: { claim: 'a', contains: 'x' } }, [{ not: { claim: 'a', op: 'contains', value: 'x', ignoreCase: false } }]],
    ['nested combinators', { all: [{ any: [{ not: { claim: 'a', matches: 'x.*' } }] }] }, [{ any: [{ not: { claim: 'a', op: 'matches', value: 'x.*', ignoreCase: false } }] }]],
    ['claim, all, any and not together are ANDed', { claim: 'a', starts_with: 'p', all: [{ claim: 'b', ends_with: 's' }], any: [{ claim: 'c', not_equals: false }], not: { claim: 'd', exists: true } }, [
      { claim: 'a', op: 'starts_with', value: 'p', ignoreCase: false },
      { claim: 'b', op: 'ends_with', value: 's', ignoreCase: false },
      { any: [{ claim: 'c', op: 'not_equals', value: false, ignoreCase: false }] },
      { not: { claim: 'd', op: 'exists', value: true, ignoreCase: false } },
    ]],
    ['equals null', { claim: 'a', equals: null }, [{ claim: 'a', op: 'equals', value: null, ignoreCase: false }]],
  ])('rule match: %s', (_name, match, conditions) => {
    // A private issuer: the same rules on GitHub Actions would be refused as unpinned (safety.test.ts).
    const config = parse(with_((t) => ((issuer(t).issuer = 'https://issuer.example.com'), (rule(t).match = { source: 'gha', ...(match as Tree) }))));
    expect(config.rules[0]!.match).toEqual({ source: 'gha', conditions });
  });

  it('accepts a match with only a source (of a private issuer)', () => {
    expect(parse(with_((t) => ((issuer(t).issuer = 'https://issuer.example.com'), (rule(t).match = { source: 'gha' })))).rules[0]!.match).toEqual({ source: 'gha', conditions: [] });
  });

  it.each<[string, unknown, number | 'auto']>([
    ['a number', 3, 3],
    ['auto', 'auto', 'auto'],
    ['digits from the environment', '2', 2],
  ])('workers: %s', (_name, workers, expected) => {
    // Several workers need what replicas need: a shared store and shared keys.
    const config = parse(
      with_((t) => {
        t.store = { redis: { url: 'redis://localhost:6379' } };
        t.signing = { keys_file: '/etc/stsgate/keys.json' };
        t.credentials = { encryption_key: Buffer.alloc(32, 1).toString('base64') };
        t.workers = workers;
      }),
    );
    expect(config.workers).toBe(expected);
  });

  it('keeps claims named __proto__ in tests as own claims', () => {
    const text = `${stringify(base())}\ntests:\n  - identity: { source: gha, claims: { __proto__: admin } }\n    expect_roles: []\n`;
    const claims = parseConfig(text, {}, dir).tests[0]!.identity.claims;
    expect(Object.hasOwn(claims, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(claims)).toBe(Object.prototype);
  });
});

describe('problems', () => {
  it.each<[string, (t: Tree) => void, string]>([
    // structure and types
    ['unknown top-level key', (t) => (t.isuers = []), '(top level): unknown key "isuers"; did you mean "issuers"?'],
    ['unknown key without a close match', (t) => (t.frobnicate = 1), '(top level): unknown key "frobnicate"; allowed keys: public_url, listen, admin, store, signing, account_id, providers, browser, dev, credentials, limits, introspection, workers, shutdown, log, audit, issuers, targets, roles, rules, tests, clients'],
    ['unknown nested key', (t) => (issuer(t).audience = ['x']), 'issuers[0]: unknown key "audience"; did you mean "audiences"?'],
    ['an unknown log format', (t) => (t.log = { format: 'pretty' }), 'log.format: found "pretty", expected one of auto, text, json'],
    ['log.sync that is not a boolean', (t) => (t.log = { sync: 'yes' }), 'log.sync: found "yes", expected true or false'],
    ['an account-label switch that is not a boolean', (t) => (t.audit = { include_account_label: 'no' }), 'audit.include_account_label: found "no", expected true or false'],
    ['unknown rule key', (t) => (rule(t).mtach = {}), 'rules[0]: unknown key "mtach"; did you mean "match"?'],
    ['missing public_url', (t) => delete t.public_url, 'public_url: missing, expected an https:// URL'],
    ['mapping where a string is expected', (t) => (issuer(t).audiences = [{ a: 1 }]), 'issuers[0].audiences[0]: found a mapping, expected a string'],
    ['port out of range', (t) => (t.listen = { port: 70000 }), 'listen.port: found 70000, expected an integer in 1..65535'],
    ['port not a number', (t) => (t.listen = { port: 'http' }), 'listen.port: found "http", expected an integer in 1..65535'],
    ['enum with did-you-mean', (t) => (t.signing = { algorithm: 'ES265' }), 'signing.algorithm: found "ES265", expected one of ES256, EdDSA, RS256; did you mean "ES256"?'],
    ['enum with did-you-mean ignoring case', (t) => (t.signing = { algorithm: 'eddsa' }), 'signing.algorithm: found "eddsa", expected one of ES256, EdDSA, RS256; did you mean "EdDSA"?'],
    ['empty list', (t) => (issuer(t).audiences = []), 'issuers[0].audiences: found an empty list, expected at least 1 item'],
    ['empty string', (t) => (issuer(t).audiences = ['']), 'issuers[0].audiences[0]: found an empty string, expected a non-empty string'],
    ['fraction out of range', (t) => (t.credentials = { cache_min_remaining_fraction: 1.5 }), 'credentials.cache_min_remaining_fraction: found 1.5, expected a number in 0..1'],
    ['max_body_bytes too small', (t) => (t.limits = { max_body_bytes: 10 }), 'limits.max_body_bytes: found 10, expected an integer in 1024..67108864'],
    ['non-boolean flag', (t) => (t.dev = { allow_insecure_http: 'yes' }), 'dev.allow_insecure_http: found "yes", expected true or false'],
    // account and roles
    ['account_id short', (t) => (t.account_id = '12345'), 'account_id: found "12345", expected a string of 12 digits'],
    ['account_id letters', (t) => (t.account_id = '12345678901a'), 'account_id: found "12345678901a", expected a string of 12 digits'],
    ['account_id as a YAML number', (t) => (t.account_id = 123456789012), 'account_id: found 123456789012, expected a string of 12 digits (quote it in YAML)'],
    ['max_session_seconds below 900', (t) => (role(t).max_session_seconds = 899), 'roles[0].max_session_seconds: found 899, expected an integer in 900..43200'],
    ['max_session_seconds above 43200', (t) => (role(t).max_session_seconds = 43201), 'roles[0].max_session_seconds: found 43201, expected an integer in 900..43200'],
    ['max_session_seconds fractional', (t) => (role(t).max_session_seconds = 1000.5), 'roles[0].max_session_seconds: found 1000.5, expected an integer in 900..43200'],
    ['role description too long', (t) => (role(t).description = 'x'.repeat(201)), 'roles[0].description: found 201 characters, expected at most 200'],
    ['role description empty', (t) => (role(t).description = ''), 'roles[0].description: found an empty string, expected a non-empty string'],
    ['role name with a space', (t) => (t.roles as Tree[]).push({ name: 'my role' }), 'roles[2].name: found "my role", expected 1-64 letters, digits or any of + = , . @ _ -'],
    ['scope with a space', (t) => (role(t).scopes = ['a b']), 'roles[0].scopes[0]: found "a b", expected a scope token (printable ASCII without spaces, " or \\; RFC 6749 §3.3)'],
    ['session tag source', (t) => (role(t).session_tags = { repo: 'repository' }), 'roles[0].session_tags.repo: found "repository", expected source, subject or claims.<dot.path>'],
    // issuers
    ['http issuer', (t) => (issuer(t).issuer = 'http://idp.example.com'), 'issuers[0].issuer: found "http://idp.example.com", expected an https:// URL (http:// only with dev.allow_insecure_http: true)'],
    ['http issuer on loopback', (t) => (issuer(t).issuer = 'http://127.0.0.1:9000'), 'issuers[0].issuer: found "http://127.0.0.1:9000", expected an https:// URL (http:// only with dev.allow_insecure_http: true)'],
    ['http jwks_uri', (t) => (issuer(t).jwks_uri = 'http://idp.example.com/jwks'), 'issuers[0].jwks_uri: found "http://idp.example.com/jwks", expected an https:// URL (http:// only with dev.allow_insecure_http: true)'],
    ['ftp issuer', (t) => (issuer(t).issuer = 'ftp://idp.example.com'), 'issuers[0].issuer: found "ftp://idp.example.com", expected an https:// URL'],
    ['relative issuer', (t) => (issuer(t).issuer = 'idp.example.com'), 'issuers[0].issuer: found "idp.example.com", expected an absolute https:// URL'],
    ['issuer with query', (t) => (issuer(t).issuer = 'https://idp.example.com?x=1'), 'issuers[0].issuer: found "https://idp.example.com?x=1", expected a URL without query or fragment'],
    ['HS256', (t) => (issuer(t).algorithms = ['HS256']), 'issuers[0].algorithms[0]: found "HS256", expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA; symmetric (HS*) and "none" algorithms are never accepted'],
    ['none', (t) => (issuer(t).algorithms = ['RS256', 'none']), 'issuers[0].algorithms[1]: found "none", expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA; symmetric (HS*) and "none" algorithms are never accepted'],
    ['algorithm typo', (t) => (issuer(t).algorithms = ['RS265']), 'issuers[0].algorithms[0]: found "RS265", expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA; did you mean "RS256"?'],
    ['jwks_uri and keys', (t) => Object.assign(issuer(t), { jwks_uri: 'https://x.example.com/jwks', keys: { keys: [rsaJwk] } }), 'issuers[0]: found both jwks_uri and keys, expected at most one (neither means discovery)'],
    ['private inline key', (t) => (issuer(t).keys = { keys: [{ ...ecJwk, d: 'secret' }] }), `issuers[0].keys.keys[0]: found a private key (it has "d"); a key set must hold public keys only, ${KEY_EXPECTED}`],
    ['symmetric inline key', (t) => (issuer(t).keys = { keys: [{ kty: 'oct' }] }), `issuers[0].keys.keys[0]: found a symmetric (kty "oct") key: a shared secret is never a trust anchor (RFC 8725 §2.1), ${KEY_EXPECTED}`],
    ['secret member of a symmetric inline key', (t) => (issuer(t).keys = { keys: [{ ...rsaJwk, k: 'secret' }] }), `issuers[0].keys.keys[0]: found a private key (it has "k"); a key set must hold public keys only, ${KEY_EXPECTED}`],
    ['weak inline RSA key', (t) => (issuer(t).keys = { keys: [rsaJwk, { ...weakRsaJwk, kid: 'weak' }] }), `issuers[0].keys.keys[1]: found an RSA key of 1024 bits; at least 2048 are required (kid "weak"), ${KEY_EXPECTED}`],
    ['inline encryption key', (t) => (issuer(t).keys = { keys: [{ ...rsaJwk, use: 'enc' }] }), `issuers[0].keys.keys[0]: found "use" is "enc", not "sig", ${KEY_EXPECTED}`],
    ['inline key of an algorithm not allowed', (t) => Object.assign(issuer(t), { algorithms: ['ES256'], keys: { keys: [rsaJwk] } }), 'issuers[0].keys.keys[0]: found no allowed algorithm (ES256) verifies with an RSA key, expected a public signing key for one of ES256'],
    ['inline key of an unknown type', (t) => (issuer(t).keys = { keys: [{ kty: 'XYZ' }] }), `issuers[0].keys.keys[0]: found key type "XYZ" is not RSA, EC or OKP, ${KEY_EXPECTED}`],
    ['inline key with a missing part', (t) => (issuer(t).keys = { keys: [{ kty: 'EC', crv: 'P-256', x: ecJwk.x }] }), `issuers[0].keys.keys[0]: found missing "y", ${KEY_EXPECTED}`],
    ['max token age shown as found', (t) => (issuer(t).max_token_age_seconds = 0), 'issuers[0].max_token_age_seconds: found 0, expected an integer in 1..604800'],
    ['a password of the wrong type is not echoed', (t) => (t.store = { redis: { sentinel: { sentinels: [{ host: 'a', port: 1 }], name: 'm', password: 123456 } } }), 'store.redis.sentinel.password: found a number, expected a string'],
    ['clock skew too large', (t) => (issuer(t).clock_skew_seconds = 3600), 'issuers[0].clock_skew_seconds: found 3600, expected an integer in 0..300'],
    ['bad issuer id', (t) => (t.issuers as Tree[]).push({ id: 'git hub', issuer: 'https://x.example.com', audiences: ['a'] }), 'issuers[1].id: found "git hub", expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit'],
    // public_url
    ['http public_url', (t) => (t.public_url = 'http://sts.example.com'), 'public_url: found "http://sts.example.com", expected an https:// URL (http:// only for loopback hosts or with dev.allow_insecure_http: true)'],
    // providers
    ['provider without id', (t) => (t.providers = [{ ...client, use: 'google' }]), 'providers[0].id: missing, expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit'],
    ['provider with http endpoint', (t) => (t.providers = [{ ...client, id: 'gh', use: 'github', base_url: 'http://ghe.local' }]), 'providers[0].base_url: found "http://ghe.local", expected an https:// URL (http:// only with dev.allow_insecure_http: true)'],
    ['provider with an http endpoint override', (t) => (t.providers = [{ ...client, id: 'g', use: 'google', endpoints: { token: 'http://x.example.com/token' } }]), 'providers[0].endpoints.token: found "http://x.example.com/token", expected an https:// URL (http:// only with dev.allow_insecure_http: true)'],
    ['provider without use', (t) => (t.providers = [{ ...client, id: 'g' }]), 'providers[0].use: missing, expected one of facebook, github, google, ldap, oidc, saml (a definition in providers/)'],
    ['provider use typo', (t) => (t.providers = [{ ...client, id: 'g', use: 'gogle' }]), 'providers[0].use: found "gogle", expected one of facebook, github, google, ldap, oidc, saml (a definition in providers/); did you mean "google"?'],
    ['provider without client_id', (t) => (t.providers = [{ id: 'g', use: 'google', client_secret: 'x' }]), 'providers[0].client_id: missing, expected the OAuth client id the provider issued'],
    ['provider without client secret', (t) => (t.providers = [{ id: 'g', use: 'google', client_id: 'x' }]), 'providers[0].client_secret: missing, expected the OAuth client secret (or client_secret_file: PATH)'],
    ['provider secret of the wrong type is not echoed', (t) => (t.providers = [{ id: 'g', use: 'google', client_id: 'x', client_secret: 123456 }]), 'providers[0].client_secret: found a number, expected the OAuth client secret (or client_secret_file: PATH)'],
    ['generic oidc without issuer', (t) => (t.providers = [{ ...client, id: 'okta', use: 'oidc' }]), 'providers[0].issuer: missing, expected the issuer URL to discover (use: oidc has no default issuer)'],
    ['issuer on an oauth2 provider', (t) => (t.providers = [{ ...client, id: 'gh', use: 'github', issuer: 'https://github.com' }]), 'providers[0].issuer: found an issuer, expected none: use: github is OAuth 2 without discovery (override its base URLs or endpoints instead)'],
    ['base URL of another definition', (t) => (t.providers = [{ ...client, id: 'gh', use: 'github', graph_url: 'https://graph.example.com' }]), 'providers[0].graph_url: found graph_url, expected only base_url, api_url for use: github'],
    ['base URL on an oidc provider', (t) => (t.providers = [{ ...client, id: 'g', use: 'google', base_url: 'https://x.example.com' }]), 'providers[0].base_url: found base_url, expected no base URL for use: google (set issuer instead)'],
    ['unknown endpoint name', (t) => (t.providers = [{ ...client, id: 'gh', use: 'github', endpoints: { usr: 'https://x.example.com/user' } }]), 'providers[0].endpoints.usr: unknown endpoint "usr" for use: github; did you mean "user"?'],
    ['unknown provider key', (t) => (t.providers = [{ ...client, id: 'g', use: 'google', scope: ['openid'] }]), 'providers[0]: unknown key "scope"; did you mean "scopes"?'],
    ['provider scope with a space', (t) => (t.providers = [{ ...client, id: 'g', use: 'google', scopes: ['openid email'] }]), 'providers[0].scopes[0]: found "openid email", expected a scope token (printable ASCII without spaces, " or \\; RFC 6749 §3.3)'],
    // browser
    ['session ttl too short', (t) => (t.browser = { session_ttl_seconds: 60 }), 'browser.session_ttl_seconds: found 60, expected an integer in 300..604800'],
    ['return origin with a path', (t) => (t.browser = { allowed_return_origins: ['https://app.example.com/home'] }), 'browser.allowed_return_origins[0]: found "https://app.example.com/home", expected an origin such as https://app.example.com (scheme, host and optional port; no path); http:// only with dev.allow_insecure_http: true'],
    ['http return origin', (t) => (t.browser = { allowed_return_origins: ['http://app.example.com'] }), 'browser.allowed_return_origins[0]: found "http://app.example.com", expected an origin such as https://app.example.com (scheme, host and optional port; no path); http:// only with dev.allow_insecure_http: true'],
    ['cookie name with a space', (t) => (t.browser = { cookie_name: 'my session' }), "browser.cookie_name: found \"my session\", expected a cookie name (1-64 letters, digits or !#$%&'*+-.^_`|~; RFC 6265)"],
    // store
    ['store with both forms', (t) => (t.store = { memory: {}, redis: { url: 'redis://x' } }), 'store: found both memory and redis, expected exactly one (or omit store for memory)'],
    ['redis with two forms', (t) => (t.store = { redis: { url: 'redis://x', cluster: { nodes: [{ host: 'a', port: 1 }] } } }), 'store.redis: found url and cluster, expected exactly one of url, sentinel or cluster'],
    ['redis without a form', (t) => (t.store = { redis: { prefix: 'x' } }), 'store.redis: found none, expected exactly one of url, sentinel or cluster'],
    ['redis url scheme, password not echoed', (t) => (t.store = { redis: { url: 'http://:hunter2@x' } }), 'store.redis.url: found a string of 17 characters, expected a redis:// or rediss:// URL'],
    ['tls with a url', (t) => (t.store = { redis: { url: 'redis://x', tls: true } }), 'store.redis.tls: found tls next to url, expected a rediss:// URL for TLS instead'],
    ['sentinel without sentinels', (t) => (t.store = { redis: { sentinel: { sentinels: [], name: 'm' } } }), 'store.redis.sentinel.sentinels: found an empty list, expected at least 1 item'],
    ['cluster node port', (t) => (t.store = { redis: { cluster: { nodes: [{ host: 'a', port: 0 }] } } }), 'store.redis.cluster.nodes[0].port: found 0, expected an integer in 1..65535'],
    ['command timeout', (t) => (t.store = { redis: { url: 'redis://x', command_timeout_ms: 0 } }), 'store.redis.command_timeout_ms: found 0, expected an integer in 1..60000'],
    // encryption key (never echoed)
    ['encryption key of 16 bytes', (t) => (t.credentials = { encryption_key: Buffer.alloc(16).toString('base64') }), 'credentials.encryption_key: found base64 of 16 bytes, expected base64 of 32 bytes (openssl rand -base64 32)'],
    ['encryption key not base64', (t) => (t.credentials = { encryption_key: 'not base64!' }), 'credentials.encryption_key: found a string of 11 characters that is not base64, expected base64 of 32 random bytes (openssl rand -base64 32)'],
    ['encryption key as a number', (t) => (t.credentials = { encryption_key: 12345 }), 'credentials.encryption_key: found a number, expected base64 of 32 random bytes'],
    // conditions
    ['unknown operator', (t) => (rule(t).match = { source: 'gha', all: [{ claim: 'a', equals: 1 }, { claim: 'b', equal: 'x' }] }), 'rules[0].match.all[1]: unknown operator "equal"; did you mean "equals"?'],
    ['unknown operator at match level', (t) => (rule(t).match = { source: 'gha', claim: 'a', startswith: 'x' }), 'rules[0].match: unknown operator "startswith"; did you mean "starts_with"?'],
    ['unknown operator without a close match', (t) => (rule(t).match = { all: [{ claim: 'a', like: 'x' }] }), 'rules[0].match.all[0]: unknown operator "like"; operators: equals, not_equals, in, contains, starts_with, ends_with, glob, matches, exists'],
    ['unknown match key', (t) => (rule(t).match = { sourse: 'gha', claim: 'a', equals: 1 }), 'rules[0].match: unknown key "sourse"; did you mean "source"?'],
    ['two operators', (t) => (rule(t).match = { all: [{ claim: 'a', equals: 'x', glob: 'y' }] }), 'rules[0].match.all[0]: found operators "equals" and "glob", expected exactly one per condition (combine conditions with all)'],
    ['no operator', (t) => (rule(t).match = { all: [{ claim: 'a' }] }), 'rules[0].match.all[0]: found claim "a" without an operator, expected one of equals, not_equals, in, contains, starts_with, ends_with, glob, matches, exists'],
    ['no claim', (t) => (rule(t).match = { all: [{ equals: 'x' }] }), 'rules[0].match.all[0]: missing claim, expected claim: <dot.path> next to "equals"'],
    ['combinator next to claim', (t) => (rule(t).match = { all: [{ claim: 'a', equals: 1, any: [{ claim: 'b', exists: true }] }] }), 'rules[0].match.all[0]: found "any" next to a claim condition, expected one per condition (put both under all)'],
    ['two combinators in one condition', (t) => (rule(t).match = { all: [{ any: [{ claim: 'a', exists: true }], not: { claim: 'b', exists: true } }] }), 'rules[0].match.all[0]: found "any" and "not" together, expected one combinator per condition (nest them under all)'],
    ['empty condition', (t) => (rule(t).match = { all: [{}] }), 'rules[0].match.all[0]: found an empty condition, expected { claim: <dot.path>, <operator>: <value> } or all, any, not'],
    ['empty match', (t) => (rule(t).match = {}), 'rules[0].match: found an empty match, expected a source and/or conditions'],
    ['empty all', (t) => (rule(t).match = { all: [] }), 'rules[0].match.all: found an empty list, expected at least 1 item'],
    ['empty any', (t) => (rule(t).match = { all: [{ any: [] }] }), 'rules[0].match.all[0].any: found an empty list, expected at least 1 item'],
    ['equals a list', (t) => (rule(t).match = { claim: 'a', equals: ['x'] }), 'rules[0].match.equals: found a list, expected a string, number, boolean or null'],
    ['equals a mapping', (t) => (rule(t).match = { claim: 'a', equals: { x: 1 } }), 'rules[0].match.equals: found a mapping, expected a string, number, boolean or null'],
    ['in not a list', (t) => (rule(t).match = { claim: 'a', in: 'x' }), 'rules[0].match.in: found "x", expected a list'],
    ['in empty', (t) => (rule(t).match = { claim: 'a', in: [] }), 'rules[0].match.in: found an empty list, expected at least 1 item'],
    ['in with a list member', (t) => (rule(t).match = { claim: 'a', in: ['x', ['y']] }), 'rules[0].match.in[1]: found a list, expected a string, number, boolean or null'],
    ['starts_with a number', (t) => (rule(t).match = { claim: 'a', starts_with: 1 }), 'rules[0].match.starts_with: found 1, expected a string'],
    ['ends_with empty', (t) => (rule(t).match = { claim: 'a', ends_with: '' }), 'rules[0].match.ends_with: found an empty string, expected a non-empty string'],
    ['glob a boolean', (t) => (rule(t).match = { claim: 'a', glob: true }), 'rules[0].match.glob: found true, expected a string'],
    ['exists a string', (t) => (rule(t).match = { claim: 'a', exists: 'yes' }), 'rules[0].match.exists: found "yes", expected true or false'],
    ['regex that does not compile', (t) => (rule(t).match = { claim: 'a', matches: '(a' }), 'rules[0].match.matches: found "(a", expected an RE2 regular expression (linear-time; no backreferences or lookaround): error parsing regexp: missing closing ): `(a`'],
    ['backreference', (t) => (rule(t).match = { claim: 'a', matches: '(a)\\1' }), 'rules[0].match.matches: found "(a)\\\\1", expected an RE2 regular expression (linear-time; no backreferences or lookaround): error parsing regexp: invalid escape sequence: `\\1`'],
    ['lookahead', (t) => (rule(t).match = { claim: 'a', matches: 'a(?=b)' }), 'rules[0].match.matches: found "a(?=b)", expected an RE2 regular expression (linear-time; no backreferences or lookaround): error parsing regexp: invalid or unsupported Perl syntax: `(?=`'],
    ['ignore_case with matches', (t) => (rule(t).match = { claim: 'a', matches: 'x', ignore_case: true }), 'rules[0].match: found ignore_case with matches, expected the pattern to accept both cases itself (e.g. [Aa]); ignore_case folds plain strings only'],
    ['ignore_case with exists', (t) => (rule(t).match = { claim: 'a', exists: true, ignore_case: true }), 'rules[0].match: found ignore_case with exists, expected it only with operators that compare strings'],
    ['ignore_case not a boolean', (t) => (rule(t).match = { claim: 'a', equals: 'x', ignore_case: 'yes' }), 'rules[0].match.ignore_case: found "yes", expected true or false'],
    ['malformed claim path', (t) => (rule(t).match = { claim: 'a..b', exists: true }), 'rules[0].match.claim: found "a..b", expected a dot path of claim names (it has an empty segment at offset 2)'],
    ['claim path with stray backslash', (t) => (rule(t).match = { claim: 'a\\b', exists: true }), 'rules[0].match.claim: found "a\\\\b", expected a dot path of claim names (it has a stray backslash at offset 1 (only \\. and \\\\ are escapes))'],
    ['rule without roles', (t) => (rule(t).roles = []), 'rules[0].roles: found an empty list, expected at least 1 item'],
    // cross references
    ['duplicate role', (t) => (t.roles as Tree[]).push({ name: 'deployer' }), 'roles[2].name: duplicate role name "deployer" (also roles[0].name), expected unique role names'],
    ['duplicate issuer', (t) => (t.issuers as Tree[]).push({ id: 'gha', issuer: 'https://x.example.com', audiences: ['a'] }), 'issuers[1].id: duplicate id "gha" (also issuers[0].id), expected ids unique across issuers and providers'],
    ['provider id clashing with an issuer', (t) => (t.providers = [{ ...client, id: 'gha', use: 'google' }]), 'providers[0].id: duplicate id "gha" (also issuers[0].id), expected ids unique across issuers and providers'],
    ['duplicate provider', (t) => (t.providers = [{ ...client, id: 'google', use: 'google' }, { ...client, id: 'google', use: 'google' }]), 'providers[1].id: duplicate id "google" (also providers[0].id), expected ids unique across issuers and providers'],
    ['duplicate rule name', (t) => (t.rules as Tree[]).push({ name: 'r0', match: { source: 'gha' }, roles: ['reader'] }), 'rules[1].name: duplicate rule name "r0" (also rules[0].name), expected unique rule names (audit logs and explain name rules)'],
    ['rule naming an unknown role', (t) => (rule(t).roles = ['deployr']), 'rules[0].roles[0]: unknown role "deployr"; did you mean "deployer"?'],
    ['rule naming an unknown role, no close match', (t) => (rule(t).roles = ['admin']), 'rules[0].roles[0]: unknown role "admin"; known roles: deployer, reader'],
    ['can_assume naming an unknown role', (t) => (role(t).can_assume = ['readr']), 'roles[0].can_assume[0]: unknown role "readr"; did you mean "reader"?'],
    ['rule source naming nothing', (t) => ((rule(t).match as Tree).source = 'gh4'), 'rules[0].match.source: unknown source "gh4"; did you mean "gha"?'],
    ['rule source naming nothing, no close match', (t) => ((rule(t).match as Tree).source = 'google'), 'rules[0].match.source: unknown source "google"; known sources: gha'],
    ['test expecting an unknown role', (t) => (t.tests = [{ identity: { source: 'gha', claims: {} }, expect_roles: ['deployers'] }]), 'tests[0].expect_roles[0]: unknown role "deployers"; did you mean "deployer"?'],
    ['test with an unknown source', (t) => (t.tests = [{ identity: { source: 'ghb', claims: {} }, expect_roles: [] }]), 'tests[0].identity.source: unknown source "ghb"; did you mean "gha"?'],
    ['test claims not a mapping', (t) => (t.tests = [{ identity: { source: 'gha', claims: ['x'] }, expect_roles: [] }]), 'tests[0].identity.claims: found a list, expected a mapping of claims'],
    ['test unknown key', (t) => (t.tests = [{ identity: { source: 'gha' }, expect_roles: [], expected_roles: [] }]), 'tests[0]: unknown key "expected_roles"; did you mean "expect_roles"?'],
  ])('%s', (_name, change, expected) => {
    expect(problemsOf(() => parse(with_(change)))).toEqual([expected]);
  });

  it.each<[string, (t: Tree) => void, string[]]>([
    ['zero', (t) => (t.workers = 0), ['workers: found 0, expected an integer in 1..256 or "auto" (one per core)']],
    ['a word', (t) => (t.workers = 'many'), ['workers: found "many", expected an integer in 1..256 or "auto" (one per core)']],
    [
      'several on the in-memory store with generated keys',
      (t) => (t.workers = 2),
      [
        'workers: found 2 with the in-memory store, expected 1: each worker would keep its own store (configure store.redis to run several)',
        'signing.keys_file: missing, expected a keys file with workers: 2 (generated keys differ per worker, so one worker\'s tokens would fail on the next)',
        'credentials.encryption_key: missing, expected a key with workers: 2 (generated keys differ per worker, so stored secrets would not open on the next)',
      ],
    ],
    [
      'auto on Redis without an encryption key',
      (t) => Object.assign(t, { workers: 'auto', store: { redis: { url: 'redis://localhost:6379' } }, signing: { keys_file: '/k.json' } }),
      ['credentials.encryption_key: missing, expected a key with workers: "auto" (generated keys differ per worker, so stored secrets would not open on the next)'],
    ],
    ['a reload interval of zero', (t) => (t.signing = { reload_interval_seconds: 0 }), ['signing.reload_interval_seconds: found 0, expected an integer in 1..3600']],
    ['a negative shutdown delay', (t) => (t.shutdown = { delay_seconds: -1 }), ['shutdown.delay_seconds: found -1, expected an integer in 0..300']],
  ])('workers and shutdown: %s', (_name, change, expected) => {
    expect(problemsOf(() => parse(with_(change)))).toEqual(expected);
  });

  it('refuses a __Host- cookie with a plain-http public_url', () => {
    expect(problemsOf(() => parse(with_((t) => Object.assign(t, { public_url: 'http://127.0.0.1:8080', browser: { cookie_name: '__Host-s' } }))))).toEqual([
      'browser.cookie_name: found "__Host-s" with a plain-http public_url, expected a name without the __Secure-/__Host- prefix (such cookies need https)',
    ]);
  });

  it('accepts plain http everywhere with dev.allow_insecure_http: true', () => {
    const config = parse(
      with_((t) => {
        t.dev = { allow_insecure_http: true };
        t.public_url = 'http://sts.internal';
        Object.assign(issuer(t), { issuer: 'http://idp.internal', jwks_uri: 'http://idp.internal/jwks' });
        t.providers = [{ ...client, id: 'dex', use: 'oidc', issuer: 'http://dex.internal', endpoints: { userinfo: 'http://dex.internal/userinfo' } }];
        t.browser = { allowed_return_origins: ['http://app.internal:8000'] };
      }),
    );
    expect(config.providers[0]).toMatchObject({ issuer: 'http://dex.internal', endpoints: { userinfo: 'http://dex.internal/userinfo' } });
    expect(config.browser?.allowedReturnOrigins).toEqual(['http://app.internal:8000']);
    expect(config.issuers[0]!.keys).toEqual({ kind: 'jwks_uri', uri: 'http://idp.internal/jwks' });
  });

  it.each(['http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080', 'http://127.1.2.3'])('accepts an http public_url on loopback: %s', (url) => {
    expect(parse(with_((t) => (t.public_url = url))).publicUrl).toBe(url);
  });

  it.each(['http://127.0.0.1.nip.io', 'http://localhost.evil.com', 'http://0.0.0.0:8080', 'http://10.0.0.1'])('refuses an http public_url off loopback: %s', (url) => {
    expect(problemsOf(() => parse(with_((t) => (t.public_url = url))))).toHaveLength(1);
  });

  it('reports every problem at once, structural and cross-reference together', () => {
    const problems = problemsOf(() =>
      parse(
        with_((t) => {
          t.account_id = '1';
          t.extra = true;
          role(t).max_session_seconds = 10;
          rule(t).roles = ['nope'];
          rule(t).match = { source: 'gh', all: [{ claim: 'a', equal: 1 }] };
        }),
      ),
    );
    expect(problems).toEqual([
      'account_id: found "1", expected a string of 12 digits',
      'roles[0].max_session_seconds: found 10, expected an integer in 900..43200',
      'rules[0].match.all[0]: unknown operator "equal"; did you mean "equals"?',
      '(top level): unknown key "extra"; allowed keys: public_url, listen, admin, store, signing, account_id, providers, browser, dev, credentials, limits, introspection, workers, shutdown, log, audit, issuers, targets, roles, rules, tests, clients',
      'rules[0].roles[0]: unknown role "nope"; known roles: deployer, reader',
      'rules[0].match.source: unknown source "gh"; did you mean "gha"?',
    ]);
  });

  it('puts every problem in the ConfigError message', () => {
    const run = () => parseConfig(stringify(with_((t) => (t.account_id = '1'))), {}, dir, 'gateway.yaml');
    expect(run).toThrow(ConfigError);
    expect(run).toThrow('gateway.yaml: 1 problem\n  account_id: found "1", expected a string of 12 digits');
  });
});

describe('YAML', () => {
  it.each<[string, string, string]>([
    ['duplicate keys', 'public_url: https://a\npublic_url: https://b\n', 'line 2, column 1: Map keys must be unique, expected valid YAML'],
    ['syntax error', 'roles: [a, b\n', 'line 2, column 1: Flow sequence in block collection must be sufficiently indented and end with a ], expected valid YAML'],
    ['unknown tag', 'public_url: !secret x\n', 'line 1, column 13: Unresolved tag: !secret, expected valid YAML'],
  ])('%s', (_name, text, expected) => {
    expect(problemsOf(() => parseConfig(text, {}, dir))).toEqual([expected]);
  });

  it.each<[string, string, string]>([
    ['empty document', '', '(top level): found an empty document, expected a mapping of settings (public_url, issuers, roles, rules, ...)'],
    ['a list', '- a\n', '(top level): found a list, expected a mapping of settings (public_url, issuers, roles, rules, ...)'],
    ['a scalar', 'hello\n', '(top level): found "hello", expected a mapping of settings (public_url, issuers, roles, rules, ...)'],
  ])('%s', (_name, text, expected) => {
    expect(problemsOf(() => parseConfig(text, {}, dir))).toEqual([expected]);
  });

  it('refuses documents that expand too many aliases', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    expect(problemsOf(() => parseConfig(lines.join('\n'), {}, dir))[0]).toMatch(/alias/i);
  });
});

describe('environment interpolation', () => {
  const env = { REDIS_URL: 'redis://cache:6379', PORT: '8443', EMPTY: '', INJECT: 'x\nrules: []\nfoo: {', ID: 'gha' };

  it.each<[string, string, string]>([
    ['a variable', '${REDIS_URL}', 'redis://cache:6379'],
    ['inside text', 'pre-${ID}-post', 'pre-gha-post'],
    ['two variables', '${ID}/${PORT}', 'gha/8443'],
    ['a default when unset', '${UNSET:-fallback}', 'fallback'],
    ['a default when empty', '${EMPTY:-fallback}', 'fallback'],
    ['the value over a default', '${ID:-fallback}', 'gha'],
    ['an empty default', 'x${UNSET:-}y', 'xy'],
    ['a default with symbols', '${UNSET:-redis://a:1/0?x=y}', 'redis://a:1/0?x=y'],
    ['a set but empty variable', 'x${EMPTY}y', 'xy'],
    ['an escaped reference', '$${ID}', '${ID}'],
    ['a lone dollar', 'a$b$', 'a$b$'],
    ['a regex end anchor', 'v[0-9]+$', 'v[0-9]+$'],
  ])('%s', (_name, written, expected) => {
    const config = parse(with_((t) => (t.tests = [{ identity: { source: 'gha', claims: { value: written } }, expect_roles: [] }])), env);
    expect(config.tests[0]!.identity.claims.value).toBe(expected);
  });

  it('cannot inject YAML structure', () => {
    const config = parse(with_((t) => (t.tests = [{ identity: { source: 'gha', claims: { value: '${INJECT}' } }, expect_roles: [] }])), env);
    expect(config.tests[0]!.identity.claims.value).toBe('x\nrules: []\nfoo: {');
    expect(config.rules).toHaveLength(1);
  });

  it('turns a digit string into a number where a number is expected', () => {
    expect(parse(with_((t) => (t.listen = { port: '${PORT}' })), env).listen.port).toBe(8443);
  });

  it('does not interpolate keys', () => {
    const config = parse(with_((t) => (role(t).session_tags = { '${ID}': 'source' })), env);
    expect(config.roles[0]!.sessionTags).toEqual({ '${ID}': 'source' });
  });

  it.each<[string, string, string]>([
    ['unset without default', '${GOOGLE_CLIENT_ID}', 'providers[0].client_id: found "${GOOGLE_CLIENT_ID}" but GOOGLE_CLIENT_ID is not set, expected GOOGLE_CLIENT_ID in the environment or a default: ${GOOGLE_CLIENT_ID:-value}'],
    ['malformed name', '${1BAD}', 'providers[0].client_id: found "${1BAD}", expected ${NAME} or ${NAME:-default} with NAME of letters, digits and _ (write $${ for a literal ${)'],
    ['shell-style alternative', '${X:+y}', 'providers[0].client_id: found "${X:+y}", expected ${NAME} or ${NAME:-default} with NAME of letters, digits and _ (write $${ for a literal ${)'],
    ['unterminated', 'abc${X', 'providers[0].client_id: found an unterminated "${" in "abc${X", expected ${NAME} or ${NAME:-default} (write $${ for a literal ${)'],
  ])('problem: %s', (_name, written, expected) => {
    expect(problemsOf(() => parse(with_((t) => (t.providers = [{ id: 'google', use: 'google', client_secret: 'x', client_id: written }])), env))).toEqual([expected]);
  });

  it('does not read inherited names from the environment object', () => {
    const problems = problemsOf(() => parse(with_((t) => (t.providers = [{ id: 'google', use: 'google', client_secret: 'x', client_id: '${constructor}' }])), {}));
    expect(problems[0]).toContain('constructor is not set');
  });
});

describe('<name>_file secrets', () => {
  const secret = join(dir, 'client-secret');
  writeFileSync(secret, 's3cr3t\n');
  const crlf = join(dir, 'crlf-secret');
  writeFileSync(crlf, 'value\r\n\r\n');
  const key = join(dir, 'encryption-key');
  writeFileSync(key, `${Buffer.alloc(32, 1).toString('base64')}\n`);

  it.each<[string, string, string]>([
    ['absolute path, trailing newline removed', secret, 's3cr3t'],
    ['relative to the config directory', 'client-secret', 's3cr3t'],
    ['CRLF newlines removed', crlf, 'value'],
  ])('%s', (_name, file, expected) => {
    const config = parse(with_((t) => (t.providers = [{ id: 'github', use: 'github', client_id: 'x', client_secret_file: file }])));
    expect(config.providers[0]).toMatchObject({ id: 'github', clientId: 'x', clientSecret: expected });
  });

  it('resolves the file path after interpolation', () => {
    const config = parse(with_((t) => (t.providers = [{ id: 'github', use: 'github', client_id: 'x', client_secret_file: '${SECRETS}/client-secret' }])), { SECRETS: dir });
    expect(config.providers[0]).toMatchObject({ clientSecret: 's3cr3t' });
  });

  it('reads encryption_key_file into the encryption key', () => {
    expect(parse(with_((t) => (t.credentials = { encryption_key_file: key }))).encryptionKey).toEqual(Buffer.alloc(32, 1));
  });

  it('reads nested secrets such as a Redis password', () => {
    const config = parse(with_((t) => (t.store = { redis: { cluster: { nodes: [{ host: 'a', port: 1 }], password_file: secret } } })));
    expect(config.store).toMatchObject({ kind: 'cluster', password: 's3cr3t' });
  });

  it('leaves signing.keys_file as a setting', () => {
    expect(parse(with_((t) => (t.signing = { keys_file: '/does/not/exist.json' }))).signing.keysFile).toBe('/does/not/exist.json');
  });

  it('never reads files named by rules, tests or session tags', () => {
    const config = parse(
      with_((t) => {
        t.tests = [{ identity: { source: 'gha', claims: { token_file: secret } }, expect_roles: [] }];
        role(t).session_tags = { config_file: 'claims.config_file' };
      }),
    );
    expect(config.tests[0]!.identity.claims).toEqual({ token_file: secret });
    expect(config.roles[0]!.sessionTags).toEqual({ config_file: 'claims.config_file' });
  });

  it.each<[string, Tree, string]>([
    ['both given', { id: 'github', use: 'github', client_id: 'x', client_secret: 'x', client_secret_file: secret }, 'providers[0]: found both client_secret and client_secret_file, expected only one of them'],
    ['missing file', { id: 'github', use: 'github', client_id: 'x', client_secret_file: join(dir, 'nope') }, `providers[0].client_secret_file: cannot read ${JSON.stringify(join(dir, 'nope'))} (ENOENT), expected a readable file holding client_secret`],
    ['a directory', { id: 'github', use: 'github', client_id: 'x', client_secret_file: dir }, `providers[0].client_secret_file: cannot read ${JSON.stringify(dir)} (EISDIR), expected a readable file holding client_secret`],
    ['not a string', { id: 'github', use: 'github', client_id: 'x', client_secret_file: 5 }, 'providers[0].client_secret_file: found 5, expected the path of a file holding client_secret'],
  ])('problem: %s', (_name, provider, expected) => {
    expect(problemsOf(() => parse(with_((t) => (t.providers = [provider]))))).toEqual([expected]);
  });

  it('reports a wrong-length key from a file without echoing it', () => {
    const short = join(dir, 'short-key');
    writeFileSync(short, Buffer.alloc(16, 9).toString('base64'));
    const problems = problemsOf(() => parse(with_((t) => (t.credentials = { encryption_key_file: short }))));
    expect(problems).toEqual(['credentials.encryption_key: found base64 of 16 bytes, expected base64 of 32 bytes (openssl rand -base64 32)']);
    expect(problems.join()).not.toContain(Buffer.alloc(16, 9).toString('base64'));
  });
});

describe('loadConfig', () => {
  it('reads a file, with env and secrets relative to its directory', async () => {
    const sub = mkdtempSync(join(dir, 'load-'));
    writeFileSync(join(sub, 'secret'), 'from-file\n');
    const file = join(sub, 'gateway.yaml');
    writeFileSync(file, stringify(with_((t) => (t.providers = [{ id: 'github', use: 'github', client_id: '${CID}', client_secret_file: 'secret' }]))));
    const config = await loadConfig(file, { CID: 'id-1' });
    expect(config.providers[0]).toMatchObject({ id: 'github', clientId: 'id-1', clientSecret: 'from-file' });
  });

  it('reports an unreadable file as a ConfigError', async () => {
    const file = join(dir, 'missing.yaml');
    await expect(loadConfig(file)).rejects.toThrow(ConfigError);
    await expect(loadConfig(file)).rejects.toThrow(`${file}: cannot read the configuration file (ENOENT), expected a readable YAML file`);
  });

  it('loads the example configuration', async () => {
    const config = await loadConfig(new URL('../../examples/gateway.yaml', import.meta.url).pathname, {});
    expect(config.publicUrl).toBe('http://127.0.0.1:8080');
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080, trustedProxies: [] });
    expect(config.store).toEqual({ kind: 'memory', prefix: 'stsgate:' });
    expect(config.dev.allowInsecureHttp).toBe(true);
    expect(config.issuers.map((i) => i.id)).toEqual(expect.arrayContaining(['github-actions', 'k8s']));
    expect(config.tests.length).toBeGreaterThan(0);
  });
});

describe('cascades', () => {
  it.each<[string, (t: Tree) => void, string]>([
    ['roles not a list: no unknown-role noise', (t) => (t.roles = 'deployer'), 'roles: found "deployer", expected a list'],
    ['issuers not a list: no unknown-source noise', (t) => (t.issuers = { id: 'gha' }), 'issuers: found a mapping, expected a list'],
  ])('%s', (_name, change, expected) => {
    expect(problemsOf(() => parse(with_(change)))).toEqual([expected]);
  });
});

describe('introspection.clients', () => {
  const secretFile = join(dir, 'billing-secret');
  writeFileSync(secretFile, 'billing-secret-0123456789\n');
  const jwksFile = join(dir, 'payments-jwks.json');
  const clientJwk = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid: 'p1' };
  writeFileSync(jwksFile, JSON.stringify({ keys: [clientJwk] }));
  const withClients = (...clients: Tree[]) => with_((t) => (t.introspection = { clients }));

  it('is open with no clients, and the introspection limit has a default', () => {
    const config = parse(base());
    expect(config.introspection).toEqual({ clients: [] });
    expect(config.limits.introspectionPerAddressPerMinute).toBe(3000);
  });

  it.each<[string, Tree, Record<string, string>, unknown]>([
    ['basic, secret_file', { id: 'billing-api', auth: 'client_secret_basic', secret_file: secretFile }, {}, { id: 'billing-api', auth: 'client_secret_basic', secret: 'billing-secret-0123456789' }],
    ['post, secret from ${VAR}', { id: 'ledger', auth: 'client_secret_post', secret: '${LEDGER_SECRET}' }, { LEDGER_SECRET: 'ledger-secret-0123456789' }, { id: 'ledger', auth: 'client_secret_post', secret: 'ledger-secret-0123456789' }],
    ['private_key_jwt, inline jwks', { id: 'payments', auth: 'private_key_jwt', jwks: { keys: [clientJwk] } }, {}, { id: 'payments', auth: 'private_key_jwt', jwks: { keys: [clientJwk] } }],
    ['private_key_jwt, jwks_file', { id: 'payments', auth: 'private_key_jwt', jwks_file: jwksFile }, {}, { id: 'payments', auth: 'private_key_jwt', jwks: { keys: [clientJwk] } }],
  ])('accepts %s', (_name, client, env, expected) => {
    expect(parse(withClients(client), env).introspection!.clients).toEqual([expected]);
  });

  it.each<[string, Tree[], string[]]>([
    ['a missing secret file, named with its path', [{ id: 'billing-api', auth: 'client_secret_basic', secret_file: '/etc/stsgate/missing-secret' }], ['introspection.clients[0].secret_file: cannot read "/etc/stsgate/missing-secret" (ENOENT), expected a readable file holding secret']],
    ['a secret written in the file', [{ id: 'billing-api', auth: 'client_secret_basic', secret: 'literal-secret-0123456789' }], ['introspection.clients[0].secret: found a secret written in the file, expected secret: ${VAR} from the environment or secret_file: PATH']],
    ['no secret', [{ id: 'billing-api', auth: 'client_secret_post' }], ['introspection.clients[0].secret: missing, expected the client secret (secret_file: PATH, or secret: ${VAR}) for auth: client_secret_post']],
    ['a short secret', [{ id: 'billing-api', auth: 'client_secret_basic', secret: '${SHORT}' }], ['introspection.clients[0].secret: found a string of 5 characters, expected a secret of at least 16 characters']],
    ['jwks with a secret method', [{ id: 'billing-api', auth: 'client_secret_basic', secret_file: secretFile, jwks: { keys: [clientJwk] } }], ['introspection.clients[0].jwks: found jwks, expected none with auth: client_secret_basic (give secret_file or secret: ${VAR})']],
    ['private_key_jwt without jwks', [{ id: 'payments', auth: 'private_key_jwt' }], ['introspection.clients[0].jwks: missing, expected the client\'s public keys (jwks: {keys: [...]} or jwks_file: PATH) for auth: private_key_jwt']],
    ['private_key_jwt with a secret', [{ id: 'payments', auth: 'private_key_jwt', jwks: { keys: [clientJwk] }, secret_file: secretFile }], ['introspection.clients[0].secret: found a secret, expected none with auth: private_key_jwt (give jwks or jwks_file)']],
    ['private_key_jwt with an oct key', [{ id: 'payments', auth: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }], ['introspection.clients[0].jwks.keys[0]: found a symmetric (kty "oct") key: a shared secret is never a trust anchor (RFC 8725 §2.1), expected a public signing key']],
    ['private_key_jwt with a 1024-bit key', [{ id: 'payments', auth: 'private_key_jwt', jwks: { keys: [weakRsaJwk] } }], ['introspection.clients[0].jwks.keys[0]: found an RSA key of 1024 bits; at least 2048 are required, expected a public signing key']],
    ['a jwks_file that is not JSON', [{ id: 'payments', auth: 'private_key_jwt', jwks_file: secretFile }], ['introspection.clients[0].jwks: found text that is not JSON, expected a JWKS: {"keys": [...]}']],
    ['an unknown method', [{ id: 'x', auth: 'client_secret_jwt', secret_file: secretFile }], ['introspection.clients[0].auth: found "client_secret_jwt", expected one of client_secret_basic, client_secret_post, private_key_jwt; did you mean "client_secret_post"?']],
    ['a client id with a colon', [{ id: 'a:b', auth: 'client_secret_basic', secret_file: secretFile }], ['introspection.clients[0].id: found "a:b", expected a client id of 1-128 printable characters without spaces or ":" (RFC 6749 §2.3.1)']],
    ['the same id twice', [{ id: 'a', auth: 'client_secret_basic', secret_file: secretFile }, { id: 'a', auth: 'client_secret_post', secret_file: secretFile }], ['introspection.clients[1].id: found "a" again, expected each client id once']],
  ])('refuses %s', (_name, clients, expected) => {
    expect(problemsOf(() => parse(withClients(...clients), { SHORT: 'short' }))).toEqual(expected);
  });

  it.each([
    ['0 turns the limit off', 0, 0],
    ['a number', 50, 50],
  ])('limits.introspection_per_address_per_minute: %s', (_name, written, expected) => {
    expect(parse(with_((t) => (t.limits = { introspection_per_address_per_minute: written }))).limits.introspectionPerAddressPerMinute).toBe(expected);
  });
});

describe('provider definitions are passed to the schema, not read when it is imported', () => {
  // A definition of our own, with a base URL key no packaged definition has: the schema allows exactly the
  // URL keys of the definitions it is given, and the runtime config carries them in `urls`.
  const definitionsDir = mkdtempSync(join(tmpdir(), 'stsgate-providers-'));
  afterAll(() => rmSync(definitionsDir, { recursive: true, force: true }));
  const github = readFileSync(join(PROVIDERS_DIR, 'github.yaml'), 'utf8');
  writeFileSync(join(definitionsDir, 'acme.yaml'), github.replace('name: github', 'name: acme').replace('  api_url: https://api.github.com\n', '  api_url: https://api.github.com\n  uploads_url: https://uploads.github.com\n'));
  const provider = { id: 'acme', use: 'acme', client_id: 'abc', client_secret: 'def', uploads_url: 'https://uploads.ghe.example.com' };

  function parseWith(definitions: ReturnType<typeof providerDefinitions>) {
    const tree = with_((t) => (t.providers = [provider]));
    return gatewaySchema({ allowInsecureHttp: false, providers: definitions }).safeParse(tree, { error: configErrorMap });
  }

  it('accepts a URL key its definition declares and puts it in urls', () => {
    const result = parseWith(providerDefinitions(definitionsDir));
    expect(result.error?.issues).toBeUndefined();
    expect(result.data?.providers[0]).toEqual({ id: 'acme', use: 'acme', clientId: 'abc', clientSecret: 'def', urls: { uploads_url: 'https://uploads.ghe.example.com' }, endpoints: {} });
  });

  it('refuses the same key and use with the packaged definitions, which have neither', () => {
    const result = parseWith(providerDefinitions());
    expect(result.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'providers.0.use: found "acme", expected one of facebook, github, google, ldap, oidc, saml (a definition in providers/)',
      'providers.0: unknown key "uploads_url"; allowed keys: id, use, client_id, client_secret, scopes, issuer, base_url, graph_url, api_url, endpoints, display_name, saml',
    ]);
  });
});
