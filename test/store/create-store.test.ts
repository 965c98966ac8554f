import { describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/index.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';

describe('createStore', () => {
  it('builds the memory store for kind memory', async () => {
    const store = createStore({ kind: 'memory', prefix: 'stsgate:' });
    expect(store).toBeInstanceOf(MemoryStore);
    await store.set('k', 'v', 1_000);
    expect((store as MemoryStore).rawKeys()).toEqual(['stsgate:k']);
    await store.close();
  });

  it('builds a Redis store for the Redis kinds', async () => {
    const store = createStore({ kind: 'standalone', url: 'redis://127.0.0.1:1', prefix: 'p:', commandTimeoutMs: 100 });
    expect(store).toBeInstanceOf(RedisStore);
    await store.close();
  });
});
