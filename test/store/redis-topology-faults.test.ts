/**
 * Outages on Sentinel and Cluster deployments: the store fails closed within about its command timeout
 * and recovers by itself, without being recreated, when the servers come back.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/store/store.js';
import { clusterKeySlot } from '../../src/store/redis/key-slot.js';
import { createRedisStore } from '../../src/store/redis/redis-store.js';
import { eventually } from './redis-harness.js';
import {
  startRedisCluster,
  startRedisSentinel,
  type RedisClusterHandle,
  type RedisSentinelHandle,
} from '../support/redis-servers.js';

const COMMAND_TIMEOUT = 300;
/** Scheduling noise on a busy two-core machine; a hang would blow far past this. */
const SLACK = 400;

async function expectUnavailableInTime(call: () => Promise<unknown>): Promise<void> {
  const started = performance.now();
  await expect(call()).rejects.toBeInstanceOf(StoreUnavailableError);
  expect(performance.now() - started).toBeLessThan(COMMAND_TIMEOUT + SLACK);
}

describe('RedisStore through Sentinel, under faults', () => {
  let sentinel: RedisSentinelHandle;
  beforeAll(async () => {
    sentinel = await startRedisSentinel();
  });
  afterAll(async () => {
    await sentinel?.stop();
  });

  it('fails closed while master and sentinel are down, and recovers on the same store', async () => {
    const store = createRedisStore(
      { kind: 'sentinel', sentinels: sentinel.sentinels, name: sentinel.name, tls: false, prefix: 'faults:', commandTimeoutMs: COMMAND_TIMEOUT },
      { maxReconnectDelayMs: 100 },
    );
    try {
      await store.set('k', 'v', 60_000);
      await sentinel.stopSentinel();
      await sentinel.master.stop();
      try {
        for (let i = 0; i < 3; i++) {
          await expectUnavailableInTime(() => store.get('k'));
          await expectUnavailableInTime(() => store.ping());
        }
      } finally {
        await sentinel.master.start();
        await sentinel.startSentinel();
      }
      await eventually(() => store.ping(), 10_000);
      await store.set('k', 'again', 60_000);
      expect(await store.get('k')).toBe('again');
    } finally {
      await store.close();
    }
  });
});

describe('RedisStore on a Cluster, under faults', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('fails closed for a stopped master’s keys, and recovers when it rejoins', async () => {
    const store = createRedisStore(
      { kind: 'cluster', nodes: cluster.nodes, tls: false, prefix: 'faults:', commandTimeoutMs: COMMAND_TIMEOUT },
      { maxReconnectDelayMs: 100 },
    );
    try {
      // A key in the middle third of the slots, which the helper gives to master 1.
      let n = 0;
      while (Math.floor((clusterKeySlot(`faults:k${n}`) * 3) / 16384) !== 1) n++;
      const key = `k${n}`;
      await store.set(key, 'v', 60_000);

      await cluster.stopNode(1);
      try {
        for (let i = 0; i < 3; i++) {
          await expectUnavailableInTime(() => store.get(key));
          await expectUnavailableInTime(() => store.ping());
        }
      } finally {
        await cluster.startNode(1);
      }
      await eventually(() => store.ping(), 10_000);
      await eventually(() => store.set(key, 'again', 60_000), 10_000);
      expect(await store.get(key)).toBe('again');
    } finally {
      await store.close();
    }
  });
});
