/**
 * TokenExchange on its own: the real CredentialService on the in-memory store with an injected clock,
 * the real rule engine and role catalog, and the real per-subject limiter; no gateway, no HTTP. Which
 * role, whether it is granted, the duration bounds, scope and audience narrowing, chaining (self-assume,
 * depth, lapsed grants, the root's expiry) and which refusal wins when the caller is also throttled.
 */
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RoleConfig, RuleConfig } from '../../src/config/types.js';
import { CredentialService, type LiveSession } from '../../src/credentials/credential-service.js';
import { MAX_CHAIN_DEPTH, TokenExchange, type ExchangeRequest, type ExchangeResult } from '../../src/credentials/exchange.js';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { generateSigningKeys, type SigningKeySet } from '../../src/credentials/signing-keys.js';
import { RoleCatalog } from '../../src/domain/role-catalog.js';
import type { Identity } from '../../src/domain/types.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { ExchangeRateLimits } from '../../src/limits/rate-limits.js';
import { compileRules } from '../../src/rules/index.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { ACCOUNT_ID } from '../support/common.js';

const role = (name: string, overrides: Partial<RoleConfig> = {}): RoleConfig => ({ name, scopes: [], audiences: [], maxSessionSeconds: 3600, canAssume: [], sessionTags: {}, ...overrides });

/** Today's configuration: deployer may become reader or itself; reader is a dead end; admin reaches deployer. */
const ROLES: RoleConfig[] = [
  role('deployer', { scopes: ['deploy:write', 'logs:read'], audiences: ['api.example.com', 'logs.example.com'], maxSessionSeconds: 7200, canAssume: ['reader', 'deployer'] }),
  role('reader', { scopes: ['logs:read'], audiences: ['logs.example.com'] }),
  role('admin', { scopes: ['admin'], audiences: ['api.example.com'], canAssume: ['deployer'] }),
];
const RULES: RuleConfig[] = [
  { name: 'main deploys', match: { source: 'ci', conditions: [{ claim: 'ref', op: 'equals', value: 'refs/heads/main', ignoreCase: false }] }, roles: ['deployer', 'reader'] },
  { name: 'ops read', match: { source: 'ci', conditions: [{ claim: 'team', op: 'equals', value: 'ops', ignoreCase: false }] }, roles: ['reader'] },
  { name: 'admins', match: { conditions: [{ claim: 'groups', op: 'contains', value: 'admins', ignoreCase: false }] }, roles: ['admin'] },
];

const MAIN: Identity = { source: 'ci', subject: 'repo:acme/app', claims: { ref: 'refs/heads/main' } };
const OPS: Identity = { source: 'ci', subject: 'ops-bot', claims: { team: 'ops' } };
const ADMIN: Identity = { source: 'corp', subject: 'alice', claims: { groups: ['admins'] } };
const NOBODY: Identity = { source: 'ci', subject: 'stranger', claims: { ref: 'refs/heads/dev' } };

const arn = (name: string, account = ACCOUNT_ID) => `arn:aws:iam::${account}:role/${name}`;

let clock: number;
let store: MemoryStore;
let keys: SigningKeySet;
let credentials: CredentialService;

beforeEach(async () => {
  clock = Date.UTC(2026, 10, 26, 12, 0, 0);
  store = new MemoryStore({ prefix: 'x:', now: () => clock });
  keys ??= await generateSigningKeys('ES256');
  credentials = new CredentialService({ store, keys: { set: keys }, box: new SecretBox(randomBytes(32)), issuer: 'https://sts.example.com', accountId: ACCOUNT_ID, cacheMinRemainingFraction: 0.5, now: () => clock });
});

/** A TokenExchange over the shared credential service, with the given configuration and an optional per-subject limit. */
function exchangeWith(config: { roles?: RoleConfig[]; rules?: RuleConfig[]; perSubjectPerMinute?: number } = {}): TokenExchange {
  const roles = config.roles ?? ROLES;
  const rules = compileRules({ rules: config.rules ?? RULES, roles });
  const limits = new ExchangeRateLimits(store, { perAddressPerMinute: 0, perSubjectPerMinute: config.perSubjectPerMinute ?? 0 }, () => clock);
  return new TokenExchange({
    roles: new RoleCatalog(ACCOUNT_ID, roles),
    credentials,
    admit: (identity) => limits.countSubject(identity),
    verifyWebIdentityToken: () => Promise.reject(new Error('these tests hand the identity to issueForIdentity')),
    grant: (identity, name) => rules.grant(identity, name),
    grantedRoles: (identity) => rules.evaluate(identity).roles,
  });
}

