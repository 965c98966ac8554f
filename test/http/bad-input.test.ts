/**
 * One row per bad-input class: each gets the protocol's own error (AWS XML or OAuth JSON) with the exact
 * code and status, and issues nothing and stores nothing (the Redis keyspace under the gateway's prefix
 * is unchanged), and its denial is in the audit log.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { awsErrorCode, issuerFor, REDIS_URL, redisStoreConfig, standardRules, startTestGateway, type TestGateway } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';

const ROLE_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/deployer`;
const MAIN = { repository: 'acme/app', ref: 'refs/heads/main' };

let issuer: TestIssuer;
let stranger: TestIssuer;
let broken: TestIssuer;
let gateway: TestGateway;
let redis: Redis;
let prefix: string;

beforeAll(async () => {
  issuer = await TestIssuer.start();
  stranger = await TestIssuer.start();
  broken = await TestIssuer.start();
  const store = redisStoreConfig();
  prefix = store.prefix;
  broken.fail('both', { kind: 'status', status: 500 });
  gateway = await startTestGateway({ issuers: [issuerFor(issuer), issuerFor(broken, 'broken')], store, rules: [...standardRules(), ...standardRules('broken')] });
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await gateway?.close();
  await Promise.all([issuer?.close(), stranger?.close(), broken?.close()]);
  redis?.disconnect();
});

async function storedKeys(): Promise<number> {
  return (await redis.keys(`${prefix}*`)).length;
}

type TokenMaker = () => Promise<string>;
const valid: TokenMaker = () => issuer.mint(MAIN);
const flipSignature = async () => {
  const token = await valid();
  const last = token.at(-2) === 'A' ? 'B' : 'A';
  return `${token.slice(0, -2)}${last}${token.at(-1)}`;
};

const stsCases: [string, () => Promise<Record<string, string> | { raw: string; contentType?: string; query?: string }>, string, number][] = [
  ['a malformed token', async () => ({ WebIdentityToken: 'not.a.jwt' }), 'InvalidIdentityToken', 400],
  ['a token that is not a JWT at all', async () => ({ WebIdentityToken: 'abcdefgh' }), 'InvalidIdentityToken', 400],
  ['an oversized token (over 20000 characters)', async () => ({ WebIdentityToken: 'a'.repeat(20001) }), 'ValidationError', 400],
  ['an expired token', async () => ({ WebIdentityToken: await issuer.mint(MAIN, { issuedAt: Math.floor(Date.now() / 1000) - 900, expiresIn: 300 }) }), 'ExpiredTokenException', 400],
  ['a mis-signed token', async () => ({ WebIdentityToken: await flipSignature() }), 'InvalidIdentityToken', 400],
  ["a token signed by another issuer's key under a trusted kid", async () => ({ WebIdentityToken: await stranger.mint({ ...MAIN, iss: issuer.url }) }), 'InvalidIdentityToken', 400],
  ['a wrong-audience token', async () => ({ WebIdentityToken: await issuer.mint({ ...MAIN, aud: 'someone-else' }) }), 'InvalidIdentityToken', 400],
  ['an unknown-issuer token', async () => ({ WebIdentityToken: await stranger.mint(MAIN) }), 'InvalidIdentityToken', 400],
  ['alg none', async () => ({ WebIdentityToken: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ ...MAIN, iss: issuer.url })).toString('base64url')}.` }), 'InvalidIdentityToken', 400],
  ['an unreachable JWKS', async () => ({ WebIdentityToken: await broken.mint(MAIN) }), 'IDPCommunicationError', 400],
  ['a missing RoleArn', async () => ({ RoleArn: '' }), 'ValidationError', 400],
  ['a missing Action', async () => ({ Action: '' }), 'InvalidAction', 400],
  ['an unknown Action', async () => ({ Action: 'GetSessionToken' }), 'InvalidAction', 400],
  ['a wrong Version', async () => ({ Version: '2010-01-01' }), 'InvalidAction', 400],
  ['a session policy (unsupported)', async () => ({ Policy: '{"Version":"2012-10-17"}' }), 'ValidationError', 400],
  ['an unknown parameter', async () => ({ Foo: 'bar' }), 'ValidationError', 400],
  ['a parameter given twice', async () => ({ raw: `Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=${ROLE_ARN}&RoleArn=${ROLE_ARN}&RoleSessionName=ci&WebIdentityToken=${await valid()}` }), 'ValidationError', 400],
  ['a parameter split between query and body', async () => ({ raw: `Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleSessionName=ci&WebIdentityToken=${await valid()}`, query: `RoleArn=${ROLE_ARN}` }), 'ValidationError', 400],
  ['a JSON body', async () => ({ raw: JSON.stringify({ Action: 'AssumeRoleWithWebIdentity' }), contentType: 'application/json' }), 'UnsupportedMediaType', 415],
  ['a body over the cap', async () => ({ raw: `Action=AssumeRoleWithWebIdentity&Version=2011-06-15&Pad=${'x'.repeat(70_000)}` }), 'PayloadTooLarge', 413],
  ['an invalid duration', async () => ({ DurationSeconds: '12abc' }), 'ValidationError', 400],
  ['an invalid session name', async () => ({ RoleSessionName: 'has spaces' }), 'ValidationError', 400],
];

describe('AWS STS: bad input is refused and leaves nothing behind', () => {
  it.each(stsCases)('%s', async (_name, make, code, status) => {
    const before = await storedKeys();
    const input = await make();
    let res: Response;
    if ('raw' in input) {
      res = await fetch(`${gateway.url}/${input.query ? `?${input.query}` : ''}`, {
        method: 'POST',
        headers: { 'content-type': input.contentType ?? 'application/x-www-form-urlencoded' },
        body: input.raw,
      });
    } else {
      const form: Record<string, string> = { Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: ROLE_ARN, RoleSessionName: 'ci', WebIdentityToken: await valid(), ...input };
      for (const [k, v] of Object.entries(form)) if (v === '') delete form[k];
      res = await postForm(gateway.url, form);
    }
    const body = await res.text();
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^text\/xml/);
    expect(body).toContain('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">');
    expect(awsErrorCode(body)).toBe(code);
    expect(body).toMatch(/<RequestId>[0-9a-f-]{36}<\/RequestId>/);
    expect(body).not.toContain('<AccessKeyId>');
    expect(await storedKeys()).toBe(before);
  });

  it('GetCallerIdentity without a signature is refused', async () => {
    const res = await postForm(gateway.url, { Action: 'GetCallerIdentity', Version: '2011-06-15' });
    expect(res.status).toBe(403);
    expect(awsErrorCode(await res.text())).toBe('MissingAuthenticationToken');
  });

  it('records each denial in the audit log with its reason code', async () => {
    const denials = gateway.logs().filter((l) => l.log === 'audit' && l.event === 'denied');
    const codes = new Set(denials.map((d) => d.code));
    for (const code of ['InvalidIdentityToken', 'ExpiredTokenException', 'IDPCommunicationError']) expect(codes).toContain(code);
    for (const d of denials) expect(d).toMatchObject({ action: expect.any(String), requestId: expect.any(String) });
  });
});

const oauthCases: [string, () => Promise<Record<string, string>>, string, number][] = [
  ['a wrong grant type', async () => ({ grant_type: 'client_credentials' }), 'unsupported_grant_type', 400],
  ['a missing subject token', async () => ({ subject_token: '' }), 'invalid_request', 400],
  ['an unknown subject token type', async () => ({ subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }), 'invalid_request', 400],
  ['an expired subject token', async () => ({ subject_token: await issuer.mint(MAIN, { issuedAt: Math.floor(Date.now() / 1000) - 900, expiresIn: 300 }) }), 'invalid_request', 400],
  ['a mis-signed subject token', async () => ({ subject_token: await flipSignature() }), 'invalid_request', 400],
  ['a wrong-audience subject token', async () => ({ subject_token: await issuer.mint({ ...MAIN, aud: ['a', 'b'] }) }), 'invalid_request', 400],
  ['an unknown-issuer subject token', async () => ({ subject_token: await stranger.mint(MAIN) }), 'invalid_request', 400],
  ['an unknown role as audience', async () => ({ audience: 'nope' }), 'invalid_target', 400],
  ['a role no rule grants', async () => ({ audience: 'admin' }), 'invalid_target', 400],
  ['an actor token (delegation)', async () => ({ actor_token: await valid(), actor_token_type: TOKEN_TYPE.jwt }), 'invalid_request', 400],
  ['an unsupported requested token type', async () => ({ requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }), 'invalid_request', 400],
  ['a duration over the role maximum', async () => ({ duration_seconds: '99999' }), 'invalid_request', 400],
  ['a garbage access token', async () => ({ subject_token: 'abc.def.ghi', subject_token_type: TOKEN_TYPE.accessToken }), 'invalid_request', 400],
];

describe('OAuth token exchange: bad input is refused and leaves nothing behind', () => {
  it.each(oauthCases)('%s', async (_name, make, code, status) => {
    const before = await storedKeys();
    const form: Record<string, string> = { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: await valid(), subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer', ...(await make()) };
    for (const [k, v] of Object.entries(form)) if (v === '') delete form[k];
    const res = await postForm(`${gateway.url}/oauth2/token`, form);
    expect(res.status).toBe(status);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.error).toBe(code);
    expect(typeof body.error_description).toBe('string');
    expect(body).not.toHaveProperty('access_token');
    expect(await storedKeys()).toBe(before);
  });

  it('a body over the cap is refused before it is read', async () => {
    const res = await fetch(`${gateway.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=x&pad=${'x'.repeat(100_000)}`,
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as Record<string, unknown>).error).toBe('invalid_request');
  });
});

describe('methods and paths no route serves', () => {
  it.each([
    ['PUT', '/oauth2/token', 'POST'],
    ['GET', '/oauth2/introspect', 'POST'],
    ['DELETE', '/', 'GET, HEAD, POST'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['PATCH', '/.well-known/jwks.json', 'GET, HEAD'],
  ])('%s %s is 405 with Allow: %s, and stores nothing', async (method, path, allow) => {
    const before = await storedKeys();
    const res = await fetch(`${gateway.url}${path}`, { method, headers: { 'content-type': 'application/x-www-form-urlencoded' }, ...(method === 'GET' ? {} : { body: 'a=b' }) });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')?.split(', ').sort()).toEqual(allow.split(', ').sort());
    expect(await res.text()).toContain('Method not allowed.');
    expect(await storedKeys()).toBe(before);
  });

  it('an unknown path is 404, an unknown method 501', async () => {
    expect((await fetch(`${gateway.url}/nowhere`)).status).toBe(404);
    expect((await fetch(`${gateway.url}/oauth2/nowhere`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${gateway.url}/`, { method: 'PROPFIND' })).status).toBe(501);
  });
});

describe('logs', () => {
  it('no token, secret or key reaches the log', async () => {
    const token = await valid();
    const res = await postForm(`${gateway.url}/oauth2/token`, { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: token, subject_token_type: TOKEN_TYPE.jwt, audience: 'deployer' });
    const body = (await res.json()) as { access_token: string; aws_credentials: Record<string, string> };
    const log = gateway.logs().map((l) => JSON.stringify(l)).join('\n');
    const secrets = [token, body.access_token, body.aws_credentials.SecretAccessKey!, body.aws_credentials.SessionToken!];
    for (const secret of secrets) {
      expect(log).not.toContain(secret);
      // Not even a signature or a recognisable middle piece.
      expect(log).not.toContain(secret.slice(-24));
    }
  });
});
