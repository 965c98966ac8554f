/**
 * The store: one small interface, two adapters (memory, Redis). Every key carries the configured prefix
 * (added by the adapter) and always a TTL. Keys are built in `keys.ts` only.
 *
 * Failure contract, the same for every adapter: a method rejects with StoreUnavailableError when the backing
 * store fails (unreachable, timed out, closed) and with RangeError for a TTL that is not an integer >= 1;
 * callers fail closed on the first and never see the second in correct code.
 */

export interface Store {
  /** Stores `value` under `key` for `ttlMs` milliseconds (ttlMs >= 1), replacing any old value. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** The value, or undefined when the key is absent or expired. */
  get(key: string): Promise<string | undefined>;
  /** Gets several keys in one round trip; the result is index-aligned with `keys`. Keys may lie in different cluster slots. */
  getMany(keys: readonly string[]): Promise<(string | undefined)[]>;
  /** Atomically gets and deletes (single-use items such as login transactions). */
  take(key: string): Promise<string | undefined>;
  /** Deletes keys; returns how many existed. */
  delete(...keys: string[]): Promise<number>;
  /**
   * Stores several entries and resolves only when every write succeeded. Atomic (one script, one round trip)
   * when all keys share a hash tag or the server is not a Cluster; on a Cluster with keys in different
   * slots, the writes go out in parallel, in order per slot.
   */
  setMany(entries: readonly { key: string; value: string; ttlMs: number }[]): Promise<void>;
  /**
   * Increments a counter, creating it at 1 with `ttlMs` when new; returns the new value. The TTL is set
   * only on creation, so a fixed window (rate limits) is not extended by later increments.
   */
  increment(key: string, ttlMs: number): Promise<number>;
  /**
   * Keeps the greater of the stored value and `value` (compared as strings, code unit by code unit, which
   * for ASCII is Redis's byte order), in one atomic step: stores `value` when the key is absent or holds a
   * smaller value. The key's TTL becomes the longer of its remaining TTL and `ttlMs`, so it never expires
   * sooner than either writer asked. Returns the value stored afterwards (revocation watermarks: a later
   * cut-off time never loses to an earlier one written at the same moment).
   */
  setMax(key: string, value: string, ttlMs: number): Promise<string>;
  /**
   * Every live key starting with `keyPrefix` (without the store's own prefix), in no particular order. It
   * walks the keyspace (Redis SCAN; on a Cluster, every master): for operator commands, never per request.
   */
  keysWithPrefix(keyPrefix: string): Promise<string[]>;
  /** Remaining TTL in ms, or undefined when the key is absent. */
  ttl(key: string): Promise<number | undefined>;
  /** Throws when the store cannot be reached. */
  ping(): Promise<void>;
  /** Releases connections and timers; safe to call twice. Every later call rejects with StoreUnavailableError. */
  close(): Promise<void>;
  /** A short human description for start-up logs (no secrets). */
  readonly description: string;
}

/**
 * Rejects a TTL the contract does not allow (an integer >= 1 ms). Both adapters call it before writing, so a
 * bad TTL is a programming error (RangeError), never a silently immortal or instantly gone key.
 */
export function assertValidTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
    throw new RangeError(`store TTL must be an integer number of milliseconds >= 1, got ${ttlMs}`);
  }
}

/** Thrown by adapters when the backing store fails (unreachable, timeout); callers fail closed on it. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
