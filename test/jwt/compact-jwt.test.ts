/**
 * src/jwt/compact-jwt.ts replaces jose's WebCrypto signature step with node:crypto. Every case here runs
 * through both `jwtVerify` (the reference) and `verifyJwt`, and requires the same outcome: the same payload
 * and header, or the same error class, code, claim and reason. The one intended difference is that
 * base64url is read strictly (jose also accepts `=` padding and whitespace inside a segment).
 */
import { constants, generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import fc from 'fast-check';
import {
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTVerifyOptions,
} from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createJwtSigner, verifyJwt, type JwsAlgorithm, type VerificationKey } from '../../src/jwt/compact-jwt.js';

const ALGORITHMS: JwsAlgorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const NOW = 1_800_000_000;
const ISSUER = 'https://issuer.example';
const CLAIMS = { iss: ISSUER, sub: 'repo:acme/app', aud: 'sts.example.com', iat: NOW - 10, nbf: NOW - 10, exp: NOW + 300, repository: 'acme/app' };
const OPTIONS: JWTVerifyOptions = { issuer: ISSUER, audience: 'sts.example.com', currentDate: new Date(NOW * 1000), requiredClaims: ['exp', 'iat', 'sub'] };

interface KeyPairs {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}
const keys = new Map<JwsAlgorithm, KeyPairs>();
let resolver: ReturnType<typeof createLocalJWKSet>;

beforeAll(async () => {
  const jwks: JWK[] = [];
  for (const alg of ALGORITHMS) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const publicJwk = { ...(await exportJWK(publicKey)), kid: alg.toLowerCase(), alg, use: 'sig' };
    keys.set(alg, { privateKey, publicKey, publicJwk });
    jwks.push(publicJwk);
  }
  resolver = createLocalJWKSet({ keys: jwks });
});

function key(alg: JwsAlgorithm): KeyPairs {
  return keys.get(alg)!;
}

/**
 * Signs any header and payload bytes (no JOSE rules applied: jose's own signer refuses to produce most of
 * the broken tokens below), with the signature encodings of RFC 7518.
 */
function signRaw(alg: JwsAlgorithm, header: Record<string, unknown>, payload: string | Uint8Array): string {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const input = `${b64({ alg, kid: alg.toLowerCase(), ...header })}.${bytes.toString('base64url')}`;
  return `${input}.${rawSignature(alg, KeyObject.from(key(alg).privateKey), Buffer.from(input)).toString('base64url')}`;
}

function rawSignature(alg: JwsAlgorithm, privateKey: KeyObject, data: Buffer): Buffer {
  const bits = alg === 'EdDSA' ? null : `sha${alg.slice(2)}`;
  if (alg.startsWith('PS')) return sign(bits, data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 });
  if (alg.startsWith('ES')) return sign(bits, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return sign(bits, data, privateKey);
}

async function signClaims(alg: JwsAlgorithm, claims: Record<string, unknown> = CLAIMS, header: Record<string, unknown> = {}): Promise<string> {
  return signRaw(alg, header, JSON.stringify(claims));
}

type Outcome = { ok: true; payload: unknown; header: unknown } | { ok: false; error: string };

async function outcome(run: () => Promise<{ payload: unknown; protectedHeader: unknown }>): Promise<Outcome> {
  try {
    const { payload, protectedHeader } = await run();
    return { ok: true, payload, header: protectedHeader };
  } catch (err) {
    const e = err as Error & { code?: string; claim?: string; reason?: string };
    return { ok: false, error: [e.constructor.name, e.code ?? '', e.claim ?? '', e.reason ?? ''].join(':') };
  }
}

async function bothWays(token: string, verificationKey: VerificationKey, options: JWTVerifyOptions = OPTIONS): Promise<[Outcome, Outcome]> {
  const reference = await outcome(() => jwtVerify(token, verificationKey as Parameters<typeof jwtVerify>[1], options));
  const ours = await outcome(() => verifyJwt(token, verificationKey, options));
  return [reference, ours];
}

function swapSegment(token: string, index: number, value: string): string {
  const parts = token.split('.');
  parts[index] = value;
  return parts.join('.');
}

function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

