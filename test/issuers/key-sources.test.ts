/**
 * Where keys come from and what happens when the identity provider misbehaves: discovery, jwks_uri and
 * inline keys; caching, cooldown-bounded refetches and key rotation; every IdP failure ends as
 * IDPCommunicationError within the fetch timeout, never as a crash or a grant.
 */

import { generateKeyPairSync, sign } from 'node:crypto';

import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { IssuerConfig } from '../../src/config/types.js';
import { GatewayError, type ErrorCode } from '../../src/errors/gateway-error.js';
import { discoveryUrlFor, TrustedIssuers, type TrustedIssuersOptions } from '../../src/issuers/index.js';
import { remoteUrlProblem } from '../../src/issuers/key-sources.js';
import { TEST_AUDIENCE, TestIssuer, type TestIssuerFailure } from '../support/test-issuer.js';

const FETCH_TIMEOUT_MS = 300;

/** The key caches' clock (cache age, unknown-kid cooldown, failure backoff): tests move it instead of waiting. */
let clock = Date.now();
function advance(ms: number): void {
  clock += ms;
}

type KeysKind = 'discovery' | 'jwks_uri' | 'inline';

function issuerConfig(idp: TestIssuer, keys: KeysKind, overrides: Partial<IssuerConfig> = {}): IssuerConfig {
  return {
    id: 'idp',
    issuer: idp.url,
    audiences: [TEST_AUDIENCE],
    keys:
      keys === 'discovery'
        ? { kind: 'discovery' }
        : keys === 'jwks_uri'
          ? { kind: 'jwks_uri', uri: idp.jwksUri }
          : { kind: 'inline', jwks: idp.jwks() as { keys: Record<string, unknown>[] } },
    algorithms: ['RS256', 'ES256'],
    clockSkewSeconds: 30,
    ...overrides,
  };
}

function verifierFor(idp: TestIssuer, keys: KeysKind, options: Partial<TrustedIssuersOptions> = {}, overrides: Partial<IssuerConfig> = {}): TrustedIssuers {
  return new TrustedIssuers([issuerConfig(idp, keys, overrides)], {
    allowInsecureHttp: true,
    fetchTimeoutMs: FETCH_TIMEOUT_MS,
    cooldownMs: 60_000,
    maxResponseBytes: 64 * 1024,
    keysNow: () => clock,
    ...options,
  });
}

async function codeOf(promise: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return (err as GatewayError).code;
  }
}

let idp: TestIssuer;

beforeAll(async () => {
  idp = await TestIssuer.start();
});

afterEach(() => {
  idp.heal();
  idp.resetFetches();
});

afterAll(async () => {
  await idp?.close();
});

