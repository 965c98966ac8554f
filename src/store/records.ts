/**
 * The record layer over the Store: a kind of record is declared once (its key from keys.ts, whether its id
 * is a secret to hash, its TTL, its JSON), and `Records` reads and writes it, turning a store failure into
 * ServiceUnavailable. Services hold a `Records` rather than doing JSON, key hashing and the failure guard
 * themselves.
 */
import { createHash } from 'node:crypto';
import { GatewayError } from '../errors/gateway-error.js';
import { StoreUnavailableError, type Store } from './store.js';

/** Which store a caller was using, as the 503's public message names it. */
export type StoreUse = 'credential' | 'session' | 'revocation';

/**
 * The one place a store failure becomes `ServiceUnavailable` (503): fail closed, nothing issued and nothing
 * half-stored is reported as success. The adapter's message goes to the private debug detail only. Any
 * other error is returned as it is.
 */
export function storeFailure(err: unknown, use: StoreUse, debugPrefix = ''): unknown {
  if (err instanceof StoreUnavailableError) {
    return new GatewayError('ServiceUnavailable', `The ${use} store is unavailable.`, { debug: debugPrefix + err.message, cause: err });
  }
  return err;
}

/** Runs a store operation; a store failure is thrown as ServiceUnavailable (see `storeFailure`). */
export async function guardStore<T>(use: StoreUse, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw storeFailure(err, use);
  }
}

/** The store key part for a secret value (a state, cookie, code or token): its SHA-256, base64url, so the store never holds the value itself. */
export function secretDigest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** A kind of stored record, with values of type V (stored as JSON). */
export interface RecordKind<V> {
  /** The store key of the record with this id (a secret id is hashed first: `secretDigest`). */
  key(id: string): string;
  /** The lifetime every record of this kind gets, when it is fixed; else each write names its own. */
  readonly ttlMs?: number;
  /** Marks the value type; never set. */
  readonly value?: V;
}

/**
 * Declares a kind of JSON record. `secretId`: the id is a secret the client holds (cookie, state, code,
 * token), so only its SHA-256 is in the key and a dump of the store hands none of them out.
 */
export function jsonRecord<V>(spec: { key: (id: string) => string; secretId: boolean; ttlMs?: number }): RecordKind<V> {
  const { key, secretId } = spec;
  return { key: secretId ? (id) => key(secretDigest(id)) : key, ...(spec.ttlMs === undefined ? {} : { ttlMs: spec.ttlMs }) };
}

/** Reads and writes typed records in one store; every store failure is ServiceUnavailable naming `use`. */
export class Records {
  readonly #store: Store;
  readonly #use: StoreUse;

  constructor(store: Store, use: StoreUse) {
    this.#store = store;
    this.#use = use;
  }

  /** Runs another store-backed operation under the same failure rule. */
  guard<T>(operation: () => Promise<T>): Promise<T> {
    return guardStore(this.#use, operation);
  }

  /** The record, or undefined when absent or expired. */
  async get<V>(kind: RecordKind<V>, id: string): Promise<V | undefined> {
    return decode<V>(await this.guard(() => this.#store.get(kind.key(id))));
  }

  /** Stores a record for `ttlMs` (default: the kind's own TTL), replacing any old one. */
  async put<V>(kind: RecordKind<V>, id: string, value: V, ttlMs: number = kindTtl(kind)): Promise<void> {
    await this.guard(() => this.#store.set(kind.key(id), JSON.stringify(value), ttlMs));
  }

  /** Gets and deletes a record in one atomic step (single-use items); undefined when there was none. */
  async take<V>(kind: RecordKind<V>, id: string): Promise<V | undefined> {
    return decode<V>(await this.guard(() => this.#store.take(kind.key(id))));
  }

  /** Deletes a record; returns whether it existed. */
  async delete(kind: RecordKind<unknown>, id: string): Promise<boolean> {
    return (await this.guard(() => this.#store.delete(kind.key(id)))) > 0;
  }
}

function kindTtl(kind: RecordKind<unknown>): number {
  if (kind.ttlMs === undefined) throw new TypeError('this kind of record has no fixed TTL: give one');
  return kind.ttlMs;
}

function decode<V>(text: string | undefined): V | undefined {
  return text === undefined ? undefined : (JSON.parse(text) as V);
}
