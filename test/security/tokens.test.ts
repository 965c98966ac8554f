/**
 * Hostile web-identity tokens against both exchange endpoints (AWS STS AssumeRoleWithWebIdentity and
 * RFC 8693 token exchange), end to end over HTTP. One row per attack; every row runs under both
 * protocols and must get the exact status and error code, and leave nothing issued, cached or stored.
 *
 * Classes: JWS structure and algorithms (RFC 8725 §2.1, §3.1, §3.10), claims and their JSON types
 * (RFC 7519 §4.1, §7.2), names that confuse JavaScript objects, duplicate member names (RFC 7515 §5.2),
 * and key sets (unknown kid, kid-less keys, an IdP that is down, huge, not JSON or names another issuer,
 * unusable keys published next to good ones: weak RSA, private, symmetric, encryption-only, odd curves).
 */
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuerFor, standardRules } from '../support/gateway.js';
import { TEST_AUDIENCE, TEST_SUBJECT, TestIssuer } from '../support/test-issuer.js';
import { addedKeys,
  b64, expectRefused, handmade, hmacToken, MAIN, nowSeconds, oauthFor, postOAuth, postSts, reheader, signRaw, startSecurityGateway, tamper,
  type Expected, type SecurityGateway } from './harness.js';

let idp: TestIssuer;
let other: TestIssuer;
let attacker: TestIssuer;
/** Trusted issuers that misbehave, one failure mode each, never healed. */
const broken: Record<string, TestIssuer> = {};
let refusing: TestIssuer;
let g: SecurityGateway;
/** Kid-less RSA keys of the inline-keys issuer, and a key it does not have. */
const kidless = { url: 'https://kidless.example.com', keys: [] as ReturnType<typeof generateKeyPairSync>[] };
let attackerKey: { privateKey: CryptoKey; publicKey: CryptoKey };
/**
 * Trusted issuers whose JWKS hold unusable keys next to their good ones, private halves kept here: `weak`
 * publishes a 1024-bit RSA key; `mixed` an RSA key for encryption, a leaked private RSA key, an oct secret,
 * a secp256k1 key and an RS512-only key (the issuer allows RS256 and ES256).
 */
let weakIdp: TestIssuer;
let mixedIdp: TestIssuer;
const unusable = {} as Record<'weak' | 'enc' | 'leaked', ReturnType<typeof generateKeyPairSync>>;

const FAILURES = {
  'discovery-500': ['both', { kind: 'status', status: 500 }],
  'jwks-500': ['jwks', { kind: 'status', status: 500 }],
  'discovery-not-json': ['discovery', { kind: 'non-json' }],
  'jwks-not-json': ['jwks', { kind: 'non-json' }],
  'discovery-huge': ['discovery', { kind: 'huge' }],
  'jwks-huge': ['jwks', { kind: 'huge' }],
  'jwks-not-a-key-set': ['jwks', { kind: 'body', body: '{"keys":{"__proto__":[]}}' }],
  'discovery-other-issuer': ['discovery', { kind: 'wrong-issuer', issuer: 'https://accounts.google.com' }],
  'discovery-issuer-slash': ['discovery', { kind: 'wrong-issuer' }],
} as const;

