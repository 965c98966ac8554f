/**
 * Revocation watermarks on the in-memory store with an injected clock: what each kind covers, that a later
 * cut-off is never lowered, the TTL (until nothing covered can be alive), the time rules, and enforcement
 * in CredentialService (sessions and the cache) and in browser and terminal sessions.
 */
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { CredentialService } from '../../src/credentials/credential-service.js';
import { longestCoveredLifetimeSeconds, parseIssuedBefore, RevocationRequestError, RevocationWatermarks, revocationTarget, type RevocationTarget } from '../../src/credentials/revocations.js';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { generateSigningKeys, type SigningKeySet } from '../../src/credentials/signing-keys.js';
import { RoleCatalog } from '../../src/domain/role-catalog.js';
import type { CredentialRequest } from '../../src/domain/types.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { isRevoked } from '../../src/idp/terminal-login.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { storeKeys } from '../../src/store/keys.js';
import { ACCOUNT_ID } from '../support/common.js';

const MAX_LIFETIME_S = 3600;
const SKEW_MS = 60_000;

let clock: number;
let store: MemoryStore;
let revocations: RevocationWatermarks;

beforeEach(() => {
  clock = Date.UTC(2026, 10, 26, 12, 0, 0, 250);
  store = new MemoryStore({ prefix: 't:', now: () => clock });
  revocations = new RevocationWatermarks({ store, maxLifetimeSeconds: MAX_LIFETIME_S, now: () => clock });
});

const alice = { source: 'google', subject: 'alice', role: 'deployer' };

