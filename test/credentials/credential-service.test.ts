/** CredentialService on the in-memory store with an injected clock: caching by half-lifetime, storage at rest, revocation. */
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeEach, describe, expect, it } from 'vitest';
import { CredentialService, rootIdentityOf } from '../../src/credentials/credential-service.js';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { generateSigningKeys, type SigningKeySet } from '../../src/credentials/signing-keys.js';
import { RoleCatalog } from '../../src/domain/role-catalog.js';
import type { CredentialRequest } from '../../src/domain/types.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { storeKeys } from '../../src/store/keys.js';
import { ACCOUNT_ID } from '../support/common.js';

const roles = new RoleCatalog(ACCOUNT_ID, [
  { name: 'deployer', scopes: ['deploy:write', 'logs:read'], audiences: ['api.example.com'], maxSessionSeconds: 3600, canAssume: [], sessionTags: { repo: 'claims.repository', who: 'subject', bad: 'claims.obj' } },
]);
const role = roles.byName('deployer')!;
const identity = { source: 'ci', subject: 'repo:acme/app', claims: { repository: 'acme/app', obj: { nested: true } } };

let clock: number;
let store: MemoryStore;
let keys: SigningKeySet;
let service: CredentialService;

beforeEach(async () => {
  clock = Date.UTC(2026, 10, 26, 12, 0, 0);
  store = new MemoryStore({ prefix: 't:', now: () => clock });
  keys ??= await generateSigningKeys('ES256');
  service = new CredentialService({ store, keys: { set: keys }, box: new SecretBox(randomBytes(32)), issuer: 'https://sts.example.com', accountId: ACCOUNT_ID, cacheMinRemainingFraction: 0.5, now: () => clock });
});

const request = (overrides: Partial<CredentialRequest> = {}): CredentialRequest => ({ identity, role, durationSeconds: 3600, sessionName: 'ci', ...overrides });

