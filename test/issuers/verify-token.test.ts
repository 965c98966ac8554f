/**
 * verifyWebIdentityToken against a loopback issuer: one row per token, each with the exact outcome.
 * Token-side cases; key-source and IdP-failure cases live in key-sources.test.ts.
 */

import { generateKeyPairSync } from 'node:crypto';
import { CompactSign, exportSPKI, generateKeyPair, exportJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { IssuerConfig } from '../../src/config/types.js';
import type { ErrorCode } from '../../src/errors/gateway-error.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { TrustedIssuers } from '../../src/issuers/index.js';
import { TEST_AUDIENCE, TEST_SUBJECT, TestIssuer } from '../support/test-issuer.js';

const NOW = Math.floor(Date.now() / 1000);
const SKEW = 60;

let idp: TestIssuer;
let other: TestIssuer;
let attacker: TestIssuer;
const verifiers = new Map<string, TrustedIssuers>();

function config(overrides: Partial<IssuerConfig> = {}): IssuerConfig {
  return {
    id: 'ci',
    issuer: idp.url,
    audiences: [TEST_AUDIENCE, 'second.example.com'],
    keys: { kind: 'discovery' },
    algorithms: ['RS256', 'ES256'],
    clockSkewSeconds: SKEW,
    ...overrides,
  };
}

/** One verifier per distinct override set, sharing its caches across rows. */
function verifierFor(overrides: Partial<IssuerConfig> = {}): TrustedIssuers {
  const key = JSON.stringify(overrides);
  let verifier = verifiers.get(key);
  if (!verifier) {
    verifier = new TrustedIssuers(
      [config(overrides), { ...config(), id: 'other', issuer: other.url }],
      { allowInsecureHttp: true, now: () => NOW * 1000, fetchTimeoutMs: 1000, cooldownMs: 60_000 },
    );
    verifiers.set(key, verifier);
  }
  return verifier;
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A token with a hand-written header and payload and an arbitrary signature segment. */
function handmade(header: unknown, payload: unknown, signature = 'c2lnbmF0dXJl'): string {
  return `${b64(header)}.${b64(payload)}.${signature}`;
}

const claims = (extra: Record<string, unknown> = {}) => ({ iss: idp.url, sub: TEST_SUBJECT, aud: TEST_AUDIENCE, iat: NOW, exp: NOW + 300, ...extra });

const mint = (extra: Record<string, unknown> = {}, options: Parameters<TestIssuer['mint']>[1] = {}) =>
  idp.mint(extra, { issuedAt: NOW, ...options });

interface Row {
  name: string;
  token: () => Promise<string> | string;
  expected: 'ok' | ErrorCode;
  /** Overrides for the `ci` issuer's configuration. */
  issuer?: Partial<IssuerConfig>;
  /** Checked on success. */
  audience?: string;
  /** On refusal, a fragment of the private debug detail: pins the reason, not just the code. */
  because?: string;
}

const rows: Row[] = [
  // Valid tokens.
  { name: 'RS256 via discovery', token: () => mint(), expected: 'ok', audience: TEST_AUDIENCE },
  { name: 'ES256 via discovery', token: () => mint({}, { alg: 'ES256' }), expected: 'ok' },
  { name: 'aud array containing a configured audience', token: () => mint({ aud: ['x.example.com', 'second.example.com'] }), expected: 'ok', audience: 'second.example.com' },
  { name: 'aud array with two configured audiences: the first configured wins', token: () => mint({ aud: ['second.example.com', TEST_AUDIENCE] }), expected: 'ok', audience: TEST_AUDIENCE },

  // Audience (RFC 7519 §4.1.3).
  { name: 'aud wrong string', token: () => mint({ aud: 'sts.example.com.evil.io' }), expected: 'InvalidIdentityToken' },
  { name: 'aud array without a configured audience', token: () => mint({ aud: ['a.example.com', 'b.example.com'] }), expected: 'InvalidIdentityToken' },
  { name: 'aud missing', token: () => mint({ aud: undefined }), expected: 'InvalidIdentityToken' },
  { name: 'aud empty array', token: () => mint({ aud: [] }), expected: 'InvalidIdentityToken' },

  // Issuer near-misses: compared exactly, never normalized.
  { name: 'iss with a trailing slash', token: () => mint({ iss: `${idp.url}/` }), expected: 'InvalidIdentityToken', because: 'unknown iss' },
  { name: 'iss in upper case', token: () => mint({ iss: idp.url.toUpperCase() }), expected: 'InvalidIdentityToken', because: 'unknown iss' },
  { name: 'iss https instead of http', token: () => mint({ iss: idp.url.replace('http:', 'https:') }), expected: 'InvalidIdentityToken', because: 'unknown iss' },
  { name: 'iss missing', token: () => mint({ iss: undefined }), expected: 'InvalidIdentityToken' },
  { name: 'iss not a string', token: () => mint({ iss: 42 }), expected: 'InvalidIdentityToken' },
  { name: 'iss unknown', token: () => mint({ iss: 'https://token.actions.githubusercontent.com' }), expected: 'InvalidIdentityToken' },

  // Expiry (RFC 7519 §4.1.4), with the configured skew.
  { name: 'exp past, beyond skew', token: () => mint({ exp: NOW - SKEW - 1 }, { issuedAt: NOW - 600 }), expected: 'ExpiredTokenException' },
  { name: 'exp exactly now minus skew (edge: expired)', token: () => mint({ exp: NOW - SKEW }, { issuedAt: NOW - 600 }), expected: 'ExpiredTokenException' },
  { name: 'exp one second inside skew', token: () => mint({ exp: NOW - SKEW + 1 }, { issuedAt: NOW - 600 }), expected: 'ok' },
  { name: 'exp missing', token: () => mint({ exp: undefined }), expected: 'InvalidIdentityToken' },
  { name: 'exp a string', token: () => mint({ exp: String(NOW + 300) }), expected: 'InvalidIdentityToken' },

  // Not before (RFC 7519 §4.1.5) and issued at (§4.1.6).
  { name: 'nbf in the future beyond skew', token: () => mint({ nbf: NOW + SKEW + 1 }), expected: 'InvalidIdentityToken' },
  { name: 'nbf in the future within skew', token: () => mint({ nbf: NOW + SKEW }), expected: 'ok' },
  { name: 'iat in the future beyond skew', token: () => mint({}, { issuedAt: NOW + SKEW + 1 }), expected: 'InvalidIdentityToken', because: 'iat in the future' },
  { name: 'iat in the future within skew', token: () => mint({}, { issuedAt: NOW + SKEW }), expected: 'ok' },
  { name: 'iat missing', token: () => mint({ iat: undefined }), expected: 'InvalidIdentityToken' },
  { name: 'iat a string', token: () => mint({ iat: String(NOW) }), expected: 'InvalidIdentityToken' },

  // Max token age.
  { name: 'older than max_token_age', token: () => mint({ exp: NOW + 3600 }, { issuedAt: NOW - 601 - SKEW }), issuer: { maxTokenAgeSeconds: 600 }, expected: 'ExpiredTokenException' },
  { name: 'younger than max_token_age', token: () => mint({ exp: NOW + 3600 }, { issuedAt: NOW - 500 }), issuer: { maxTokenAgeSeconds: 600 }, expected: 'ok' },
  { name: 'iat in the future with max_token_age', token: () => mint({}, { issuedAt: NOW + SKEW + 5 }), issuer: { maxTokenAgeSeconds: 600 }, expected: 'InvalidIdentityToken' },

  // Subject.
  { name: 'sub missing', token: () => mint({ sub: undefined }), expected: 'InvalidIdentityToken' },
  { name: 'sub empty', token: () => mint({ sub: '' }), expected: 'InvalidIdentityToken' },
  { name: 'sub a number', token: () => mint({ sub: 12345 }), expected: 'InvalidIdentityToken' },

  // Algorithms (RFC 8725 §2.1, §3.1).
  ...['none', 'None', 'NONE', 'nOnE'].flatMap((alg): Row[] => [
    { name: `alg ${alg}, empty signature`, token: () => `${b64({ alg, typ: 'JWT' })}.${b64(claims())}.`, expected: 'InvalidIdentityToken', because: 'empty or not base64url' },
    { name: `alg ${alg}, with a signature segment`, token: () => handmade({ alg, typ: 'JWT' }, claims()), expected: 'InvalidIdentityToken', because: 'ERR_JOSE_ALG_NOT_ALLOWED' },
  ]),
  {
    name: 'HS256 signed with the public key (SPKI PEM) as the secret',
    token: async () => hs256(await exportSPKI(idp.key().publicKey), { kid: 'rs-1' }),
    expected: 'InvalidIdentityToken',
    because: 'ERR_JOSE_ALG_NOT_ALLOWED',
  },
  {
    name: 'HS256 signed with the public JWK JSON as the secret',
    token: async () => hs256(JSON.stringify(idp.key().publicJwk), {}),
    expected: 'InvalidIdentityToken',
    because: 'ERR_JOSE_ALG_NOT_ALLOWED',
  },
  { name: 'ES256 token, issuer allows only RS256', token: () => mint({}, { alg: 'ES256' }), issuer: { algorithms: ['RS256'] }, expected: 'InvalidIdentityToken', because: 'ERR_JOSE_ALG_NOT_ALLOWED' },
  { name: 'header alg ES256 over an RS256 signature and the RSA kid', token: async () => reheader(await mint(), { alg: 'ES256' }), expected: 'InvalidIdentityToken', because: 'ERR_JWKS_NO_MATCHING_KEY' },
  { name: 'header alg PS256 over an RS256 signature (key published for RS256)', token: async () => reheader(await mint(), { alg: 'PS256' }), issuer: { algorithms: ['RS256', 'PS256'] }, expected: 'InvalidIdentityToken', because: 'ERR_JWKS_NO_MATCHING_KEY' },
  { name: 'header alg missing', token: () => handmade({ typ: 'JWT', kid: 'rs-1' }, claims()), expected: 'InvalidIdentityToken', because: 'alg missing' },
  { name: 'payload tampered after signing', token: async () => tamper(await mint(), { sub: 'repo:acme/app:ref:refs/heads/evil' }), expected: 'InvalidIdentityToken', because: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' },
  { name: 'signature of another key with the same kid', token: async () => attackerSigned({ kid: 'rs-1' }), expected: 'InvalidIdentityToken', because: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' },

  // Header parameters that carry or point at keys are never used (RFC 8725 §3.10).
  { name: 'attacker jwk header, signed by the attacker key, no kid', token: async () => attackerSigned({ jwk: 'attacker' }), expected: 'InvalidIdentityToken', because: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' },
  { name: 'attacker jwk header with the real kid', token: async () => attackerSigned({ jwk: 'attacker', kid: 'rs-1' }), expected: 'InvalidIdentityToken', because: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' },
  { name: 'jku header pointing at the attacker JWKS', token: async () => attacker.mint({ iss: idp.url }, { header: { jku: attacker.jwksUri } }), expected: 'InvalidIdentityToken', because: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' },
  { name: 'x5u header pointing at the attacker JWKS', token: async () => attacker.mint({ iss: idp.url }, { header: { x5u: attacker.jwksUri } }), expected: 'InvalidIdentityToken', because: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' },

  // Critical header extensions (RFC 7515 §4.1.11).
  { name: 'crit [exp]', token: async () => reheader(await mint(), { crit: ['exp'], exp: NOW + 300 }), expected: 'InvalidIdentityToken', because: 'crit present' },
  { name: 'crit [b64] with b64 true', token: () => mint({}, { header: { crit: ['b64'], b64: true } }), expected: 'InvalidIdentityToken', because: 'crit present' },

  // Shape.
  { name: 'JWE-shaped five-part token', token: () => 'eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn', expected: 'InvalidIdentityToken', because: '5 segments' },
  { name: 'JWS JSON serialization', token: async () => jsonSerialization(await mint()), expected: 'InvalidIdentityToken', because: '1 segments' },
  { name: 'two segments', token: async () => (await mint()).split('.').slice(0, 2).join('.'), expected: 'InvalidIdentityToken' },
  { name: 'four segments', token: async () => `${await mint()}.AAAA`, expected: 'InvalidIdentityToken' },
  { name: 'base64 padding in a segment', token: async () => (await mint()).replace('.', '=.'), expected: 'InvalidIdentityToken' },
  { name: 'garbage', token: () => 'not a jwt', expected: 'InvalidIdentityToken' },
  { name: 'dots only', token: () => '..', expected: 'InvalidIdentityToken' },
  { name: 'non-base64url characters', token: () => '%%%.%%%.%%%', expected: 'InvalidIdentityToken' },
  { name: 'segments that are not JSON', token: () => 'YWJj.ZGVm.Z2hp', expected: 'InvalidIdentityToken' },
  { name: 'header a JSON array', token: () => handmade(['RS256'], claims()), expected: 'InvalidIdentityToken' },
  { name: 'header JSON null', token: () => handmade(null, claims()), expected: 'InvalidIdentityToken' },
  { name: 'payload a JSON string', token: () => handmade({ alg: 'RS256', kid: 'rs-1' }, JSON.stringify('claims')), expected: 'InvalidIdentityToken' },
  { name: 'payload invalid UTF-8', token: () => `${b64({ alg: 'RS256', kid: 'rs-1' })}.${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}.c2ln`, expected: 'InvalidIdentityToken' },
  { name: 'empty string', token: () => '', expected: 'InvalidIdentityToken' },
  { name: 'not a string (number)', token: () => 42 as unknown as string, expected: 'InvalidIdentityToken' },
  { name: 'not a string (undefined)', token: () => undefined as unknown as string, expected: 'InvalidIdentityToken' },
  { name: 'longer than 20000 characters (validly signed)', token: () => mint({ padding: 'x'.repeat(20_000) }), expected: 'InvalidIdentityToken' },
  { name: 'just under the length limit (validly signed)', token: () => mint({ padding: 'x'.repeat(14_000) }), expected: 'ok' },

  // Two issuers with different keys.
  { name: 'token from the other issuer, with its own iss', token: () => other.mint({}, { issuedAt: NOW }), expected: 'ok' },
  { name: 'token signed by the other issuer, claiming this iss', token: () => other.mint({ iss: idp.url }, { issuedAt: NOW }), expected: 'InvalidIdentityToken', because: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' },
  { name: 'token signed by this issuer, claiming the other iss', token: () => idp.mint({ iss: other.url }, { issuedAt: NOW }), expected: 'InvalidIdentityToken', because: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' },
];

async function hs256(secret: string, header: Record<string, unknown>): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims())))
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...header })
    .sign(new TextEncoder().encode(secret));
}

async function attackerSigned(options: { jwk?: 'attacker'; kid?: string }): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const header: Record<string, unknown> = { alg: 'RS256', typ: 'JWT' };
  if (options.kid) header['kid'] = options.kid;
  if (options.jwk) header['jwk'] = await exportJWK(publicKey);
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims())))
    .setProtectedHeader(header as { alg: string })
    .sign(privateKey);
}