beforeAll(async () => {
  [idp, other, attacker, refusing] = await Promise.all([TestIssuer.start(), TestIssuer.start(), TestIssuer.start(), TestIssuer.start()]);
  for (const [name, [endpoint, failure]] of Object.entries(FAILURES)) {
    broken[name] = await TestIssuer.start();
    broken[name].fail(endpoint, failure);
  }
  attackerKey = await generateKeyPair('RS256', { extractable: true });
  [weakIdp, mixedIdp] = await Promise.all([TestIssuer.start(), TestIssuer.start()]);
  // jose refuses to generate an RSA key under 2048 bits, so node:crypto makes it.
  unusable.weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
  unusable.enc = generateKeyPairSync('rsa', { modulusLength: 2048 });
  unusable.leaked = generateKeyPairSync('rsa', { modulusLength: 2048 });
  weakIdp.publish({ ...unusable.weak.publicKey.export({ format: 'jwk' }), kid: 'weak-rsa', alg: 'RS256', use: 'sig' });
  mixedIdp.publish({ ...unusable.enc.publicKey.export({ format: 'jwk' }), kid: 'enc-rsa', use: 'enc' });
  mixedIdp.publish({ ...unusable.leaked.privateKey.export({ format: 'jwk' }), kid: 'leaked-rsa', alg: 'RS256' });
  mixedIdp.publish({ kty: 'oct', kid: 'oct-1', k: Buffer.from('a shared secret of thirty-two b!').toString('base64url') });
  mixedIdp.publish({ ...generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ format: 'jwk' }), kid: 'k1' });
  mixedIdp.publish({ ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), kid: 'rs512', alg: 'RS512' });
  kidless.keys = [generateKeyPairSync('rsa', { modulusLength: 2048 }), generateKeyPairSync('rsa', { modulusLength: 2048 })];
  const kidlessJwks = { keys: kidless.keys.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig' })) };
  const issuers = [
    issuerFor(idp),
    issuerFor(other, 'other'),
    issuerFor(refusing, 'refusing'),
    { ...issuerFor(idp, 'kidless'), issuer: kidless.url, keys: { kind: 'inline' as const, jwks: kidlessJwks } },
    issuerFor(weakIdp, 'weak'),
    issuerFor(mixedIdp, 'mixed'),
    ...Object.entries(broken).map(([name, issuer]) => issuerFor(issuer, name)),
  ];
  const rules = [...standardRules('ci'), ...standardRules('other'), ...standardRules('kidless'), ...standardRules('weak'), ...standardRules('mixed'), ...Object.keys(broken).flatMap((name) => standardRules(name))];
  g = await startSecurityGateway({ issuers, rules });
  // A trusted issuer whose host refuses connections.
  refusingToken = await refusing.mint(MAIN);
  await refusing.close();
});
afterAll(async () => {
  await g?.close();
  await Promise.all([idp?.close(), other?.close(), attacker?.close(), weakIdp?.close(), mixedIdp?.close(), ...Object.values(broken).map((b) => b.close())]);
});

/** Claims of a token the rules would grant `deployer`, from `idp`, valid now. */
const claims = (extra: Record<string, unknown> = {}) => {
  const now = nowSeconds();
  return { iss: idp.url, sub: TEST_SUBJECT, aud: TEST_AUDIENCE, iat: now, exp: now + 300, ...MAIN, ...extra };
};
/** A token signed by `idp`'s RS256 key with these claims over the defaults (undefined removes one). */
const signed = (extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}) => idp.mint({ ...MAIN, ...extra }, { header });
/** Signs raw JSON text with `idp`'s own key: exactly what an issuer with a sloppy JSON writer would publish. */
const idpRaw = (headerJson: string, payloadJson: string) => signRaw(headerJson, payloadJson, idp.key({ alg: 'RS256' }).privateKey);
const attackerSigned = async (header: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
  const jwk = await exportJWK(attackerKey.publicKey);
  const h: Record<string, unknown> = { alg: 'RS256', typ: 'JWT', ...header };
  if (h.jwk === 'attacker') h.jwk = jwk;
  return signRaw(JSON.stringify(h), JSON.stringify(claims(extra)), attackerKey.privateKey);
};
/** A token for `issuer` signed by one of the unusable keys it publishes, with this header. */
const unusableSigned = (issuer: TestIssuer, key: keyof typeof unusable, header: Record<string, unknown> = { alg: 'RS256' }) =>
  signRaw(JSON.stringify(header), JSON.stringify(claims({ iss: issuer.url })), unusable[key].privateKey);
const rsHeader = () => ({ alg: 'RS256', typ: 'JWT', kid: idp.key({ alg: 'RS256' }).kid });
const nestedArrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

const INVALID: Expected = [400, 'InvalidIdentityToken'];
const EXPIRED: Expected = [400, 'ExpiredTokenException'];
const DENIED: Expected = [403, 'AccessDenied'];
const IDP_DOWN: Expected = [400, 'IDPCommunicationError'];
const TOO_LONG: { aws: Expected; oauth: Expected } = { aws: [400, 'ValidationError'], oauth: [400, 'invalid_request'] };

interface Row {
  name: string;
  token: () => Promise<string> | string;
  /** AWS status and code; OAuth follows OAUTH_EQUIVALENT unless given. */
  aws: Expected;
  oauth?: Expected;
  /** Checked after the request, e.g. that an attacker's URL was never fetched. */
  after?: () => void;
}

