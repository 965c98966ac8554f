/**
 * Properties, checked with fast-check over generated inputs:
 * - the rules engine never grants a role that no matching rule of the identity's source names, and its
 *   indexed evaluation agrees with the full explanation;
 * - random form bodies never crash the STS or token-exchange parsers: every answer is a well-formed
 *   error in the protocol's format (or a success), never a 5xx;
 * - random tokens, tokens with any byte changed, and tokens signed by any other key never verify.
 */
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClaimOperator, Condition, RuleConfig } from '../../src/config/types.js';
import { ERROR_CODES, GatewayError } from '../../src/errors/gateway-error.js';
import { TrustedIssuers } from '../../src/issuers/index.js';
import { compileRules } from '../../src/rules/index.js';
import { issuerFor } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { awsErrorCode } from '../support/gateway.js';
import { b64, MAIN, signRaw, startSecurityGateway, type SecurityGateway } from './harness.js';
import { ACCOUNT_ID } from '../support/common.js';

const RUNS = Number(process.env.STSGATE_PROPERTY_RUNS ?? 300);

describe('rules: random claims never grant a role no matching rule names', () => {
  const PATHS = ['x', 'y', 'groups', 'email', 'a.b', '__proto__', 'constructor', '__proto__.x', 'groups.0'];
  const STRINGS = ['v', 'V', 'vv', '', 'a@b.c', 'x/y', '\u212A', 'true', '1'];
  const scalar = fc.oneof(fc.constantFrom(...STRINGS), fc.constantFrom(1, 0, -1, 1.5), fc.boolean(), fc.constant(null));
  const PATTERNS = ['v.*', '[a-z]+', 'x|y', '(a+)+b', 'V'];
  const GLOBS = ['v*', '*', '*/y', 'a?', 'x*y*'];

  const claimCondition: fc.Arbitrary<Condition> = fc
    .record({ claim: fc.constantFrom(...PATHS), op: fc.constantFrom<ClaimOperator>('equals', 'not_equals', 'in', 'contains', 'starts_with', 'ends_with', 'glob', 'matches', 'exists'), ignoreCase: fc.boolean() })
    .chain(({ claim, op, ignoreCase }) => {
      const value: fc.Arbitrary<unknown> =
        op === 'in' ? fc.array(scalar, { minLength: 1, maxLength: 3 })
        : op === 'exists' ? fc.boolean()
        : op === 'glob' ? fc.constantFrom(...GLOBS)
        : op === 'matches' ? fc.constantFrom(...PATTERNS)
        : op === 'starts_with' || op === 'ends_with' ? fc.constantFrom(...STRINGS.filter((s) => s !== ''))
        : scalar;
      return value.map((v) => ({ claim, op, value: v, ignoreCase: op === 'matches' || op === 'exists' ? false : ignoreCase }) as Condition);
    });
  const condition: fc.Arbitrary<Condition> = fc.letrec<{ c: Condition }>((tie) => ({
    c: fc.oneof({ depthSize: 'small', withCrossShrink: true }, claimCondition, fc.record({ all: fc.array(tie('c'), { minLength: 1, maxLength: 3 }) }), fc.record({ any: fc.array(tie('c'), { minLength: 1, maxLength: 3 }) }), fc.record({ not: tie('c') })),
  })).c;
  const ROLES = ['r1', 'r2', 'r3'];
  const rules = fc.array(
    fc.record({ source: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }), conditions: fc.array(condition, { maxLength: 3 }), roles: fc.subarray(ROLES, { minLength: 1 }) }),
    { maxLength: 8 },
  ).map((list): RuleConfig[] => list.map((r, i) => ({ name: `rule-${i}`, match: { ...(r.source === undefined ? {} : { source: r.source }), conditions: r.conditions }, roles: r.roles })));

  const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
    v: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.constantFrom(...PATHS, 'b', '0'), tie('v'), { maxKeys: 3 })),
  })).v;
  const claims = fc.dictionary(fc.constantFrom(...PATHS, 'b', 'hasOwnProperty', 'toString'), value, { maxKeys: 6 });
  const identity = fc.record({ source: fc.constantFrom('a', 'b', 'c'), subject: fc.constantFrom('s', ''), claims });

  it('granted roles come only from matching rules of the identity\'s source, never from a role no rule names', () => {
    fc.assert(
      fc.property(rules, identity, (ruleSet, id) => {
        const engine = compileRules({ rules: ruleSet, roles: [...ROLES, 'never'].map((name) => ({ name })) });
        const evaluation = engine.evaluate(id);
        const explanation = engine.explain(id);
        expect(evaluation.roles).not.toContain('never');
        expect(engine.grant(id, 'never')).toBeUndefined();
        // Indexed evaluation agrees with the full scan.
        expect([...evaluation.roles].sort()).toEqual([...explanation.roles].sort());
        for (const matched of evaluation.matched) {
          const rule = ruleSet[matched.index]!;
          expect(rule.match.source === undefined || rule.match.source === id.source).toBe(true);
          expect(explanation.rules[matched.index]!.matched).toBe(true);
        }
        for (const role of ROLES) {
          const granted = engine.grant(id, role);
          expect(granted !== undefined).toBe(evaluation.roles.includes(role));
        }
      }),
      { numRuns: RUNS * 3 },
    );
  });
});

