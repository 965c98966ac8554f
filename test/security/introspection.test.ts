/**
 * Who may introspect (RFC 7662 §2.1): with `introspection.clients` configured, every request must carry
 * one client's credentials, by the method that client is configured for: client_secret_basic,
 * client_secret_post (RFC 6749 §2.3.1) or private_key_jwt (RFC 7523). Anything else is 401 invalid_client
 * in the OAuth format, with no introspection result. And a per-address limit on the endpoint, either way.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IntrospectionClientConfig } from '../../src/config/types.js';
import { JWT_BEARER_ASSERTION_TYPE } from '../../src/credentials/client-authentication.js';
import { issuerFor } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { b64, encodeForm, expectProtocolError, hmacToken, keysFrom, MAIN, nowSeconds, postOAuth, postRaw, startSecurityGateway, type SecurityGateway } from './harness.js';

const BASIC_SECRET = 'basic-secret-0123456789abcdef';
const POST_SECRET = 'post-secret-0123456789abcdef';

let idp: TestIssuer;
let g: SecurityGateway;
let limited: SecurityGateway;
let jwtKey: { privateKey: CryptoKey; publicKey: CryptoKey };
let otherKey: { privateKey: CryptoKey; publicKey: CryptoKey };
let accessToken = '';
let endpoint = '';

const LIMIT = 3;

beforeAll(async () => {
  idp = await TestIssuer.start();
  [jwtKey, otherKey] = await Promise.all([generateKeyPair('ES256', { extractable: true }), generateKeyPair('ES256', { extractable: true })]);
  const clients: IntrospectionClientConfig[] = [
    { id: 'billing-api', auth: 'client_secret_basic', secret: BASIC_SECRET },
    { id: 'ledger', auth: 'client_secret_post', secret: POST_SECRET },
    { id: 'payments', auth: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(jwtKey.publicKey)), kid: 'payments-1', alg: 'ES256', use: 'sig' }] } },
  ];
  g = await startSecurityGateway({ issuers: [issuerFor(idp)], config: { introspection: { clients }, limits: { maxBodyBytes: 65536, introspectionPerAddressPerMinute: 1000 } } });
  limited = await startSecurityGateway({ issuers: [issuerFor(idp)], config: { limits: { maxBodyBytes: 65536, introspectionPerAddressPerMinute: LIMIT } } });
  endpoint = `${g.gateway.config.publicUrl}/oauth2/introspect`;
  const exchanged = await postOAuth(g.url, { subject_token: await idp.mint(MAIN) });
  expect(exchanged.status).toBe(200);
  accessToken = keysFrom(await exchanged.text()).accessToken!;
});
afterAll(async () => {
  await Promise.all([g?.close(), limited?.close()]);
  await idp?.close();
});

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** A client assertion for `payments` (RFC 7523 §3), with claims and header overridable. */
async function assertion(claims: Record<string, unknown> = {}, options: { key?: CryptoKey; header?: Record<string, unknown> } = {}): Promise<string> {
  const now = nowSeconds();
  const payload = { iss: 'payments', sub: 'payments', aud: endpoint, iat: now, exp: now + 60, jti: randomUUID(), ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete (payload as Record<string, unknown>)[name];
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: 'payments-1', ...options.header }).sign(options.key ?? jwtKey.privateKey);
}

const withAssertion = async (claims: Record<string, unknown> = {}, options: { key?: CryptoKey; header?: Record<string, unknown> } = {}) => ({
  form: { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: await assertion(claims, options) },
});

interface Credentials {
  form?: Record<string, string>;
  headers?: Record<string, string>;
}

function introspect(url: string, credentials: Credentials): Promise<Response> {
  return postRaw(`${url}/oauth2/introspect`, { raw: encodeForm({ token: accessToken, ...credentials.form }), ...(credentials.headers ? { headers: credentials.headers } : {}) });
}