const rows: Row[] = [
  // --- JWS algorithms: none in any spelling (RFC 8725 §3.1) ---
  ...['none', 'None', 'NONE', 'nOnE', 'none ', ' none', 'none\u0000'].flatMap((alg): Row[] => [
    { name: `alg ${JSON.stringify(alg)} with an empty signature`, token: () => `${b64({ alg, typ: 'JWT' })}.${b64(claims())}.`, aws: INVALID },
    { name: `alg ${JSON.stringify(alg)} with a signature segment`, token: () => handmade({ alg, typ: 'JWT', kid: 'rs-1' }, claims()), aws: INVALID },
  ]),
  { name: 'alg missing', token: () => handmade({ typ: 'JWT', kid: 'rs-1' }, claims()), aws: INVALID },
  { name: 'alg a number', token: () => handmade({ alg: 256, kid: 'rs-1' }, claims()), aws: INVALID },
  { name: 'alg an array', token: () => handmade({ alg: ['RS256'], kid: 'rs-1' }, claims()), aws: INVALID },

  // --- HMAC with the issuer's public key as the secret (RFC 8725 §2.1) ---
  { name: 'HS256 keyed with the SPKI PEM of the issuer key', token: async () => hmacToken({ alg: 'HS256', kid: 'rs-1' }, claims(), await exportSPKI(idp.key().publicKey)), aws: INVALID },
  { name: 'HS256 keyed with the public JWK JSON', token: async () => hmacToken({ alg: 'HS256', kid: 'rs-1' }, claims(), JSON.stringify(idp.key().publicJwk)), aws: INVALID },
  { name: 'HS256 keyed with the modulus bytes', token: async () => hmacToken({ alg: 'HS256', kid: 'rs-1' }, claims(), Buffer.from(String(idp.key().publicJwk.n), 'base64url')), aws: INVALID },
  { name: 'HS384 keyed with the SPKI PEM', token: async () => hmacToken({ alg: 'HS384', kid: 'rs-1' }, claims(), await exportSPKI(idp.key().publicKey), 'sha384'), aws: INVALID },
  { name: 'HS512 keyed with the SPKI PEM, no kid', token: async () => hmacToken({ alg: 'HS512' }, claims(), await exportSPKI(idp.key().publicKey), 'sha512'), aws: INVALID },

  // --- an algorithm that disagrees with the key ---
  { name: 'header ES256 over an RS256 signature with the RSA kid', token: async () => reheader(await signed(), { alg: 'ES256', kid: 'rs-1' }), aws: INVALID },
  { name: 'header RS256 with the EC kid', token: async () => reheader(await idp.mint(MAIN, { alg: 'ES256' }), { alg: 'RS256', kid: 'es-1' }), aws: INVALID },
  { name: 'PS256 (not allowed for this issuer) by the RSA key', token: () => idpRaw(JSON.stringify({ alg: 'PS256', kid: 'rs-1' }), JSON.stringify(claims())), aws: INVALID },
  { name: 'RS512 (not allowed for this issuer)', token: () => signRaw(JSON.stringify({ alg: 'RS512', kid: 'rs-1' }), JSON.stringify(claims()), idp.key().privateKey, 'RS512'), aws: INVALID },
  { name: 'EdDSA by an attacker key under the RSA kid', token: async () => {
    const ed = generateKeyPairSync('ed25519');
    const input = `${b64({ alg: 'EdDSA', kid: 'rs-1' })}.${b64(claims())}`;
    const { sign } = await import('node:crypto');
    return `${input}.${sign(null, Buffer.from(input), ed.privateKey).toString('base64url')}`;
  }, aws: INVALID },

  // --- header parameters that try to choose or fetch the key (RFC 8725 §3.10) ---
  { name: 'jku pointing at the attacker JWKS, attacker kid', token: async () => attacker.mint({ ...MAIN, iss: idp.url }, { header: { jku: attacker.jwksUri } }), aws: INVALID, after: () => expect(attacker.fetches.jwks).toBe(0) },
  { name: 'x5u pointing at the attacker JWKS', token: async () => attacker.mint({ ...MAIN, iss: idp.url }, { header: { x5u: attacker.jwksUri, kid: 'rs-1' } }), aws: INVALID, after: () => expect(attacker.fetches.jwks).toBe(0) },
  { name: 'jwk header with the attacker public key, no kid', token: () => attackerSigned({ jwk: 'attacker' }), aws: INVALID },
  { name: 'jwk header with the attacker public key and the real kid', token: () => attackerSigned({ jwk: 'attacker', kid: 'rs-1' }), aws: INVALID },
  { name: 'x5c header with a made-up chain and the real kid', token: () => attackerSigned({ x5c: [Buffer.from('not a certificate').toString('base64')], kid: 'rs-1' }), aws: INVALID },
  { name: 'kid path traversal', token: () => attackerSigned({ kid: '../../../../etc/passwd' }), aws: INVALID },
  { name: 'kid SQL injection', token: () => attackerSigned({ kid: "rs-1' OR '1'='1" }), aws: INVALID },
  { name: 'kid with a NUL byte after the real kid', token: () => attackerSigned({ kid: 'rs-1\u0000' }), aws: INVALID },
  { name: 'kid a URL', token: () => attackerSigned({ kid: attacker.jwksUri }), aws: INVALID, after: () => expect(attacker.fetches.jwks).toBe(0) },
  { name: 'kid a number', token: () => attackerSigned({ kid: 1 }), aws: INVALID },
  { name: 'kid an object', token: () => attackerSigned({ kid: { $ne: null } }), aws: INVALID },
  { name: 'kid __proto__', token: () => attackerSigned({ kid: '__proto__' }), aws: INVALID },
  { name: 'kid of the other trusted issuer, signed with its key, claiming this iss', token: () => other.mint({ ...MAIN, iss: idp.url }), aws: INVALID },
  { name: 'the issuer kid, signed by an attacker key', token: () => attackerSigned({ kid: 'rs-1' }), aws: INVALID },

  // --- crit (RFC 7515 §4.1.11) ---
  { name: 'crit [exp]', token: async () => reheader(await signed(), { ...rsHeader(), crit: ['exp'], exp: nowSeconds() + 300 }), aws: INVALID },
  { name: 'crit []', token: () => idpRaw(JSON.stringify({ ...rsHeader(), crit: [] }), JSON.stringify(claims())), aws: INVALID },
  { name: 'crit [b64] with b64 false, validly signed', token: () => idpRaw(JSON.stringify({ ...rsHeader(), crit: ['b64'], b64: false }), JSON.stringify(claims())), aws: INVALID },

  // --- other serializations and malformed compact forms ---
  { name: 'JWE compact (five segments)', token: () => 'eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a2V5.aXY.Y2lwaGVy.dGFn', aws: INVALID },
  { name: 'JWS flattened JSON serialization', token: async () => { const [p, c, s] = (await signed()).split('.'); return JSON.stringify({ protected: p, payload: c, signature: s }); }, aws: INVALID },
  { name: 'JWS general JSON serialization', token: async () => { const [p, c, s] = (await signed()).split('.'); return JSON.stringify({ payload: c, signatures: [{ protected: p, signature: s }] }); }, aws: INVALID },
  { name: 'two segments', token: async () => (await signed()).split('.').slice(0, 2).join('.'), aws: INVALID },
  { name: 'four segments', token: async () => `${await signed()}.AAAA`, aws: INVALID },
  { name: 'dots only', token: () => '....', aws: INVALID },
  { name: 'empty payload segment', token: async () => { const [h, , s] = (await signed()).split('.'); return `${h}..${s}`; }, aws: INVALID },
  { name: 'empty signature with alg RS256', token: async () => `${(await signed()).split('.').slice(0, 2).join('.')}.`, aws: INVALID },
  { name: 'standard base64 characters in the signature', token: async () => `${(await signed()).slice(0, -4)}+/+/`, aws: INVALID },
  { name: 'base64 padding after the header', token: async () => (await signed()).replace('.', '==.'), aws: INVALID },
  { name: 'leading space', token: async () => ` ${await signed()}`, aws: INVALID },
  { name: 'trailing newline', token: async () => `${await signed()}\n`, aws: INVALID },
  { name: 'a Bearer prefix', token: async () => `Bearer ${await signed()}`, aws: INVALID },
  { name: 'header not JSON', token: () => `${b64('{alg:RS256}')}.${b64(claims())}.c2ln`, aws: INVALID },
  { name: 'header a JSON array', token: () => handmade(['RS256'], claims()), aws: INVALID },
  { name: 'header JSON null', token: () => handmade(null, claims()), aws: INVALID },
  { name: 'payload a JSON string', token: () => handmade(rsHeader(), JSON.stringify('claims')), aws: INVALID },
  { name: 'payload a JSON array', token: () => handmade(rsHeader(), [claims()]), aws: INVALID },
  { name: 'payload invalid UTF-8', token: () => `${b64(rsHeader())}.${Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64url')}.c2ln`, aws: INVALID },
  { name: 'payload with a UTF-8 BOM', token: () => `${b64(rsHeader())}.${Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(claims()))]).toString('base64url')}.c2ln`, aws: INVALID },
  { name: 'payload nested 6000 arrays deep', token: () => `${b64(rsHeader())}.${b64(`{"a":${nestedArrays(6000)}}`)}.c2ln`, aws: INVALID },
  { name: 'payload tampered after signing (ref changed to main)', token: async () => tamper(await idp.mint({ ...MAIN, ref: 'refs/heads/feature' }), { ref: 'refs/heads/main' }), aws: INVALID },
  { name: 'header tampered after signing (typ changed)', token: async () => reheader(await signed(), { ...rsHeader(), typ: 'at+jwt' }), aws: INVALID },
  { name: 'signature of another token', token: async () => { const [h, p] = (await signed()).split('.'); const s = (await signed({ jti: 'x' })).split('.')[2]; return `${h}.${p}.${s}`; }, aws: INVALID },
  { name: 'signature truncated', token: async () => (await signed()).slice(0, -10), aws: INVALID },
  { name: 'oversized: 20001 characters, refused before decoding', token: () => `${b64(rsHeader())}.${'A'.repeat(20_001 - b64(rsHeader()).length - 6)}.c2ln`, aws: TOO_LONG.aws, oauth: TOO_LONG.oauth },
  { name: 'oversized: a validly signed 40000-character token', token: () => signed({ padding: 'x'.repeat(30_000) }), aws: TOO_LONG.aws, oauth: TOO_LONG.oauth },

  // --- time claims at and past their edges, and of the wrong JSON type (skew 60 s) ---
  { name: 'exp exactly now minus the skew', token: () => signed({ iat: nowSeconds() - 600, exp: nowSeconds() - 60 }), aws: EXPIRED },
  { name: 'exp past the skew', token: () => signed({ iat: nowSeconds() - 600, exp: nowSeconds() - 61 }), aws: EXPIRED },
  { name: 'exp zero', token: () => signed({ exp: 0 }), aws: EXPIRED },
  { name: 'exp negative', token: () => signed({ exp: -1 }), aws: EXPIRED },
  { name: 'exp a string', token: () => signed({ exp: String(nowSeconds() + 300) }), aws: INVALID },
  { name: 'exp a boolean', token: () => signed({ exp: true }), aws: INVALID },
  { name: 'exp null', token: () => signed({ exp: null }), aws: INVALID },
  { name: 'exp an array', token: () => signed({ exp: [nowSeconds() + 300] }), aws: INVALID },
  { name: 'exp missing', token: () => signed({ exp: undefined }), aws: INVALID },
  { name: 'nbf in the future beyond the skew', token: () => signed({ nbf: nowSeconds() + 120 }), aws: INVALID },
  { name: 'nbf a string', token: () => signed({ nbf: String(nowSeconds()) }), aws: INVALID },
  { name: 'iat in the future beyond the skew', token: () => signed({ iat: nowSeconds() + 120, exp: nowSeconds() + 600 }), aws: INVALID },
  { name: 'iat a string', token: () => signed({ iat: String(nowSeconds()) }), aws: INVALID },
  { name: 'iat missing', token: () => signed({ iat: undefined }), aws: INVALID },

  // --- aud in every shape (RFC 7519 §4.1.3) ---
  { name: 'aud an empty array', token: () => signed({ aud: [] }), aws: INVALID },
  { name: 'aud a nested array', token: () => signed({ aud: [[TEST_AUDIENCE]] }), aws: INVALID },
  { name: 'aud an object', token: () => signed({ aud: { 0: TEST_AUDIENCE } }), aws: INVALID },
  { name: 'aud an object with includes', token: () => signed({ aud: { includes: true, length: 1, 0: TEST_AUDIENCE } }), aws: INVALID },
  { name: 'aud null', token: () => signed({ aud: null }), aws: INVALID },
  { name: 'aud a number', token: () => signed({ aud: 1 }), aws: INVALID },
  { name: 'aud missing', token: () => signed({ aud: undefined }), aws: INVALID },
  { name: 'aud in upper case', token: () => signed({ aud: TEST_AUDIENCE.toUpperCase() }), aws: INVALID },
  { name: 'aud with a trailing space', token: () => signed({ aud: `${TEST_AUDIENCE} ` }), aws: INVALID },
  { name: 'aud as a prefix of another host', token: () => signed({ aud: `${TEST_AUDIENCE}.evil.io` }), aws: INVALID },
  { name: 'aud as a space-separated list', token: () => signed({ aud: `other ${TEST_AUDIENCE}` }), aws: INVALID },
  { name: 'aud an array of other audiences', token: () => signed({ aud: ['a.example.com', 'b.example.com'] }), aws: INVALID },

  // --- iss near-misses: compared byte for byte ---
  { name: 'iss with a trailing slash', token: () => signed({ iss: `${idp.url}/` }), aws: INVALID },
  { name: 'iss in upper case', token: () => signed({ iss: idp.url.toUpperCase() }), aws: INVALID },
  { name: 'iss https for http', token: () => signed({ iss: idp.url.replace('http:', 'https:') }), aws: INVALID },
  { name: 'iss localhost for 127.0.0.1', token: () => signed({ iss: idp.url.replace('127.0.0.1', 'localhost') }), aws: INVALID },
  { name: 'iss with a leading space', token: () => signed({ iss: ` ${idp.url}` }), aws: INVALID },
  { name: 'iss an array', token: () => signed({ iss: [idp.url] }), aws: INVALID },
  { name: 'iss a number', token: () => signed({ iss: 1 }), aws: INVALID },
  { name: 'iss missing', token: () => signed({ iss: undefined }), aws: INVALID },
  { name: 'iss of the other trusted issuer, signed by this one', token: () => signed({ iss: other.url }), aws: INVALID },

  // --- sub missing or odd ---
  { name: 'sub missing', token: () => signed({ sub: undefined }), aws: INVALID },
  { name: 'sub empty', token: () => signed({ sub: '' }), aws: INVALID },
  { name: 'sub a number', token: () => signed({ sub: 12345 }), aws: INVALID },
  { name: 'sub null', token: () => signed({ sub: null }), aws: INVALID },
  { name: 'sub an array', token: () => signed({ sub: [TEST_SUBJECT] }), aws: INVALID },
  { name: 'sub an object', token: () => signed({ sub: { toString: TEST_SUBJECT } }), aws: INVALID },
  { name: 'sub a boolean', token: () => signed({ sub: true }), aws: INVALID },

  // --- names meant to confuse a JavaScript object: the granting claims only on a prototype path ---
  { name: '__proto__ carrying the granting claims', token: () => idpRaw(JSON.stringify(rsHeader()), JSON.stringify({ ...claims(), repository: undefined, ref: undefined }).replace(/}$/, `,"__proto__":${JSON.stringify(MAIN)}}`)), aws: DENIED },
  { name: 'constructor.prototype carrying the granting claims', token: () => signed({ repository: undefined, ref: undefined, constructor: { prototype: MAIN } }), aws: DENIED },
  { name: 'prototype carrying the granting claims', token: () => signed({ repository: undefined, ref: undefined, prototype: MAIN }), aws: DENIED },
  { name: 'hasOwnProperty and toString overridden, no granting claims', token: () => signed({ repository: undefined, hasOwnProperty: 'x', toString: 'x', valueOf: 1 }), aws: DENIED },

  // --- duplicate member names: refused, never "the last one wins" (RFC 7515 §5.2, RFC 7519 §4) ---
  { name: 'duplicate repository in the payload (evil first)', token: () => idpRaw(JSON.stringify(rsHeader()), JSON.stringify(claims()).replace(/^{/, '{"repository":"evil/app",')), aws: INVALID },
  { name: 'duplicate repository in the payload (evil last)', token: () => idpRaw(JSON.stringify(rsHeader()), JSON.stringify(claims()).replace(/}$/, ',"repository":"evil/app"}')), aws: INVALID },
  { name: 'duplicate iss in the payload', token: () => idpRaw(JSON.stringify(rsHeader()), JSON.stringify(claims()).replace(/^{/, `{"iss":${JSON.stringify(other.url)},`)), aws: INVALID },
  { name: 'duplicate member through a unicode escape', token: () => idpRaw(JSON.stringify(rsHeader()), JSON.stringify(claims()).replace(/}$/, ',"r\\u0065f":"refs/heads/evil"}')), aws: INVALID },
  { name: 'duplicate alg in the header (none then RS256)', token: () => idpRaw(JSON.stringify(rsHeader()).replace(/^{/, '{"alg":"none",'), JSON.stringify(claims())), aws: INVALID },
  { name: 'duplicate kid in the header', token: () => idpRaw(JSON.stringify(rsHeader()).replace(/}$/, ',"kid":"es-1"}'), JSON.stringify(claims())), aws: INVALID },

  // --- key sets ---
  { name: 'unknown kid', token: () => attackerSigned({ kid: 'rotated-away' }), aws: INVALID },
  { name: 'kid-less token signed by a key the kid-less set does not hold', token: () => signRaw(JSON.stringify({ alg: 'RS256' }), JSON.stringify(claims({ iss: kidless.url })), attackerKey.privateKey), aws: INVALID },
  { name: 'kid-less set, token tampered after signing', token: () => tamper(signRaw(JSON.stringify({ alg: 'RS256' }), JSON.stringify(claims({ iss: kidless.url, ref: 'refs/heads/dev' })), kidless.keys[1]!.privateKey), { ref: 'refs/heads/main' }), aws: INVALID },
  // --- unusable keys published next to good ones: dropped when the JWKS is loaded, never tried ---
  { name: 'kid-less token signed with the 1024-bit RSA key the trusted JWKS also holds', token: () => unusableSigned(weakIdp, 'weak'), aws: INVALID },
  { name: 'kid-less token signed with the 1024-bit key, alg RS512', token: () => signRaw(JSON.stringify({ alg: 'RS512' }), JSON.stringify(claims({ iss: weakIdp.url })), unusable.weak.privateKey, 'RS512'), aws: INVALID },
  { name: 'token naming the kid of the 1024-bit key, signed with it', token: () => unusableSigned(weakIdp, 'weak', { alg: 'RS256', kid: 'weak-rsa' }), aws: IDP_DOWN },
  { name: 'kid-less token signed with the encryption-only RSA key', token: () => unusableSigned(mixedIdp, 'enc'), aws: INVALID },
  { name: 'kid-less token signed with the leaked private RSA key', token: () => unusableSigned(mixedIdp, 'leaked'), aws: INVALID },
  { name: 'token naming the kid of the leaked private key, signed with it', token: () => unusableSigned(mixedIdp, 'leaked', { alg: 'RS256', kid: 'leaked-rsa' }), aws: IDP_DOWN },
  { name: 'HS256 keyed with the oct secret the JWKS publishes', token: () => hmacToken({ alg: 'HS256', kid: 'oct-1' }, claims({ iss: mixedIdp.url }), 'a shared secret of thirty-two b!'), aws: INVALID },
  ...Object.keys(FAILURES).map((name): Row => ({ name: `issuer ${name}`, token: () => broken[name]!.mint(MAIN), aws: IDP_DOWN })),
  { name: 'issuer refusing connections', token: () => refusingToken, aws: IDP_DOWN },
];
let refusingToken = '';

