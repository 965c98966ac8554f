/**
 * The Store contract, run against every adapter (dex's storage/conformance idea): one suite, a factory and a
 * clock-control strategy per adapter. Adapter-specific behaviour (Cluster slots, outages) lives in the
 * adapter's own test file.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError, type Store } from '../../src/store/store.js';
import { sleep } from '../support/common.js';

/** How a suite makes time pass for a store. */
export interface ClockControl {
  /** Lets `ms` milliseconds pass as far as the store can tell. */
  advance(ms: number): Promise<void>;
  /**
   * A TTL short enough that expiry tests stay fast, long enough that the key is surely still there when the
   * test looks at it right after writing.
   */
  readonly shortTtlMs: number;
}

/** A clock the test moves by hand; pass `now` to the store (memory adapter). */
export function manualClock(start = Date.UTC(2030, 0, 1)): ClockControl & { now: () => number } {
  let current = start;
  return {
    now: () => current,
    advance: async (ms) => {
      current += ms;
    },
    shortTtlMs: 1_000,
  };
}

/** Real time, for servers whose clock the test cannot move (Redis); TTLs are kept short so waits are short. */
export function realClock(shortTtlMs = 150): ClockControl {
  return {
    // A little extra so the server's millisecond expiry has surely passed.
    advance: (ms) => sleep(ms + 20),
    shortTtlMs,
  };
}

/** A look under the adapter at what the backing store really holds. */
export interface RawView {
  /** Raw keys starting with `prefix`, exactly as stored. */
  keys(prefix: string): Promise<string[]>;
  /** Redis PTTL semantics: remaining ms, -1 when the key has no TTL, -2 when absent. */
  pttl(rawKey: string): Promise<number>;
}

export interface StoreContractHarness {
  /** A fresh store whose keys all start with `prefix`; the suite closes it. */
  create(prefix: string): Store | Promise<Store>;
  clock: ClockControl;
  raw: RawView;
  /** Unique per run; every store the suite creates uses a prefix starting with it. */
  prefix: string;
  /** True when two instances with one prefix see the same data (Redis), so races run across instances. */
  sharedAcrossInstances: boolean;
}

const LONG_TTL = 60_000;
/** Real clocks move while a test runs; remaining TTLs may be this much below what was asked. */
const SLACK = 5_000;

