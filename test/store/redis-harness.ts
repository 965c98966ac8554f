/**
 * What the Redis test files share: a unique key prefix per run, a raw view of what Redis holds (every master
 * on a Cluster), and cleanup of a run's keys.
 */

import { randomUUID } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import type { RawView } from './contract.js';
import { sleep } from '../support/common.js';

/** A prefix no other run or person uses, so a shared Redis (127.0.0.1:6379) is touched only under it. */
export function uniquePrefix(): string {
  return `stsgate-test:${randomUUID()}:`;
}

/** The raw view of the contract suite, read through a plain ioredis client. */
export function redisRawView(client: () => Redis | Cluster): RawView {
  return {
    keys: (prefix) => scanKeys(client(), prefix),
    pttl: (rawKey) => client().pttl(rawKey),
  };
}

/** Deletes every key under `prefix` (on every master of a Cluster). */
export async function deleteByPrefix(client: Redis | Cluster, prefix: string): Promise<void> {
  const keys = await scanKeys(client, prefix);
  // One DEL per key: on a Cluster the keys lie in many slots.
  await Promise.all(keys.map((key) => client.del(key)));
}

async function scanKeys(client: Redis | Cluster, prefix: string): Promise<string[]> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const found: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      found.push(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  return found;
}

/** Retries `check` every 50 ms until it resolves, or rethrows its last error after `timeoutMs` (a store reconnecting). */
export async function eventually(check: () => Promise<unknown>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > until) throw error;
      await sleep(50);
    }
  }
}
