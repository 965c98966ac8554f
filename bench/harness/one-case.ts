/**
 * The requests of `npm run bench` that the scripts measuring one case on their own (bench:ab, bench:gc)
 * send too, and the gateway those scripts start for it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { exportPKCS8 } from 'jose';
import { generateSigningJwk } from '../../src/credentials/signing-keys.js';
import { TestIssuer } from '../../test/support/test-issuer.js';
import { BENCH_AUDIENCE, BENCH_ROLE_ARN, type GatewayBenchSettings } from '../servers/settings.js';
import { runPass, type PassOptions, type RequestShape } from './load.js';
import { deleteKeys } from './redis.js';
import { TokenPool } from './token-pool.js';

export const FORM = 'application/x-www-form-urlencoded';
export const STS_VERSION = '2011-06-15';

/** The form body of AssumeRoleWithWebIdentity, as the gateway and floor cases send it. */
export function stsForm(token: string, roleArn: string = BENCH_ROLE_ARN): string {
  return new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: STS_VERSION, RoleArn: roleArn, RoleSessionName: 'ci-deploy', WebIdentityToken: token }).toString();
}

/** The cache-hit cases' token: one GitHub-Actions-like subject, repeated. */
export function mintRepeatedToken(issuer: TestIssuer): Promise<string> {
  return issuer.mint({ repository: 'acme/app', ref: 'refs/heads/main', actor: 'octocat', sub: 'repo:acme/app:ref:refs/heads/main' }, { expiresIn: 3600 });
}

/** The fresh-issuance cases' tokens: RS256 by `issuer`'s key, a new subject each (minted in worker threads). */
export async function freshTokenPool(issuer: TestIssuer): Promise<TokenPool> {
  const key = issuer.key({ alg: 'RS256' });
  return new TokenPool({ privateKeyPem: await exportPKCS8(key.privateKey), kid: key.kid, issuer: issuer.url, audience: BENCH_AUDIENCE });
}

/** The gateway's fresh-issuance request (`POST /`, AssumeRoleWithWebIdentity): a token from `pool` each time. */
export function freshRequest(pool: TokenPool): RequestShape {
  return { method: 'POST', path: '/', headers: { 'content-type': FORM }, nextBody: () => stsForm(pool.take()) };
}

/** The gateway's cache-hit request (`POST /`, AssumeRoleWithWebIdentity) with `token`. */
export function cacheHitRequest(token: string): RequestShape {
  return { method: 'POST', path: '/', headers: { 'content-type': FORM }, body: stsForm(token) };
}

/** One case for a gateway started on its own: what it sends, what the report calls it, how the gateway is set up. */
export interface OneCase {
  shape: RequestShape;
  what: string;
  /** The gateway's settings, its Redis keys under `prefix` (deleted by `close`). */
  settings(prefix: string): GatewayBenchSettings;
  /**
   * One pass against `url` whose every request must succeed; the requests answered. For fresh issuance
   * the tokens it may send are minted first (outside the pass), and a pass that ran out of them (and so
   * sent a token twice: a cache hit) is refused.
   */
  pass(name: string, url: string, options: PassOptions): Promise<number>;
  close(): Promise<void>;
}

/** The most fresh issuances per second a pass is minted for (one gateway process on a fast core: about 2,500). */
const FRESH_RATE_CEILING = 4000;

/** The cases oneCase knows besides a GET route. */
export const ONE_CASES = ['cache-hit', 'fresh'] as const;
export type OneCaseName = (typeof ONE_CASES)[number];

/** `name` (a tool's `--case`) as one of ONE_CASES; throws, listing them, for any other. */
export function oneCaseNamed(name: string): OneCaseName {
  const known: readonly string[] = ONE_CASES;
  if (!known.includes(name)) throw new Error(`--case: one of ${ONE_CASES.join(', ')}, not ${name}`);
  return name as OneCaseName;
}

/**
 * `{ path }`: a GET route (no token; the issuer and the cloud stand-in are addresses nothing answers on).
 * `'cache-hit'`: `npm run bench`'s cache-hit request, its token from a loopback issuer started here.
 * `'fresh'`: `npm run bench`'s fresh issuance, a new subject on every request (tokens minted in worker
 * threads before each pass, by `pass`).
 */
export async function oneCase(which: { path: string } | OneCaseName): Promise<OneCase> {
  const dir = await mkdtemp(join(tmpdir(), 'stsgate-one-case-'));
  const keysFile = join(dir, 'keys.json');
  await writeFile(keysFile, JSON.stringify({ keys: [await generateSigningJwk('ES256')] }), { mode: 0o600 });
  let issuer: TestIssuer | undefined;
  let pool: TokenPool | undefined;
  let shape: RequestShape;
  let what: string;
  if (which === 'cache-hit') {
    issuer = await TestIssuer.start();
    shape = cacheHitRequest(await mintRepeatedToken(issuer));
    what = 'the cache-hit case (POST / AssumeRoleWithWebIdentity, one token)';
  } else if (which === 'fresh') {
    issuer = await TestIssuer.start();
    pool = await freshTokenPool(issuer);
    shape = freshRequest(pool);
    what = 'fresh issuance (POST / AssumeRoleWithWebIdentity, a new subject every request)';
  } else {
    shape = { method: 'GET', path: which.path };
    what = `GET ${shape.path}`;
  }
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefixes: string[] = [];
  return {
    shape,
    what,
    pass: async (name, url, options) => {
      await pool?.ensure(Math.ceil(FRESH_RATE_CEILING * options.durationSeconds));
      const answered = await answeredPass(name, url, shape, options);
      if (pool && pool.reused > 0) throw new Error(`${name}: the token pool ran dry, ${pool.reused} requests repeated a token (cache hits in a fresh pass)`);
      return answered;
    },
    settings: (prefix) => {
      prefixes.push(prefix);
      return {
        issuerUrl: issuer?.url ?? 'http://127.0.0.1:9/issuer',
        redisUrl,
        redisPrefix: prefix,
        keysFile,
        encryptionKey: randomBytes(32).toString('base64'),
        stsUrl: 'http://127.0.0.1:9/sts',
      };
    },
    close: async () => {
      await pool?.close();
      await issuer?.close();
      await rm(dir, { recursive: true, force: true });
      // A fresh-issuance pass leaves two records per request (an hour's TTL): hundreds of thousands of keys.
      const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
      try {
        for (const prefix of prefixes) await deleteKeys(redis, prefix);
      } finally {
        redis.disconnect();
      }
    },
  };
}

/** A pass whose every request must be answered with success; the requests answered. */
async function answeredPass(name: string, url: string, shape: RequestShape, options: PassOptions): Promise<number> {
  const pass = await runPass(url, shape, options);
  if (pass.failures > 0) throw new Error(`${name}: ${pass.failures} of ${pass.requests} requests failed (${JSON.stringify(pass.statusCodes)})`);
  return pass.requests;
}