/** Runs the whole Store contract against one adapter. */
export function describeStoreContract(name: string, harness: StoreContractHarness): void {
  describe(`Store contract: ${name}`, () => {
    const { clock, raw } = harness;
    let counter = 0;
    let opened: Store[] = [];
    let prefix = '';
    let store: Store;

    /** Another store on this test's prefix (a second gateway process, when data is shared). */
    async function another(withPrefix = prefix): Promise<Store> {
      const created = await harness.create(withPrefix);
      opened.push(created);
      return created;
    }

    /** The stores a race runs across: several instances when they share data, else the one store. */
    async function racers(): Promise<Store[]> {
      return harness.sharedAcrossInstances ? [store, await another(), await another()] : [store];
    }

    beforeEach(async () => {
      prefix = `${harness.prefix}${counter++}:`;
      opened = [];
      store = await another();
    });

    afterEach(async () => {
      await Promise.all(opened.map((s) => s.close()));
    });

    describe('set and get', () => {
      it.each([
        ['plain', 'value'],
        ['empty string (not the same as absent)', ''],
        ['unicode', 'grüße 🔑 ключ'],
        ['JSON', JSON.stringify({ a: 1, b: [true, null] })],
        ['large', 'x'.repeat(200_000)],
      ])('round-trips a %s value', async (_case, value) => {
        await store.set('k', value, LONG_TTL);
        expect(await store.get('k')).toBe(value);
      });

      it('returns undefined for an absent key', async () => {
        expect(await store.get('absent')).toBeUndefined();
      });

      it('replaces the old value and its TTL', async () => {
        await store.set('k', 'old', LONG_TTL);
        await store.set('k', 'new', 2 * LONG_TTL);
        expect(await store.get('k')).toBe('new');
        expect(await store.ttl('k')).toBeGreaterThan(LONG_TTL);
      });

      it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
        'rejects TTL %s with a RangeError and writes nothing',
        async (ttlMs) => {
          await expect(store.set('k', 'v', ttlMs)).rejects.toBeInstanceOf(RangeError);
          await expect(store.setMax('k', 'v', ttlMs)).rejects.toBeInstanceOf(RangeError);
          await expect(store.increment('k', ttlMs)).rejects.toBeInstanceOf(RangeError);
          await expect(store.setMany([{ key: 'k', value: 'v', ttlMs }])).rejects.toBeInstanceOf(RangeError);
          expect(await raw.keys(prefix)).toEqual([]);
        },
      );
    });

    describe('prefix and TTL on every key', () => {
      it('stores every key under the prefix, with a TTL, whichever method wrote it', async () => {
        await store.set('a', '1', LONG_TTL);
        await store.setMax('b', '2', LONG_TTL);
        await store.setMany([
          { key: 'c:{tag}', value: '3', ttlMs: LONG_TTL },
          { key: 'd:{tag}', value: '4', ttlMs: LONG_TTL },
        ]);
        await store.increment('e', LONG_TTL);
        const rawKeys = (await raw.keys(prefix)).sort();
        expect(rawKeys).toEqual(['a', 'b', 'c:{tag}', 'd:{tag}', 'e'].map((k) => prefix + k));
        for (const rawKey of rawKeys) {
          const pttl = await raw.pttl(rawKey);
          expect(pttl, rawKey).toBeGreaterThan(LONG_TTL - SLACK);
          expect(pttl, rawKey).toBeLessThanOrEqual(LONG_TTL);
        }
      });

      it('does not see keys written under another prefix', async () => {
        const other = await another(`${prefix}other:`);
        await other.set('k', 'theirs', LONG_TTL);
        expect(await store.get('k')).toBeUndefined();
        expect(await store.take('k')).toBeUndefined();
        expect(await store.delete('k')).toBe(0);
        expect(await other.get('k')).toBe('theirs');
      });

      // A shared store (Redis) is one store for every instance; an embedded one (memory) is one per process.
      it(harness.sharedAcrossInstances ? 'shares data between instances with one prefix' : 'keeps data to the one instance', async () => {
        const second = await another();
        await store.set('k', 'v', LONG_TTL);
        if (harness.sharedAcrossInstances) {
          expect(await second.get('k')).toBe('v');
          expect(await second.take('k')).toBe('v');
          expect(await store.get('k')).toBeUndefined();
        } else {
          expect(await second.get('k')).toBeUndefined();
          expect(await second.take('k')).toBeUndefined();
          expect(await store.get('k')).toBe('v');
        }
      });
    });

    describe('expiry', () => {
      it('hides an expired key from every read', async () => {
        const ttl = clock.shortTtlMs;
        await store.setMany([
          { key: 'get', value: 'v', ttlMs: ttl },
          { key: 'many', value: 'v', ttlMs: ttl },
          { key: 'take', value: 'v', ttlMs: ttl },
          { key: 'ttl', value: 'v', ttlMs: ttl },
          { key: 'del', value: 'v', ttlMs: ttl },
        ]);
        expect(await store.get('get')).toBe('v');
        await clock.advance(ttl);
        expect(await store.get('get')).toBeUndefined();
        expect(await store.getMany(['many'])).toEqual([undefined]);
        expect(await store.take('take')).toBeUndefined();
        expect(await store.ttl('ttl')).toBeUndefined();
        expect(await store.delete('del')).toBe(0);
      });

      it('keeps a key until its TTL has passed', async () => {
        await store.set('k', 'v', 3 * clock.shortTtlMs);
        await clock.advance(clock.shortTtlMs);
        expect(await store.get('k')).toBe('v');
        const left = await store.ttl('k');
        expect(left).toBeGreaterThan(0);
        expect(left).toBeLessThanOrEqual(2 * clock.shortTtlMs);
      });
    });

    describe('ttl', () => {
      it('is undefined for an absent key', async () => {
        expect(await store.ttl('absent')).toBeUndefined();
      });

      it('reports the remaining lifetime', async () => {
        await store.set('k', 'v', LONG_TTL);
        const left = await store.ttl('k');
        expect(left).toBeGreaterThan(LONG_TTL - SLACK);
        expect(left).toBeLessThanOrEqual(LONG_TTL);
      });
    });

    describe('take', () => {
      it('returns the value once, then undefined', async () => {
        await store.set('k', 'v', LONG_TTL);
        expect(await store.take('k')).toBe('v');
        expect(await store.take('k')).toBeUndefined();
        expect(await store.get('k')).toBeUndefined();
      });

      it('returns undefined for an absent key', async () => {
        expect(await store.take('absent')).toBeUndefined();
      });

      it('hands the value to exactly one of 100 concurrent takers', async () => {
        const stores = await racers();
        await store.set('once', 'secret', LONG_TTL);
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) => stores[i % stores.length]!.take('once')),
        );
        expect(results.filter((r) => r !== undefined)).toEqual(['secret']);
        expect(await raw.keys(prefix)).toEqual([]);
      });
    });

    describe('increment', () => {
      it('creates the counter at 1 with the given TTL', async () => {
        expect(await store.increment('n', LONG_TTL)).toBe(1);
        expect(await store.ttl('n')).toBeGreaterThan(LONG_TTL - SLACK);
        expect(await store.ttl('n')).toBeLessThanOrEqual(LONG_TTL);
        expect(await store.get('n')).toBe('1');
      });

      it('sets the TTL only when the counter is new', async () => {
        await store.increment('n', LONG_TTL);
        await clock.advance(clock.shortTtlMs);
        // A longer TTL on a later increment must not extend the window.
        expect(await store.increment('n', 10 * LONG_TTL)).toBe(2);
        expect(await store.ttl('n')).toBeLessThanOrEqual(LONG_TTL - clock.shortTtlMs + 5);
      });

      it('restarts at 1 after the window expired', async () => {
        await store.increment('n', clock.shortTtlMs);
        await store.increment('n', clock.shortTtlMs);
        await clock.advance(clock.shortTtlMs);
        expect(await store.increment('n', LONG_TTL)).toBe(1);
        expect(await store.ttl('n')).toBeGreaterThan(LONG_TTL - SLACK);
      });

      it('counts 100 concurrent increments exactly, each seeing its own value', async () => {
        const stores = await racers();
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) => stores[i % stores.length]!.increment('n', LONG_TTL)),
        );
        expect(results.sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
        expect(await store.get('n')).toBe('100');
        expect(await raw.pttl(`${prefix}n`)).toBeGreaterThan(0);
      });

      it('rejects when the key holds something other than an integer', async () => {
        await store.set('k', 'not-a-number', LONG_TTL);
        await expect(store.increment('k', LONG_TTL)).rejects.toThrow();
        expect(await store.get('k')).toBe('not-a-number');
      });
    });

    describe('getMany', () => {
      it('returns [] for no keys', async () => {
        expect(await store.getMany([])).toEqual([]);
      });

      it('aligns results with the keys, missing ones as undefined', async () => {
        await store.set('a', 'A', LONG_TTL);
        await store.set('c', '', LONG_TTL);
        expect(await store.getMany(['a', 'b', 'c', 'a', 'missing'])).toEqual(['A', undefined, '', 'A', undefined]);
      });

      it('reads many keys spread over different hash slots', async () => {
        const keys = Array.from({ length: 60 }, (_, i) => `spread:${i}`);
        await Promise.all(keys.filter((_, i) => i % 3 !== 0).map((k) => store.set(k, `v-${k}`, LONG_TTL)));
        expect(await store.getMany(keys)).toEqual(keys.map((k, i) => (i % 3 !== 0 ? `v-${k}` : undefined)));
      });
    });

    describe('setMany', () => {
      it('does nothing for no entries', async () => {
        await store.setMany([]);
        expect(await raw.keys(prefix)).toEqual([]);
      });

      it('writes every entry with its own TTL', async () => {
        await store.setMany([
          { key: 'a', value: 'A', ttlMs: LONG_TTL },
          { key: 'b:{x}', value: 'B', ttlMs: 2 * LONG_TTL },
          { key: 'c:{y}', value: 'C', ttlMs: 3 * LONG_TTL },
        ]);
        expect(await store.getMany(['a', 'b:{x}', 'c:{y}'])).toEqual(['A', 'B', 'C']);
        expect(await store.ttl('a')).toBeLessThanOrEqual(LONG_TTL);
        expect(await store.ttl('b:{x}')).toBeGreaterThan(LONG_TTL);
        expect(await store.ttl('c:{y}')).toBeGreaterThan(2 * LONG_TTL);
      });

      it('writes a value several keys share to each of them, with each key\'s own TTL', async () => {
        const shared = `{"record":"${'x'.repeat(2048)}"}`;
        await store.setMany([
          { key: 'sess:{s}', value: shared, ttlMs: LONG_TTL },
          { key: 'other', value: 'O', ttlMs: LONG_TTL },
          { key: 'cache:{c}', value: `${shared.slice(0, -1)}}`, ttlMs: 2 * LONG_TTL },
        ]);
        expect(await store.getMany(['sess:{s}', 'other', 'cache:{c}'])).toEqual([shared, 'O', shared]);
        expect(await store.ttl('sess:{s}')).toBeLessThanOrEqual(LONG_TTL);
        expect(await store.ttl('cache:{c}')).toBeGreaterThan(LONG_TTL);
      });

      it('keeps the last value when a key appears twice', async () => {
        await store.setMany([
          { key: 'k', value: 'first', ttlMs: LONG_TTL },
          { key: 'k', value: 'last', ttlMs: LONG_TTL },
        ]);
        expect(await store.get('k')).toBe('last');
      });

      it('writes nothing when one entry is invalid', async () => {
        await expect(
          store.setMany([
            { key: 'a', value: 'A', ttlMs: LONG_TTL },
            { key: 'b', value: 'B', ttlMs: 0 },
          ]),
        ).rejects.toBeInstanceOf(RangeError);
        expect(await raw.keys(prefix)).toEqual([]);
      });

      it('makes entries sharing a hash tag visible all at once to concurrent readers', async () => {
        const stores = await racers();
        const keys = Array.from({ length: 20 }, (_, i) => `sess:{one}:${i}`);
        const reads: Promise<(string | undefined)[]>[] = [];
        for (let i = 0; i < 30; i++) reads.push(stores[i % stores.length]!.getMany(keys));
        const write = store.setMany(keys.map((key) => ({ key, value: `v:${key}`, ttlMs: LONG_TTL })));
        for (let i = 0; i < 30; i++) reads.push(stores[i % stores.length]!.getMany(keys));
        await write;
        const seen = await Promise.all(reads);
        const all = keys.map((k) => `v:${k}`);
        const none = keys.map(() => undefined);
        for (const result of seen) expect([all, none]).toContainEqual(result);
        // Reads on other connections may overtake the write; once it resolved, every reader sees it.
        for (const s of stores) expect(await s.getMany(keys)).toEqual(all);
      });
    });

    describe('setMax', () => {
      it.each([
        ['absent: stores it', undefined, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'],
        ['a smaller stored value is replaced', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.001Z', '2026-01-01T00:00:00.001Z'],
        ['a greater stored value is kept', '2026-01-02T00:00:00.000Z', '2026-01-01T23:59:59.999Z', '2026-01-02T00:00:00.000Z'],
      ])('%s', async (_name, stored, value, expected) => {
        if (stored !== undefined) await store.set('w:{rev}', stored, LONG_TTL);
        expect(await store.setMax('w:{rev}', value, LONG_TTL)).toBe(expected);
        expect(await store.get('w:{rev}')).toBe(expected);
      });

      it('leaves the key the longer of its TTL and the one asked for', async () => {
        await store.setMax('w', 'b', 3 * LONG_TTL);
        await store.setMax('w', 'c', LONG_TTL);
        expect(await store.ttl('w')).toBeGreaterThan(2 * LONG_TTL);
        await store.setMax('w', 'a', 5 * LONG_TTL);
        expect(await store.get('w')).toBe('c');
        expect(await store.ttl('w')).toBeGreaterThan(4 * LONG_TTL);
      });

      it('keeps the greatest of concurrent writes from several instances', async () => {
        const stores = await racers();
        const values = Array.from({ length: 30 }, (_, i) => `v${String(i).padStart(2, '0')}`);
        await Promise.all(values.map((value, i) => stores[i % stores.length]!.setMax('w', value, LONG_TTL)));
        expect(await store.get('w')).toBe('v29');
      });
    });

    describe('keysWithPrefix', () => {
      it('finds the live keys under a prefix, without the store prefix, in any slot', async () => {
        await store.setMany([
          { key: 'rev:{rev}:all', value: '1', ttlMs: LONG_TTL },
          { key: 'rev:{rev}:sub:a%3Ab', value: '2', ttlMs: LONG_TTL },
          { key: 'revx', value: '3', ttlMs: LONG_TTL },
          { key: 'other:{rev}', value: '4', ttlMs: LONG_TTL },
        ]);
        await store.set('rev:{rev}:gone', '5', clock.shortTtlMs);
        await clock.advance(clock.shortTtlMs);
        expect((await store.keysWithPrefix('rev:{rev}:')).sort()).toEqual(['rev:{rev}:all', 'rev:{rev}:sub:a%3Ab']);
        expect(await store.keysWithPrefix('nothing:')).toEqual([]);
      });

      it('takes glob characters in the prefix literally', async () => {
        await store.set('a*b', '1', LONG_TTL);
        await store.set('axb', '2', LONG_TTL);
        expect(await store.keysWithPrefix('a*')).toEqual(['a*b']);
      });
    });

    describe('delete', () => {
      it('deletes keys and counts those that existed', async () => {
        await store.set('a', '1', LONG_TTL);
        await store.set('b:{x}', '2', LONG_TTL);
        await store.set('c:{y}', '3', LONG_TTL);
        expect(await store.delete('a', 'b:{x}', 'missing', 'c:{y}')).toBe(3);
        expect(await store.getMany(['a', 'b:{x}', 'c:{y}'])).toEqual([undefined, undefined, undefined]);
        expect(await raw.keys(prefix)).toEqual([]);
      });

      it('counts a key named twice once', async () => {
        await store.set('a', '1', LONG_TTL);
        expect(await store.delete('a', 'a')).toBe(1);
      });

      it('returns 0 for no keys', async () => {
        expect(await store.delete()).toBe(0);
      });
    });

    describe('ping, close and description', () => {
      it('pings while open', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('fails closed with StoreUnavailableError after close, and closes twice safely', async () => {
        await store.close();
        await store.close();
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.set('k', 'v', LONG_TTL)).rejects.toBeInstanceOf(StoreUnavailableError);
      });

      it('describes itself in a short line', () => {
        expect(store.description).toMatch(/\S/);
        expect(store.description).not.toContain('\n');
      });
    });
  });
}
