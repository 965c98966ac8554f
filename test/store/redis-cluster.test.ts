import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterKeySlot } from '../../src/store/redis/key-slot.js';
import { createRedisStore, type RedisStore } from '../../src/store/redis/redis-store.js';
import { startRedisCluster, type RedisClusterHandle } from '../support/redis-servers.js';
import { describeStoreContract, realClock } from './contract.js';
import { redisRawView, uniquePrefix } from './redis-harness.js';

let cluster: RedisClusterHandle;
let raw: Cluster;
const prefix = uniquePrefix();

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 });
  raw = new Cluster(cluster.nodes);
});

afterAll(async () => {
  await raw?.quit();
  await cluster?.stop();
});

function clusterStore(storePrefix: string): RedisStore {
  return createRedisStore({ kind: 'cluster', nodes: cluster.nodes, tls: false, prefix: storePrefix, commandTimeoutMs: 2_000 });
}

describeStoreContract('redis cluster (3 masters)', {
  create: clusterStore,
  clock: realClock(),
  raw: redisRawView(() => raw),
  prefix,
  sharedAcrossInstances: true,
});

describe('RedisStore on a Cluster', () => {
  it.each([
    'plain',
    'stsgate:sess:{abc}',
    'a{}b',
    '{}{x}',
    'x{a}{b}',
    'open{only',
    'grüße:{ключ}',
    '',
  ])('computes the slot of %j as the server does', async (key) => {
    const expected = await raw.cluster('KEYSLOT', key);
    expect(clusterKeySlot(key)).toBe(expected);
  });

  it('spreads a batch over every master and still reads, writes and deletes it whole', async () => {
    const store = clusterStore(`${prefix}spread:`);
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    await store.setMany(keys.map((key) => ({ key, value: key.toUpperCase(), ttlMs: 60_000 })));
    // The test only means something if the keys really lie on different masters.
    const perMaster = await Promise.all(
      raw.nodes('master').map(async (node) => (await node.scan('0', 'MATCH', `${prefix}spread:*`, 'COUNT', 1000))[1].length),
    );
    expect(perMaster.filter((n) => n > 0)).toHaveLength(3);
    expect(await store.getMany(keys)).toEqual(keys.map((k) => k.toUpperCase()));
    expect(await store.delete(...keys)).toBe(30);
    await store.close();
  });

  it('counts keys on every master, many at once (each counter goes to the master of its key)', async () => {
    const store = clusterStore(`${prefix}count:`);
    const keys = Array.from({ length: 30 }, (_, i) => `c${i}`);
    // Issued in one turn, as concurrent requests do: auto-pipelining would batch them if it could.
    const first = await Promise.all(keys.map((key) => store.increment(key, 60_000)));
    expect(first).toEqual(keys.map(() => 1));
    const second = await Promise.all(keys.map((key) => store.increment(key, 60_000)));
    expect(second).toEqual(keys.map(() => 2));
    const perMaster = await Promise.all(
      raw.nodes('master').map(async (node) => (await node.scan('0', 'MATCH', `${prefix}count:*`, 'COUNT', 1000))[1].length),
    );
    expect(perMaster.filter((n) => n > 0)).toHaveLength(3);
    await store.close();
  });

  it('names the seed nodes in its description', async () => {
    const store = clusterStore('p:');
    expect(store.description).toBe(`redis cluster via ${cluster.nodes.map((n) => `${n.host}:${n.port}`).join(', ')}, prefix "p:"`);
    await store.close();
  });
});
