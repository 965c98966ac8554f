/**
 * The floors: a bare Koa app (as bench/servers/baseline.ts) doing only the work a token exchange cannot
 * avoid, so that its req/s over the baseline's is the most any implementation could reach on the same
 * machine in one process. No rules, no logging, no metrics, no rate limits, no encryption.
 *
 *   POST /fresh       the form body the gateway's fresh case sends: RS256 verify of WebIdentityToken,
 *                     an ES256 JWT signed, one Redis SET of about 2 KB, a small XML answer with the JWT
 *   POST /cache-hit   the same body: RS256 verify, one Redis GET of a fixed key, its value as the answer
 *
 * And the same work with what issue 17 says the gateway must keep ("every check, every audit line"),
 * written as plainly as this file (requiredExchange, requiredHealthz below): what any implementation keeping
 * those features could reach on this machine, so that a target above it is out of reach without dropping
 * one, and a gap below it is the gateway's own.
 *
 *   POST /fresh-required   /fresh, and: a request id and the response headers the gateway sets, the
 *                          address count (INCR + PEXPIRE NX) sent before the body is read and awaited
 *                          before the token is checked, the body refused on a repeated parameter, the
 *                          token's nbf and iat checked too, the subject count with the cache entry and the
 *                          four revocation watermarks read in the same round trip, a secret key and a
 *                          session token (AES-256-GCM) made, the secrets (with the identity's claims)
 *                          sealed against the public record, the record written under the session's key
 *                          and the cache's by one script, the answer with the whole credential set, one
 *                          audit line (pino, batched stdout, as the gateway writes it) and two metrics
 *   POST /cache-hit-required   /cache-hit with the same features: the stored set found by the cache read
 *                          of the subject-count round trip (written by the first request), its secrets
 *                          opened (AES-256-GCM against the record), its remaining life checked, the same
 *                          answer, audit line and metrics
 *   GET /healthz           a request id, the headers, a JSON body, one log line and a request count
 */
import { createCipheriv, createDecipheriv, createHash, createPublicKey, generateKeyPairSync, randomBytes, randomUUID, sign, verify } from 'node:crypto';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import Koa from 'koa';
import { pino } from 'pino';
import { Counter, Histogram, Registry } from 'prom-client';
import getRawBody from 'raw-body';
import { closeServer, listenOnLoopback, serveUntilStopped } from './lifecycle.js';
import { BENCH_AUDIENCE, FLOOR_FEATURES, FLOOR_SETTINGS_ENV, type FloorBenchSettings } from './settings.js';

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
  nbf?: unknown;
  iat?: unknown;
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
  if (ctx.method === 'POST' && ctx.path === '/fresh-required') return requiredExchange(ctx, true, withoutOf(ctx.querystring));
  if (ctx.method === 'POST' && ctx.path === '/cache-hit-required') return requiredExchange(ctx, false, withoutOf(ctx.querystring));
  if (ctx.method === 'GET' && ctx.path === '/healthz') return requiredHealthz(ctx);
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

type Feature = (typeof FLOOR_FEATURES)[number];
const NONE: ReadonlySet<Feature> = new Set();
/** The kept features a request leaves out (`?without=audit,seal`: bench:features); unknown names are ignored. */
function withoutOf(querystring: string): ReadonlySet<Feature> {
  if (querystring === '') return NONE;
  const named = new URLSearchParams(querystring).get('without')?.split(',') ?? [];
  return new Set(named.filter((name): name is Feature => (FLOOR_FEATURES as readonly string[]).includes(name)));
}

