/**
 * A bounded map that forgets its least recently used entry when full: a memo for pure results (a
 * signature already checked, a record already opened) that must never grow with traffic.
 */
export class RecentlyUsed<K, V> {
  readonly #max: number;
  /** A Map iterates in insertion order: re-inserting on use keeps the least recently used first. */
  readonly #entries = new Map<K, V>();

  constructor(max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`RecentlyUsed needs a size >= 1, got ${max}`);
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value as K);
  }

  delete(key: K): void {
    this.#entries.delete(key);
  }
}

/** `value` with every nested object and array frozen: a remembered result is shared between requests. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}
