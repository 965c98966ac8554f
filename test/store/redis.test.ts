import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../../src/store/redis/redis-store.js';
import { describeStoreContract, realClock } from './contract.js';
import { deleteByPrefix, redisRawView, uniquePrefix } from './redis-harness.js';

// A Redis that may be shared with other work: everything this file writes lies under a random prefix.
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = uniquePrefix();
const raw = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });

afterAll(async () => {
  await deleteByPrefix(raw, prefix);
  await raw.quit();
});

describeStoreContract('redis standalone', {
  create: (storePrefix) => createRedisStore({ kind: 'standalone', url, prefix: storePrefix, commandTimeoutMs: 2_000 }),
  clock: realClock(),
  raw: redisRawView(() => raw),
  prefix,
  sharedAcrossInstances: true,
});

describe('RedisStore standalone', () => {
  it('describes topology and host without credentials', async () => {
    const store = createRedisStore({
      kind: 'standalone',
      url: 'rediss://admin:hunter2-secret@redis.example.internal:6380/2',
      prefix: 'stsgate:',
      commandTimeoutMs: 100,
    });
    expect(store.description).toBe('redis standalone rediss://redis.example.internal:6380, db 2, prefix "stsgate:"');
    expect(store.description).not.toContain('hunter2');
    await store.close();
  });

  it('gives a counter left without a TTL (its first PEXPIRE lost with the connection) one at its second count', async () => {
    const store = createRedisStore({ kind: 'standalone', url, prefix: `${prefix}immortal:`, commandTimeoutMs: 2_000 });
    try {
      await raw.set(`${prefix}immortal:n`, '1');
      expect(await store.increment('n', 60_000)).toBe(2);
      const pttl = await raw.pttl(`${prefix}immortal:n`);
      expect(pttl).toBeGreaterThan(55_000);
      expect(pttl).toBeLessThanOrEqual(60_000);
    } finally {
      await store.close();
    }
  });

  it('gives a counter further on without a TTL one within 64 counts, and never extends one it has', async () => {
    const store = createRedisStore({ kind: 'standalone', url, prefix: `${prefix}immortal:`, commandTimeoutMs: 2_000 });
    try {
      await raw.set(`${prefix}immortal:far`, '41');
      for (let count = 42; count < 64; count++) {
        expect(await store.increment('far', 60_000)).toBe(count);
        expect(await raw.pttl(`${prefix}immortal:far`)).toBe(-1);
      }
      expect(await store.increment('far', 60_000)).toBe(64);
      const pttl = await raw.pttl(`${prefix}immortal:far`);
      expect(pttl).toBeGreaterThan(55_000);
      // A later count with a longer TTL asked for leaves it as it is (PEXPIRE NX).
      await raw.set(`${prefix}immortal:far`, '127', 'KEEPTTL');
      expect(await store.increment('far', 600_000)).toBe(128);
      expect(await raw.pttl(`${prefix}immortal:far`)).toBeLessThanOrEqual(60_000);
    } finally {
      await store.close();
    }
  });

  it.each([
    ['not a URL', 'not a url with hunter2-secret'],
    ['another scheme', 'http://user:hunter2-secret@127.0.0.1:6379'],
    ['a path that is not a db number', 'redis://user:hunter2-secret@127.0.0.1:6379/zero'],
  ])('refuses %s without repeating the URL', (_case, badUrl) => {
    expect(() => createRedisStore({ kind: 'standalone', url: badUrl, prefix: '', commandTimeoutMs: 100 })).toThrow(
      /^store\.url: /,
    );
    try {
      createRedisStore({ kind: 'standalone', url: badUrl, prefix: '', commandTimeoutMs: 100 });
    } catch (error) {
      expect(String(error)).not.toContain('hunter2');
    }
  });
});