describe('RevocationWatermarks', () => {
  it.each<[string, RevocationTarget, { source: string; subject: string; role?: string }, boolean]>([
    ['all covers anyone', { kind: 'all' }, alice, true],
    ['all covers a browser session (no role)', { kind: 'all' }, { source: 'google', subject: 'alice' }, true],
    ['a role covers its sessions', { kind: 'role', role: 'deployer' }, alice, true],
    ['a role does not cover another role', { kind: 'role', role: 'reader' }, alice, false],
    ['a role does not cover a browser session', { kind: 'role', role: 'deployer' }, { source: 'google', subject: 'alice' }, false],
    ['a subject of a source covers it', { kind: 'subject', source: 'google', subject: 'alice' }, alice, true],
    ['a subject of another source does not', { kind: 'subject', source: 'github', subject: 'alice' }, alice, false],
    ['a subject of any source covers every source', { kind: 'subject', subject: 'alice' }, { ...alice, source: 'github' }, true],
    ['another subject does not', { kind: 'subject', subject: 'bob' }, alice, false],
    ['a subject with the separator in it is its own key', { kind: 'subject', source: 'google', subject: 'alice:x' }, alice, false],
  ])('%s', async (_name, target, party, covered) => {
    await revocations.revoke(target, { by: 'test' });
    expect(await revocations.covering({ ...party, issuedAtMs: clock - 1 })).toEqual(covered ? expect.objectContaining({ kind: target.kind }) : undefined);
  });

  it('covers what was issued strictly before the cut-off, to the millisecond: a set issued in the same second after it is not', async () => {
    await revocations.revoke({ kind: 'all' }, { by: 'test' });
    expect(await revocations.covering({ ...alice, issuedAtMs: clock - 1 })).toBeDefined();
    expect(await revocations.covering({ ...alice, issuedAtMs: clock })).toBeUndefined();
    expect(await revocations.covering({ ...alice, issuedAtMs: clock + 1 })).toBeUndefined();
  });

  it('keeps the later of two cut-offs: an earlier one written afterwards never lowers it', async () => {
    await revocations.revoke({ kind: 'role', role: 'deployer' }, { by: 'first', reason: 'incident 1' });
    const earlier = await revocations.revoke({ kind: 'role', role: 'deployer' }, { by: 'second', issuedBeforeMs: clock - 600_000 });
    expect(earlier.watermark).toMatchObject({ by: 'first', reason: 'incident 1', issued_before: new Date(clock).toISOString() });
    clock += 5_000;
    const later = await revocations.revoke({ kind: 'role', role: 'deployer' }, { by: 'third' });
    expect(later.watermark).toMatchObject({ by: 'third', issued_before: new Date(clock).toISOString() });
  });

  it('keeps its key until nothing it covers can be alive: (issued_before - now) + longest lifetime + skew, then it is gone', async () => {
    const now = await revocations.revoke({ kind: 'all' }, { by: 'test' });
    expect(now.ttlMs).toBe(MAX_LIFETIME_S * 1000 + SKEW_MS);
    expect(await store.ttl(storeKeys.revocationAll())).toBe(MAX_LIFETIME_S * 1000 + SKEW_MS);
    const older = await revocations.revoke({ kind: 'subject', subject: 'bob' }, { by: 'test', issuedBeforeMs: clock - 1_800_000 });
    expect(older.ttlMs).toBe(1_800_000 + SKEW_MS);
    clock += 1_800_000 + SKEW_MS - 1;
    expect(await revocations.covering({ source: 'x', subject: 'bob', issuedAtMs: 0 })).toBeDefined();
    clock += 1;
    expect(await store.get(storeKeys.revocationSubjectAnySource('bob'))).toBeUndefined();
    expect((await revocations.list()).map((w) => w.watermark.kind)).toEqual(['all']);
  });

  it('an earlier cut-off written later leaves the longer TTL in place', async () => {
    await revocations.revoke({ kind: 'all' }, { by: 'test' });
    const again = await revocations.revoke({ kind: 'all' }, { by: 'test', issuedBeforeMs: clock - 1_000_000 });
    expect(again.ttlMs).toBe(MAX_LIFETIME_S * 1000 + SKEW_MS);
  });

  it.each<[string, number, string | undefined]>([
    ['a time up to the skew ahead counts as now', SKEW_MS, undefined],
    ['a time beyond the skew ahead is refused', SKEW_MS + 1, 'in the future'],
    ['a time so old nothing covered is alive is refused', -(MAX_LIFETIME_S * 1000 + SKEW_MS), 'nothing issued before it is still alive'],
  ])('%s', async (_name, offsetMs, refusal) => {
    const writing = revocations.revoke({ kind: 'all' }, { by: 'test', issuedBeforeMs: clock + offsetMs });
    if (refusal === undefined) {
      expect((await writing).watermark.issued_before).toBe(new Date(clock).toISOString());
    } else {
      await expect(writing).rejects.toThrow(refusal);
      expect(await store.get(storeKeys.revocationAll())).toBeUndefined();
    }
  });

  it('lists live watermarks with their TTL, latest first', async () => {
    await revocations.revoke({ kind: 'subject', source: 'google', subject: 'alice' }, { by: 'cli:ops', reason: 'left the company', issuedBeforeMs: clock - 1000 });
    await revocations.revoke({ kind: 'role', role: 'deployer' }, { by: 'admin-api:pager' });
    expect(await revocations.list()).toEqual([
      { watermark: expect.objectContaining({ kind: 'role', role: 'deployer', by: 'admin-api:pager' }), ttlMs: MAX_LIFETIME_S * 1000 + SKEW_MS },
      { watermark: expect.objectContaining({ kind: 'subject', source: 'google', subject: 'alice', reason: 'left the company' }), ttlMs: MAX_LIFETIME_S * 1000 + SKEW_MS - 1000 },
    ]);
  });

  it('treats a value that is not a watermark as covering everything (fail closed)', async () => {
    await store.set(storeKeys.revocationAll(), 'garbage', 60_000);
    expect(await revocations.covering({ ...alice, issuedAtMs: clock })).toBeDefined();
  });

  it('the longest covered lifetime: the longest role, and browser sessions only when browser logins exist', () => {
    const roles = [{ maxSessionSeconds: 900 }, { maxSessionSeconds: 7200 }] as never;
    expect(longestCoveredLifetimeSeconds({ roles, providers: [], browser: { sessionTtlSeconds: 28_800, allowedReturnOrigins: [], cookieName: 'c' } })).toBe(7200);
    expect(longestCoveredLifetimeSeconds({ roles, providers: [{}] as never, browser: { sessionTtlSeconds: 28_800, allowedReturnOrigins: [], cookieName: 'c' } })).toBe(28_800);
  });
});