describe.each([
  ['AWS STS', 'aws'],
  ['OAuth token exchange', 'oauth'],
] as const)('hostile web-identity tokens: %s', (_label, protocol) => {
  it.each(rows.map((row) => [row.name, row] as const))('%s', async (_name, row) => {
    const token = await row.token();
    const expected = protocol === 'aws' ? row.aws : (row.oauth ?? oauthFor(row.aws[1]));
    await expectRefused(g, protocol, expected, () =>
      protocol === 'aws' ? postSts(g.url, { WebIdentityToken: token }) : postOAuth(g.url, { subject_token: token }),
    );
    row.after?.();
  });
});

describe('controls: the same gateway grants what it should', () => {
  it.each([
    ['the plain valid token', () => signed()],
    ['a kid-less token signed by the second kid-less key', () => signRaw(JSON.stringify({ alg: 'RS256' }), JSON.stringify(claims({ iss: kidless.url })), kidless.keys[1]!.privateKey)],
    ['a kid-less token under the good key of the JWKS that holds a 1024-bit key', () => weakIdp.mint({ ...MAIN }, { header: { kid: undefined } })],
    ['a token under the good key of the JWKS that holds a 1024-bit key', () => weakIdp.mint({ ...MAIN })],
    ['a kid-less token under the good key of the JWKS with many unusable keys', () => mixedIdp.mint({ ...MAIN }, { header: { kid: undefined } })],
    ['an ES256 token under the good key of the JWKS with many unusable keys', () => mixedIdp.mint({ ...MAIN }, { alg: 'ES256' })],
  ])('%s is accepted', async (_name, make) => {
    const res = await postSts(g.url, { WebIdentityToken: await make(), RoleSessionName: `control-${Math.random().toString(36).slice(2, 8)}` });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.text()).toContain('<AccessKeyId>ASIA');
  });
});

