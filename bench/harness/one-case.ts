/**
 * The requests of `npm run bench` that the scripts measuring one case on their own (bench:ab, bench:gc)
 * send too, and the gateway those scripts start for it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningJwk } from '../../src/credentials/signing-keys.js';
import { TestIssuer } from '../../test/support/test-issuer.js';
import { BENCH_ROLE_ARN, type GatewayBenchSettings } from '../servers/settings.js';
import { runPass, type PassOptions, type RequestShape } from './load.js';

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

/** The gateway's cache-hit request (`POST /`, AssumeRoleWithWebIdentity) with `token`. */
export function cacheHitRequest(token: string): RequestShape {
  return { method: 'POST', path: '/', headers: { 'content-type': FORM }, body: stsForm(token) };
}

/** One case for a gateway started on its own: what it sends, what the report calls it, how the gateway is set up. */
export interface OneCase {
  shape: RequestShape;
  what: string;
  /** The gateway's settings, its Redis keys under `prefix`. */
  settings(prefix: string): GatewayBenchSettings;
  close(): Promise<void>;
}

/**
 * `{ path }`: a GET route (no token; the issuer and the cloud stand-in are addresses nothing answers on).
 * `'cache-hit'`: `npm run bench`'s cache-hit request, its token from a loopback issuer started here.
 */
export async function oneCase(which: { path: string } | 'cache-hit'): Promise<OneCase> {
  const dir = await mkdtemp(join(tmpdir(), 'stsgate-one-case-'));
  const keysFile = join(dir, 'keys.json');
  await writeFile(keysFile, JSON.stringify({ keys: [await generateSigningJwk('ES256')] }), { mode: 0o600 });
  let issuer: TestIssuer | undefined;
  let shape: RequestShape;
  if (which === 'cache-hit') {
    issuer = await TestIssuer.start();
    shape = cacheHitRequest(await mintRepeatedToken(issuer));
  } else shape = { method: 'GET', path: which.path };
  return {
    shape,
    what: issuer ? 'the cache-hit case (POST / AssumeRoleWithWebIdentity, one token)' : `GET ${shape.path}`,
    settings: (prefix) => ({
      issuerUrl: issuer?.url ?? 'http://127.0.0.1:9/issuer',
      redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      redisPrefix: prefix,
      keysFile,
      encryptionKey: randomBytes(32).toString('base64'),
      stsUrl: 'http://127.0.0.1:9/sts',
    }),
    close: async () => {
      await issuer?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A pass whose every request must be answered with success; the requests answered. */
export async function answeredPass(name: string, url: string, shape: RequestShape, options: PassOptions): Promise<number> {
  const pass = await runPass(url, shape, options);
  if (pass.failures > 0) throw new Error(`${name}: ${pass.failures} of ${pass.requests} requests failed (${JSON.stringify(pass.statusCodes)})`);
  return pass.requests;
}