describe('introspection client authentication', () => {
  it.each<[string, () => Promise<Credentials> | Credentials]>([
    ['client_secret_basic', () => ({ headers: { authorization: basic('billing-api', BASIC_SECRET) } })],
    ['client_secret_post', () => ({ form: { client_id: 'ledger', client_secret: POST_SECRET } })],
    ['private_key_jwt', () => withAssertion()],
    ['private_key_jwt with the issuer as aud', () => withAssertion({ aud: g.gateway.config.publicUrl })],
    ['private_key_jwt with a matching client_id', async () => ({ form: { ...(await withAssertion()).form, client_id: 'payments' } })],
  ])('%s authenticates and gets the introspection result', async (_name, credentials) => {
    const res = await introspect(g.url, await credentials());
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ active: true, role: 'deployer' });
  });

  it.each<[string, () => Promise<Credentials> | Credentials, boolean]>([
    ['no client authentication', () => ({}), true],
    ['basic: wrong secret', () => ({ headers: { authorization: basic('billing-api', `${BASIC_SECRET}x`) } }), true],
    ['basic: unknown client', () => ({ headers: { authorization: basic('nobody', BASIC_SECRET) } }), true],
    ['basic: empty secret', () => ({ headers: { authorization: basic('billing-api', '') } }), true],
    ['basic: not base64', () => ({ headers: { authorization: 'Basic !!!' } }), true],
    ['basic: no colon', () => ({ headers: { authorization: `Basic ${Buffer.from('billing-api').toString('base64')}` } }), true],
    ['basic: the secret of another client', () => ({ headers: { authorization: basic('billing-api', POST_SECRET) } }), true],
    ['basic: a client configured for client_secret_post', () => ({ headers: { authorization: basic('ledger', POST_SECRET) } }), true],
    ['Bearer instead of Basic', () => ({ headers: { authorization: `Bearer ${accessToken}` } }), true],
    ['post: wrong secret', () => ({ form: { client_id: 'ledger', client_secret: 'wrong-secret-0123456789' } }), true],
    ['post: unknown client', () => ({ form: { client_id: 'nobody', client_secret: POST_SECRET } }), true],
    ['post: no client_id', () => ({ form: { client_secret: POST_SECRET } }), true],
    ['post: a client configured for client_secret_basic', () => ({ form: { client_id: 'billing-api', client_secret: BASIC_SECRET } }), true],
    ['post: client_id alone', () => ({ form: { client_id: 'ledger' } }), true],
    ['jwt: wrong aud', () => withAssertion({ aud: 'https://elsewhere.example.com/oauth2/introspect' }), true],
    ['jwt: no aud', () => withAssertion({ aud: undefined }), true],
    ['jwt: expired', () => withAssertion({ iat: nowSeconds() - 600, exp: nowSeconds() - 120 }), true],
    ['jwt: exp an hour ahead (not short)', () => withAssertion({ exp: nowSeconds() + 3600 }), true],
    ['jwt: no exp', () => withAssertion({ exp: undefined }), true],
    ['jwt: no jti', () => withAssertion({ jti: undefined }), true],
    ['jwt: iss another client', () => withAssertion({ iss: 'billing-api' }), true],
    ['jwt: sub differs from iss', () => withAssertion({ sub: 'someone-else' }), true],
    ['jwt: unknown client', () => withAssertion({ iss: 'nobody', sub: 'nobody' }), true],
    ['jwt: client_id differs from iss', async () => ({ form: { ...(await withAssertion()).form, client_id: 'ledger' } }), true],
    ['jwt: signed by another key', () => withAssertion({}, { key: otherKey.privateKey }), true],
    ['jwt: unknown kid', () => withAssertion({}, { header: { kid: 'other' } }), true],
    ['jwt: HS256 keyed with the client public JWK', async () => ({ form: { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: await hmacToken({ alg: 'HS256', kid: 'payments-1' }, { iss: 'payments', sub: 'payments', aud: endpoint, exp: nowSeconds() + 60, jti: randomUUID() }, JSON.stringify(await exportJWK(jwtKey.publicKey))) } }), true],
    ['jwt: alg none', () => ({ form: { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: `${b64({ alg: 'none' })}.${b64({ iss: 'payments', sub: 'payments', aud: endpoint, exp: nowSeconds() + 60, jti: randomUUID() })}.` } }), true],
    ['jwt: wrong client_assertion_type', async () => ({ form: { ...(await withAssertion()).form, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' } }), true],
    ['jwt: client_assertion_type alone', () => ({ form: { client_assertion_type: JWT_BEARER_ASSERTION_TYPE } }), true],
    ['jwt: not a JWT', () => ({ form: { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: 'not-a-jwt' } }), true],
    ['jwt and client_secret in one request', async () => ({ form: { ...(await withAssertion()).form, client_secret: POST_SECRET } }), false],
  ])('%s → refused', async (_name, credentials, isClientError) => {
    const res = await introspect(g.url, await credentials());
    const body = await res.text();
    if (isClientError) {
      expectProtocolError('oauth', res, body, [401, 'invalid_client']);
      // RFC 6749 §5.2: a 401 names the scheme the client can use; this gateway has a Basic client.
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="stsgate"/);
    } else {
      // RFC 6749 §2.3: more than one method in one request.
      expectProtocolError('oauth', res, body, [400, 'invalid_request']);
    }
    expect(body).not.toContain('active');
  });

  it('refuses a replayed assertion, also within its lifetime', async () => {
    const credentials = await withAssertion();
    expect((await introspect(g.url, credentials)).status).toBe(200);
    const replay = await introspect(g.url, credentials);
    expectProtocolError('oauth', replay, await replay.text(), [401, 'invalid_client']);
  });

  it('never writes a secret or an assertion to the log', async () => {
    const credentials = await withAssertion();
    await introspect(g.url, credentials);
    await introspect(g.url, { form: { client_id: 'ledger', client_secret: `${POST_SECRET}-wrong` } });
    const log = g.gateway.logs().map((line) => JSON.stringify(line)).join('\n');
    for (const secret of [BASIC_SECRET, POST_SECRET, credentials.form!.client_assertion!.split('.')[2]!]) expect(log).not.toContain(secret);
  });

  it('advertises the configured methods in discovery (RFC 8414 §2)', async () => {
    const doc = (await (await fetch(`${g.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(doc.introspection_endpoint_auth_methods_supported).toEqual(['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
    expect(doc.introspection_endpoint_auth_signing_alg_values_supported).toContain('ES256');
    expect(doc.introspection_endpoint_auth_signing_alg_values_supported).not.toContain('HS256');
    const open = (await (await fetch(`${limited.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(open.introspection_endpoint_auth_methods_supported).toEqual(['none']);
  });
});

describe('introspection rate limit', () => {
  it('answers 429 in the OAuth format with Retry-After once an address is over the limit', async () => {
    for (let i = 0; i < LIMIT; i++) expect((await introspect(limited.url, {})).status).toBe(200);
    const over = await introspect(limited.url, {});
    const body = await over.text();
    expectProtocolError('oauth', over, body, [429, 'slow_down']);
    expect(over.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(body).not.toContain('active');
  });
});
