import type { Store } from './store.js';

/** Receives the outcome of every store operation (metrics). */
export interface StoreObserver {
  observe(operation: string, seconds: number, ok: boolean): void;
}

const OPERATIONS = ['set', 'get', 'getMany', 'take', 'delete', 'setMany', 'increment', 'setMax', 'keysWithPrefix', 'ttl', 'ping'] as const;

/** Wraps a store so that every operation's latency and failure is observed; behaviour is unchanged. */
export function instrumentStore(store: Store, observer: StoreObserver): Store {
  const wrapped: Record<string, unknown> = {
    description: store.description,
    close: () => store.close(),
  };
  for (const operation of OPERATIONS) {
    const original = (store[operation] as (...args: unknown[]) => Promise<unknown>).bind(store);
    wrapped[operation] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        const result = await original(...args);
        observer.observe(operation, (performance.now() - started) / 1000, true);
        return result;
      } catch (err) {
        observer.observe(operation, (performance.now() - started) / 1000, false);
        throw err;
      }
    };
  }
  return wrapped as unknown as Store;
}
