/**
 * The one place that turns store configuration into a Store. Services import the interface from
 * `store.ts`; only the composition root imports this file (it pulls in ioredis).
 */

import type { StoreConfig } from '../config/types.js';
import { MemoryStore } from './memory/memory-store.js';
import { createRedisStore, type RedisStoreOptions } from './redis/redis-store.js';
import type { Store } from './store.js';

export interface CreateStoreOptions {
  /** Connection event hook and pacing for the Redis adapter; ignored by the memory store. */
  redis?: RedisStoreOptions;
}

/** Builds the configured store: in-memory (one process) or Redis (standalone, Sentinel, Cluster). */
export function createStore(config: StoreConfig, options: CreateStoreOptions = {}): Store {
  if (config.kind === 'memory') return new MemoryStore({ prefix: config.prefix });
  return createRedisStore(config, options.redis);
}
