/**
 * Starts a real stsgate (the same composition root as `stsgate serve`) on a loopback port, with its log
 * captured so tests can read the audit lines and scan for leaked secrets.
 */
import { randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { GatewayConfig, IssuerConfig, RoleConfig, RuleConfig, SigningAlgorithm, StoreConfig } from '../../src/config/types.js';
import { CredentialService } from '../../src/credentials/credential-service.js';
import { TokenExchange } from '../../src/credentials/exchange.js';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { generateSigningJwk } from '../../src/credentials/signing-keys.js';
import { RoleCatalog } from '../../src/domain/role-catalog.js';
import { startGateway, type RunningGateway } from '../../src/main.js';
import { createLogger, formatTextLine } from '../../src/observability/logger.js';
import { compileRules } from '../../src/rules/index.js';
import { afterAll, beforeAll } from 'vitest';
import { TEST_AUDIENCE, TestIssuer } from './test-issuer.js';
import { ACCOUNT_ID } from './common.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every log line a test gateway wrote (JSON strings), shared across gateways of a test file. */
export const capturedLogs: string[] = [];

export interface TestGateway extends RunningGateway {
  config: GatewayConfig;
  /** Parsed log lines of this gateway. */
  logs(): Record<string, unknown>[];
  /** The same lines as the text log format renders them (`log.format: text`, uncoloured). */
  textLogs(): string[];
}

/** The roles and rules most tests use: `deployer` (main of acme/app), `reader` (any acme repo), chaining deployer -> reader, and deployer -> deployer (it lists itself). */
export function standardRoles(): RoleConfig[] {
  return [
    { name: 'deployer', scopes: ['deploy:write', 'logs:read'], audiences: ['api.example.com'], maxSessionSeconds: 7200, canAssume: ['reader', 'deployer'], sessionTags: { repo: 'claims.repository' } },
    { name: 'reader', scopes: ['logs:read'], audiences: ['api.example.com', 'logs.example.com'], maxSessionSeconds: 3600, canAssume: [], sessionTags: {} },
    { name: 'admin', scopes: ['admin'], audiences: ['admin.example.com'], maxSessionSeconds: 3600, canAssume: [], sessionTags: {} },
  ];
}

export function standardRules(source = 'ci'): RuleConfig[] {
  return [
    {
      name: 'main branch of acme/app may deploy',
      match: {
        source,
        conditions: [
          { claim: 'repository', op: 'equals', value: 'acme/app', ignoreCase: false },
          { claim: 'ref', op: 'equals', value: 'refs/heads/main', ignoreCase: false },
        ],
      },
      roles: ['deployer'],
    },
    {
      name: 'any acme repository may read',
      match: { source, conditions: [{ claim: 'repository', op: 'starts_with', value: 'acme/', ignoreCase: false }] },
      roles: ['reader'],
    },
  ];
}

/** An issuer config trusting a TestIssuer through discovery. */
export function issuerFor(issuer: TestIssuer, id = 'ci', overrides: Partial<IssuerConfig> = {}): IssuerConfig {
  return { id, issuer: issuer.url, audiences: [TEST_AUDIENCE], keys: { kind: 'discovery' }, algorithms: ['RS256', 'ES256'], clockSkewSeconds: 60, ...overrides };
}

/** Store configs tests run against: the embedded one, and the real Redis on 6379 under a fresh prefix. */
export function redisStoreConfig(prefix = `stsgate-test:${randomBytes(6).toString('hex')}:`): StoreConfig {
  return { kind: 'standalone', url: REDIS_URL, prefix, commandTimeoutMs: 1000 };
}

export interface TestGatewayOptions {
  issuers: IssuerConfig[];
  store?: StoreConfig;
  roles?: RoleConfig[];
  rules?: RuleConfig[];
  config?: Partial<GatewayConfig>;
  /** The port to listen on (default: a free one); a browser-login test needs it before start, for public_url. */
  port?: number;
  /** Admin API route groups mounted behind `config.admin.token` (tests of the admin listener). */
  adminRoutes?: Router[];
  /** The algorithms of the keys file, one key each (default ES256); the access token signs with `signing.algorithm`. */
  keyAlgorithms?: SigningAlgorithm[];
}

/** Starts a gateway on 127.0.0.1 with a free port. */
export async function startTestGateway(options: TestGatewayOptions): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'stsgate-test-'));
  const keysFile = join(dir, 'keys.json');
  const keys = await Promise.all((options.keyAlgorithms ?? ['ES256']).map((alg) => generateSigningJwk(alg)));
  await writeFile(keysFile, JSON.stringify({ keys }), { mode: 0o600 });
  const config: GatewayConfig = {
    publicUrl: 'http://127.0.0.1:8080',
    listen: { host: '127.0.0.1', port: 0 },
    store: options.store ?? { kind: 'memory', prefix: 'stsgate:' },
    signing: { algorithm: 'ES256', keysFile },
    encryptionKey: randomBytes(32),
    accountId: ACCOUNT_ID,
    dev: { allowInsecureHttp: true },
    limits: { maxBodyBytes: 65536 },
    cache: { minRemainingFraction: 0.5 },
    issuers: options.issuers,
    roles: options.roles ?? standardRoles(),
    rules: options.rules ?? standardRules(),
    tests: [],
    providers: [],
    ...options.config,
  };
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') {
          lines.push(line);
          capturedLogs.push(line);
        }
      }
      callback();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const gateway = await startGateway(config, { logger, port: options.port ?? 0, shutdownGraceMs: 2000, ...(options.config?.admin ? {} : { adminPort: 0 }), ...(options.adminRoutes ? { adminRoutes: options.adminRoutes } : {}) });
  return { ...gateway, config, close: gateway.close, logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>), textLogs: () => lines.map((l) => formatTextLine(l, { colour: false })) };
}

