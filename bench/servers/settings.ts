/**
 * What the orchestrator (bench/run.ts) and its server children agree on: the peer's client, the
 * gateway's configuration, built from a few run-specific values passed in the environment, and the
 * floor server's key and Redis.
 */
import type { JsonWebKey } from 'node:crypto';
import type { GatewayConfig } from '../../src/config/types.js';
import { parseTemplate, type Template, type TargetSpec } from '../../src/rules/target-claims.js';

/** The oidc-provider client the benchmark authenticates as (client_secret_basic). */
export const PEER_CLIENT = { id: 'bench', secret: 'bench-secret-bench-secret-bench-secret' } as const;

/** The environment variable carrying GatewayBenchSettings (JSON) to the gateway child. */
export const GATEWAY_SETTINGS_ENV = 'STSGATE_BENCH_GATEWAY';

/** Run-specific values of the benchmarked gateway. */
export interface GatewayBenchSettings {
  issuerUrl: string;
  redisUrl: string;
  /** A fresh prefix per run, so the run starts with an empty cache and can be cleaned up. */
  redisPrefix: string;
  keysFile: string;
  /** 32 bytes, base64. */
  encryptionKey: string;
  /** The AWS STS stand-in the broker target trades with. */
  stsUrl: string;
  /** `workers:` (default 1: one process, no cluster); the `workers` case runs the gateway with 1 and with "auto". */
  workers?: number | 'auto';
}

/** The environment variable carrying FloorBenchSettings (JSON) to the floor child (bench/servers/floor.ts). */
export const FLOOR_SETTINGS_ENV = 'STSGATE_BENCH_FLOOR';

/** What the floor server needs: the issuer's RS256 public key and the run's Redis. */
export interface FloorBenchSettings {
  /** `iss` the incoming tokens must carry. */
  issuerUrl: string;
  /** The issuer's RS256 public key, as its JWKS serves it. */
  publicJwk: JsonWebKey;
  redisUrl: string;
  /** The run's prefix (see GatewayBenchSettings), so the floor's keys are deleted with the rest. */
  redisPrefix: string;
}

/**
 * The kept features a request to the floor's `/fresh-required` and `/cache-hit-required` may leave out
 * (`?without=audit,seal`), for `npm run bench:features`, which measures what each costs: `front` the
 * request id and headers, `counts` both rate-limit counts, `watermarks` the four revocation reads, `seal`
 * the encryption of the stored secrets (stored as JSON), `copy` the record's second key (one plain SET of
 * the session's key), `audit` the log line, `metrics` the counts and the histogram.
 */
export const FLOOR_FEATURES = ['front', 'counts', 'watermarks', 'seal', 'copy', 'audit', 'metrics'] as const;

export const BENCH_ACCOUNT_ID = '123456789012';
export const BENCH_AUDIENCE = 'sts.example.com';
export const BENCH_ROLE_ARN = `arn:aws:iam::${BENCH_ACCOUNT_ID}:role/deployer`;

/**
 * A configuration shaped like a production one (Redis store, keys file, a GitHub-Actions-like issuer
 * found by discovery, roles with session tags), with plain http allowed only because everything is on
 * loopback.
 */
/** The target the `target` case asks for. */
export const BENCH_TARGET = 'aws-prod';
/** The AWS role the broker target trades for (the `broker-cache-hit` case's RoleArn). */
export const BENCH_BROKER_ROLE_ARN = 'arn:aws:iam::123456789012:role/brokered';

/**
 * Ten targets on the deployer role (issue 12: ten targets on a role must not slow the exchange): the aws
 * target the `target` case mints, with tags from the workload's claims, and nine generic ones.
 */
function benchTargets(stsUrl: string): TargetSpec[] {
  const template = (text: string) => parseTemplate(text) as Template;
  const aws: TargetSpec = {
    name: BENCH_TARGET,
    kind: 'aws',
    audience: 'sts.amazonaws.com',
    subject: template('repo:{claims.repository}:ref:{claims.ref}'),
    lifetimeSeconds: 900,
    algorithm: 'ES256',
    claims: {},
    aws: { principalTags: { repo: template('{claims.repository}'), actor: template('{claims.actor}') }, transitiveTagKeys: ['repo'], sourceIdentity: template('{claims.actor}') },
    broker: { cloud: 'aws', roleArn: BENCH_BROKER_ROLE_ARN, region: 'us-east-1', endpoint: stsUrl, sessionName: template('{claims.actor}'), durationSeconds: 3600, policyArns: [], timeoutSeconds: 10 },
  };
  const others = Array.from({ length: 9 }, (_, i): TargetSpec => ({
    name: `partner-${i}`,
    kind: 'jwt',
    audience: `https://partner-${i}.example.com`,
    subject: template('{source}:{subject}'),
    lifetimeSeconds: 900,
    algorithm: 'ES256',
    claims: { repository: template('{claims.repository}') },
  }));
  return [aws, ...others];
}

export function benchGatewayConfig(settings: GatewayBenchSettings): GatewayConfig {
  return {
    publicUrl: 'https://sts.example.com',
    listen: { host: '127.0.0.1', port: 0 },
    store: { kind: 'standalone', url: settings.redisUrl, prefix: settings.redisPrefix, commandTimeoutMs: 1000 },
    signing: { algorithm: 'ES256', keysFile: settings.keysFile },
    encryptionKey: Buffer.from(settings.encryptionKey, 'base64'),
    accountId: BENCH_ACCOUNT_ID,
    dev: { allowInsecureHttp: true },
    // Several workers need what the config loader asks of them (config/consistency.ts): a shared store
    // (Redis), a keys file and an encryption key, all set above.
    workers: settings.workers ?? 1,
    // The exchange limits are on, as they are by default, but high enough that one loopback client at
    // thousands of requests per second is never throttled: their store round trips are measured.
    limits: { maxBodyBytes: 65536, exchangePerAddressPerMinute: 1_000_000, exchangePerSubjectPerMinute: 1_000_000 },
    cache: { minRemainingFraction: 0.5 },
    issuers: [
      {
        id: 'github-actions',
        issuer: settings.issuerUrl,
        audiences: [BENCH_AUDIENCE],
        keys: { kind: 'discovery' },
        algorithms: ['RS256'],
        clockSkewSeconds: 60,
      },
    ],
    roles: [
      { name: 'deployer', scopes: ['deploy:write', 'logs:read'], audiences: ['api.example.com'], maxSessionSeconds: 7200, canAssume: ['reader'], sessionTags: { repo: 'claims.repository', actor: 'claims.actor' }, targets: benchTargets(settings.stsUrl).map((target) => target.name) },
      // The same session tags as deployer, so that `fresh-no-targets` differs from `fresh` only by the targets.
      { name: 'reader', scopes: ['logs:read'], audiences: ['api.example.com', 'logs.example.com'], maxSessionSeconds: 3600, canAssume: [], sessionTags: { repo: 'claims.repository', actor: 'claims.actor' } },
    ],
    rules: [
      {
        name: 'main branch of acme/app may deploy',
        match: {
          source: 'github-actions',
          conditions: [
            { claim: 'repository', op: 'equals', value: 'acme/app', ignoreCase: false },
            { claim: 'ref', op: 'equals', value: 'refs/heads/main', ignoreCase: false },
          ],
        },
        roles: ['deployer'],
      },
      {
        name: 'any acme repository may read',
        match: { source: 'github-actions', conditions: [{ claim: 'repository', op: 'starts_with', value: 'acme/', ignoreCase: false }] },
        roles: ['reader'],
      },
    ],
    targets: benchTargets(settings.stsUrl),
    tests: [],
    providers: [],
  };
}