describe('parsers: random bodies never crash the exchange endpoints', () => {
  let idp: TestIssuer;
  let g: SecurityGateway;
  let token = '';
  beforeAll(async () => {
    idp = await TestIssuer.start();
    g = await startSecurityGateway({ issuers: [issuerFor(idp)], store: { kind: 'memory', prefix: 'p:' } });
    token = await idp.mint(MAIN, { expiresIn: 900 });
  });
  afterAll(async () => {
    await g?.close();
    await idp?.close();
  });

  const AWS_CODES = new Set(Object.keys(ERROR_CODES).filter((c) => /^[A-Z]/.test(c)));
  const OAUTH_CODES = new Set<string>(Object.values(ERROR_CODES).map((e) => e.oauth));
  const STS_NAMES = ['Action', 'Version', 'RoleArn', 'RoleSessionName', 'WebIdentityToken', 'DurationSeconds', 'Policy', 'Tags.member.1.Key', '__proto__', 'constructor', ''];
  const OAUTH_NAMES = ['grant_type', 'subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope', 'duration_seconds', 'session_name', 'resource', 'actor_token', '__proto__'];
  const values = () =>
    fc.oneof(
      fc.constantFrom('AssumeRoleWithWebIdentity', 'AssumeRole', 'GetCallerIdentity', '2011-06-15', `arn:aws:iam::${ACCOUNT_ID}:role/deployer`, 'deployer', 'ci', '900', '3600', '43200', '-1', '1e3'),
      fc.constantFrom('urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:access_token', 'logs:read deploy:write'),
      fc.constant('TOKEN'),
      fc.string({ maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 20 }),
    );
  const encoded = (s: string) => fc.constantFrom(encodeURIComponent(s), s, s.replace(/./gu, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  const formBody = (names: string[]) =>
    fc
      .array(fc.tuple(fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 12 })), values()), { maxLength: 8 })
      .chain((pairs) => fc.tuple(...pairs.map(([k, v]) => fc.tuple(encoded(k), v === 'TOKEN' ? fc.constant('TOKEN') : encoded(v)))).map((list) => list.map(([k, v]) => `${k}=${v}`).join('&')));
  /** A valid request, then some of its parameters dropped, repeated or given other values: reaches the deep paths. */
  const mutated = (valid: [string, string][]) =>
    fc
      .array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.constantFrom('drop', 'repeat', 'replace', 'keep'), values()), { maxLength: 3 })
      .map((changes) => {
        let pairs = [...valid];
        for (const [i, change, value] of changes) {
          const [name] = valid[i]!;
          if (change === 'drop') pairs = pairs.filter(([k]) => k !== name);
          else if (change === 'repeat') pairs.push([name, value]);
          else if (change === 'replace') pairs = pairs.map(([k, v]) => [k, k === name ? value : v]);
        }
        return pairs.map(([k, v]) => `${encodeURIComponent(k)}=${v === 'TOKEN' ? v : encodeURIComponent(v)}`).join('&');
      });
  const VALID_STS: [string, string][] = [['Action', 'AssumeRoleWithWebIdentity'], ['Version', '2011-06-15'], ['RoleArn', `arn:aws:iam::${ACCOUNT_ID}:role/deployer`], ['RoleSessionName', 'ci'], ['WebIdentityToken', 'TOKEN'], ['DurationSeconds', '900']];
  const VALID_OAUTH: [string, string][] = [['grant_type', 'urn:ietf:params:oauth:grant-type:token-exchange'], ['subject_token', 'TOKEN'], ['subject_token_type', 'urn:ietf:params:oauth:token-type:jwt'], ['audience', 'deployer'], ['scope', 'logs:read'], ['duration_seconds', '900']];
  // Mostly the right type, so that most bodies reach the parameter checks.
  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=utf-8') },
    { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/json', '', 'multipart/form-data; boundary=x') },
  );
  const body = (names: string[], valid: [string, string][]) =>
    fc.oneof(mutated(valid), formBody(names), fc.string({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)));

  async function post(path: string, payload: string | Buffer, type: string): Promise<Response> {
    const raw = typeof payload === 'string' ? payload.replaceAll('TOKEN', token) : payload;
    return fetch(`${g.url}${path}`, { method: 'POST', headers: type === '' ? {} : { 'content-type': type }, body: raw });
  }

  it('POST / and /sts: always a well-formed STS answer, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/', '/sts'), body(STS_NAMES, VALID_STS), contentType, async (path, payload, type) => {
        const res = await post(path, payload, type);
        const text = await res.text();
        expect(res.status).toBeLessThan(500);
        if (res.status === 200) {
          expect(text).toMatch(/^<(AssumeRoleWithWebIdentity|AssumeRole|GetCallerIdentity)Response xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/">/);
        } else {
          expect(text).toMatch(/^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/">\n {2}<Error>\n {4}<Type>Sender<\/Type>/);
          expect(AWS_CODES.has(awsErrorCode(text) ?? '')).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('POST /oauth2/token: always a well-formed RFC 6749 answer, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(body(OAUTH_NAMES, VALID_OAUTH), contentType, async (payload, type) => {
        const res = await post('/oauth2/token', payload, type);
        const json = (await res.json()) as Record<string, unknown>;
        expect(res.status).toBeLessThan(500);
        expect(res.headers.get('cache-control')).toBe('no-store');
        if (res.status === 200) expect(json).toMatchObject({ access_token: expect.any(String), token_type: 'Bearer' });
        else {
          expect(OAUTH_CODES.has(json.error as string)).toBe(true);
          expect(typeof json.error_description).toBe('string');
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('tokens: random tokens never verify', () => {
  const ISSUER = 'https://issuer.example.com';
  const AUDIENCE = 'sts.example.com';
  const signer = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...signer.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
  const issuers = new TrustedIssuers([{ id: 'i', issuer: ISSUER, audiences: [AUDIENCE], keys: { kind: 'inline', jwks: { keys: [jwk] } }, algorithms: ['RS256', 'ES256'], clockSkewSeconds: 60 }], { allowInsecureHttp: false });
  const now = () => Math.floor(Date.now() / 1000);
  const claims = () => ({ iss: ISSUER, aud: AUDIENCE, sub: 'subject', iat: now(), exp: now() + 300 });
  const valid = () => signRaw(JSON.stringify({ alg: 'RS256', kid: 'k1' }), JSON.stringify(claims()), signer.privateKey);
  const REFUSALS = new Set(['InvalidIdentityToken', 'ExpiredTokenException']);

  async function outcome(token: string): Promise<string> {
    try {
      await issuers.verifyWebIdentityToken(token);
      return 'verified';
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayError);
      return (err as GatewayError).code;
    }
  }

  it('control: the valid token verifies', async () => {
    expect(await outcome(valid())).toBe('verified');
  });

  it('arbitrary strings are refused as invalid (never a 500, never verified)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 100 }), fc.array(fc.base64String({ maxLength: 60 }), { minLength: 1, maxLength: 6 }).map((p) => p.join('.'))), async (token) => {
        expect(REFUSALS.has(await outcome(token))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('JWT-shaped tokens with trusted claims, any header and a random signature are refused', async () => {
    const header = fc.record(
      { alg: fc.oneof(fc.constantFrom('none', 'None', 'HS256', 'RS256', 'ES256', 'PS256', 'EdDSA', 'RS1'), fc.string({ maxLength: 8 })), kid: fc.oneof(fc.constant('k1'), fc.string({ maxLength: 8 })), typ: fc.constantFrom('JWT', 'at+jwt'), jku: fc.constant('https://evil.example.com/jwks'), crit: fc.constant(['exp']) },
      { requiredKeys: ['alg'] },
    );
    await fc.assert(
      fc.asyncProperty(header, fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), fc.uint8Array({ minLength: 0, maxLength: 300 }), async (h, extra, signature) => {
        const token = `${b64(h)}.${b64({ ...extra, ...claims() })}.${Buffer.from(signature).toString('base64url')}`;
        expect(REFUSALS.has(await outcome(token))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('a valid token with any one character changed verifies only if its bytes did not change', async () => {
    const token = valid();
    const decoded = (t: string) => t.split('.').map((part) => Buffer.from(part, 'base64url').toString('hex')).join('.');
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: token.length - 1 }), fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ '.split('')), async (at, ch) => {
        const mutated = `${token.slice(0, at)}${ch}${token.slice(at + 1)}`;
        if (mutated === token) return;
        const result = await outcome(mutated);
        // base64url's last character can carry unused bits: a change there that decodes to the same bytes
        // is the same token. Any change to the bytes must be refused.
        if (decoded(mutated) === decoded(token) && !/[=+/ ]/.test(ch) && mutated.split('.').length === 3) return;
        expect(REFUSALS.has(result)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('trusted claims signed by any other key are refused', async () => {
    const others = Array.from({ length: 4 }, () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: others.length - 1 }), fc.constantFrom('k1', 'k2', ''), async (i, kid) => {
        const token = signRaw(JSON.stringify(kid === '' ? { alg: 'RS256' } : { alg: 'RS256', kid }), JSON.stringify(claims()), others[i]!);
        expect(REFUSALS.has(await outcome(token))).toBe(true);
      }),
      { numRuns: Math.min(RUNS, 100) },
    );
  });
});