describe('key sources', () => {
  it.each([
    { keys: 'discovery', alg: 'RS256', fetches: { discovery: 1, jwks: 1, other: 0 } },
    { keys: 'discovery', alg: 'ES256', fetches: { discovery: 1, jwks: 1, other: 0 } },
    { keys: 'jwks_uri', alg: 'RS256', fetches: { discovery: 0, jwks: 1, other: 0 } },
    { keys: 'jwks_uri', alg: 'ES256', fetches: { discovery: 0, jwks: 1, other: 0 } },
    { keys: 'inline', alg: 'RS256', fetches: { discovery: 0, jwks: 0, other: 0 } },
    { keys: 'inline', alg: 'ES256', fetches: { discovery: 0, jwks: 0, other: 0 } },
  ] as const)('$alg via $keys keys', async ({ keys, alg, fetches }) => {
    const verifier = verifierFor(idp, keys);
    const result = await verifier.verifyWebIdentityToken(await idp.mint({}, { alg }));
    expect(result).toMatchObject({ issuerId: 'idp', audience: TEST_AUDIENCE, identity: { source: 'idp' } });
    expect(idp.fetches).toEqual(fetches);
  });

  it('shares one discovery and one JWKS fetch among concurrent first verifications', async () => {
    const verifier = verifierFor(idp, 'discovery');
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => idp.mint({ sub: `s${i}` }, { alg: i % 2 ? 'ES256' : 'RS256' })));
    const results = await Promise.all(tokens.map((token) => verifier.verifyWebIdentityToken(token)));
    expect(results.map((r) => r.identity.subject)).toEqual(tokens.map((_, i) => `s${i}`));
    expect(idp.fetches).toEqual({ discovery: 1, jwks: 1, other: 0 });
  });

  it('caches the discovery document and the JWKS across verifications', async () => {
    const verifier = verifierFor(idp, 'discovery');
    for (let i = 0; i < 5; i++) await verifier.verifyWebIdentityToken(await idp.mint());
    expect(idp.fetches).toEqual({ discovery: 1, jwks: 1, other: 0 });
  });

  it('finds the discovery document under an issuer with a path', async () => {
    const tenant = await TestIssuer.start({ issuerPath: '/tenants/acme', jwksPath: '/keys/acme.json' });
    try {
      const verifier = verifierFor(tenant, 'discovery');
      await expect(verifier.verifyWebIdentityToken(await tenant.mint())).resolves.toMatchObject({ issuerId: 'idp' });
      expect(tenant.fetches).toEqual({ discovery: 1, jwks: 1, other: 0 });
    } finally {
      await tenant.close();
    }
  });

  it.each([
    ['https://issuer.example', 'https://issuer.example/.well-known/openid-configuration'],
    ['https://issuer.example/', 'https://issuer.example/.well-known/openid-configuration'],
    ['https://issuer.example/tenant', 'https://issuer.example/tenant/.well-known/openid-configuration'],
    ['https://issuer.example/tenant/', 'https://issuer.example/tenant/.well-known/openid-configuration'],
  ])('discovery URL of %s is %s (OpenID Connect Discovery §4.1)', (issuer, url) => {
    expect(discoveryUrlFor(issuer)).toBe(url);
  });

  // Applies to configured URLs and to the jwks_uri a discovery document names.
  it.each([
    { url: 'https://idp.example/jwks', insecure: false, problem: undefined },
    { url: 'http://idp.example/jwks', insecure: false, problem: 'uses plain http (allowed only with dev.allow_insecure_http)' },
    { url: 'http://127.0.0.1:8080/jwks', insecure: true, problem: undefined },
    { url: 'file:///etc/passwd', insecure: true, problem: 'uses file, not https' },
    { url: 'ftp://idp.example/jwks', insecure: true, problem: 'uses ftp, not https' },
    { url: '/relative/jwks', insecure: true, problem: 'is not an absolute URL' },
  ])('remote URL $url (insecure allowed: $insecure) → $problem', ({ url, insecure, problem }) => {
    expect(remoteUrlProblem(url, insecure)).toBe(problem);
  });

  it('tries each candidate key for a token without kid when several keys could verify it', async () => {
    const rotating = await TestIssuer.start();
    try {
      await rotating.rotate('RS256');
      const verifier = verifierFor(rotating, 'jwks_uri');
      for (const kid of ['rs-1', 'rs-2']) {
        const token = await rotating.mint({}, { kid, header: { kid: undefined } });
        await expect(verifier.verifyWebIdentityToken(token)).resolves.toMatchObject({ issuerId: 'idp' });
      }
      const foreign = await idp.mint({ iss: rotating.url }, { header: { kid: undefined } });
      await expect(verifier.verifyWebIdentityToken(foreign)).rejects.toMatchObject({ code: 'InvalidIdentityToken', debug: expect.stringContaining('SIGNATURE_VERIFICATION_FAILED') });
    } finally {
      await rotating.close();
    }
  });
});

