/**
 * The record layer (src/store/records.ts) over a real MemoryStore: keys built from keys.ts with secret ids
 * hashed, JSON in and out, fixed and per-write TTLs, single-use takes, and the one rule for a store
 * failure (ServiceUnavailable naming the store, the adapter's message in the debug detail only).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { storeKeys } from '../../src/store/keys.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { guardStore, jsonRecord, Records, secretDigest, storeFailure, type StoreUse } from '../../src/store/records.js';
import { StoreUnavailableError } from '../../src/store/store.js';
import { manualClock } from './contract.js';

interface Sample {
  name: string;
  n: number;
}

const SECRET = 'q'.repeat(43);
const secretKind = jsonRecord<Sample>({ key: storeKeys.browserSession, secretId: true, ttlMs: 5_000 });
const plainKind = jsonRecord<Sample>({ key: storeKeys.terminalSession, secretId: false });

const clock = manualClock();
let store: MemoryStore;
function records(use: StoreUse = 'session'): Records {
  store = new MemoryStore({ prefix: 'rec:', now: clock.now });
  return new Records(store, use);
}
afterEach(async () => {
  await store.close();
});

describe('record kinds', () => {
  it.each([
    ['a secret id is stored under its SHA-256 only', secretKind, `bsess:${secretDigest(SECRET)}`],
    ['a plain id is stored as it is', plainKind, `tsess:${SECRET}`],
  ])('%s', async (_name, kind, expectedKey) => {
    const r = records();
    await r.put(kind, SECRET, { name: 'x', n: 1 }, 1_000);
    expect(kind.key(SECRET)).toBe(expectedKey);
    expect(store.rawKeys()).toEqual([`rec:${expectedKey}`]);
    expect(store.rawKeys().join()).toEqual(kind === secretKind ? expect.not.stringContaining(SECRET) : expect.stringContaining(SECRET));
  });

  it('round-trips a value as JSON and reads it back typed', async () => {
    const r = records();
    await r.put(secretKind, SECRET, { name: 'ünïcode "quoted"', n: 42 });
    expect(await store.get(secretKind.key(SECRET))).toBe('{"name":"ünïcode \\"quoted\\"","n":42}');
    expect(await r.get(secretKind, SECRET)).toEqual({ name: 'ünïcode "quoted"', n: 42 });
  });

  it.each([
    ['the kind\'s fixed TTL', secretKind, undefined, 5_000],
    ['a per-write TTL over the kind\'s', secretKind, 2_000, 2_000],
    ['a per-write TTL for a kind without one', plainKind, 3_000, 3_000],
  ])('writes with %s', async (_name, kind, ttlMs, expected) => {
    const r = records();
    await r.put(kind, 'id', { name: 'x', n: 1 }, ttlMs);
    expect(await store.ttl(kind.key('id'))).toBe(expected);
  });

  it('refuses to write a kind without a fixed TTL when no TTL is given (never an immortal record)', async () => {
    const r = records();
    await expect(r.put(plainKind, 'id', { name: 'x', n: 1 })).rejects.toThrow(TypeError);
    expect(store.rawKeys()).toEqual([]);
  });

  it('takes a record once; get, take and delete of an absent one are undefined / false', async () => {
    const r = records();
    await r.put(secretKind, SECRET, { name: 'once', n: 1 });
    expect(await r.take(secretKind, SECRET)).toEqual({ name: 'once', n: 1 });
    expect(await r.take(secretKind, SECRET)).toBeUndefined();
    expect(await r.get(secretKind, SECRET)).toBeUndefined();
    expect(await r.delete(secretKind, SECRET)).toBe(false);
  });

  it('deletes a record and says it existed', async () => {
    const r = records();
    await r.put(secretKind, SECRET, { name: 'x', n: 1 });
    expect(await r.delete(secretKind, SECRET)).toBe(true);
    expect(await r.get(secretKind, SECRET)).toBeUndefined();
  });

  it('forgets a record when its TTL has passed', async () => {
    const r = records();
    await r.put(secretKind, SECRET, { name: 'x', n: 1 });
    await clock.advance(5_000);
    expect(await r.get(secretKind, SECRET)).toBeUndefined();
  });
});

describe('a store failure', () => {
  it.each([
    ['get', (r: Records) => r.get(secretKind, SECRET)],
    ['put', (r: Records) => r.put(secretKind, SECRET, { name: 'x', n: 1 })],
    ['take', (r: Records) => r.take(secretKind, SECRET)],
    ['delete', (r: Records) => r.delete(secretKind, SECRET)],
    ['guard', (r: Records) => r.guard(() => store.get('other'))],
  ] as const)('in %s is ServiceUnavailable naming the store, with the adapter message kept private', async (_name, operation) => {
    const r = records('credential');
    await store.close();
    const err = await operation(r).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'ServiceUnavailable', status: 503, message: 'The credential store is unavailable.' });
    expect((err as GatewayError).cause).toBeInstanceOf(StoreUnavailableError);
    expect((err as GatewayError).debug).toBe(((err as GatewayError).cause as Error).message);
  });

  it.each(['credential', 'session', 'revocation'] as const)('for the %s store names it, with an optional debug prefix', (use) => {
    const cause = new StoreUnavailableError('connection refused');
    expect(storeFailure(cause, use, 'rate limit: ')).toMatchObject({ code: 'ServiceUnavailable', message: `The ${use} store is unavailable.`, debug: 'rate limit: connection refused', cause });
  });

  it('is the only error turned into ServiceUnavailable: anything else passes through unchanged', async () => {
    const other = new RangeError('bad TTL');
    expect(storeFailure(other, 'session')).toBe(other);
    await expect(guardStore('session', () => Promise.reject(other))).rejects.toBe(other);
    await expect(guardStore('session', () => Promise.resolve(7))).resolves.toBe(7);
  });
});
