/**
 * The OpenID Provider's adapter on both stores (memory and the real Redis): the contract oidc-provider
 * relies on (upsert/find/consume/destroy, by uid and by user code, grant revocation), with a TTL on every
 * key and nothing in the store that hands out a token.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { StoreAdapter } from '../../src/op/store-adapter.js';
import { createStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/store.js';
import { REDIS_URL, redisStoreConfig } from '../support/gateway.js';

const redisConfig = redisStoreConfig();
const stores: [string, Store][] = [
  ['memory', createStore({ kind: 'memory', prefix: 'stsgate:' })],
  ['redis', createStore(redisConfig)],
];
const redis = new Redis(REDIS_URL);
afterAll(async () => {
  await Promise.all(stores.map(([, store]) => store.close()));
  redis.disconnect();
});

describe.each(stores)('StoreAdapter on the %s store', (kind, store) => {
  const box = new SecretBox(randomBytes(32));
  const adapter = (model: string) => new StoreAdapter(model, { store, box, maxTtlSeconds: 3600 });

  it('stores, finds and destroys a record; an unknown id is undefined', async () => {
    const codes = adapter('AuthorizationCode');
    await codes.upsert('code-1', { jti: 'code-1', grantId: 'g-1', accountId: 'google:1001' }, 60);
    expect(await codes.find('code-1')).toEqual({ jti: 'code-1', grantId: 'g-1', accountId: 'google:1001' });
    expect(await codes.find('code-2')).toBeUndefined();
    expect(await adapter('AccessToken').find('code-1')).toBeUndefined();
    await codes.destroy('code-1');
    expect(await codes.find('code-1')).toBeUndefined();
  });

  it('consume marks the record; a second consume is refused and revokes the grant', async () => {
    const codes = adapter('AuthorizationCode');
    const tokens = adapter('RefreshToken');
    await codes.upsert('code-c', { jti: 'code-c', grantId: 'g-c' }, 60);
    await tokens.upsert('rt-c', { jti: 'rt-c', grantId: 'g-c' }, 600);
    await codes.consume('code-c');
    expect((await codes.find('code-c'))?.consumed).toBeTruthy();
    // Rewriting the record does not undo the mark.
    await codes.upsert('code-c', { jti: 'code-c', grantId: 'g-c' }, 60);
    expect((await codes.find('code-c'))?.consumed).toBeTruthy();
    await expect(codes.consume('code-c')).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await tokens.find('rt-c')).toBeUndefined();
  });

  it('revokeByGrantId voids every token of the grant, not another grant', async () => {
    const access = adapter('AccessToken');
    await access.upsert('at-1', { jti: 'at-1', grantId: 'g-r' }, 600);
    await access.upsert('at-2', { jti: 'at-2', grantId: 'g-other' }, 600);
    await adapter('RefreshToken').revokeByGrantId('g-r');
    expect(await access.find('at-1')).toBeUndefined();
    expect(await access.find('at-2')).toBeDefined();
  });

  it('finds a session by uid and a device code by user code; destroy drops the indexes', async () => {
    const sessions = adapter('Session');
    await sessions.upsert('cookie-1', { jti: 'cookie-1', uid: 'uid-1', accountId: 'github:1' }, 600);
    expect(await sessions.findByUid('uid-1')).toMatchObject({ jti: 'cookie-1' });
    await sessions.destroy('cookie-1');
    expect(await sessions.findByUid('uid-1')).toBeUndefined();
    const devices = adapter('DeviceCode');
    await devices.upsert('dc-1', { jti: 'dc-1', userCode: 'BCDFGHJK', clientId: 'kubelogin' }, 600);
    expect(await devices.findByUserCode('BCDFGHJK')).toMatchObject({ jti: 'dc-1' });
    expect(await devices.findByUserCode('BCDFGHJL')).toBeUndefined();
  });

  it('a record without expiresIn still gets a TTL (the longest)', async () => {
    await adapter('Grant').upsert('grant-x', { jti: 'grant-x' });
    await adapter('Grant').upsert('grant-y', { jti: 'grant-y' }, 10 * 86_400);
    const ttl = await store.ttl(`op:Grant:{${(await import('../../src/store/records.js')).secretDigest('grant-x')}}`);
    expect(ttl).toBeGreaterThan(3_500_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
  });

  // Redis only: the memory store has no keys to list (a structural case, not a skip).
  if (kind === 'redis') it('every key has a TTL, and no key or value holds a token id or a payload in clear', async () => {
    const sessions = adapter('Session');
    await sessions.upsert('secret-cookie-value', { jti: 'secret-cookie-value', uid: 'secret-uid', accountId: 'okta:c-1' }, 600);
    const keys = await redis.keys(`${redisConfig.prefix}op:*`);
    expect(keys.length).toBeGreaterThan(3);
    for (const key of keys) {
      expect(await redis.pttl(key), key).toBeGreaterThan(0);
      const value = (await redis.get(key)) ?? '';
      for (const secret of ['secret-cookie-value', 'secret-uid', 'okta:c-1', 'code-1', 'rt-c']) {
        expect(key).not.toContain(secret);
        expect(value).not.toContain(secret);
      }
    }
  });
});
