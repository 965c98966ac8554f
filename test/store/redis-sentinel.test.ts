import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore, type RedisStore } from '../../src/store/redis/redis-store.js';
import { startRedisSentinel, type RedisSentinelHandle } from '../support/redis-servers.js';
import { describeStoreContract, realClock } from './contract.js';
import { redisRawView, uniquePrefix } from './redis-harness.js';

const password = 'sentinel-test-Pa55word';
let sentinel: RedisSentinelHandle;
let raw: Redis;
const prefix = uniquePrefix();

beforeAll(async () => {
  sentinel = await startRedisSentinel({ password });
  raw = new Redis(sentinel.master.url);
});

afterAll(async () => {
  await raw?.quit();
  await sentinel?.stop();
});

function sentinelStore(storePrefix: string): RedisStore {
  return createRedisStore({
    kind: 'sentinel',
    sentinels: sentinel.sentinels,
    name: sentinel.name,
    password,
    tls: false,
    prefix: storePrefix,
    commandTimeoutMs: 2_000,
  });
}

describeStoreContract('redis sentinel (1 master, 1 sentinel)', {
  create: sentinelStore,
  clock: realClock(),
  raw: redisRawView(() => raw),
  prefix,
  sharedAcrossInstances: true,
});

describe('RedisStore through Sentinel', () => {
  it('names the master and sentinels, never the password', async () => {
    const store = sentinelStore('p:');
    const [s] = sentinel.sentinels;
    expect(store.description).toBe(`redis sentinel master "${sentinel.name}" via ${s!.host}:${s!.port}, prefix "p:"`);
    expect(store.description).not.toContain(password);
    await store.close();
  });
});
