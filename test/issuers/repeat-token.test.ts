/**
 * A token verified in full once and presented again (a workload's SDK exchanging the same token until it
 * expires): TrustedIssuers answers the repeat without decoding it again, but the clock and the issuer's
 * keys are asked again every time. Each case sets the clock or the keys so that the repeat must fail, and
 * compares the refusal with what a verifier that never saw the token answers at that moment.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { IssuerConfig } from '../../src/config/types.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { TrustedIssuers } from '../../src/issuers/index.js';
import { TEST_AUDIENCE, TestIssuer } from '../support/test-issuer.js';

const NOW = Math.floor(Date.now() / 1000);
const SKEW = 60;
const CACHE_MAX_AGE_MS = 60_000;

let idp: TestIssuer;
/** The token clock and the key caches' clock of every verifier below, epoch ms. */
let clock = NOW * 1000;
let keysClock = Date.now();

function config(overrides: Partial<IssuerConfig> = {}): IssuerConfig {
  return { id: 'ci', issuer: idp.url, audiences: [TEST_AUDIENCE], keys: { kind: 'discovery' }, algorithms: ['RS256', 'ES256'], clockSkewSeconds: SKEW, ...overrides };
}

function verifier(overrides: Partial<IssuerConfig> = {}): TrustedIssuers {
  return new TrustedIssuers([config(overrides)], {
    allowInsecureHttp: true,
    now: () => clock,
    keysNow: () => keysClock,
    cacheMaxAgeMs: CACHE_MAX_AGE_MS,
    cooldownMs: 1000,
    fetchTimeoutMs: 1000,
  });
}

/** The refusal, as code, message and debug detail; fails the test when the token is accepted. */
async function refusal(promise: Promise<unknown>): Promise<Pick<GatewayError, 'code' | 'message' | 'debug'>> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a refusal').toBeInstanceOf(GatewayError);
  const { code, message, debug } = error as GatewayError;
  return { code, message, debug };
}

beforeAll(async () => {
  idp = await TestIssuer.start();
});
afterAll(async () => {
  await idp?.close();
});
afterEach(() => {
  idp.heal();
  clock = NOW * 1000;
  keysClock = Date.now();
});