/** The gateway's log line goes to a batched stdout (src/observability/logger.ts); the same here. */
const logger = pino({ base: { service: 'stsgate' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, pino.destination({ dest: 1, sync: false, minLength: 12 * 1024 }));
const audit = logger.child({ log: 'audit' });
const registry = new Registry();
const requests = new Counter({ name: 'floor_requests_total', help: 'requests', labelNames: ['route', 'status'], registers: [registry] });
const issued = new Counter({ name: 'floor_issued_total', help: 'credentials issued', labelNames: ['action', 'source', 'role', 'cached'], registers: [registry] });
const exchangeSeconds = new Histogram({ name: 'floor_exchange_seconds', help: 'exchange time', labelNames: ['action', 'outcome'], registers: [registry] });
const requestsOk = { sts: requests.labels('sts', '2xx'), healthz: requests.labels('healthz', '2xx') };
const issuedFresh = issued.labels('AssumeRoleWithWebIdentity', 'github-actions', 'deployer', 'false');
const issuedCached = issued.labels('AssumeRoleWithWebIdentity', 'github-actions', 'deployer', 'true');
const exchangeIssued = exchangeSeconds.labels('AssumeRoleWithWebIdentity', 'issued');

/** The session secrets' key (AES-256-GCM), as the gateway's `encryption_key`. */
const sealingKey = randomBytes(32);
function seal(plaintext: string, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey, iv);
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = cipher.update(plaintext, 'utf8');
  cipher.final();
  return `${iv.toString('base64url')}.${body.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
}

const WINDOW_MS = 60_000;
/** A fixed-window count, as the gateway's limits count (INCR, then PEXPIRE NX). */
async function count(key: string): Promise<number> {
  const [counted] = await Promise.all([redis.incr(key), redis.call('PEXPIRE', key, WINDOW_MS, 'NX')]);
  return counted;
}
redis.defineCommand('setTwo', { numberOfKeys: 2, lua: "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) return 1" });
const setTwo = (redis as unknown as { setTwo(a: string, b: string, value: string, ttlMs: number): Promise<number> }).setTwo.bind(redis);

/** Sets what every gateway response carries: a request id and the security headers. */
function frontHeaders(ctx: Koa.Context): string {
  const requestId = randomUUID();
  ctx.set('x-request-id', requestId);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  return requestId;
}

async function requiredHealthz(ctx: Koa.Context): Promise<void> {
  const started = performance.now();
  const requestId = frontHeaders(ctx);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { status: 'ok' };
  requestsOk.healthz.inc();
  logger.info({ requestId, method: ctx.method, path: ctx.path, status: 200, ms: Math.round((performance.now() - started) * 10) / 10, client: ctx.ip }, 'request');
}

/**
 * /fresh and /cache-hit with the gateway's features (see the top of this file): the cache entry read, and
 * on a miss a set issued and stored (`fresh`: a miss is what the request must be), on a hit the stored set
 * opened and answered. A refused request is a 4xx with nothing written; a state the benchmark never sets
 * up (a watermark, a fresh subject already cached, a set that does not open) is a 500, so that its probe
 * and its passes fail rather than measure something else.
 */
async function requiredExchange(ctx: Koa.Context, fresh: boolean, without: ReadonlySet<Feature>): Promise<void> {
  const started = performance.now();
  const requestId = without.has('front') ? '' : frontHeaders(ctx);
  const counting = !without.has('counts');
  const addressCount = counting ? count(`${settings.redisPrefix}floor:rl:addr:${ctx.ip}`) : Promise.resolve(0);
  addressCount.catch(() => {});
  const body = await getRawBody(ctx.req, { limit: 65536, length: ctx.get('content-length') || null, encoding: 'utf8' });
  const form = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(body)) {
    if (form.has(key)) ctx.throw(400, 'a parameter given twice');
    form.set(key, value);
  }
  if (form.get('Action') !== 'AssumeRoleWithWebIdentity' || form.get('Version') !== '2011-06-15') ctx.throw(400, 'unknown action');
  if ((await addressCount) > 1_000_000_000) ctx.throw(400, 'throttled');
  const claims = verifiedClaims(form.get('WebIdentityToken') ?? null);
  const now = Date.now() / 1000;
  if (!claims || (typeof claims.nbf === 'number' && claims.nbf > now + 60) || (typeof claims.iat === 'number' && claims.iat > now + 60)) ctx.throw(400, 'invalid token');
  const sessionName = form.get('RoleSessionName') ?? '';
  const subjectKey = createHash('sha256').update(`github-actions\0${claims.sub}`).digest('base64url');
  const cacheKey = createHash('sha256')
    .update(JSON.stringify(['github-actions', claims.sub, 'deployer', ['deploy:write', 'logs:read'], ['api.example.com'], sessionName, { repo: claims.repository }, null]))
    .digest('base64url');
  const prefix = settings.redisPrefix;
  const watermarkKeys = without.has('watermarks') ? [] : [`${prefix}floor:rev:{all}`, `${prefix}floor:rev:{sub}:${subjectKey}`, `${prefix}floor:rev:{any}:${subjectKey}`, `${prefix}floor:rev:{role}:deployer`];
  const [subjectCount, [found, ...watermarks]] = await Promise.all([
    counting ? count(`${prefix}floor:rl:sub:${subjectKey}`) : 0,
    redis.mget(`${prefix}floor:cache:${cacheKey}`, ...watermarkKeys),
  ]);
  if (subjectCount > 1_000_000_000) ctx.throw(400, 'throttled');
  const cached = found ?? null;
  if (watermarks.some((value) => value !== null)) ctx.throw(500, 'a revocation watermark where none was written');
  if (fresh && cached !== null) ctx.throw(500, 'a fresh subject found a cached set');
  const set = cached !== null ? openRecord(cached, cacheKey) : await issueSet(claims, sessionName, cacheKey, without);
  if (!set) ctx.throw(500, 'the cached set did not open');

  ctx.type = 'text/xml';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = stsResponse(
    `<AccessKeyId>${set.info.accessKeyId}</AccessKeyId><SecretAccessKey>${set.secrets.secretAccessKey}</SecretAccessKey><SessionToken>${set.secrets.sessionToken}</SessionToken>` +
      `<Expiration>${new Date(set.info.exp * 1000).toISOString()}</Expiration><AccessToken>${set.secrets.accessToken}</AccessToken>`,
  );
  const seconds = (performance.now() - started) / 1000;
  if (!without.has('metrics')) {
    (cached === null ? issuedFresh : issuedCached).inc();
    exchangeIssued.observe(seconds);
    requestsOk.sts.inc();
  }
  if (without.has('audit')) return;
  audit.info({
    event: 'issued',
    action: 'AssumeRoleWithWebIdentity',
    requestId,
    source: 'github-actions',
    subject: claims.sub,
    role: 'deployer',
    rule: 'main-branch-deploys',
    sid: set.info.sessionId,
    scope: 'deploy:write logs:read',
    durationSeconds: set.info.exp - set.info.iat,
    cached: cached !== null,
    client: ctx.ip,
    ms: Math.round(seconds * 10_000) / 10,
    method: ctx.method,
    path: ctx.path,
    status: 200,
  });
}

/** A credential set's public record and its secrets (sealed in the stored record). */
interface CredentialSet {
  info: { sessionId: string; accessKeyId: string; iat: number; exp: number };
  secrets: { secretAccessKey: string; sessionToken: string; accessToken: string };
}

/** The seal's associated data: the whole public record and the cache key, as the gateway binds them. */
const sealContext = (infoJson: string, cacheKey: string) => `stsgate-session:${infoJson}:${cacheKey}`;

/** A new credential set for `claims`, stored under the session's key and the cache's. */
async function issueSet(claims: IncomingClaims, sessionName: string, cacheKey: string, without: ReadonlySet<Feature> = NONE): Promise<CredentialSet> {
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + LIFETIME_SECONDS;
  const sessionId = randomBytes(16).toString('base64url');
  const info = {
    sessionId,
    sub: `github-actions:${claims.sub}`,
    source: 'github-actions',
    subject: claims.sub,
    role: 'deployer',
    roleArn: 'arn:aws:iam::123456789012:role/deployer',
    scopes: ['deploy:write', 'logs:read'],
    audiences: ['api.example.com'],
    sessionName,
    sessionTags: { repo: claims.repository },
    accessKeyId: `ASIA${sessionId.slice(0, 16).toUpperCase()}`,
    jti: randomUUID(),
    iat,
    iatMs: Date.now(),
    exp,
    chainDepth: 0,
  };
  const accessToken = signAccessToken({
    repo: claims.repository,
    role: 'deployer',
    scope: 'deploy:write logs:read',
    sid: sessionId,
    idp: 'github-actions',
    iss: 'https://sts.example.com',
    sub: info.sub,
    aud: ['api.example.com'],
    iat,
    nbf: iat,
    exp,
    jti: info.jti,
  });
  const sealing = !without.has('seal');
  const sessionTokenText = JSON.stringify({ sid: sessionId, exp });
  const secrets = { secretAccessKey: randomBytes(30).toString('base64'), sessionToken: sealing ? seal(sessionTokenText, 'session-token') : Buffer.from(sessionTokenText).toString('base64url'), accessToken };
  const infoJson = JSON.stringify(info);
  const secretsJson = JSON.stringify({ ...secrets, identityClaims: claims });
  const record = sealing ? `{"info":${infoJson},"sealed":"${seal(secretsJson, sealContext(infoJson, cacheKey))}","cacheKey":"${cacheKey}"}` : `{"info":${infoJson},"secrets":${secretsJson},"cacheKey":"${cacheKey}"}`;
  const sessionKey = `${settings.redisPrefix}floor:sess:{${sessionId}}`;
  if (without.has('copy')) await redis.set(sessionKey, record, 'PX', LIFETIME_SECONDS * 1000);
  else await setTwo(sessionKey, `${settings.redisPrefix}floor:cache:${cacheKey}`, record, LIFETIME_SECONDS * 1000);
  return { info, secrets };
}

/** A stored record opened (its secrets decrypted against its public part), when intact and with half its life left. */
function openRecord(raw: string, cacheKey: string): CredentialSet | undefined {
  const record = JSON.parse(raw) as { info: CredentialSet['info']; sealed: string; cacheKey: string };
  if (record.cacheKey !== cacheKey) return undefined;
  const [iv, body, tag] = record.sealed.split('.').map((part) => Buffer.from(part, 'base64url')) as [Buffer, Buffer, Buffer];
  const decipher = createDecipheriv('aes-256-gcm', sealingKey, iv);
  decipher.setAAD(Buffer.from(sealContext(JSON.stringify(record.info), cacheKey), 'utf8'));
  decipher.setAuthTag(tag);
  const secrets = JSON.parse(Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8')) as CredentialSet['secrets'];
  const remaining = record.info.exp - Date.now() / 1000;
  return remaining >= (record.info.exp - record.info.iat) / 2 ? { info: record.info, secrets } : undefined;
}

const server = createServer(app.callback());
await listenOnLoopback(server);
serveUntilStopped(server, async () => {
  await closeServer(server);
  await redis.quit();
});
