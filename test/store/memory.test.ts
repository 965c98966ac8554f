import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { describeStoreContract, manualClock } from './contract.js';
import { sleep } from '../support/common.js';

const clock = manualClock();
const stores: { prefix: string; store: MemoryStore }[] = [];

/** The memory store's raw view: the keys of every store the suite made, read through the store itself. */
function rawEntry(rawKey: string): { prefix: string; store: MemoryStore } | undefined {
  return stores.find(({ prefix, store }) => rawKey.startsWith(prefix) && store.rawKeys().includes(rawKey));
}

describeStoreContract('memory', {
  create: (prefix) => {
    const store = new MemoryStore({ prefix, now: clock.now });
    stores.push({ prefix, store });
    return store;
  },
  clock,
  prefix: 'test:',
  sharedAcrossInstances: false,
  raw: {
    keys: async (prefix) => stores.flatMap(({ store }) => store.rawKeys().filter((k) => k.startsWith(prefix))),
    pttl: async (rawKey) => {
      const found = rawEntry(rawKey);
      if (!found) return -2;
      return (await found.store.ttl(rawKey.slice(found.prefix.length))) ?? -2;
    },
  },
});

describe('MemoryStore', () => {
  it('sweeps expired entries so memory stays bounded', async () => {
    const own = manualClock();
    const store = new MemoryStore({ now: own.now });
    for (let i = 0; i < 1000; i++) await store.set(`k${i}`, 'v', 1_000);
    await store.set('kept', 'v', 10_000);
    await own.advance(1_000);
    expect(store.size).toBe(1001);
    expect(store.sweep()).toBe(1000);
    expect(store.size).toBe(1);
    expect(await store.get('kept')).toBe('v');
    await store.close();
  });

  it('sweeps on its own timer', async () => {
    const own = manualClock();
    const store = new MemoryStore({ now: own.now, sweepIntervalMs: 5 });
    await store.set('k', 'v', 1_000);
    await own.advance(1_000);
    await sleep(30);
    expect(store.size).toBe(0);
    await store.close();
  });

  it('applies the prefix to raw keys', async () => {
    const store = new MemoryStore({ prefix: 'stsgate:' });
    await store.set('login:abc', 'v', 1_000);
    expect(store.rawKeys()).toEqual(['stsgate:login:abc']);
    await store.close();
  });

  it('says it serves one process only', () => {
    const store = new MemoryStore();
    expect(store.description).toMatch(/this process only/);
    void store.close();
  });
});