describe('verifyJwt agrees with jose jwtVerify', () => {
  it.each(ALGORITHMS)('%s: a valid token, through a JWKS resolver and with the key itself', async (alg) => {
    const token = await signClaims(alg);
    const [reference, ours] = await bothWays(token, resolver);
    expect(reference.ok).toBe(true);
    expect(ours).toEqual(reference);
    expect(await outcome(() => verifyJwt(token, key(alg).publicKey, OPTIONS))).toEqual(await outcome(() => jwtVerify(token, key(alg).publicKey, OPTIONS)));
  });

  const broken: [string, (alg: JwsAlgorithm) => Promise<string>, JWTVerifyOptions?][] = [
    ['a flipped signature bit', async (alg) => {
      const token = await signClaims(alg);
      const signature = Buffer.from(token.split('.')[2]!, 'base64url');
      signature[5]! ^= 1;
      return swapSegment(token, 2, signature.toString('base64url'));
    }],
    ['a truncated signature', async (alg) => { const t = await signClaims(alg); return t.slice(0, -4); }],
    ['an empty signature', async (alg) => swapSegment(await signClaims(alg), 2, '')],
    ['a signature with a character outside base64url', async (alg) => swapSegment(await signClaims(alg), 2, '*' + (await signClaims(alg)).split('.')[2]!.slice(1))],
    ['another key\'s signature', async (alg) => swapSegment(await signClaims(alg), 2, (await signClaims(alg, { ...CLAIMS, jti: 'x' })).split('.')[2]!)],
    ['claims changed after signing', async (alg) => swapSegment(await signClaims(alg), 1, b64({ ...CLAIMS, repository: 'evil/app' }))],
    ['four segments', async (alg) => `${await signClaims(alg)}.x`],
    ['two segments', async (alg) => (await signClaims(alg)).split('.').slice(0, 2).join('.')],
    ['a header that is not JSON', async (alg) => swapSegment(await signClaims(alg), 0, b64('{"alg":'))],
    ['a header that is an array', async (alg) => swapSegment(await signClaims(alg), 0, b64([alg]))],
    ['alg none in the header', async (alg) => swapSegment(await signClaims(alg), 0, b64({ alg: 'none' }))],
    ['alg HS256 in the header', async (alg) => swapSegment(await signClaims(alg), 0, b64({ alg: 'HS256', kid: alg.toLowerCase() }))],
    ['no alg', async (alg) => swapSegment(await signClaims(alg), 0, b64({ kid: alg.toLowerCase() }))],
    ['an unknown kid', async (alg) => signClaims(alg, CLAIMS, { kid: 'nobody' })],
    ['an unrecognized crit extension', async (alg) => signClaims(alg, CLAIMS, { crit: ['exp'], exp: 1 })],
    ['an empty crit', async (alg) => signClaims(alg, CLAIMS, { crit: [] })],
    ['crit that is not a list', async (alg) => signClaims(alg, CLAIMS, { crit: 'b64' })],
    ['crit b64 with b64 true', async (alg) => signClaims(alg, CLAIMS, { crit: ['b64'], b64: true })],
    ['crit b64 that is missing', async (alg) => signClaims(alg, CLAIMS, { crit: ['b64'] })],
    ['b64 that is not a boolean', async (alg) => signClaims(alg, CLAIMS, { crit: ['b64'], b64: 'no' })],
    ['b64 without crit', async (alg) => signClaims(alg, CLAIMS, { b64: false })],
    ['a payload that is not JSON', async (alg) => signRaw(alg, {}, '{"iss":')],
    ['a payload that is an array', async (alg) => signRaw(alg, {}, '[1,2]')],
    ['a payload that is not UTF-8', async (alg) => signRaw(alg, {}, new Uint8Array([0x7b, 0xff, 0x7d]))],
    ['expired', async (alg) => signClaims(alg, { ...CLAIMS, exp: NOW - 1 })],
    ['not yet valid', async (alg) => signClaims(alg, { ...CLAIMS, nbf: NOW + 100 })],
    ['exp that is a string', async (alg) => signClaims(alg, { ...CLAIMS, exp: String(NOW + 300) })],
    ['another issuer', async (alg) => signClaims(alg, { ...CLAIMS, iss: `${ISSUER}/` })],
    ['another audience', async (alg) => signClaims(alg, { ...CLAIMS, aud: ['other'] })],
    ['no sub', async (alg) => signClaims(alg, { ...CLAIMS, sub: undefined })],
    ['too old for maxTokenAge', async (alg) => signClaims(alg, { ...CLAIMS, iat: NOW - 4000 }), { ...OPTIONS, maxTokenAge: 3600 }],
    ['issued in the future with maxTokenAge', async (alg) => signClaims(alg, { ...CLAIMS, iat: NOW + 4000 }), { ...OPTIONS, maxTokenAge: 3600 }],
    ['typ required and absent', async (alg) => signClaims(alg), { ...OPTIONS, typ: 'at+jwt' }],
    ['typ required and present in media-type form', async (alg) => signClaims(alg, CLAIMS, { typ: 'application/AT+JWT' }), { ...OPTIONS, typ: 'at+jwt' }],
    ['typ required and another', async (alg) => signClaims(alg, CLAIMS, { typ: 'JWT' }), { ...OPTIONS, typ: 'at+jwt' }],
    ['an algorithm outside the allowed list', async (alg) => signClaims(alg), { ...OPTIONS, algorithms: ['RS256'] }],
    ['clock tolerance rescues an expired token', async (alg) => signClaims(alg, { ...CLAIMS, exp: NOW - 30 }), { ...OPTIONS, clockTolerance: 60 }],
  ];

  describe.each(['RS256', 'PS256', 'ES256', 'ES512', 'EdDSA'] as JwsAlgorithm[])('%s', (alg) => {
    it.each(broken)('%s', async (_name, make, options) => {
      const token = await make(alg);
      const [reference, ours] = await bothWays(token, resolver, options ?? OPTIONS);
      expect(ours).toEqual(reference);
    });
  });

  it('ECDSA signatures in DER form are refused by both', async () => {
    const token = await signClaims('ES256');
    const raw = Buffer.from(token.split('.')[2]!, 'base64url');
    const der = Buffer.concat([Buffer.from([0x30, 0x44, 0x02, 0x20]), raw.subarray(0, 32), Buffer.from([0x02, 0x20]), raw.subarray(32)]);
    const [reference, ours] = await bothWays(swapSegment(token, 2, der.toString('base64url')), resolver);
    expect(reference.ok).toBe(false);
    expect(ours).toEqual(reference);
  });

  it('a key of another algorithm given directly is refused by both, as jose does', async () => {
    const token = await signClaims('RS256');
    for (const wrong of [key('PS256').publicKey, key('ES256').publicKey, key('RS256').privateKey]) {
      const [reference, ours] = await bothWays(token, wrong);
      expect(reference.ok).toBe(false);
      expect(ours).toEqual(reference);
    }
  });

  it('RSA keys under 2048 bits are refused by both', async () => {
    // jose will not make such a key, so node:crypto does.
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const publicKey = await crypto.subtle.importKey('jwk', weak.publicKey.export({ format: 'jwk' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']);
    const input = `${b64({ alg: 'RS256' })}.${b64(CLAIMS)}`;
    const token = `${input}.${sign('sha256', Buffer.from(input), weak.privateKey).toString('base64url')}`;
    const [reference, ours] = await bothWays(token, publicKey);
    expect(reference.ok).toBe(false);
    expect(ours).toEqual(reference);
  });

  it('is stricter than jose about base64url: padding in a segment is refused', async () => {
    const token = await signClaims('EdDSA');
    const padded = swapSegment(token, 2, `${token.split('.')[2]!}==`);
    const [reference, ours] = await bothWays(padded, resolver);
    expect(reference.ok).toBe(true);
    expect(ours).toMatchObject({ ok: false, error: 'JWSInvalid:ERR_JWS_INVALID::' });
  });

  it('never accepts what jose refuses, and refuses alike, under random one-character edits', async () => {
    const tokens = await Promise.all((['RS256', 'ES256', 'EdDSA'] as const).map((alg) => signClaims(alg)));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...tokens),
        fc.nat(),
        fc.constantFrom(...'AQgw_-.=Z9a '),
        async (token, at, ch) => {
          const position = at % token.length;
          const edited = token.slice(0, position) + ch + token.slice(position + 1);
          const [reference, ours] = await bothWays(edited, resolver);
          if (!/^[A-Za-z0-9_.-]*$/.test(edited) && reference.ok) expect(ours.ok).toBe(false);
          else expect(ours).toEqual(reference);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('createJwtSigner signs what jose SignJWT signs', () => {
  const header = (alg: JwsAlgorithm) => ({ alg, kid: 'k1', typ: 'at+jwt' });
  const payload = { repo: 'acme/app', role: 'deployer', scope: 'deploy:write logs:read', sid: 'ABCDEFGHIJKLMNOP', idp: 'ci' };

  it.each(['ES256', 'EdDSA', 'RS256'] as JwsAlgorithm[])('%s: the same header and claims, byte for byte, and jose verifies it', async (alg) => {
    const signer = createJwtSigner(alg, KeyObject.from(key(alg).privateKey));
    const ours = signer.sign(header(alg), { ...payload, iss: ISSUER, sub: 'ci:x', aud: ['api.example.com'], iat: NOW, nbf: NOW, exp: NOW + 3600, jti: 'j1' });
    const reference = await new SignJWT(payload)
      .setProtectedHeader(header(alg))
      .setIssuer(ISSUER)
      .setSubject('ci:x')
      .setAudience(['api.example.com'])
      .setIssuedAt(NOW)
      .setNotBefore(NOW)
      .setExpirationTime(NOW + 3600)
      .setJti('j1')
      .sign(key(alg).privateKey);
    expect(ours.split('.').slice(0, 2)).toEqual(reference.split('.').slice(0, 2));
    const verified = await jwtVerify(ours, key(alg).publicKey, { ...OPTIONS, audience: 'api.example.com', typ: 'at+jwt' });
    expect(verified.protectedHeader).toEqual(header(alg));
    expect(verified.payload).toEqual((await jwtVerify(reference, key(alg).publicKey, { ...OPTIONS, audience: 'api.example.com' })).payload);
    // And a public JWK imported by jose (what a relying party does with /.well-known/jwks.json) verifies it.
    const imported = await importJWK(key(alg).publicJwk, alg);
    await expect(jwtVerify(ours, imported, { currentDate: new Date(NOW * 1000) })).resolves.toBeDefined();
  });

  it('ES256 signatures are r || s (64 bytes), as RFC 7518 §3.4 requires', () => {
    const token = createJwtSigner('ES256', KeyObject.from(key('ES256').privateKey)).sign(header('ES256'), payload);
    expect(Buffer.from(token.split('.')[2]!, 'base64url')).toHaveLength(64);
  });

  it.each([
    ['a public key', 'ES256', () => KeyObject.from(key('ES256').publicKey)],
    ['a key of another type', 'ES256', () => KeyObject.from(key('RS256').privateKey)],
    ['a key on another curve', 'ES256', () => KeyObject.from(key('ES384').privateKey)],
    ['an RSA key for EdDSA', 'EdDSA', () => KeyObject.from(key('RS256').privateKey)],
  ] as [string, JwsAlgorithm, () => KeyObject][])('refuses %s', (_name, alg, make) => {
    expect(() => createJwtSigner(alg, make())).toThrow(TypeError);
  });
});

describe('a token verified before (its signature is checked once per token and key)', () => {
  it.each(['RS256', 'ES256'] as JwsAlgorithm[])('%s: every claim check still runs against the current time', async (alg) => {
    const token = await signClaims(alg);
    await expect(verifyJwt(token, key(alg).publicKey, OPTIONS)).resolves.toBeDefined();
    await expect(verifyJwt(token, key(alg).publicKey, OPTIONS)).resolves.toBeDefined();
    // The same token, later: expired now, whatever happened before.
    await expect(verifyJwt(token, key(alg).publicKey, { ...OPTIONS, currentDate: new Date((NOW + 301) * 1000) })).rejects.toMatchObject({ code: 'ERR_JWT_EXPIRED' });
    // Other options on the same token: another audience, another issuer, an algorithm no longer allowed.
    await expect(verifyJwt(token, key(alg).publicKey, { ...OPTIONS, audience: 'someone-else' })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'aud' });
    await expect(verifyJwt(token, key(alg).publicKey, { ...OPTIONS, issuer: 'https://other.example' })).rejects.toMatchObject({ claim: 'iss' });
    await expect(verifyJwt(token, key(alg).publicKey, { ...OPTIONS, algorithms: ['PS256'] })).rejects.toMatchObject({ code: 'ERR_JOSE_ALG_NOT_ALLOWED' });
  });

  it('under another key (a rotated JWKS, or a resolver that now picks a different key), the signature is checked again and fails', async () => {
    const token = await signClaims('ES256');
    await expect(verifyJwt(token, key('ES256').publicKey, OPTIONS)).resolves.toBeDefined();
    const { publicKey: other } = await generateKeyPair('ES256');
    await expect(verifyJwt(token, other, OPTIONS)).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    // A key no longer in the set does not resolve at all.
    const without = createLocalJWKSet({ keys: [] });
    await expect(verifyJwt(token, without, OPTIONS)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });

  it('a token that differs in any character from one verified before is checked in full', async () => {
    const token = await signClaims('ES256');
    await expect(verifyJwt(token, key('ES256').publicKey, OPTIONS)).resolves.toBeDefined();
    const [h, p, s] = token.split('.') as [string, string, string];
    const otherPayload = Buffer.from(JSON.stringify({ ...CLAIMS, sub: 'repo:evil/app' })).toString('base64url');
    const flipped = `${s.slice(0, -2)}${s.at(-2) === 'A' ? 'B' : 'A'}${s.at(-1)}`;
    for (const forged of [`${h}.${otherPayload}.${s}`, `${h}.${p}.${flipped}`]) {
      await expect(verifyJwt(forged, key('ES256').publicKey, OPTIONS)).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    }
  });

  it('a failed check is never remembered: the same bad token fails every time', async () => {
    const token = await signClaims('ES256');
    const { publicKey: other } = await generateKeyPair('ES256');
    for (let i = 0; i < 3; i++) await expect(verifyJwt(token, other, OPTIONS)).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  });
});