describe('identity provider failures', () => {
  interface FailureRow {
    name: string;
    keys: 'discovery' | 'jwks_uri';
    endpoint: 'discovery' | 'jwks';
    failure: (idp: TestIssuer) => TestIssuerFailure | Promise<TestIssuerFailure>;
    /** Fragment of the private debug detail. */
    because: string;
  }

  const privateJwks = async () => {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    return JSON.stringify({ keys: [{ ...(await exportJWK(privateKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' }] });
  };
  const weakJwks = () => {
    // jose refuses to generate a key this small, so node:crypto makes it.
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    return JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'rs-1', alg: 'RS256', use: 'sig' }] });
  };

  const rows: FailureRow[] = [
    ...(['discovery', 'jwks_uri'] as const).flatMap((keys): FailureRow[] => [
      { name: `JWKS HTTP 500 (${keys})`, keys, endpoint: 'jwks', failure: () => ({ kind: 'status', status: 500 }), because: 'HTTP 500' },
      { name: `JWKS HTTP 404 (${keys})`, keys, endpoint: 'jwks', failure: () => ({ kind: 'status', status: 404 }), because: 'HTTP 404' },
      { name: `JWKS redirect, not followed (${keys})`, keys, endpoint: 'jwks', failure: () => ({ kind: 'status', status: 302 }), because: 'HTTP 302' },
      { name: `JWKS hangs (${keys})`, keys, endpoint: 'jwks', failure: () => ({ kind: 'hang' }), because: 'ERR_JWKS_TIMEOUT' },
      { name: `JWKS slower than the timeout (${keys})`, keys, endpoint: 'jwks', failure: () => ({ kind: 'slow', delayMs: FETCH_TIMEOUT_MS * 4 }), because: 'ERR_JWKS_TIMEOUT' },
      { name: `JWKS not JSON (${keys})`, keys, endpoint: 'jwks', failure: () => ({ kind: 'non-json' }), because: 'ERR_JOSE_GENERIC' },
      { name: `JWKS huge (${keys})`, keys, endpoint: 'jwks', failure: () => ({ kind: 'huge' }), because: 'byte limit' },
      { name: `JWKS JSON that is not a key set (${keys})`, keys, endpoint: 'jwks', failure: () => ({ kind: 'body', body: '{"keys":"none"}' }), because: 'ERR_JWKS_INVALID' },
    ]),
    { name: 'JWKS serving a private key', keys: 'jwks_uri', endpoint: 'jwks', failure: async () => ({ kind: 'body', body: await privateJwks() }), because: 'the key the token names is ignored: a private key' },
    { name: 'JWKS serving a 1024-bit RSA key', keys: 'jwks_uri', endpoint: 'jwks', failure: () => ({ kind: 'body', body: weakJwks() }), because: 'the key the token names is ignored: an RSA key of 1024 bits' },
    { name: 'discovery HTTP 500', keys: 'discovery', endpoint: 'discovery', failure: () => ({ kind: 'status', status: 500 }), because: 'HTTP 500' },
    { name: 'discovery hangs', keys: 'discovery', endpoint: 'discovery', failure: () => ({ kind: 'hang' }), because: 'timed out' },
    { name: 'discovery slower than the timeout', keys: 'discovery', endpoint: 'discovery', failure: () => ({ kind: 'slow', delayMs: FETCH_TIMEOUT_MS * 4 }), because: 'timed out' },
    { name: 'discovery not JSON', keys: 'discovery', endpoint: 'discovery', failure: () => ({ kind: 'non-json' }), because: 'did not return JSON' },
    { name: 'discovery a JSON array', keys: 'discovery', endpoint: 'discovery', failure: () => ({ kind: 'body', body: '[]' }), because: 'did not return a JSON object' },
    { name: 'discovery huge', keys: 'discovery', endpoint: 'discovery', failure: () => ({ kind: 'huge' }), because: 'byte limit' },
    { name: 'discovery issuer with a trailing slash', keys: 'discovery', endpoint: 'discovery', failure: () => ({ kind: 'wrong-issuer' }), because: 'not the configured' },
    { name: 'discovery naming another issuer', keys: 'discovery', endpoint: 'discovery', failure: () => ({ kind: 'wrong-issuer', issuer: 'https://accounts.google.com' }), because: 'not the configured' },
    { name: 'discovery without jwks_uri', keys: 'discovery', endpoint: 'discovery', failure: (i) => ({ kind: 'body', body: JSON.stringify({ issuer: i.url }) }), because: 'no jwks_uri' },
    { name: 'discovery with a file: jwks_uri', keys: 'discovery', endpoint: 'discovery', failure: (i) => ({ kind: 'body', body: JSON.stringify({ issuer: i.url, jwks_uri: 'file:///etc/passwd' }) }), because: 'uses file' },
  ];

  it.each(rows)('$name → IDPCommunicationError', async (row) => {
    idp.fail(row.endpoint, await row.failure(idp));
    const verifier = verifierFor(idp, row.keys);
    const token = await idp.mint();
    const started = performance.now();
    const error = await verifier.verifyWebIdentityToken(token).then(
      () => undefined,
      (err: unknown) => err,
    );
    const elapsed = performance.now() - started;

    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ code: 'IDPCommunicationError', status: 400, expose: true });
    expect((error as GatewayError).debug).toContain(row.because);
    expect((error as GatewayError).message).toBe(`Couldn't retrieve verification key from your identity provider (${idp.url}).`);
    // Fails within the fetch timeout (plus scheduling slack), not after the IdP gives up.
    expect(elapsed).toBeLessThan(FETCH_TIMEOUT_MS + 700);
  });

  it('answers IDPCommunicationError when the IdP refuses connections', async () => {
    const gone = await TestIssuer.start();
    const token = await gone.mint();
    const verifiers = [verifierFor(gone, 'discovery'), verifierFor(gone, 'jwks_uri')];
    await gone.close();
    for (const verifier of verifiers) {
      await expect(verifier.verifyWebIdentityToken(token)).rejects.toMatchObject({ code: 'IDPCommunicationError' });
    }
  });

  it.each(['discovery', 'jwks_uri'] as const)('recovers once the IdP is back, after the failure backoff (%s)', async (keys) => {
    const verifier = verifierFor(idp, keys, { fetchFailureBackoffMs: 200 });
    idp.fail('both', { kind: 'status', status: 503 });
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('IDPCommunicationError');
    idp.heal();
    const fetches = idp.fetches.discovery + idp.fetches.jwks;
    // Inside the backoff the IdP is not asked again, even though it is back.
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('IDPCommunicationError');
    expect(idp.fetches.discovery + idp.fetches.jwks).toBe(fetches);
    advance(250);
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('ok');
  });

  it.each(['discovery', 'jwks_uri'] as const)('asks an IdP that is down at most once per backoff, however many tokens name it (%s)', async (keys) => {
    const verifier = verifierFor(idp, keys, { fetchFailureBackoffMs: 60_000 });
    idp.fail('both', { kind: 'status', status: 503 });
    // Forged tokens are enough to make the gateway fetch keys: the signature is checked after the lookup.
    const forged = `${(await idp.mint()).slice(0, -8)}AAAAAAAA`;
    for (let i = 0; i < 100; i++) expect(await codeOf(verifier.verifyWebIdentityToken(forged))).toBe('IDPCommunicationError');
    expect(idp.fetches.discovery + idp.fetches.jwks).toBe(1);
  });

  it('keeps verifying with cached keys while fetches are backing off', async () => {
    const verifier = verifierFor(idp, 'jwks_uri', { fetchFailureBackoffMs: 60_000, cooldownMs: 0 });
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('ok');
    idp.fail('jwks', { kind: 'status', status: 503 });
    // An unknown kid asks for a refetch, which fails and starts the backoff...
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint({}, { header: { kid: 'unknown' } })))).toBe('IDPCommunicationError');
    // ...but a token whose key is cached still verifies.
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('ok');
  });

  it('accepts a response that is slow but within the timeout', async () => {
    idp.fail('both', { kind: 'slow', delayMs: FETCH_TIMEOUT_MS / 3 });
    const verifier = verifierFor(idp, 'discovery');
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('ok');
  });

  it('keeps using the last good discovery document when a refresh fails', async () => {
    const verifier = verifierFor(idp, 'discovery', { cacheMaxAgeMs: 150, cooldownMs: 100 });
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('ok');
    idp.fail('discovery', { kind: 'status', status: 500 });
    advance(200);
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('ok');
    expect(idp.fetches.discovery).toBe(2);
    // Within the retry delay the failed refresh is not repeated.
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('ok');
    expect(idp.fetches.discovery).toBe(2);
  });

  it('fails closed when the cached JWKS has expired and cannot be refetched', async () => {
    const verifier = verifierFor(idp, 'jwks_uri', { cacheMaxAgeMs: 150, cooldownMs: 100 });
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('ok');
    idp.fail('jwks', { kind: 'status', status: 500 });
    advance(200);
    expect(await codeOf(verifier.verifyWebIdentityToken(await idp.mint()))).toBe('IDPCommunicationError');
  });
});