describe('unusable keys in a trusted JWKS', () => {
  it('a forged kid-less token under the 1024-bit key is refused with one audit line, in both protocols', async () => {
    for (const protocol of ['aws', 'oauth'] as const) {
      const audits = () => g.gateway.logs().filter((l) => l.log === 'audit');
      const before = audits().length;
      const token = unusableSigned(weakIdp, 'weak');
      await expectRefused(g, protocol, protocol === 'aws' ? INVALID : oauthFor('InvalidIdentityToken'), () =>
        protocol === 'aws' ? postSts(g.url, { WebIdentityToken: token }) : postOAuth(g.url, { subject_token: token }),
      );
      const added = audits().slice(before);
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ event: 'denied', code: 'InvalidIdentityToken' });
    }
  });

  it('logs each dropped key once, by kid and reason, without key material, and counts it by reason', async () => {
    // Tokens naming this issuer again and again (each may refetch the JWKS) add no further lines.
    for (let i = 0; i < 3; i++) await postSts(g.url, { WebIdentityToken: unusableSigned(mixedIdp, 'leaked', { alg: 'RS256', kid: `unknown-${i}` }) });
    const drops = g.gateway.logs().filter((l) => l.msg === 'unusable key in a trusted issuer JWKS ignored');
    const seen = drops.map((l) => `${String(l.issuer)} ${String(l.kid)} ${String(l.reason)}`).sort();
    expect(seen).toEqual([
      'mixed enc-rsa not_for_signing',
      'mixed k1 unsupported_key_type',
      'mixed leaked-rsa private_key',
      'mixed oct-1 symmetric_key',
      'mixed rs512 algorithm_not_allowed',
      'weak weak-rsa rsa_too_short',
    ]);
    const published = JSON.stringify([...weakIdp.jwks().keys, ...mixedIdp.jwks().keys]);
    for (const line of drops) {
      for (const value of Object.values(line)) {
        if (typeof value === 'string' && value.length > 16) expect(published).not.toContain(value);
      }
    }
    const metrics = await (await fetch(`${g.gateway.adminUrl}/metrics`)).text();
    expect(metrics).toContain('stsgate_jwks_keys_dropped_total{issuer="weak",reason="rsa_too_short"} 1');
    expect(metrics).toContain('stsgate_jwks_keys_dropped_total{issuer="mixed",reason="private_key"} 1');
  });
});