describe('a token verified before, presented again', () => {
  it('is answered with the same result, frozen through and through (it is shared between requests)', async () => {
    const v = verifier();
    const token = await idp.mint({ groups: ['dev'], nested: { team: 'a' } }, { issuedAt: NOW });
    const first = await v.verifyWebIdentityToken(token);
    const again = await v.verifyWebIdentityToken(token);
    expect(again).toBe(first);
    expect(again.identity.claims).toMatchObject({ groups: ['dev'], nested: { team: 'a' } });
    expect(() => ((again.identity.claims['groups'] as string[]).push('admin'))).toThrow(TypeError);
    expect(() => ((again.identity.claims['nested'] as Record<string, string>)['team'] = 'b')).toThrow(TypeError);
    expect(() => ((again.identity as { subject: string }).subject = 'someone-else')).toThrow(TypeError);
    expect(() => ((again as { audience: string }).audience = 'x')).toThrow(TypeError);
  });

  it('is refused once it has expired (exp + clock skew), with the words a first use gets', async () => {
    const v = verifier();
    const token = await idp.mint({}, { issuedAt: NOW, expiresIn: 300 });
    const first = await v.verifyWebIdentityToken(token);
    clock = (NOW + 300 + SKEW - 1) * 1000;
    await expect(v.verifyWebIdentityToken(token)).resolves.toBe(first);
    clock = (NOW + 300 + SKEW) * 1000;
    const repeated = await refusal(v.verifyWebIdentityToken(token));
    expect(repeated.code).toBe('ExpiredTokenException');
    expect(repeated).toEqual(await refusal(verifier().verifyWebIdentityToken(token)));
    // A refused repeat is forgotten: with the clock back, the token is verified in full again.
    clock = NOW * 1000;
    const again = await v.verifyWebIdentityToken(token);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it('is refused once it is older than max_token_age_seconds, as a first use is', async () => {
    const v = verifier({ maxTokenAgeSeconds: 120 });
    const token = await idp.mint({}, { issuedAt: NOW, expiresIn: 3600 });
    await v.verifyWebIdentityToken(token);
    clock = (NOW + 120 + SKEW) * 1000;
    await expect(v.verifyWebIdentityToken(token)).resolves.toMatchObject({ identity: { source: 'ci' } });
    clock = (NOW + 120 + SKEW + 1) * 1000;
    const repeated = await refusal(v.verifyWebIdentityToken(token));
    expect(repeated.code).toBe('ExpiredTokenException');
    expect(repeated).toEqual(await refusal(verifier({ maxTokenAgeSeconds: 120 }).verifyWebIdentityToken(token)));
  });

  it('is refused when the clock is set back before its nbf or its iat (beyond the skew), as a first use is', async () => {
    // No max_token_age_seconds: iat in the future is then stsgate's own check, not jose's.
    const v = verifier();
    const notBefore = await idp.mint({ nbf: NOW + 10 }, { issuedAt: NOW });
    const issuedLater = await idp.mint({}, { issuedAt: NOW + 10 });
    await v.verifyWebIdentityToken(notBefore);
    await v.verifyWebIdentityToken(issuedLater);
    clock = (NOW + 10 - SKEW - 1) * 1000;
    for (const token of [notBefore, issuedLater]) {
      const repeated = await refusal(v.verifyWebIdentityToken(token));
      expect(repeated.code).toBe('InvalidIdentityToken');
      expect(repeated).toEqual(await refusal(verifier().verifyWebIdentityToken(token)));
    }
  });

  it('is refused once its key is withdrawn from the issuer JWKS and the set is fetched again', async () => {
    const v = verifier();
    const rotated = await idp.rotate('RS256');
    const token = await idp.mint({}, { kid: rotated.kid, issuedAt: NOW });
    await v.verifyWebIdentityToken(token);
    // The issuer withdraws the key; the set the gateway holds is older than its cache age.
    idp.fail('jwks', { kind: 'body', body: JSON.stringify({ keys: idp.jwks().keys.filter((k) => k.kid !== rotated.kid) }) });
    keysClock += CACHE_MAX_AGE_MS + 1;
    const repeated = await refusal(v.verifyWebIdentityToken(token));
    expect(repeated.code).toBe('InvalidIdentityToken');
    expect(repeated.debug).toContain('ERR_JWKS_NO_MATCHING_KEY');
    expect(repeated).toEqual(await refusal(verifier().verifyWebIdentityToken(token)));
  });

  it('is refused when the kid now names another key (the same kid republished with new key material)', async () => {
    const v = verifier();
    const token = await idp.mint({}, { issuedAt: NOW });
    const kid = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid as string;
    await v.verifyWebIdentityToken(token);
    const replacement = (await TestIssuer.start().then(async (other) => {
      const jwk = other.key({ alg: 'RS256' }).publicJwk;
      await other.close();
      return jwk;
    }));
    idp.fail('jwks', { kind: 'body', body: JSON.stringify({ keys: idp.jwks().keys.map((k) => (k.kid === kid ? { ...replacement, kid } : k)) }) });
    keysClock += CACHE_MAX_AGE_MS + 1;
    const repeated = await refusal(v.verifyWebIdentityToken(token));
    expect(repeated).toMatchObject({ code: 'InvalidIdentityToken' });
    expect(repeated.debug).toContain('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
  });

  it('is verified in full again after the set is refetched with the same keys, and still passes', async () => {
    const v = verifier();
    const token = await idp.mint({}, { issuedAt: NOW });
    const first = await v.verifyWebIdentityToken(token);
    idp.resetFetches();
    keysClock += CACHE_MAX_AGE_MS + 1;
    const again = await v.verifyWebIdentityToken(token);
    expect(idp.fetches.jwks).toBe(1);
    // New key objects: the repeat was verified in full and remembered anew.
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
    expect(await v.verifyWebIdentityToken(token)).toBe(again);
  });

  it('without a kid, still passes once the refetched set holds a second key of its type (each candidate is tried, as on a first use)', async () => {
    // An issuer of its own, with one RSA key: the token's first verification finds exactly one.
    const solo = await TestIssuer.start();
    try {
      const v = verifier({ issuer: solo.url });
      const token = await solo.mint({}, { issuedAt: NOW, header: { kid: undefined } });
      const first = await v.verifyWebIdentityToken(token);
      await solo.rotate('RS256');
      keysClock += CACHE_MAX_AGE_MS + 1;
      expect(await v.verifyWebIdentityToken(token)).toEqual(first);
      expect(await verifier({ issuer: solo.url }).verifyWebIdentityToken(token)).toEqual(first);
    } finally {
      await solo.close();
    }
  });

  it('gets the key source failure a first use gets when the issuer cannot be reached on the refetch', async () => {
    const [v, firstUse] = [verifier(), verifier()];
    const token = await idp.mint({}, { issuedAt: NOW });
    await v.verifyWebIdentityToken(token);
    // The other verifier holds the same discovery document and key set, from another token.
    await firstUse.verifyWebIdentityToken(await idp.mint({ other: true }, { issuedAt: NOW }));
    idp.fail('both', { kind: 'status', status: 500 });
    keysClock += CACHE_MAX_AGE_MS + 1;
    const repeated = await refusal(v.verifyWebIdentityToken(token));
    expect(repeated.code).toBe('IDPCommunicationError');
    expect(repeated).toEqual(await refusal(firstUse.verifyWebIdentityToken(token)));
  });

  it('is not remembered when it was refused: a refused token is checked in full each time', async () => {
    const v = verifier();
    const token = await idp.mint({ aud: 'someone-else.example.com' }, { issuedAt: NOW });
    const first = await refusal(v.verifyWebIdentityToken(token));
    expect(await refusal(v.verifyWebIdentityToken(token))).toEqual(first);
    expect(first.message).toBe('Incorrect token audience.');
  });
});

describe('what is remembered', () => {
  it('not a token longer than 8192 characters (a bound on what tokens anyone can get from a trusted issuer may fill): a repeat of it is verified in full', async () => {
    const v = verifier();
    const long = await idp.mint({ padding: 'x'.repeat(9000) }, { issuedAt: NOW });
    const short = await idp.mint({ padding: 'x'.repeat(5000) }, { issuedAt: NOW });
    expect(await v.verifyWebIdentityToken(short)).toBe(await v.verifyWebIdentityToken(short));
    const first = await v.verifyWebIdentityToken(long);
    const again = await v.verifyWebIdentityToken(long);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });
});