describe('refetching on unknown kid', () => {
  const COOLDOWN_MS = 250;

  it.each([
    { name: 'cold cache, 50 concurrent unknown kids', warm: false, waitMs: 0, concurrent: true, jwksFetches: 1 },
    { name: 'warm cache inside the cooldown, 50 concurrent unknown kids', warm: true, waitMs: 0, concurrent: true, jwksFetches: 1 },
    { name: 'warm cache after the cooldown, 50 concurrent unknown kids', warm: true, waitMs: COOLDOWN_MS + 50, concurrent: true, jwksFetches: 2 },
    { name: 'warm cache after the cooldown, 50 unknown kids one after another', warm: true, waitMs: COOLDOWN_MS + 50, concurrent: false, jwksFetches: 2 },
  ])('$name → $jwksFetches JWKS fetch(es)', async ({ warm, waitMs, concurrent, jwksFetches }) => {
    const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => idp.mint({}, { header: { kid: `unknown-${i}` } })));
    const valid = await idp.mint();
    const verifier = verifierFor(idp, 'jwks_uri', { cooldownMs: COOLDOWN_MS });
    if (warm) expect(await codeOf(verifier.verifyWebIdentityToken(valid))).toBe('ok');
    advance(waitMs);
    const attempt = (token: string) => verifier.verifyWebIdentityToken(token).then(() => undefined, (err: unknown) => err as GatewayError);
    const errors = concurrent ? await Promise.all(tokens.map(attempt)) : await tokens.reduce<Promise<(GatewayError | undefined)[]>>(async (acc, token) => [...(await acc), await attempt(token)], Promise.resolve([]));
    for (const error of errors) {
      expect(error).toMatchObject({ code: 'InvalidIdentityToken', debug: expect.stringContaining('ERR_JWKS_NO_MATCHING_KEY') });
    }
    expect(idp.fetches.jwks).toBe(jwksFetches);
  });

  it('picks up a rotated key once the cooldown has passed', async () => {
    const rotating = await TestIssuer.start();
    try {
      const first = await rotating.mint({}, { alg: 'ES256' });
      const verifier = verifierFor(rotating, 'discovery', { cooldownMs: COOLDOWN_MS });
      expect(await codeOf(verifier.verifyWebIdentityToken(first))).toBe('ok');
      // The key caches' clock stands still until advanced: still inside the cooldown.
      const fresh = await rotating.rotate('ES256');
      const rotatedToken = await rotating.mint({}, { kid: fresh.kid });

      // Inside the cooldown the new kid is unknown and no refetch happens.
      expect(await codeOf(verifier.verifyWebIdentityToken(rotatedToken))).toBe('InvalidIdentityToken');
      expect(rotating.fetches.jwks).toBe(1);

      advance(COOLDOWN_MS + 50);
      expect(await codeOf(verifier.verifyWebIdentityToken(rotatedToken))).toBe('ok');
      expect(await codeOf(verifier.verifyWebIdentityToken(await rotating.mint({}, { kid: 'es-1' })))).toBe('ok');
      expect(rotating.fetches).toEqual({ discovery: 1, jwks: 2, other: 0 });
    } finally {
      await rotating.close();
    }
  });
});

