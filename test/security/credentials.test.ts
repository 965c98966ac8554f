/**
 * Hostile use of issued credentials: expired, revoked, tampered, mixed between sessions, chained past
 * their root's lifetime, from a revoked root, onto their own role or too deep, and SigV4
 * requests signed for another service or region, replayed after 15 minutes, with a header left unsigned,
 * or with a body swapped under a signed payload hash. Access tokens: expired, revoked, tampered, re-signed
 * with the wrong type or issuer, presented as the wrong token type. Every case: the exact status and code,
 * nothing issued or stored.
 */
import { createHash, createHmac } from 'node:crypto';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CHAIN_DEPTH } from '../../src/credentials/exchange.js';
import type { CredentialSet } from '../../src/domain/types.js';
import { TOKEN_TYPE } from '../../src/http/oauth.js';
import { gatewayServicesAt, issuerFor } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { b64, DEPLOYER_ARN, encodeForm, expectRefused, MAIN, postOAuth, postRaw, postSts, startSecurityGateway, type Expected, type SecurityGateway } from './harness.js';
import { ACCOUNT_ID } from '../support/common.js';

const READER_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/reader`;

interface Keys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  accessToken: string;
}

let idp: TestIssuer;
let g: SecurityGateway;
let a: Keys;
let b: Keys;
let expired: Keys;
let revoked: Keys;
let revokedBySessionToken: Keys;
/** A reader session: reader does not list itself in can_assume. */
let reader: Keys;
/** A deployer session chained (deployer -> deployer) from a root that was then revoked. */
let childOfRevoked: Keys;
/** A session chained a second before its root ended a minute ago, from a long-expired web-identity token. */
let childOfExpired: Keys;
/** The last of MAX_CHAIN_DEPTH hops deployer -> deployer. */
let deepest: Keys;

/** An RFC 8693 exchange of a MAIN token (default role deployer), or of `subject` (an access token) when given. */
async function assume(sessionName: string, extra: Record<string, string> = {}, subject?: Keys): Promise<Keys> {
  const token = subject ? { subject_token: subject.accessToken, subject_token_type: TOKEN_TYPE.accessToken } : { subject_token: await idp.mint(MAIN) };
  const res = await postOAuth(g.url, { ...token, session_name: sessionName, ...extra });
  expect(res.status, await res.clone().text()).toBe(200);
  const json = (await res.json()) as { access_token: string; aws_credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string } };
  return { accessKeyId: json.aws_credentials.AccessKeyId, secretAccessKey: json.aws_credentials.SecretAccessKey, sessionToken: json.aws_credentials.SessionToken, accessToken: json.access_token };
}

const keysOf = (set: CredentialSet): Keys => ({ accessKeyId: set.accessKeyId, secretAccessKey: set.secretAccessKey, sessionToken: set.sessionToken, accessToken: set.accessToken });
const MAIN_IDENTITY = { source: 'ci', subject: 'repo:acme/app:ref:refs/heads/main', claims: MAIN };

/** Credentials of a real, stored session whose lifetime ended an hour ago (issued by a clock two hours behind). */
async function issueExpired(): Promise<Keys> {
  const { exchange } = gatewayServicesAt(g.gateway, () => Date.now() - 2 * 3600_000);
  return keysOf((await exchange.issueForIdentity(MAIN_IDENTITY, { role: 'deployer', sessionName: 'expired', durationSeconds: 3600 })).credentials);
}

/**
 * A chained session whose root (issued 61 minutes ago for an hour) ended a minute ago; it was chained a
 * second before that, asking for the full hour a chained session may have.
 */
async function issueChildOfExpired(): Promise<Keys> {
  let offsetMs = -3660_000;
  const past = gatewayServicesAt(g.gateway, () => Date.now() + offsetMs);
  const root = await past.exchange.issueForIdentity(MAIN_IDENTITY, { role: 'deployer', sessionName: 'root-expired', durationSeconds: 3600 });
  offsetMs = -61_000;
  const parent = (await past.credentials.findSession(root.credentials.sessionId))!;
  return keysOf((await past.exchange.chain(parent, { role: 'deployer', sessionName: 'child-of-expired', durationSeconds: 3600 })).credentials);
}

beforeAll(async () => {
  idp = await TestIssuer.start();
  g = await startSecurityGateway({ issuers: [issuerFor(idp)] });
  [a, b, revoked, revokedBySessionToken] = [await assume('alice'), await assume('bob'), await assume('revoked'), await assume('revoked-2')];
  reader = await assume('reader', { audience: 'reader' });
  const revokedRoot = await assume('revoked-root');
  childOfRevoked = await assume('child-of-revoked', {}, revokedRoot);
  deepest = await assume('deep-0');
  for (let hop = 1; hop <= MAX_CHAIN_DEPTH; hop++) deepest = await assume(`deep-${hop}`, {}, deepest);
  expired = await issueExpired();
  childOfExpired = await issueChildOfExpired();
  for (const token of [revoked.accessToken, revokedBySessionToken.sessionToken, revokedRoot.accessToken]) {
    const res = await postRaw(`${g.url}/oauth2/revoke`, { raw: encodeForm({ token }) });
    expect(res.status).toBe(200);
  }
});
afterAll(async () => {
  await g?.close();
  await idp?.close();
});

interface SignOptions {
  region?: string;
  service?: string;
  date?: Date;
  /** Headers added before signing. */
  headers?: Record<string, string>;
  /** Header names left out of SignedHeaders. */
  unsigned?: string[];
  /** Changes the request after it was signed. */
  after?: (request: { headers: Record<string, string>; body: string }) => void;
  /** Signs without the session token header. */
  noSessionToken?: boolean;
}

/** A SigV4-signed STS request as the AWS SDK signs it, optionally bent before or after signing. */
async function signedPost(keys: Pick<Keys, 'accessKeyId' | 'secretAccessKey' | 'sessionToken'>, form: Record<string, string>, options: SignOptions = {}): Promise<Response> {
  const url = new URL(g.url);
  const body = encodeForm(form);
  const signer = new SignatureV4({
    service: options.service ?? 'sts',
    region: options.region ?? 'us-east-1',
    sha256: Sha256,
    applyChecksum: false,
    credentials: { accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey, ...(options.noSessionToken ? {} : { sessionToken: keys.sessionToken }) },
  });
  const signed = await signer.sign(
    { method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', ...options.headers }, body },
    { signingDate: options.date ?? new Date(), unsignableHeaders: new Set(options.unsigned ?? []) },
  );
  const request = { headers: { ...(signed.headers as Record<string, string>) }, body };
  options.after?.(request);
  delete request.headers.host;
  return fetch(`${g.url}/`, { method: 'POST', headers: request.headers, body: request.body });
}

const WHO = { Action: 'GetCallerIdentity', Version: '2011-06-15' };
const ASSUME_READER = { Action: 'AssumeRole', Version: '2011-06-15', RoleArn: READER_ARN, RoleSessionName: 'chained' };
const flip = (text: string, at = Math.floor(text.length / 2)) => `${text.slice(0, at)}${text[at] === 'A' ? 'B' : 'A'}${text.slice(at + 1)}`;
const setAuth = (request: { headers: Record<string, string> }, change: (auth: string) => string) => {
  request.headers.authorization = change(request.headers.authorization!);
};

const INVALID_ID: Expected = [403, 'InvalidClientTokenId'];
const MISMATCH: Expected = [403, 'SignatureDoesNotMatch'];
const INCOMPLETE: Expected = [400, 'IncompleteSignature'];

interface SigRow {
  name: string;
  send: () => Promise<Response>;
  expected: Expected;
}

const sigRows: SigRow[] = [
  { name: 'no Authorization header', send: () => postSts(g.url, { raw: encodeForm(WHO) }), expected: [403, 'MissingAuthenticationToken'] },
  { name: 'garbage Authorization header', send: () => postSts(g.url, { raw: encodeForm(WHO), headers: { authorization: 'Bearer x' } }), expected: INCOMPLETE },
  { name: 'SigV2-style Authorization', send: () => signedPost(a, WHO, { after: (r) => setAuth(r, () => `AWS ${a.accessKeyId}:${createHmac('sha1', 'x').update('y').digest('base64')}`) }), expected: INCOMPLETE },
  { name: 'algorithm in lower case', send: () => signedPost(a, WHO, { after: (r) => setAuth(r, (x) => x.replace('AWS4-HMAC-SHA256', 'aws4-hmac-sha256')) }), expected: INCOMPLETE },
  { name: 'expired credentials (session ended an hour ago)', send: () => signedPost(expired, WHO), expected: [403, 'ExpiredToken'] },
  { name: 'expired credentials chaining with AssumeRole', send: () => signedPost(expired, ASSUME_READER), expected: [403, 'ExpiredToken'] },
  { name: 'revoked credentials (revoked by access token)', send: () => signedPost(revoked, WHO), expected: INVALID_ID },
  { name: 'revoked credentials (revoked by session token)', send: () => signedPost(revokedBySessionToken, WHO), expected: INVALID_ID },
  { name: 'revoked credentials chaining with AssumeRole', send: () => signedPost(revoked, ASSUME_READER), expected: INVALID_ID },
  { name: 'secret access key with one character changed', send: () => signedPost({ ...a, secretAccessKey: flip(a.secretAccessKey) }, WHO), expected: MISMATCH },
  { name: 'session token with one character changed', send: () => signedPost({ ...a, sessionToken: flip(a.sessionToken) }, WHO), expected: INVALID_ID },
  { name: 'session token truncated', send: () => signedPost({ ...a, sessionToken: a.sessionToken.slice(0, -4) }, WHO), expected: INVALID_ID },
  { name: 'access key id of another session (keys and token of A)', send: () => signedPost({ ...a, accessKeyId: b.accessKeyId }, WHO), expected: INVALID_ID },
  { name: "A's keys with B's session token", send: () => signedPost({ ...a, sessionToken: b.sessionToken }, WHO), expected: INVALID_ID },
  { name: "A's access key id with B's secret and session token", send: () => signedPost({ ...b, accessKeyId: a.accessKeyId }, WHO), expected: INVALID_ID },
  { name: "B's secret with A's id and token", send: () => signedPost({ ...a, secretAccessKey: b.secretAccessKey }, WHO), expected: MISMATCH },
  { name: 'a long-term-style access key id (AKIA...)', send: () => signedPost({ ...a, accessKeyId: `AKIA${a.accessKeyId.slice(4)}` }, WHO), expected: INVALID_ID },
  { name: 'an access key id made up in stsgate form', send: () => signedPost({ ...a, accessKeyId: 'ASIAAAAAAAAAAAAAAAAA' }, WHO), expected: INVALID_ID },
  { name: 'signed without a session token', send: () => signedPost(a, WHO, { noSessionToken: true }), expected: INVALID_ID },
  { name: 'the session token header sent twice', send: () => signedPost(a, WHO, { after: (r) => (r.headers['x-amz-security-token'] = `${a.sessionToken}, ${a.sessionToken}`) }), expected: INVALID_ID },
  { name: 'the access token as the session token', send: () => signedPost({ ...a, sessionToken: a.accessToken }, WHO), expected: INVALID_ID },
  // Scope: service, region, date.
  { name: 'scoped to another service (s3)', send: () => signedPost(a, WHO, { service: 's3' }), expected: MISMATCH },
  { name: 'scoped to another service (iam)', send: () => signedPost(a, WHO, { service: 'iam' }), expected: MISMATCH },
  { name: 'region changed in the credential scope after signing', send: () => signedPost(a, WHO, { region: 'us-east-1', after: (r) => setAuth(r, (x) => x.replace('/us-east-1/', '/eu-west-1/')) }), expected: MISMATCH },
  { name: 'service changed in the credential scope after signing', send: () => signedPost(a, WHO, { service: 'iam', after: (r) => setAuth(r, (x) => x.replace('/iam/', '/sts/')) }), expected: MISMATCH },
  { name: 'replayed 16 minutes after signing', send: () => signedPost(a, WHO, { date: new Date(Date.now() - 16 * 60_000) }), expected: MISMATCH },
  { name: 'signed 16 minutes in the future', send: () => signedPost(a, WHO, { date: new Date(Date.now() + 16 * 60_000) }), expected: MISMATCH },
  { name: 'scope date differs from X-Amz-Date', send: () => signedPost(a, WHO, { after: (r) => setAuth(r, (x) => x.replace(/\/(\d{8})\//, (_m, d: string) => `/${String(Number(d) - 1)}/`)) }), expected: MISMATCH },
  // The seconds always change (a request signed at :00 gets :01): an edit that leaves the date as it was proves nothing.
  { name: 'X-Amz-Date changed after signing', send: () => signedPost(a, WHO, { after: (r) => (r.headers['x-amz-date'] = r.headers['x-amz-date']!.replace(/(\d\d)Z$/, (_m, s: string) => (s === '00' ? '01Z' : '00Z'))) }), expected: MISMATCH },
  // Headers left unsigned, or the signed list edited.
  { name: 'X-Amz-Security-Token not signed', send: () => signedPost(a, WHO, { unsigned: ['x-amz-security-token'] }), expected: MISMATCH },
  { name: 'Host not signed', send: () => signedPost(a, WHO, { unsigned: ['host'] }), expected: MISMATCH },
  { name: 'X-Amz-Date not signed', send: () => signedPost(a, WHO, { unsigned: ['x-amz-date'] }), expected: INCOMPLETE },
  { name: 'content-type dropped from SignedHeaders after signing', send: () => signedPost(a, WHO, { after: (r) => setAuth(r, (x) => x.replace('content-type;', '')) }), expected: MISMATCH },
  { name: 'a signed header missing from the request', send: () => signedPost(a, WHO, { headers: { 'x-extra': '1' }, after: (r) => delete r.headers['x-extra'] }), expected: MISMATCH },
  // Bodies changed under a signature.
  { name: 'AssumeRole body changed after signing', send: () => signedPost(a, ASSUME_READER, { after: (r) => (r.body = r.body.replace('chained', 'swapped')) }), expected: MISMATCH },
  {
    name: 'AssumeRole body swapped under a signed x-amz-content-sha256 of the original',
    send: () => signedPost(a, ASSUME_READER, { headers: { 'x-amz-content-sha256': createHash('sha256').update(encodeForm(ASSUME_READER)).digest('hex') }, after: (r) => (r.body = r.body.replace('chained', 'swapped')) }),
    expected: MISMATCH,
  },
  { name: 'AssumeRole body swapped under a signed UNSIGNED-PAYLOAD', send: () => signedPost(a, ASSUME_READER, { headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }, after: (r) => (r.body = r.body.replace('chained', 'swapped')) }), expected: MISMATCH },
  { name: 'GetCallerIdentity under a signed UNSIGNED-PAYLOAD', send: () => signedPost(a, WHO, { headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }), expected: MISMATCH },
  { name: 'the signature of a GetCallerIdentity on an AssumeRole body', send: () => signedPost(a, WHO, { after: (r) => (r.body = encodeForm(ASSUME_READER)) }), expected: MISMATCH },
  { name: 'signature with one hex digit changed', send: () => signedPost(a, WHO, { after: (r) => setAuth(r, (x) => x.replace(/Signature=(.)/, (_m, c: string) => `Signature=${c === '0' ? '1' : '0'}`)) }), expected: MISMATCH },
  // Authorization beyond the signature.
  { name: 'chaining to a role the caller role may not assume', send: () => signedPost(a, { ...ASSUME_READER, RoleArn: `arn:aws:iam::${ACCOUNT_ID}:role/admin` }), expected: [403, 'AccessDenied'] },
  { name: 'a role assuming itself without listing itself in can_assume (reader -> reader)', send: () => signedPost(reader, ASSUME_READER), expected: [403, 'AccessDenied'] },
  { name: `chaining one hop past the depth limit (${MAX_CHAIN_DEPTH})`, send: () => signedPost(deepest, ASSUME_READER), expected: [403, 'AccessDenied'] },
  // Chain lifetime: a chained session ends with its root and with every session it was chained from.
  { name: 'a session chained from a revoked root, calling GetCallerIdentity', send: () => signedPost(childOfRevoked, WHO), expected: INVALID_ID },
  { name: 'a session chained from a revoked root, chaining on', send: () => signedPost(childOfRevoked, ASSUME_READER), expected: INVALID_ID },
  { name: 'a session chained just before its root expired, calling GetCallerIdentity', send: () => signedPost(childOfExpired, WHO), expected: [403, 'ExpiredToken'] },
  { name: 'a session chained just before its root expired, renewing itself', send: () => signedPost(childOfExpired, { ...ASSUME_READER, RoleArn: DEPLOYER_ARN }), expected: [403, 'ExpiredToken'] },
  { name: 'chaining with a duration over the one-hour chaining limit', send: () => signedPost(a, { ...ASSUME_READER, DurationSeconds: '3601' }), expected: [400, 'ValidationError'] },
];

describe('SigV4: hostile use of AWS-style keys', () => {
  it.each(sigRows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    await expectRefused(g, 'aws', row.expected, row.send);
  });

  it('controls: the same keys, signed properly, work for GetCallerIdentity and AssumeRole, also with a correct payload hash header', async () => {
    expect((await signedPost(a, WHO)).status).toBe(200);
    expect((await signedPost(b, WHO, { region: 'eu-west-1' })).status).toBe(200);
    const withHash = await signedPost(a, ASSUME_READER, { headers: { 'x-amz-content-sha256': createHash('sha256').update(encodeForm(ASSUME_READER)).digest('hex') } });
    expect(withHash.status, await withHash.clone().text()).toBe(200);
  });

  it('documented: an identical signed request replayed within the 15 minutes is answered again (the same cached set)', async () => {
    const first = await (await signedPost(a, ASSUME_READER, { date: new Date(Date.now() - 60_000) })).text();
    const again = await (await signedPost(a, ASSUME_READER, { date: new Date(Date.now() - 60_000) })).text();
    const keyOf = (xml: string) => /<AccessKeyId>([^<]+)</.exec(xml)?.[1];
    expect(keyOf(first)).toBeDefined();
    expect(keyOf(again)).toBe(keyOf(first));
  });
});

/** Signs an access-token-shaped JWT with the gateway's own current key. */
async function gatewaySigned(claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const key = g.gateway.keys.set.current();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ role: 'deployer', scope: 'deploy:write', sid: 'AAAAAAAAAAAAAAAA', idp: 'ci', jti: 'x', ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header })
    .setIssuer(typeof claims.iss === 'string' ? claims.iss : g.gateway.config.publicUrl)
    .setSubject('ci:someone')
    .setAudience('api.example.com')
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(key.privateKey);
}
const payloadOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

interface TokenRow {
  name: string;
  token: () => Promise<string> | string;
  tokenType?: string;
  expected: Expected;
}

const INVALID_REQUEST: Expected = [400, 'invalid_request'];
const accessTokenRows: TokenRow[] = [
  { name: 'expired access token', token: () => expired.accessToken, expected: INVALID_REQUEST },
  { name: 'revoked access token', token: () => revoked.accessToken, expected: INVALID_REQUEST },
  { name: 'access token of a session revoked through its session token', token: () => revokedBySessionToken.accessToken, expected: INVALID_REQUEST },
  { name: 'payload changed to another role', token: () => { const [h, , s] = a.accessToken.split('.'); return `${h}.${b64({ ...payloadOf(a.accessToken), role: 'admin', scope: 'admin' })}.${s}`; }, expected: INVALID_REQUEST },
  { name: 'signature of B on the header and payload of A', token: () => `${a.accessToken.split('.').slice(0, 2).join('.')}.${b.accessToken.split('.')[2]}`, expected: INVALID_REQUEST },
  { name: 'alg none', token: () => `${b64({ alg: 'none', typ: 'at+jwt' })}.${a.accessToken.split('.')[1]}.`, expected: INVALID_REQUEST },
  { name: 'HS256 keyed with the gateway public JWK', token: () => { const jwk = JSON.stringify(g.gateway.keys.set.current().publicJwk); const input = `${b64({ alg: 'HS256', typ: 'at+jwt' })}.${a.accessToken.split('.')[1]}`; return `${input}.${createHmac('sha256', jwk).update(input).digest('base64url')}`; }, expected: INVALID_REQUEST },
  { name: 'gateway-signed, typ JWT instead of at+jwt', token: () => gatewaySigned(payloadOf(a.accessToken), { typ: 'JWT' }), expected: INVALID_REQUEST },
  { name: 'gateway-signed, another iss', token: () => gatewaySigned({ ...payloadOf(a.accessToken), iss: 'https://evil.example.com' }), expected: INVALID_REQUEST },
  { name: "gateway-signed with A's sid and another jti", token: () => gatewaySigned({ ...payloadOf(a.accessToken), jti: 'forged' }), expected: INVALID_REQUEST },
  { name: 'gateway-signed with an unknown sid', token: () => gatewaySigned({ sid: 'ZZZZZZZZZZZZZZZZ' }), expected: INVALID_REQUEST },
  { name: 'gateway-signed with sid __proto__', token: () => gatewaySigned({ sid: '__proto__' }), expected: INVALID_REQUEST },
  { name: 'an external IdP token presented as an access token', token: () => idp.mint(MAIN), expected: INVALID_REQUEST },
  { name: 'an AWS session token presented as an access token', token: () => a.sessionToken, expected: INVALID_REQUEST },
  { name: 'an stsgate access token presented as an external jwt', token: () => a.accessToken, tokenType: TOKEN_TYPE.jwt, expected: INVALID_REQUEST },
  { name: 'an stsgate access token presented as an id_token', token: () => a.accessToken, tokenType: TOKEN_TYPE.idToken, expected: INVALID_REQUEST },
  { name: 'a reader token kept on its own role (reader does not list itself)', token: () => reader.accessToken, expected: [400, 'invalid_target'] },
  { name: `a token ${MAX_CHAIN_DEPTH} hops deep, chained once more`, token: () => deepest.accessToken, expected: [400, 'invalid_grant'] },
  { name: 'access token of a session chained from a revoked root', token: () => childOfRevoked.accessToken, expected: INVALID_REQUEST },
  { name: 'access token of a session chained just before its root expired', token: () => childOfExpired.accessToken, expected: INVALID_REQUEST },
];

describe('OAuth: hostile access tokens as subject tokens', () => {
  it.each(accessTokenRows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    const token = await row.token();
    await expectRefused(g, 'oauth', row.expected, () => postOAuth(g.url, { subject_token: token, subject_token_type: row.tokenType ?? TOKEN_TYPE.accessToken, audience: undefined }));
  });

  it('narrowing to a scope the session does not hold', async () => {
    await expectRefused(g, 'oauth', [400, 'invalid_scope'], () => postOAuth(g.url, { subject_token: a.accessToken, subject_token_type: TOKEN_TYPE.accessToken, audience: undefined, scope: 'admin' }));
  });

  it.each([
    ['expired', () => expired.accessToken],
    ['revoked', () => revoked.accessToken],
    ['chained from a revoked root', () => childOfRevoked.accessToken],
    ['chained just before its root expired', () => childOfExpired.accessToken],
    ['tampered', () => `${a.accessToken.slice(0, -3)}AAA`],
  ])('introspection says an %s access token is inactive', async (_name, token) => {
    const res = await postRaw(`${g.url}/oauth2/introspect`, { raw: encodeForm({ token: token() }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ active: false });
  });

  it('control: a live access token narrows and introspects as active', async () => {
    const res = await postOAuth(g.url, { subject_token: a.accessToken, subject_token_type: TOKEN_TYPE.accessToken, audience: undefined, scope: 'logs:read' });
    expect(res.status, await res.clone().text()).toBe(200);
    const active = await postRaw(`${g.url}/oauth2/introspect`, { raw: encodeForm({ token: a.accessToken }) });
    expect(await active.json()).toMatchObject({ active: true, role: 'deployer' });
  });
});