describe('CredentialService', () => {
  it('mints an access token with the documented claims and AWS-style keys with one expiry', async () => {
    const set = await service.issue(request());
    const claims = decodeJwt(set.accessToken);
    expect(claims).toMatchObject({ iss: 'https://sts.example.com', sub: 'ci:repo:acme/app', aud: ['api.example.com'], role: 'deployer', scope: 'deploy:write logs:read', sid: set.sessionId, idp: 'ci', repo: 'acme/app', who: 'repo:acme/app' });
    expect(claims).not.toHaveProperty('bad');
    expect(claims.exp).toBe(Math.floor(clock / 1000) + 3600);
    expect(set.expiresAt.getTime()).toBe(claims.exp! * 1000);
    expect(set.accessKeyId).toBe(`ASIA${set.sessionId}`);
    expect(set.secretAccessKey).toMatch(/^[A-Za-z0-9+/]{40}$/);
  });

  it.each(['ES256', 'EdDSA', 'RS256'] as const)('%s: its access token verifies with jose against the published JWKS, header and claims in the shape jose wrote them', async (alg) => {
    const algKeys = await generateSigningKeys(alg);
    const signer = new CredentialService({ store, keys: { set: algKeys }, box: new SecretBox(randomBytes(32)), issuer: 'https://sts.example.com', accountId: ACCOUNT_ID, cacheMinRemainingFraction: 0.5, now: () => clock });
    const set = await signer.issue(request());
    const { payload, protectedHeader } = await jwtVerify(set.accessToken, createLocalJWKSet(algKeys.jwks(clock)), {
      issuer: 'https://sts.example.com',
      audience: 'api.example.com',
      typ: 'at+jwt',
      algorithms: [alg],
      currentDate: new Date(clock),
    });
    const kid = algKeys.current(clock).kid;
    expect(protectedHeader).toEqual({ alg, kid, typ: 'at+jwt' });
    expect(Object.keys(decodeProtectedHeader(set.accessToken))).toEqual(['alg', 'kid', 'typ']);
    // Session tags first, then the claims in the order SignJWT's setters added them.
    expect(Object.keys(payload)).toEqual(['repo', 'who', 'role', 'scope', 'sid', 'idp', 'iss', 'sub', 'aud', 'iat', 'nbf', 'exp', 'jti']);
    expect(payload.iat).toBe(Math.floor(clock / 1000));
    expect(payload.nbf).toBe(payload.iat);
    // And the service's own verification (introspection) accepts it.
    await expect(signer.verifyAccessToken(set.accessToken)).resolves.toMatchObject({ payload: { sid: set.sessionId } });
  });

  it('reuses the cached set while at least half of its lifetime remains, then mints a new one', async () => {
    const first = await service.issue(request());
    clock += 1799_000;
    const second = await service.issue(request());
    expect(second.cached).toBe(true);
    expect(second.accessToken).toBe(first.accessToken);
    clock += 2_000;
    const third = await service.issue(request());
    expect(third.cached).toBe(false);
    expect(third.sessionId).not.toBe(first.sessionId);
  });

  it.each([
    ['another scope', { scopes: ['logs:read'] }],
    ['another session name', { sessionName: 'other' }],
    ['another subject', { identity: { ...identity, subject: 'repo:acme/other' } }],
    ['a shorter duration than the cached set has left', { durationSeconds: 900 }],
  ])('does not reuse the cached set for %s', async (_name, overrides) => {
    const first = await service.issue(request());
    const other = await service.issue(request(overrides));
    expect(other.cached).toBe(false);
    expect(other.sessionId).not.toBe(first.sessionId);
  });

  it('keeps no secret in the clear in the store, and every record has a TTL equal to its lifetime', async () => {
    const set = await service.issue(request());
    const raw = (await store.get(storeKeys.session(set.sessionId)))!;
    for (const secret of [set.secretAccessKey, set.sessionToken, set.accessToken]) expect(raw).not.toContain(secret);
    expect(await store.ttl(storeKeys.session(set.sessionId))).toBe(3600_000);
  });

  it('stores a record that is exactly the JSON of its parsed form (the seal context is rebuilt from it)', async () => {
    const set = await service.issue(request());
    const raw = (await store.get(storeKeys.session(set.sessionId)))!;
    const parsed = JSON.parse(raw) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['info', 'sealed', 'cacheKey']);
    expect(JSON.stringify(parsed)).toBe(raw);
    expect(await store.get(storeKeys.credentialCache(parsed.cacheKey as string))).toBe(raw);
  });

  it('a stored record moved under another session id does not open', async () => {
    const a = await service.issue(request());
    const b = await service.issue(request({ sessionName: 'other' }));
    const rawA = (await store.get(storeKeys.session(a.sessionId)))!;
    const forged = JSON.parse(rawA) as { info: { sessionId: string } };
    forged.info.sessionId = b.sessionId;
    await store.set(storeKeys.session(b.sessionId), JSON.stringify(forged), 60_000);
    expect(await service.findSession(b.sessionId)).toBeUndefined();
  });

  it.each([
    ['its role', (info: Record<string, unknown>) => ({ ...info, role: 'admin' })],
    ['its scopes', (info: Record<string, unknown>) => ({ ...info, scopes: ['admin:*'] })],
    ['its expiry', (info: Record<string, unknown>) => ({ ...info, exp: (info.exp as number) + 86_400 })],
  ])('a stored record whose %s was changed in the store does not open (store write access grants nothing)', async (_name, change) => {
    const set = await service.issue(request());
    // Read (and remembered) before the change: what was opened before says nothing about the new text.
    expect(await service.findSession(set.sessionId)).toBeDefined();
    const key = storeKeys.session(set.sessionId);
    const stored = JSON.parse((await store.get(key))!) as { info: Record<string, unknown> };
    await store.set(key, JSON.stringify({ ...stored, info: change(stored.info) }), 60_000);
    expect(await service.findSession(set.sessionId)).toBeUndefined();
    await expect(service.verifyAccessToken(set.accessToken)).rejects.toMatchObject({ code: 'InvalidIdentityToken' });
  });

  it('revocation removes the session and its cache entry', async () => {
    const set = await service.issue(request());
    expect(await service.findSession(set.sessionId)).toBeDefined();
    expect((await service.issue(request())).cached).toBe(true);
    expect(await service.revoke(set.sessionId)).toBe(true);
    expect(await service.findSession(set.sessionId)).toBeUndefined();
    const next = await service.issue(request());
    expect(next.cached).toBe(false);
    await expect(service.verifyAccessToken(set.accessToken)).rejects.toMatchObject({ code: 'InvalidIdentityToken' });
  });

  it('a session read again is the same, read-only: no caller can change what the next request sees', async () => {
    const set = await service.issue(request());
    const first = (await service.findSession(set.sessionId))!;
    const second = (await service.findSession(set.sessionId))!;
    expect(second).toEqual(first);
    expect(() => (first.info as { role: string }).role = 'admin').toThrow(TypeError);
    expect(() => (first.info.scopes as string[]).push('admin:*')).toThrow(TypeError);
    expect((await service.findSession(set.sessionId))!.info.role).toBe('deployer');
  });

  it('sessions end with their TTL', async () => {
    const set = await service.issue(request({ durationSeconds: 900 }));
    expect(await service.findSession(set.sessionId)).toBeDefined();
    await service.verifyAccessToken(set.accessToken);
    clock += 900_000;
    expect(await service.findSession(set.sessionId)).toBeUndefined();
    await expect(service.verifyAccessToken(set.accessToken)).rejects.toMatchObject({ code: 'ExpiredTokenException' });
  });

  it('a chained session ends at notAfter, records its ancestors root first, and keeps no claims; its root keeps them sealed', async () => {
    const root = await service.issue(request({ durationSeconds: 900 }));
    const child = await service.issue(request({ sessionName: 'child', ancestorSessionIds: [root.sessionId], notAfter: root.session.exp }));
    const grandchild = await service.issue(request({ sessionName: 'grandchild', ancestorSessionIds: [root.sessionId, child.sessionId], notAfter: child.session.exp }));
    expect(grandchild.session).toMatchObject({ parentSessionId: child.sessionId, ancestorSessionIds: [root.sessionId, child.sessionId], chainDepth: 2, exp: root.session.exp });
    expect(await store.ttl(storeKeys.session(grandchild.sessionId))).toBe(900_000);
    const found = (await service.findSession(grandchild.sessionId))!;
    expect(found.ancestors.map((a) => a.info.sessionId)).toEqual([root.sessionId, child.sessionId]);
    expect(found.secrets.identityClaims).toBeUndefined();
    expect(found.ancestors[0]!.secrets.identityClaims).toEqual(identity.claims);
    expect(rootIdentityOf(found)).toEqual(identity);
    expect(await store.get(storeKeys.session(root.sessionId))).not.toContain('"nested"');
  });

  it.each([
    ['the root is revoked', (ids: string[]) => service.revoke(ids[0]!)],
    ['the middle session is revoked', (ids: string[]) => service.revoke(ids[1]!)],
    ['the root record is changed in the store', async (ids: string[]) => {
      const key = storeKeys.session(ids[0]!);
      const stored = JSON.parse((await store.get(key))!) as { info: Record<string, unknown> };
      await store.set(key, JSON.stringify({ ...stored, info: { ...stored.info, role: 'admin' } }), 60_000);
    }],
  ])('a chained session ends when %s: not found, its access token refused, its cached set not handed out', async (_name, end) => {
    const root = await service.issue(request());
    const child = await service.issue(request({ sessionName: 'child', ancestorSessionIds: [root.sessionId], notAfter: root.session.exp }));
    const chained = request({ sessionName: 'grandchild', ancestorSessionIds: [root.sessionId, child.sessionId], notAfter: child.session.exp });
    const grandchild = await service.issue(chained);
    expect((await service.issue(chained)).cached).toBe(true);
    await end([root.sessionId, child.sessionId]);
    expect(await service.findSession(grandchild.sessionId)).toBeUndefined();
    await expect(service.verifyAccessToken(grandchild.accessToken)).rejects.toMatchObject({ code: 'InvalidIdentityToken' });
    expect((await service.issue(chained)).sessionId).not.toBe(grandchild.sessionId);
  });

  it('refuses to issue a chained session whose chain has ended', async () => {
    await expect(service.issue(request({ ancestorSessionIds: ['AAAAAAAAAAAAAAAA'], notAfter: Math.floor(clock / 1000) }))).rejects.toMatchObject({ code: 'ExpiredToken' });
  });

  it('reads its own session tokens and nothing else', async () => {
    const set = await service.issue(request());
    expect(service.readSessionToken(set.sessionToken)).toEqual({ sessionId: set.sessionId, exp: Math.floor(set.expiresAt.getTime() / 1000) });
    expect(service.readSessionToken(`${set.sessionToken}x`)).toBeUndefined();
    expect(service.readSessionToken('a.b.c')).toBeUndefined();
  });
});