describe('unusable keys in a fetched JWKS', () => {
  it.each(['discovery', 'jwks_uri'] as const)('are dropped at every load and reported once each (%s)', async (keys) => {
    const holder = await TestIssuer.start();
    try {
      const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
      holder.publish({ ...weak.publicKey.export({ format: 'jwk' }), kid: 'weak', alg: 'RS256' });
      const drops: string[] = [];
      const verifier = verifierFor(holder, keys, { cooldownMs: 0, onKeyDropped: (issuerId, d) => drops.push(`${issuerId} ${d.kid} ${d.reason}`) });
      // Kid-less: without the drop, jose would offer the weak key as a candidate too.
      expect(await codeOf(verifier.verifyWebIdentityToken(await holder.mint({}, { header: { kid: undefined } })))).toBe('ok');
      // Unknown kids refetch the set (cooldown 0); a key added since is dropped too, and nothing is reported twice.
      holder.publish({ kty: 'oct', kid: 'later', k: 'c2VjcmV0' });
      for (let i = 0; i < 3; i++) expect(await codeOf(verifier.verifyWebIdentityToken(await holder.mint({}, { header: { kid: `unknown-${i}` } })))).toBe('InvalidIdentityToken');
      expect(holder.fetches.jwks).toBeGreaterThanOrEqual(3);
      expect(drops).toEqual(['idp weak rsa_too_short', 'idp later symmetric_key']);
      expect(await codeOf(verifier.verifyWebIdentityToken(await holder.mint()))).toBe('ok');
    } finally {
      await holder.close();
    }
  });

  it('drops a key whose alg the issuer does not allow, so a token naming it fails as the key source', async () => {
    const holder = await TestIssuer.start();
    try {
      const rs512 = generateKeyPairSync('rsa', { modulusLength: 2048 });
      holder.publish({ ...rs512.publicKey.export({ format: 'jwk' }), kid: 'rs512', alg: 'RS512' });
      const input = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'rs512' })).toString('base64url')}.${(await holder.mint()).split('.')[1]}`;
      const token = `${input}.${sign('sha256', Buffer.from(input), rs512.privateKey).toString('base64url')}`;
      const verifier = verifierFor(holder, 'jwks_uri');
      const error = await verifier.verifyWebIdentityToken(token).catch((err: unknown) => err as GatewayError);
      expect(error).toMatchObject({ code: 'IDPCommunicationError', debug: expect.stringContaining('"alg" "RS512" is not an allowed algorithm') });
      expect(await codeOf(verifier.verifyWebIdentityToken(await holder.mint()))).toBe('ok');
    } finally {
      await holder.close();
    }
  });
});
