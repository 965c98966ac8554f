/** Which JWKS keys may ever verify a token: one row per reason a key is dropped, and the keys that stay. */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { jwkProblem, type JwkDropReason } from '../../src/issuers/index.js';
import { partitionJwks } from '../../src/jwt/jwk-usability.js';

const jwkOf = (type: 'rsa' | 'ec' | 'ed25519' | 'ed448', options: Record<string, unknown> = {}) =>
  generateKeyPairSync(type as 'rsa', options as { modulusLength: number }).publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
const rsa2048 = jwkOf('rsa', { modulusLength: 2048 });
const rsa1024 = jwkOf('rsa', { modulusLength: 1024 });
const p256 = jwkOf('ec', { namedCurve: 'P-256' });
const p384 = jwkOf('ec', { namedCurve: 'P-384' });
const ed25519 = jwkOf('ed25519');
const ALL = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const DEFAULT = ['RS256', 'ES256'];

describe('jwkProblem', () => {
  it.each([
    ['a 2048-bit RSA key', rsa2048, DEFAULT],
    ['a 2048-bit RSA key with alg RS256, use sig, key_ops [verify]', { ...rsa2048, alg: 'RS256', use: 'sig', key_ops: ['verify'] }, DEFAULT],
    ['a P-256 key', p256, DEFAULT],
    ['a P-384 key with ES384 allowed', p384, ALL],
    ['an Ed25519 key with EdDSA allowed', ed25519, ALL],
  ] as const)('keeps %s', (_name, jwk, algorithms) => {
    expect(jwkProblem(jwk, algorithms)).toBeUndefined();
  });

  it.each([
    ['a 1024-bit RSA key', rsa1024, DEFAULT, 'rsa_too_short', 'an RSA key of 1024 bits; at least 2048 are required'],
    ['a private RSA key', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), DEFAULT, 'private_key', 'a private key (it has "d")'],
    ['an oct key', { kty: 'oct', k: 'c2VjcmV0' }, DEFAULT, 'symmetric_key', 'symmetric'],
    ['an unknown kty', { kty: 'XYZ', n: 'AQAB' }, DEFAULT, 'unsupported_key_type', 'key type "XYZ" is not RSA, EC or OKP'],
    ['no kty', { n: rsa2048.n, e: 'AQAB' }, DEFAULT, 'unsupported_key_type', 'key type (none) is not RSA, EC or OKP'],
    ['a secp256k1 key', jwkOf('ec', { namedCurve: 'secp256k1' }), ALL, 'unsupported_key_type', 'curve "secp256k1"'],
    ['an Ed448 key', jwkOf('ed448'), ALL, 'unsupported_key_type', 'curve "Ed448"'],
    ['use enc', { ...rsa2048, use: 'enc' }, DEFAULT, 'not_for_signing', '"use" is "enc", not "sig"'],
    ['key_ops without verify', { ...rsa2048, key_ops: ['encrypt'] }, DEFAULT, 'not_for_signing', '"key_ops" does not include "verify"'],
    ['alg RS512 not allowed', { ...rsa2048, alg: 'RS512' }, DEFAULT, 'algorithm_not_allowed', '"alg" "RS512" is not an allowed algorithm'],
    ['alg ES256 on an RSA key', { ...rsa2048, alg: 'ES256' }, DEFAULT, 'algorithm_not_allowed', '"alg" "ES256"'],
    ['alg HS256 on an RSA key', { ...rsa2048, alg: 'HS256' }, DEFAULT, 'algorithm_not_allowed', '"alg" "HS256"'],
    ['a P-384 key when only RS256 and ES256 are allowed', p384, DEFAULT, 'algorithm_not_allowed', 'no allowed algorithm (RS256, ES256) verifies with an EC P-384 key'],
    ['an RSA key when only ES256 is allowed', rsa2048, ['ES256'], 'algorithm_not_allowed', 'no allowed algorithm (ES256)'],
    ['an RSA key without n', { kty: 'RSA', e: 'AQAB' }, DEFAULT, 'malformed', 'missing "n"'],
    ['an EC key without y', { kty: 'EC', crv: 'P-256', x: p256.x }, DEFAULT, 'malformed', 'missing "y"'],
    ['an EC point not on the curve', { ...p256, y: p256.x }, DEFAULT, 'malformed', 'do not form a valid public key'],
    ['an RSA modulus that is not base64url', { kty: 'RSA', n: `${String(rsa2048.n)}!!`, e: 'AQAB' }, DEFAULT, 'malformed', '"n" not base64url'],
    ['an RSA exponent that is empty', { kty: 'RSA', n: rsa2048.n, e: '' }, DEFAULT, 'malformed', 'missing "e"'],
    ['not an object', 'RSA', DEFAULT, 'malformed', 'not a JSON object'],
  ] as const)('drops %s', (_name, jwk, algorithms, reason: JwkDropReason, detail) => {
    const problem = jwkProblem(jwk, algorithms);
    expect(problem?.reason).toBe(reason);
    expect(problem?.detail).toContain(detail);
    // Never key material in what is logged.
    for (const member of ['n', 'd', 'k', 'x', 'y']) {
      const value = (jwk as Record<string, unknown>)[member];
      if (typeof value === 'string' && value.length > 8) expect(problem?.detail).not.toContain(value);
    }
  });

  it('partitions a set, keeping positions and printable kids of the dropped keys', () => {
    const { usable, dropped } = partitionJwks([rsa2048, { ...rsa1024, kid: 'weak\u0000\n' }, p256, { kty: 'oct', k: 'c2VjcmV0' }], DEFAULT);
    expect(usable).toEqual([rsa2048, p256]);
    expect(dropped.map(({ index, kid, reason }) => ({ index, kid, reason }))).toEqual([
      { index: 1, kid: 'weak??', reason: 'rsa_too_short' },
      { index: 3, kid: undefined, reason: 'symmetric_key' },
    ]);
  });
});