function tamper(token: string, extra: Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  return `${header}.${b64({ ...decoded, ...extra })}.${signature}`;
}

/** The token with its protected header changed and the old signature kept. */
function reheader(token: string, changes: Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const decoded = JSON.parse(Buffer.from(header, 'base64url').toString()) as Record<string, unknown>;
  return `${b64({ ...decoded, ...changes })}.${payload}.${signature}`;
}

function jsonSerialization(token: string): string {
  const [protectedHeader, payload, signature] = token.split('.');
  return JSON.stringify({ protected: protectedHeader, payload, signature });
}

beforeAll(async () => {
  [idp, other, attacker] = await Promise.all([TestIssuer.start(), TestIssuer.start(), TestIssuer.start()]);
});

afterAll(async () => {
  await Promise.all([idp?.close(), other?.close(), attacker?.close()]);
});

describe('verifyWebIdentityToken', () => {
  it.each(rows)('$name → $expected', async (row) => {
    const token = await row.token();
    const verifier = verifierFor(row.issuer);
    const outcome = await verifier.verifyWebIdentityToken(token).then(
      (result) => ({ ok: true as const, result }),
      (error: unknown) => ({ ok: false as const, error }),
    );

    if (row.expected === 'ok') {
      if (!outcome.ok) throw outcome.error;
      const { result } = outcome;
      const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
      expect(result.identity.subject).toBe(payload['sub']);
      expect(result.identity.source).toBe(payload['iss'] === other.url ? 'other' : 'ci');
      expect(result.identity.claims).toEqual(payload);
      expect(result.issuerId).toBe(result.identity.source);
      expect(result.expiresAt).toBe(payload['exp']);
      expect(result.issuedAt).toBe(payload['iat']);
      if (row.audience) expect(result.audience).toBe(row.audience);
      // A repeat of the token is answered alike (test/issuers/repeat-token.test.ts: what it checks again).
      expect(await verifier.verifyWebIdentityToken(token)).toEqual(result);
      return;
    }

    expect(outcome.ok, 'expected a refusal').toBe(false);
    const error = (outcome as { error: unknown }).error;
    expect(error).toBeInstanceOf(GatewayError);
    const gatewayError = error as GatewayError;
    expect(gatewayError.code).toBe(row.expected);
    if (row.because) expect(gatewayError.debug).toContain(row.because);
    expect(gatewayError.expose).toBe(true);
    // Refused again the same way: nothing about a refused token is remembered.
    await expect(verifier.verifyWebIdentityToken(token)).rejects.toMatchObject({ code: gatewayError.code, message: gatewayError.message });
    // The token never leaks into what is shown or logged.
    if (typeof token === 'string' && token.length > 8) {
      for (const part of token.split('.').filter((segment) => segment.length > 8)) {
        expect(gatewayError.message).not.toContain(part);
        expect(gatewayError.debug ?? '').not.toContain(part);
      }
    }
  });

  it('never fetches keys from a jku or x5u header', async () => {
    attacker.resetFetches();
    const verifier = verifierFor();
    for (const header of [{ jku: attacker.jwksUri }, { x5u: attacker.jwksUri }, { jku: attacker.discoveryUrl, kid: 'rs-1' }]) {
      const token = await attacker.mint({ iss: idp.url }, { header });
      await expect(verifier.verifyWebIdentityToken(token)).rejects.toMatchObject({ code: 'InvalidIdentityToken' });
    }
    expect(attacker.fetches).toEqual({ discovery: 0, jwks: 0, other: 0 });
  });

  it('names an unknown issuer in the message, quoting it safely', async () => {
    const token = await mint({ iss: 'https://evil.example/\n<script>' });
    await expect(verifierFor().verifyWebIdentityToken(token)).rejects.toMatchObject({
      code: 'InvalidIdentityToken',
      message: 'No OpenIDConnect provider found in your account for https://evil.example/?<script>.',
    });
  });

  it('words expiry like AWS', async () => {
    const token = await mint({ exp: NOW - 3600 }, { issuedAt: NOW - 7200 });
    const error = await verifierFor().verifyWebIdentityToken(token).catch((e: unknown) => e as GatewayError);
    expect(error).toMatchObject({ code: 'ExpiredTokenException', status: 400 });
    expect((error as GatewayError).message).toMatch(/^Token expired: current date\/time \S+Z must be before the expiration date\/time \S+Z\.$/);
    expect((error as GatewayError).debug).toContain('ERR_JWT_EXPIRED');
  });

  it('says which audience was wrong without echoing it', async () => {
    const token = await mint({ aud: 'wrong.example.com' });
    await expect(verifierFor().verifyWebIdentityToken(token)).rejects.toMatchObject({ message: 'Incorrect token audience.' });
  });
});