/** Reads `<Code>` from an AWS ErrorResponse. */
export function awsErrorCode(xml: string): string | undefined {
  return /<Code>([^<]+)<\/Code>/.exec(xml)?.[1];
}

/** A loopback issuer and a gateway trusting it on the real Redis. */
export interface IssuerGatewaySetup {
  issuer: TestIssuer;
  gateway: TestGateway;
}

/** Starts a TestIssuer and a gateway on the real Redis before the enclosing suite's tests, and stops both after; fields are set once beforeAll ran. */
export function useIssuerAndGateway(): IssuerGatewaySetup {
  const setup = {} as IssuerGatewaySetup;
  beforeAll(async () => {
    setup.issuer = await TestIssuer.start();
    setup.gateway = await startTestGateway({ issuers: [issuerFor(setup.issuer)], store: redisStoreConfig() });
  });
  afterAll(async () => {
    await setup.gateway?.close();
    await setup.issuer?.close();
  });
  return setup;
}

/**
 * A gateway's own credential and exchange services, on its store, keys and configuration, with a clock of
 * the test's choosing: how a test makes sessions that were issued (and chained) in the past. The identity
 * is given to `issueForIdentity`; there is no web-identity verification.
 */
export function gatewayServicesAt(gateway: TestGateway, clock: () => number): { credentials: CredentialService; exchange: TokenExchange } {
  const config = gateway.config;
  const credentials = new CredentialService({
    store: gateway.store,
    keys: gateway.keys,
    box: new SecretBox(config.encryptionKey!),
    issuer: config.publicUrl,
    accountId: config.accountId,
    cacheMinRemainingFraction: config.cache.minRemainingFraction,
    now: clock,
  });
  const rules = compileRules(config);
  const exchange = new TokenExchange({
    roles: new RoleCatalog(config.accountId, config.roles),
    credentials,
    verifyWebIdentityToken: () => Promise.reject(new Error('gatewayServicesAt: give the identity to issueForIdentity')),
    grant: (identity, role) => rules.grant(identity, role),
    grantedRoles: (identity) => rules.evaluate(identity).roles,
  });
  return { credentials, exchange };
}
