/**
 * The embedded store: a Map in this process. It keeps the Store contract exactly (prefix, TTL on every
 * key, atomic take and increment) so that code tested against it behaves the same on Redis.
 */

import { assertValidTtl, StoreUnavailableError, type Store } from '../store.js';

export interface MemoryStoreOptions {
  /** Prepended to every key, as on Redis, so raw keys look the same in both adapters. */
  prefix?: string;
  /** Milliseconds since the epoch; injectable so tests fast-forward TTLs instead of sleeping. */
  now?: () => number;
  /** How often expired entries are dropped; expired entries are invisible in between. */
  sweepIntervalMs?: number;
}

interface Entry {
  value: string;
  expiresAt: number;
}

const DEFAULT_SWEEP_INTERVAL_MS = 30_000;

/** A Store held in this process's memory; it serves one gateway process only. */
export class MemoryStore implements Store {
  readonly description = 'in-memory store (serves this process only; not shared between gateway instances)';
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#prefix = options.prefix ?? '';
    this.#now = options.now ?? Date.now;
    const interval = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    this.#sweeper = setInterval(() => this.sweep(), interval);
    // The sweeper only bounds memory; it must not keep the process alive on its own.
    this.#sweeper.unref();
  }

  /** Entries held right now, including expired ones the sweeper has not dropped yet. */
  get size(): number {
    return this.#entries.size;
  }

  /** Unexpired raw keys (prefix included), for diagnostics and tests. */
  rawKeys(): string[] {
    const now = this.#now();
    return [...this.#entries].filter(([, entry]) => entry.expiresAt > now).map(([key]) => key);
  }

  /** Drops expired entries; returns how many it dropped. Runs periodically on its own. */
  sweep(): number {
    const now = this.#now();
    let dropped = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        this.#entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  // Every method below does its work synchronously after its checks: with no await in between, each
  // operation is atomic with respect to every other one in this process.

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#open();
    assertValidTtl(ttlMs);
    this.#write(key, value, ttlMs);
  }

  async get(key: string): Promise<string | undefined> {
    this.#open();
    return this.#read(key)?.value;
  }

  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    this.#open();
    return keys.map((key) => this.#read(key)?.value);
  }

  async take(key: string): Promise<string | undefined> {
    this.#open();
    const entry = this.#read(key);
    if (entry) this.#entries.delete(this.#prefix + key);
    return entry?.value;
  }

  async delete(...keys: string[]): Promise<number> {
    this.#open();
    let existed = 0;
    // A Set, as Redis DEL counts a key named twice once.
    for (const key of new Set(keys)) {
      if (this.#read(key)) {
        this.#entries.delete(this.#prefix + key);
        existed++;
      }
    }
    return existed;
  }

  async setMany(entries: readonly { key: string; value: string; ttlMs: number }[]): Promise<void> {
    this.#open();
    // Validate all before writing any, so a bad entry leaves nothing half-written.
    for (const entry of entries) assertValidTtl(entry.ttlMs);
    for (const { key, value, ttlMs } of entries) this.#write(key, value, ttlMs);
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    this.#open();
    assertValidTtl(ttlMs);
    const entry = this.#read(key);
    if (!entry) {
      this.#write(key, '1', ttlMs);
      return 1;
    }
    // Same rule as Redis INCR: only a canonical base-10 integer (no sign on 0, no leading zeros) increments.
    if (!/^(0|-?[1-9]\d*)$/.test(entry.value) || !Number.isSafeInteger(Number(entry.value) + 1)) {
      throw new StoreUnavailableError('memory store increment failed: stored value is not an integer');
    }
    const value = Number(entry.value) + 1;
    // The TTL is set once, when the counter is created; later increments keep it.
    entry.value = String(value);
    return value;
  }

  async setMax(key: string, value: string, ttlMs: number): Promise<string> {
    this.#open();
    assertValidTtl(ttlMs);
    const entry = this.#read(key);
    if (!entry) {
      this.#write(key, value, ttlMs);
      return value;
    }
    if (entry.value < value) entry.value = value;
    entry.expiresAt = Math.max(entry.expiresAt, this.#now() + ttlMs);
    return entry.value;
  }

  async keysWithPrefix(keyPrefix: string): Promise<string[]> {
    this.#open();
    const rawPrefix = this.#prefix + keyPrefix;
    return this.rawKeys()
      .filter((rawKey) => rawKey.startsWith(rawPrefix))
      .map((rawKey) => rawKey.slice(this.#prefix.length));
  }

  async ttl(key: string): Promise<number | undefined> {
    this.#open();
    const entry = this.#read(key);
    return entry ? entry.expiresAt - this.#now() : undefined;
  }

  async ping(): Promise<void> {
    this.#open();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#entries.clear();
  }

  /** The unexpired entry for an unprefixed key; an expired one is dropped on sight. */
  #read(key: string): Entry | undefined {
    const rawKey = this.#prefix + key;
    const entry = this.#entries.get(rawKey);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(rawKey);
      return undefined;
    }
    return entry;
  }

  #write(key: string, value: string, ttlMs: number): void {
    this.#entries.set(this.#prefix + key, { value, expiresAt: this.#now() + ttlMs });
  }

  #open(): void {
    // Same failure as a Redis store after close, so callers handle one error type.
    if (this.#closed) throw new StoreUnavailableError('memory store is closed');
  }
}
