/**
 * `jose` against `node:crypto` for the signatures on the exchange path (`npm run bench:crypto`; also
 * part of `npm run bench -- --profile`): ES256 signing of stsgate's access tokens, ES256 verification
 * of its own tokens (introspection), and RS256 verification of incoming web-identity tokens.
 *
 * Each operation produces or checks a whole compact JWS, so the comparison includes encoding, not only
 * the signature. "Sequential" awaits one operation at a time (latency); "64 in flight" keeps 64
 * outstanding (throughput: jose's WebCrypto runs on Node's thread pool, node:crypto's sync calls on the
 * calling thread).
 */
import { generateKeyPairSync, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { createLocalJWKSet, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';

export interface CryptoMeasurement {
  operation: string;
  library: string;
  sequentialUs: number;
  concurrentOpsPerSecond: number;
  /** Process CPU (all threads) per operation during the 64-in-flight run: the cost on a saturated machine. */
  cpuUs: number;
}

const PAYLOAD = {
  iss: 'https://sts.example.com',
  sub: 'github-actions:repo:acme/app:ref:refs/heads/main',
  aud: ['api.example.com'],
  role: 'deployer',
  scope: 'deploy:write logs:read',
  sid: 'ABCDEFGHIJKLMNOP',
  idp: 'github-actions',
  repo: 'acme/app',
  iat: 1_700_000_000,
  nbf: 1_700_000_000,
  exp: 4_102_444_800,
  jti: 'q1w2e3r4t5y6u7i8o9p0aa',
};

function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A compact JWS signed by node:crypto (ECDSA signatures in the JWS r||s form, RFC 7518 §3.4). */
function nodeSignJwt(alg: 'ES256' | 'RS256', key: KeyObject, kid: string): string {
  const input = `${encodeSegment({ alg, kid, typ: 'at+jwt' })}.${encodeSegment(PAYLOAD)}`;
  const signature = nodeSign('sha256', Buffer.from(input), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${signature.toString('base64url')}`;
}

/** Checks a compact JWS with node:crypto and parses its claims (signature only: the comparison's floor). */
function nodeVerifyJwt(alg: 'ES256' | 'RS256', token: string, key: KeyObject): unknown {
  const dot = token.lastIndexOf('.');
  const input = Buffer.from(token.slice(0, dot));
  const signature = Buffer.from(token.slice(dot + 1), 'base64url');
  const ok = nodeVerify('sha256', input, alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
  if (!ok) throw new Error('signature mismatch');
  return JSON.parse(Buffer.from(token.slice(token.indexOf('.') + 1, dot), 'base64url').toString('utf8'));
}

async function time(operation: string, library: string, run: () => unknown, iterations: number): Promise<CryptoMeasurement> {
  for (let i = 0; i < Math.min(500, iterations); i++) await run(); // warm-up
  let started = performance.now();
  for (let i = 0; i < iterations; i++) await run();
  const sequentialUs = ((performance.now() - started) * 1000) / iterations;
  const inFlight = 64;
  const rounds = Math.max(1, Math.floor(iterations / inFlight));
  started = performance.now();
  const cpu = process.cpuUsage();
  for (let r = 0; r < rounds; r++) await Promise.all(Array.from({ length: inFlight }, async () => run()));
  const used = process.cpuUsage(cpu);
  const concurrentOpsPerSecond = (rounds * inFlight) / ((performance.now() - started) / 1000);
  return { operation, library, sequentialUs, concurrentOpsPerSecond, cpuUs: (used.user + used.system) / (rounds * inFlight) };
}

/** Runs every comparison; `iterations` per measurement. */
export async function measureCrypto(iterations = 3000): Promise<CryptoMeasurement[]> {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ecJwk = { ...(ec.privateKey.export({ format: 'jwk' }) as JWK), alg: 'ES256', kid: 'es' };
  const ecPublicJwk = { ...(ec.publicKey.export({ format: 'jwk' }) as JWK), alg: 'ES256', kid: 'es' };
  const rsPublicJwk = { ...(rsa.publicKey.export({ format: 'jwk' }) as JWK), alg: 'RS256', kid: 'rs' };
  const joseEcPrivate = await importJWK(ecJwk, 'ES256');
  const joseEcPublic = await importJWK(ecPublicJwk, 'ES256');
  const joseRsPublic = await importJWK(rsPublicJwk, 'RS256');
  const rsJwks = createLocalJWKSet({ keys: [rsPublicJwk] });
  const esToken = nodeSignJwt('ES256', ec.privateKey, 'es');
  const rsToken = nodeSignJwt('RS256', rsa.privateKey, 'rs');
  const verifyOptions = { issuer: PAYLOAD.iss, currentDate: new Date(1_800_000_000_000) };

  const joseSign = () =>
    new SignJWT({ role: PAYLOAD.role, scope: PAYLOAD.scope, sid: PAYLOAD.sid, idp: PAYLOAD.idp, repo: PAYLOAD.repo })
      .setProtectedHeader({ alg: 'ES256', kid: 'es', typ: 'at+jwt' })
      .setIssuer(PAYLOAD.iss)
      .setSubject(PAYLOAD.sub)
      .setAudience(PAYLOAD.aud)
      .setIssuedAt(PAYLOAD.iat)
      .setNotBefore(PAYLOAD.nbf)
      .setExpirationTime(PAYLOAD.exp)
      .setJti(PAYLOAD.jti)
      .sign(joseEcPrivate);
  // The thread-pool form of node:crypto (callback API), for the throughput comparison.
  const nodeSignAsync = () =>
    new Promise<string>((resolve, reject) => {
      const input = `${encodeSegment({ alg: 'ES256', kid: 'es', typ: 'at+jwt' })}.${encodeSegment(PAYLOAD)}`;
      nodeSign('sha256', Buffer.from(input), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }, (err, signature) => (err ? reject(err) : resolve(`${input}.${signature.toString('base64url')}`)));
    });

  const results: CryptoMeasurement[] = [];
  results.push(await time('ES256 sign (access token)', 'jose SignJWT (WebCrypto)', joseSign, iterations));
  results.push(await time('ES256 sign (access token)', 'node:crypto sign, sync', () => nodeSignJwt('ES256', ec.privateKey, 'es'), iterations));
  results.push(await time('ES256 sign (access token)', 'node:crypto sign, callback (thread pool)', nodeSignAsync, iterations));
  results.push(await time('ES256 verify (own token)', 'jose jwtVerify (WebCrypto)', () => jwtVerify(esToken, joseEcPublic, verifyOptions), iterations));
  results.push(await time('ES256 verify (own token)', 'node:crypto verify, sync', () => nodeVerifyJwt('ES256', esToken, ec.publicKey), iterations));
  results.push(await time('RS256 verify (incoming token)', 'jose jwtVerify, key', () => jwtVerify(rsToken, joseRsPublic, verifyOptions), iterations));
  results.push(await time('RS256 verify (incoming token)', 'jose jwtVerify, local JWKS resolver', () => jwtVerify(rsToken, rsJwks, verifyOptions), iterations));
  results.push(await time('RS256 verify (incoming token)', 'node:crypto verify, sync', () => nodeVerifyJwt('RS256', rsToken, rsa.publicKey), iterations));
  return results;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await measureCrypto();
  // `--json`: for bench/run.ts, which runs this in a process of its own so the numbers carry no noise from the run.
  if (process.argv.includes('--json')) console.log(JSON.stringify(results));
  else for (const r of results) {
    console.log(
      `${r.operation.padEnd(30)} ${r.library.padEnd(42)} ${r.sequentialUs.toFixed(1).padStart(7)} µs/op  ${r.concurrentOpsPerSecond.toFixed(0).padStart(7)} ops/s (64 in flight)  ${r.cpuUs.toFixed(1).padStart(6)} µs CPU/op`,
    );
  }
}