const ask = (overrides: Partial<ExchangeRequest> = {}): ExchangeRequest => ({ sessionName: 'unit', ...overrides });

/** The GatewayError `promise` rejects with (fails the test when it resolves or throws something else). */
async function refusal(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

/** A live session for `identity` as `role`, then opened as the SigV4 and token paths open it. */
async function liveSession(exchange: TokenExchange, identity: Identity, roleName: string, durationSeconds?: number): Promise<LiveSession> {
  const issued = await exchange.issueForIdentity(identity, ask({ role: roleName, ...(durationSeconds ? { durationSeconds } : {}) }));
  return (await credentials.findSession(issued.credentials.sessionId))!;
}

/** Chains from `parent` and opens the result, ready for the next hop. */
async function chained(exchange: TokenExchange, parent: LiveSession, request: ExchangeRequest): Promise<{ result: ExchangeResult; session: LiveSession }> {
  const result = await exchange.chain(parent, request);
  return { result, session: (await credentials.findSession(result.credentials.sessionId))! };
}

describe('TokenExchange.issueForIdentity: which role', () => {
  it.each<[string, Identity, string | undefined, string, string]>([
    ['the named role', MAIN, 'deployer', 'deployer', 'main deploys'],
    ['the role named by its ARN', MAIN, arn('reader'), 'reader', 'main deploys'],
    ['the role of a later rule', OPS, 'reader', 'reader', 'ops read'],
    ['no role named, one granted: that one', OPS, undefined, 'reader', 'ops read'],
    ['a rule with no source', ADMIN, undefined, 'admin', 'admins'],
  ])('%s', async (_name, identity, requested, expectedRole, expectedRule) => {
    const result = await exchangeWith().issueForIdentity(identity, ask(requested === undefined ? {} : { role: requested }));
    expect(result.role.name).toBe(expectedRole);
    expect(result.matchedRule).toBe(expectedRule);
    expect(result.identity).toBe(identity);
    expect(result.credentials.session).toMatchObject({ role: expectedRole, source: identity.source, subject: identity.subject, chainDepth: 0 });
  });

  it('no role named and several granted: invalid_target naming them, nothing guessed', async () => {
    const error = await refusal(exchangeWith().issueForIdentity(MAIN, ask()));
    expect(error.code).toBe('invalid_target');
    expect(error.message).toContain('several roles (deployer, reader)');
  });

  it.each<[string, Identity, string | undefined, string]>([
    ['a role no rule grants this identity', OPS, 'deployer', 'no rule grants role deployer'],
    ['an unknown role', MAIN, 'root', 'unknown role'],
    ['an ARN of another account', MAIN, arn('deployer', '210987654321'), 'unknown role'],
    ['a malformed ARN', MAIN, 'arn:aws:iam::deployer', 'unknown role'],
    ['no role named, none granted', NOBODY, undefined, 'unknown role'],
    ['a granted role asked for by another source', { ...MAIN, source: 'other' }, 'deployer', 'no rule grants role deployer'],
  ])('%s: AccessDenied worded alike, so probing learns nothing; nothing stored', async (_name, identity, requested, debug) => {
    const error = await refusal(exchangeWith().issueForIdentity(identity, ask(requested === undefined ? {} : { role: requested })));
    expect(error.code).toBe('AccessDenied');
    expect(error.message).toBe('Not authorized to perform sts:AssumeRoleWithWebIdentity');
    expect(error.debug).toBe(debug);
    expect(error.context).toMatchObject({ source: identity.source, subject: identity.subject });
    expect(error.context).not.toHaveProperty('granted');
    expect(store.rawKeys()).toEqual([]);
  });

  it('names the action it was asked for in the refusal', async () => {
    const error = await refusal(exchangeWith().issueForIdentity(OPS, ask({ role: 'admin' }), 'oauth:token-exchange'));
    expect(error.message).toBe('Not authorized to perform oauth:token-exchange');
  });
});

describe('TokenExchange.issueForIdentity: duration', () => {
  const lifetime = (result: ExchangeResult) => result.credentials.session.exp - result.credentials.session.iat;

  it.each<[string, string, number | undefined, number]>([
    ['default: one hour', 'deployer', undefined, 3600],
    ['default capped by a shorter role maximum', 'reader', undefined, 3600],
    ['the AWS minimum', 'deployer', 900, 900],
    ['the role maximum', 'deployer', 7200, 7200],
    ['in between', 'reader', 1800, 1800],
  ])('%s', async (_name, roleName, durationSeconds, expected) => {
    const result = await exchangeWith().issueForIdentity(MAIN, ask({ role: roleName, ...(durationSeconds === undefined ? {} : { durationSeconds }) }));
    expect(lifetime(result)).toBe(expected);
  });

  it('a default above a short role maximum is capped to it', async () => {
    const exchange = exchangeWith({ roles: ROLES.map((r) => (r.name === 'reader' ? { ...r, maxSessionSeconds: 1200 } : r)) });
    expect(lifetime(await exchange.issueForIdentity(OPS, ask({ role: 'reader' })))).toBe(1200);
  });

  it.each<[string, string, number, RegExp]>([
    ['below the AWS minimum', 'deployer', 899, /Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900/],
    ['zero', 'deployer', 0, /Value '0' at 'durationSeconds'/],
    ['negative', 'deployer', -3600, /Value '-3600' at 'durationSeconds'/],
    ['not an integer', 'deployer', 1800.5, /Value '1800.5' at 'durationSeconds'/],
    ['not a number', 'deployer', Number.NaN, /Value 'NaN' at 'durationSeconds'/],
    ['above the role maximum', 'reader', 3601, /exceeds the MaxSessionDuration set for this role \(3600 seconds\)/],
    ['above the longer role maximum', 'deployer', 7201, /\(7200 seconds\)/],
  ])('%s: ValidationError with the granted role in the audit context; nothing stored', async (_name, roleName, durationSeconds, message) => {
    const error = await refusal(exchangeWith().issueForIdentity(MAIN, ask({ role: roleName, durationSeconds })));
    expect(error.code).toBe('ValidationError');
    expect(error.message).toMatch(message);
    expect(error.context).toMatchObject({ role: roleName, granted: true });
    expect(store.rawKeys()).toEqual([]);
  });
});

describe('TokenExchange.issueForIdentity: scopes and audiences', () => {
  it.each<[string, Partial<ExchangeRequest>, string[], string[]]>([
    ['none asked: all of the role', {}, ['deploy:write', 'logs:read'], ['api.example.com', 'logs.example.com']],
    ['a subset of scopes', { scopes: ['logs:read'] }, ['logs:read'], ['api.example.com', 'logs.example.com']],
    ['a subset of audiences', { audiences: ['logs.example.com'] }, ['deploy:write', 'logs:read'], ['logs.example.com']],
    ['both narrowed', { scopes: ['deploy:write'], audiences: ['api.example.com'] }, ['deploy:write'], ['api.example.com']],
  ])('%s', async (_name, narrowing, scopes, audiences) => {
    const result = await exchangeWith().issueForIdentity(MAIN, ask({ role: 'deployer', ...narrowing }));
    expect(result.credentials.session).toMatchObject({ scopes, audiences });
  });

  it.each<[string, Partial<ExchangeRequest>, string, string]>([
    ['a scope the role lacks', { scopes: ['logs:read', 'admin'] }, 'invalid_scope', 'The role does not grant the requested scope: admin'],
    ['scopes of another role only', { scopes: ['admin', 'root'] }, 'invalid_scope', 'The role does not grant the requested scope: admin root'],
    ['an audience the role lacks', { audiences: ['evil.example.com'] }, 'invalid_target', 'The role does not grant the requested audience: evil.example.com'],
    ['a good scope, a bad audience', { scopes: ['logs:read'], audiences: ['api.example.com', 'x'] }, 'invalid_target', 'The role does not grant the requested audience: api.example.com x'],
  ])('%s: refused, never silently widened; nothing stored', async (_name, narrowing, code, message) => {
    const error = await refusal(exchangeWith().issueForIdentity(MAIN, ask({ role: 'reader', ...narrowing })));
    expect(error.code).toBe(code);
    expect(error.message).toBe(message);
    expect(error.context).toMatchObject({ role: 'reader', granted: true });
    expect(store.rawKeys()).toEqual([]);
  });
});

describe('TokenExchange.chain', () => {
  it.each<[string, string, string | undefined, string]>([
    ['to another role in can_assume', 'deployer', 'reader', 'reader'],
    ['by ARN', 'deployer', arn('reader'), 'reader'],
    ['to its own role when listed (narrowing)', 'deployer', 'deployer', 'deployer'],
    ['no role named: its own role, when listed', 'deployer', undefined, 'deployer'],
  ])('%s', async (_name, from, requested, expected) => {
    const exchange = exchangeWith();
    const parent = await liveSession(exchange, MAIN, from);
    const { result, session } = await chained(exchange, parent, ask(requested === undefined ? {} : { role: requested }));
    expect(result.role.name).toBe(expected);
    expect(session.info).toMatchObject({ role: expected, parentSessionId: parent.info.sessionId, ancestorSessionIds: [parent.info.sessionId], chainDepth: 1 });
    expect(session.ancestors.map((a) => a.info.sessionId)).toEqual([parent.info.sessionId]);
    // A chained session carries no claims of its own (they stay sealed in the root).
    expect(result.identity).toEqual({ source: MAIN.source, subject: MAIN.subject, claims: {} });
  });

  it.each<[string, string, string | undefined, string, 'invalid_grant' | 'invalid_target', string]>([
    ['its own role when not in its can_assume (self-assume)', 'reader', undefined, 'reader', 'invalid_target', 'role reader may not assume reader (itself: not in its can_assume)'],
    ['its own role named, not listed', 'admin', 'admin', 'admin', 'invalid_target', 'role admin may not assume admin (itself: not in its can_assume)'],
    ['a role outside its can_assume', 'reader', 'deployer', 'deployer', 'invalid_target', 'role reader may not assume deployer'],
    ['an unknown role', 'deployer', 'root', '', 'invalid_target', 'unknown role'],
    ['an ARN of another account', 'deployer', arn('reader', '210987654321'), '', 'invalid_target', 'unknown role'],
  ])('refuses %s: AccessDenied, nothing stored', async (_name, from, requested, target, oauthCode, debug) => {
    const exchange = exchangeWith();
    const parent = await liveSession(exchange, from === 'admin' ? ADMIN : MAIN, from);
    const before = store.rawKeys().sort();
    const error = await refusal(exchange.chain(parent, ask(requested === undefined ? {} : { role: requested })));
    expect(error.code).toBe('AccessDenied');
    expect(error.message).toBe(`User: ${parent.info.roleArn}/unit is not authorized to perform: sts:AssumeRole`);
    expect(error.oauthCode).toBe(oauthCode);
    expect(error.debug).toBe(debug);
    if (target) expect(error.context).toMatchObject({ role: target });
    expect(store.rawKeys().sort()).toEqual(before);
  });

  it(`goes ${MAX_CHAIN_DEPTH} hops deep and no deeper`, async () => {
    const exchange = exchangeWith();
    let session = await liveSession(exchange, MAIN, 'deployer');
    for (let hop = 1; hop <= MAX_CHAIN_DEPTH; hop++) {
      session = (await chained(exchange, session, ask({ sessionName: `hop-${hop}` }))).session;
      expect(session.info.chainDepth).toBe(hop);
    }
    const error = await refusal(exchange.chain(session, ask({ sessionName: 'one-too-many' })));
    expect(error.oauthCode).toBe('invalid_grant');
    expect(error.debug).toBe(`the chain is already ${MAX_CHAIN_DEPTH} hops deep (at most ${MAX_CHAIN_DEPTH})`);
  });

  // The path is checked before the new hop, so a lapsed grant is invalid_grant whatever the hop asks for.
  it.each<[string, { roles?: RoleConfig[]; rules?: RuleConfig[] }, string]>([
    ['the rules no longer grant the root its role', { rules: RULES.filter((rule) => rule.name !== 'main deploys') }, 'no rule grants the root identity role deployer any more'],
    ['the root role is gone', { roles: ROLES.filter((r) => r.name !== 'deployer'), rules: RULES.filter((rule) => rule.name !== 'main deploys') }, 'no rule grants the root identity role deployer any more'],
    ['a hop on the path left can_assume', { roles: ROLES.map((r) => (r.name === 'deployer' ? { ...r, canAssume: ['reader'] } : r)) }, 'role deployer may no longer assume deployer (hop 1 of the chain)'],
  ])('a chain whose grant lapsed since it was issued: %s (invalid_grant)', async (_name, today, debug) => {
    const yesterday = exchangeWith();
    const root = await liveSession(yesterday, MAIN, 'deployer');
    const { session: hop } = await chained(yesterday, root, ask({ role: 'deployer', sessionName: 'hop' }));
    const error = await refusal(exchangeWith(today).chain(hop, ask({ role: 'reader' })));
    expect(error.code).toBe('AccessDenied');
    expect(error.oauthCode).toBe('invalid_grant');
    expect(error.debug).toBe(debug);
  });

  it('the same chain passes when today still allows every hop (control for the lapsed cases)', async () => {
    const yesterday = exchangeWith();
    const root = await liveSession(yesterday, MAIN, 'deployer');
    const { session: hop } = await chained(yesterday, root, ask({ role: 'deployer', sessionName: 'hop' }));
    await expect(exchangeWith().chain(hop, ask({ role: 'reader' }))).resolves.toMatchObject({ role: { name: 'reader' } });
  });

  it.each<[string, number, number | undefined, number]>([
    ['a fresh root: one hour at most, as AWS', 7200, undefined, 3600],
    ['a shorter duration is kept', 7200, 900, 900],
    ['a root with 20 minutes left: ends with the root', 1200 + 600, undefined, 1200],
  ])('lifetime: %s', async (_name, rootSeconds, durationSeconds, expectedLifetime) => {
    const exchange = exchangeWith();
    const root = await liveSession(exchange, MAIN, 'deployer', rootSeconds);
    clock += 600_000;
    const { result } = await chained(exchange, root, ask({ role: 'reader', ...(durationSeconds === undefined ? {} : { durationSeconds }) }));
    expect(result.credentials.session.exp - Math.floor(clock / 1000)).toBe(expectedLifetime);
    expect(result.credentials.session.exp).toBeLessThanOrEqual(root.info.exp);
  });

  it('never outlives the earliest session on its path (notAfter), also several hops down', async () => {
    const exchange = exchangeWith();
    const root = await liveSession(exchange, MAIN, 'deployer', 1000);
    clock += 100_000;
    const { session: middle } = await chained(exchange, root, ask({ sessionName: 'middle' }));
    clock += 100_000;
    const { result } = await chained(exchange, middle, ask({ role: 'reader', sessionName: 'leaf' }));
    expect(result.credentials.session.exp).toBe(root.info.exp);
  });

  it.each<[string, number, string]>([
    ['above one hour', 3601, 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role (3600 seconds).'],
    ['below the AWS minimum', 899, "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"],
  ])('duration %s: ValidationError', async (_name, durationSeconds, message) => {
    const exchange = exchangeWith();
    const root = await liveSession(exchange, MAIN, 'deployer', 7200);
    const error = await refusal(exchange.chain(root, ask({ role: 'deployer', durationSeconds })));
    expect(error.code).toBe('ValidationError');
    expect(error.message).toBe(message);
  });

  it.each<[string, Partial<ExchangeRequest>, string, string]>([
    ['narrowing its own role cannot get back a scope it gave up', { scopes: ['deploy:write'] }, 'invalid_scope', 'The role does not grant the requested scope: deploy:write'],
    ['nor an audience it gave up', { audiences: ['api.example.com'] }, 'invalid_target', 'The role does not grant the requested audience: api.example.com'],
  ])('%s', async (_name, narrowing, code, message) => {
    const exchange = exchangeWith();
    const narrowed = await exchange.issueForIdentity(MAIN, ask({ role: 'deployer', scopes: ['logs:read'], audiences: ['logs.example.com'] }));
    const parent = (await credentials.findSession(narrowed.credentials.sessionId))!;
    const error = await refusal(exchange.chain(parent, ask({ role: 'deployer', ...narrowing })));
    expect(error.code).toBe(code);
    expect(error.message).toBe(message);
  });

  it('narrowing its own role keeps what it has and may shrink it; another role starts from that role', async () => {
    const exchange = exchangeWith();
    const narrowed = await exchange.issueForIdentity(MAIN, ask({ role: 'deployer', scopes: ['deploy:write', 'logs:read'], audiences: ['logs.example.com'] }));
    const parent = (await credentials.findSession(narrowed.credentials.sessionId))!;
    const same = await exchange.chain(parent, ask({ role: 'deployer', scopes: ['logs:read'] }));
    expect(same.credentials.session).toMatchObject({ scopes: ['logs:read'], audiences: ['logs.example.com'] });
    const other = await exchange.chain(parent, ask({ role: 'reader', sessionName: 'other' }));
    expect(other.credentials.session).toMatchObject({ scopes: ['logs:read'], audiences: ['logs.example.com'] });
  });
});

describe('TokenExchange: throttling takes precedence', () => {
  it.each<[string, Identity, Partial<ExchangeRequest>]>([
    ['over a granted request', MAIN, { role: 'deployer' }],
    ['over AccessDenied (a throttled caller learns nothing about its roles)', MAIN, { role: 'admin' }],
    ['over an unknown role', MAIN, { role: 'root' }],
    ['over a bad duration', MAIN, { role: 'deployer', durationSeconds: 10 }],
    ['over a bad scope', MAIN, { role: 'deployer', scopes: ['admin'] }],
    ['over several roles to choose from', MAIN, {}],
  ])('issueForIdentity, the limit spent: Throttling %s; nothing stored', async (_name, identity, request) => {
    const exchange = exchangeWith({ perSubjectPerMinute: 1 });
    await exchange.issueForIdentity(identity, ask({ role: 'reader' }));
    const stored = store.rawKeys().sort();
    const error = await refusal(exchange.issueForIdentity(identity, ask(request)));
    expect(error.code).toBe('Throttling');
    expect(error.headers['Retry-After']).toMatch(/^\d+$/);
    expect(error.context).toMatchObject({ source: identity.source, subject: identity.subject });
    expect(store.rawKeys().sort()).toEqual(stored);
  });

  it('a refused request is counted too (counted before anything is decided)', async () => {
    const exchange = exchangeWith({ perSubjectPerMinute: 1 });
    expect((await refusal(exchange.issueForIdentity(MAIN, ask({ role: 'admin' })))).code).toBe('AccessDenied');
    expect((await refusal(exchange.issueForIdentity(MAIN, ask({ role: 'deployer' })))).code).toBe('Throttling');
  });

  it('the count is per subject: another subject is not throttled', async () => {
    const exchange = exchangeWith({ perSubjectPerMinute: 1 });
    await exchange.issueForIdentity(MAIN, ask({ role: 'reader' }));
    await expect(exchange.issueForIdentity(OPS, ask({ role: 'reader' }))).resolves.toMatchObject({ role: { name: 'reader' } });
  });

  it('the window passes: admitted again', async () => {
    const exchange = exchangeWith({ perSubjectPerMinute: 1 });
    await exchange.issueForIdentity(MAIN, ask({ role: 'reader' }));
    clock += 60_000;
    await expect(exchange.issueForIdentity(MAIN, ask({ role: 'reader', sessionName: 'later' }))).resolves.toMatchObject({ role: { name: 'reader' } });
  });

  it.each<[string, Partial<ExchangeRequest>]>([
    ['a chain step that would be allowed', { role: 'reader' }],
    ['a role outside its can_assume', { role: 'admin' }],
    ['an unknown role', { role: 'root' }],
  ])('chain, the limit spent: Throttling over %s', async (_name, request) => {
    const exchange = exchangeWith({ perSubjectPerMinute: 1 });
    const parent = await liveSession(exchange, MAIN, 'deployer');
    const error = await refusal(exchange.chain(parent, ask(request)));
    expect(error.code).toBe('Throttling');
    expect(error.context).toMatchObject({ source: MAIN.source, subject: MAIN.subject });
  });
});