describe('revocation requests', () => {
  const config = { roles: [{ name: 'deployer' }], providers: [{ id: 'google' }], issuers: [{ id: 'ci' }] } as never;
  it.each<[string, Parameters<typeof revocationTarget>[1], RevocationTarget | string]>([
    ['a subject', { subject: 'alice' }, { kind: 'subject', subject: 'alice' }],
    ['a subject of a provider', { subject: 'alice', source: 'google' }, { kind: 'subject', subject: 'alice', source: 'google' }],
    ['a subject of an issuer', { subject: 'repo:acme/app', source: 'ci' }, { kind: 'subject', subject: 'repo:acme/app', source: 'ci' }],
    ['a role', { role: 'deployer' }, { kind: 'role', role: 'deployer' }],
    ['all', { all: true }, { kind: 'all' }],
    ['nothing', {}, 'exactly one'],
    ['two targets', { role: 'deployer', all: true }, 'exactly one'],
    ['an unknown role', { role: 'root' }, 'is not configured'],
    ['an unknown source', { subject: 'alice', source: 'okta' }, 'not a configured provider or issuer'],
    ['a source alone', { source: 'google', all: true }, 'give the subject too'],
    ['a subject with a newline', { subject: 'alice\nevent=forged' }, 'printable'],
  ])('%s', (_name, request, expected) => {
    if (typeof expected === 'string') expect(() => revocationTarget(config, request)).toThrow(expected);
    else expect(revocationTarget(config, request)).toEqual(expected);
  });

  it.each<[string, number | undefined | 'refused']>([
    ['now', undefined],
    ['2026-11-26T12:00:00Z', Date.UTC(2026, 10, 26, 12)],
    ['2026-11-26T13:00:00.5+01:00', Date.UTC(2026, 10, 26, 12, 0, 0, 500)],
    ['2026-11-26T12:00:00', 'refused'],
    ['yesterday', 'refused'],
    ['1764158400000', 'refused'],
  ])('issued_before %s', (text, expected) => {
    if (expected === 'refused') expect(() => parseIssuedBefore(text)).toThrow(RevocationRequestError);
    else expect(parseIssuedBefore(text)).toBe(expected);
  });
});

describe('enforcement', () => {
  let keys: SigningKeySet;
  let service: CredentialService;
  const roles = new RoleCatalog(ACCOUNT_ID, [{ name: 'deployer', scopes: ['deploy:write'], audiences: ['api.example.com'], maxSessionSeconds: 3600, canAssume: [], sessionTags: {} }]);
  const request: CredentialRequest = { identity: { source: 'ci', subject: 'repo:acme/app', claims: {} }, role: roles.byName('deployer')!, durationSeconds: 3600, sessionName: 'ci' };

  beforeEach(async () => {
    keys ??= await generateSigningKeys('ES256');
    service = new CredentialService({ store, keys: { set: keys }, box: new SecretBox(randomBytes(32)), issuer: 'https://sts.example.com', accountId: ACCOUNT_ID, cacheMinRemainingFraction: 0.5, now: () => clock, revocations });
  });

  it('a covered session: findSession says ExpiredToken, the access token is invalid_grant, the cache issues a fresh set that works', async () => {
    const before = await service.issue(request);
    expect((await service.issue(request)).sessionId).toBe(before.sessionId);
    clock += 1;
    await revocations.revoke({ kind: 'subject', source: 'ci', subject: 'repo:acme/app' }, { by: 'test' });

    await expect(service.findSession(before.sessionId)).rejects.toMatchObject({ code: 'ExpiredToken', message: 'The security token included in the request is expired' });
    await expect(service.verifyAccessToken(before.accessToken)).rejects.toMatchObject({ code: 'invalid_grant' });

    // Same millisecond as the revocation: still issued after it, so not covered.
    const after = await service.issue(request);
    expect(after.cached).toBe(false);
    expect(after.sessionId).not.toBe(before.sessionId);
    expect((await service.findSession(after.sessionId))?.info.sessionId).toBe(after.sessionId);
    expect((await service.issue(request)).sessionId).toBe(after.sessionId);
  });

  it('a set made by a replica whose clock is behind the cut-off is still stamped after it', async () => {
    await revocations.revoke({ kind: 'all' }, { by: 'test', issuedBeforeMs: clock + 30_000 });
    const set = await service.issue(request);
    expect(set.session.iatMs).toBe(clock);
    expect(await service.findSession(set.sessionId)).toBeDefined();
  });

  it('a store failure on the check fails closed with ServiceUnavailable', async () => {
    const set = await service.issue(request);
    await store.close();
    await expect(service.findSession(set.sessionId)).rejects.toBeInstanceOf(GatewayError);
    await expect(service.findSession(set.sessionId)).rejects.toMatchObject({ code: 'ServiceUnavailable' });
  });

  it.each<[string, RevocationTarget, boolean]>([
    ['subject', { kind: 'subject', subject: 'alice' }, true],
    ['role', { kind: 'role', role: 'deployer' }, false],
    ['all', { kind: 'all' }, true],
  ])('a browser or terminal session of a revoked %s ends: %s', async (_name, target, ends) => {
    const session = { identity: { source: 'google', subject: 'alice', claims: {} }, createdAt: clock - 1 };
    expect(await isRevoked(revocations, session)).toBe(false);
    await revocations.revoke(target, { by: 'test' });
    expect(await isRevoked(revocations, session)).toBe(ends);
    expect(await isRevoked(revocations, { ...session, createdAt: clock })).toBe(false);
  });
});
