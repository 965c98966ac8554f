/**
 * The floors: a bare Koa app (as bench/servers/baseline.ts) doing only the work a token exchange cannot
 * avoid, so that its req/s over the baseline's is the most any implementation could reach on the same
 * machine in one process. No rules, no logging, no metrics, no rate limits, no encryption.
 *
 *   POST /fresh       the form body the gateway's fresh case sends: RS256 verify of WebIdentityToken,
 *                     an ES256 JWT signed, one Redis SET of about 2 KB, a small XML answer with the JWT
 *   POST /cache-hit   the same body: RS256 verify, one Redis GET of a fixed key, its value as the answer
 */
import { createPublicKey, generateKeyPairSync, randomUUID, sign, verify } from 'node:crypto';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import Koa from 'koa';
import getRawBody from 'raw-body';
import { closeServer, listenOnLoopback, serveUntilStopped } from './lifecycle.js';
import { BENCH_AUDIENCE, FLOOR_SETTINGS_ENV, type FloorBenchSettings } from './settings.js';

const raw = process.env[FLOOR_SETTINGS_ENV];
if (!raw) throw new Error(`${FLOOR_SETTINGS_ENV} is not set: start this through bench/run.ts`);
const settings = JSON.parse(raw) as FloorBenchSettings;

/** Seconds an issued token and its stored record live (the gateway's default session: one hour). */
const LIFETIME_SECONDS = 3600;
/** About the size of the gateway's stored session record. */
const RECORD_BYTES = 2048;
const STS_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';

const issuerKey = createPublicKey({ key: settings.publicJwk, format: 'jwk' });
const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const accessTokenHeader = Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'floor-es256', typ: 'at+jwt' })).toString('base64url');

const redis = new Redis(settings.redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
const cachedKey = `${settings.redisPrefix}floor:cached`;
// Written once: what a cache hit reads back and answers (credentials XML of about the stored record's size).
await redis.set(cachedKey, stsResponse(`<SessionToken>${'c'.repeat(RECORD_BYTES - 300)}</SessionToken>`), 'PX', LIFETIME_SECONDS * 1000);

interface IncomingClaims {
  sub: string;
  iss: unknown;
  aud: unknown;
  exp: unknown;
  repository?: unknown;
  actor?: unknown;
}

/** The token's claims when its RS256 signature is the issuer's and it is for us and not expired. */
function verifiedClaims(token: string | null): IncomingClaims | undefined {
  if (!token) return undefined;
  const firstDot = token.indexOf('.');
  const lastDot = token.lastIndexOf('.');
  if (firstDot <= 0 || lastDot === firstDot) return undefined;
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, firstDot), 'base64url').toString('utf8')) as { alg?: unknown };
    if (header.alg !== 'RS256') return undefined;
    const signature = Buffer.from(token.slice(lastDot + 1), 'base64url');
    if (!verify('sha256', Buffer.from(token.slice(0, lastDot)), issuerKey, signature)) return undefined;
    const claims = JSON.parse(Buffer.from(token.slice(firstDot + 1, lastDot), 'base64url').toString('utf8')) as IncomingClaims;
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) return undefined;
    if (claims.iss !== settings.issuerUrl || !audiences.includes(BENCH_AUDIENCE) || typeof claims.sub !== 'string') return undefined;
    return claims;
  } catch {
    return undefined;
  }
}

/** A compact ES256 JWS (r‖s signature), as the gateway signs its access tokens. */
function signAccessToken(claims: object): string {
  const input = `${accessTokenHeader}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: signingKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

function stsResponse(credentialsXml: string): string {
  return `<AssumeRoleWithWebIdentityResponse xmlns="${STS_NAMESPACE}"><AssumeRoleWithWebIdentityResult><Credentials>${credentialsXml}</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`;
}

const app = new Koa();
app.use(async (ctx) => {
  const fresh = ctx.path === '/fresh';
  if (ctx.method !== 'POST' || (!fresh && ctx.path !== '/cache-hit')) {
    ctx.status = 404;
    return;
  }
  const body = await getRawBody(ctx.req, { limit: 65536, length: ctx.get('content-length') || null, encoding: 'utf8' });
  const claims = verifiedClaims(new URLSearchParams(body).get('WebIdentityToken'));
  if (!claims) {
    ctx.status = 400;
    ctx.body = 'invalid token';
    return;
  }
  ctx.type = 'text/xml';
  if (!fresh) {
    const cached = await redis.get(cachedKey);
    if (cached === null) ctx.throw(500, 'the cached value is gone');
    ctx.body = cached;
    return;
  }
  const iat = Math.floor(Date.now() / 1000);
  const sub = `github-actions:${claims.sub}`;
  const accessToken = signAccessToken({
    repo: claims.repository,
    actor: claims.actor,
    role: 'deployer',
    scope: 'deploy:write logs:read',
    sid: randomUUID(),
    idp: 'github-actions',
    iss: 'https://sts.example.com',
    sub,
    aud: ['api.example.com'],
    iat,
    nbf: iat,
    exp: iat + LIFETIME_SECONDS,
    jti: randomUUID(),
  });
  // JSON allows trailing white space: the record stays parseable at the padded size.
  const record = JSON.stringify({ sub, exp: iat + LIFETIME_SECONDS, accessToken, claims }).padEnd(RECORD_BYTES);
  await redis.set(`${settings.redisPrefix}floor:${sub}`, record, 'PX', LIFETIME_SECONDS * 1000);
  ctx.body = stsResponse(`<SessionToken>${accessToken}</SessionToken>`);
});

const server = createServer(app.callback());
await listenOnLoopback(server);
serveUntilStopped(server, async () => {
  await closeServer(server);
  await redis.quit();
});