describe('unknown kid flood', () => {
  it('500 tokens with fresh unknown kids cause at most one JWKS refetch per cooldown, and are all refused', async () => {
    // Warm the cache with a valid token first: the cooldown starts at the last successful fetch.
    expect((await postSts(g.url, { WebIdentityToken: await signed(), RoleSessionName: 'warm' })).status).toBe(200);
    const before = { ...idp.fetches };
    const keysBefore = await g.storedKeys();
    const tokens = await Promise.all(Array.from({ length: 500 }, (_, i) => attackerSigned({ kid: `flood-${i}-${Math.random()}` })));
    const statuses: number[] = [];
    for (let i = 0; i < tokens.length; i += 50) {
      const batch = await Promise.all(tokens.slice(i, i + 50).map((t) => postSts(g.url, { WebIdentityToken: t }).then(async (r) => (await r.text(), r.status))));
      statuses.push(...batch);
    }
    expect(new Set(statuses)).toEqual(new Set([400]));
    // At most one refetch per cooldown (30 s after the last successful fetch); this file runs well inside one.
    expect(idp.fetches.jwks - before.jwks).toBeLessThanOrEqual(1);
    expect(idp.fetches.discovery - before.discovery).toBe(0);
    expect(addedKeys(keysBefore, await g.storedKeys())).toEqual([]);
  });
});