describe('TrustedIssuers configuration', () => {
  const base = (): IssuerConfig => config();
  it.each([
    { name: 'alg none', change: { algorithms: ['none'] }, message: /none is not allowed/ },
    { name: 'HS256', change: { algorithms: ['RS256', 'HS256'] }, message: /HS256 is not allowed/ },
    { name: 'no algorithms', change: { algorithms: [] }, message: /at least one algorithm/ },
    { name: 'no audiences', change: { audiences: [] }, message: /audience/ },
    { name: 'plain http discovery without allowInsecureHttp', change: {}, insecure: false, message: /plain http/ },
    { name: 'plain http jwks_uri without allowInsecureHttp', change: { issuer: 'https://idp.example.com', keys: { kind: 'jwks_uri', uri: 'http://idp.example.com/jwks' } }, insecure: false, message: /jwks_uri: uses plain http/ },
    { name: 'inline private key', change: { keys: { kind: 'inline', jwks: { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', d: 'AQAB' }] } } }, message: /keys\[0\]: a private key \(it has "d"\)/ },
    { name: 'inline oct key', change: { keys: { kind: 'inline', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } } }, message: /keys\[0\]: a symmetric \(kty "oct"\) key/ },
    { name: 'inline 1024-bit RSA key', change: { keys: { kind: 'inline', jwks: { keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }), kid: 'weak' }] } } }, message: /keys\[0\] \(kid "weak"\): an RSA key of 1024 bits; at least 2048 are required/ },
    { name: 'inline encryption key', change: { keys: { kind: 'inline', jwks: { keys: [{ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), use: 'enc' }] } } }, message: /keys\[0\]: "use" is "enc", not "sig"/ },
    { name: 'empty inline JWKS', change: { keys: { kind: 'inline', jwks: { keys: [] } } }, message: /at least one key/ },
  ] as { name: string; change: Partial<IssuerConfig>; insecure?: boolean; message: RegExp }[])('refuses $name', ({ change, insecure, message }) => {
    expect(() => new TrustedIssuers([{ ...base(), ...change }], { allowInsecureHttp: insecure ?? true })).toThrow(message);
  });

  it('refuses two entries with the same issuer, and reports every problem at once', () => {
    const build = () =>
      new TrustedIssuers([base(), { ...base(), id: 'again' }, { ...base(), id: 'bad', issuer: 'https://x.example', algorithms: ['HS256' as 'RS256'] }], { allowInsecureHttp: true });
    expect(build).toThrow(/issuers\.again: issuer .* is already configured[\s\S]*issuers\.bad: algorithms: HS256/);
  });

  it('accepts a non-URL issuer with inline keys (legacy Kubernetes "kubernetes/serviceaccount")', async () => {
    const verifier = new TrustedIssuers(
      [{ ...base(), id: 'k8s-legacy', issuer: 'kubernetes/serviceaccount', keys: { kind: 'inline', jwks: idp.jwks() as { keys: Record<string, unknown>[] } } }],
      { allowInsecureHttp: false, now: () => NOW * 1000 },
    );
    const token = await mint({ iss: 'kubernetes/serviceaccount', sub: 'system:serviceaccount:default:app' });
    await expect(verifier.verifyWebIdentityToken(token)).resolves.toMatchObject({ issuerId: 'k8s-legacy', identity: { subject: 'system:serviceaccount:default:app' } });
  });
});
