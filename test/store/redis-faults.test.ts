/**
 * Outages against a redis-server this file owns: stopped, frozen (hung), restarted on the same port, wrong
 * password. The store must fail closed within about its command timeout, never leak values or passwords in
 * errors, and recover on its own.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError, type Store } from '../../src/store/store.js';
import { createRedisStore, type RedisStore, type RedisStoreEvent } from '../../src/store/redis/redis-store.js';
import { startRedis, type RedisServer } from '../support/redis-servers.js';
import { eventually } from './redis-harness.js';

const COMMAND_TIMEOUT = 300;
/** Scheduling noise on a busy two-core machine; a hang would blow far past this. */
const SLACK = 400;
const PASSWORD = 'faults-Pa55word-x9';
const SECRET_VALUE = 'VALUE-that-must-not-leak';

let server: RedisServer;
const opened: Store[] = [];

beforeAll(async () => {
  server = await startRedis({ password: PASSWORD });
});

afterEach(async () => {
  server.thaw();
  await Promise.all(opened.splice(0).map((store) => store.close()));
});

afterAll(async () => {
  await server?.stop();
});

function open(options: { url?: string; events?: RedisStoreEvent[]; prefix?: string } = {}): RedisStore {
  const store = createRedisStore(
    { kind: 'standalone', url: options.url ?? server.url, prefix: options.prefix ?? 'faults:', commandTimeoutMs: COMMAND_TIMEOUT },
    { maxReconnectDelayMs: 100, onEvent: (event) => options.events?.push(event) },
  );
  opened.push(store);
  return store;
}

/** Every operation, each as it would be called by a service. */
const operations: [string, (store: Store) => Promise<unknown>][] = [
  ['set', (s) => s.set('k', SECRET_VALUE, 60_000)],
  ['get', (s) => s.get('k')],
  ['getMany', (s) => s.getMany(['k', 'k2'])],
  ['take', (s) => s.take('k')],
  ['delete', (s) => s.delete('k')],
  ['setMany', (s) => s.setMany([{ key: 'a', value: SECRET_VALUE, ttlMs: 60_000 }])],
  ['increment', (s) => s.increment('n', 60_000)],
  ['ttl', (s) => s.ttl('k')],
  ['ping', (s) => s.ping()],
];

/** Asserts the call fails closed, in time, with nothing secret in the message; returns the message. */
async function expectUnavailable(call: () => Promise<unknown>): Promise<string> {
  const started = performance.now();
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  const elapsed = performance.now() - started;
  expect(error).toBeInstanceOf(StoreUnavailableError);
  expect(elapsed).toBeLessThan(COMMAND_TIMEOUT + SLACK);
  const message = (error as Error).message;
  expect(message).not.toContain(SECRET_VALUE);
  expect(message).not.toContain(PASSWORD);
  expect((error as Error).cause).toBeUndefined();
  return message;
}

describe('RedisStore under faults', () => {
  it('fails every operation closed while the server is down, and recovers on the same store', async () => {
    const events: RedisStoreEvent[] = [];
    const store = open({ events });
    await store.set('k', 'before', 60_000);

    await server.stop();
    try {
      for (const [, call] of operations) await expectUnavailable(() => call(store));
      // Concurrency does not change it: nothing queues up behind the outage.
      const started = performance.now();
      const results = await Promise.allSettled(Array.from({ length: 50 }, () => store.get('k')));
      expect(results.every((r) => r.status === 'rejected' && r.reason instanceof StoreUnavailableError)).toBe(true);
      expect(performance.now() - started).toBeLessThan(COMMAND_TIMEOUT + SLACK);
    } finally {
      await server.start();
    }

    await eventually(() => store.ping());
    // The server kept nothing (no persistence); the point is that the same store works again.
    await store.set('k', 'after', 60_000);
    expect(await store.get('k')).toBe('after');
    const types = events.map((e) => e.type);
    expect(types).toContain('disconnected');
    expect(types).toContain('reconnecting');
    expect(types.lastIndexOf('ready')).toBeGreaterThan(types.indexOf('disconnected'));
  });

  it.each(operations)('times out %s against a hung server', async (_name, call) => {
    const store = open();
    await store.ping();
    server.freeze();
    const message = await expectUnavailable(() => call(store));
    expect(message).toMatch(/timed out/);
    server.thaw();
    await eventually(() => store.ping());
  });

  it('starts without Redis, fails fast meanwhile, and serves once Redis appears', async () => {
    await server.stop();
    const store = open();
    try {
      await expectUnavailable(() => store.ping());
      await expectUnavailable(() => store.get('k'));
    } finally {
      await server.start();
    }
    await eventually(() => store.ping());
    await store.set('k', 'v', 60_000);
    expect(await store.get('k')).toBe('v');
  });

  it('reports a wrong password without repeating any password', async () => {
    const wrong = 'wrong-Pa55word-y7';
    const store = open({ url: `redis://:${wrong}@${server.host}:${server.port}` });
    const message = await expectUnavailable(() => store.ping());
    expect(message).toMatch(/WRONGPASS/);
    expect(message).not.toContain(wrong);
    expect(store.description).not.toContain(wrong);
  });

  it('keeps stored values out of command errors', async () => {
    const store = open();
    await store.set('k', SECRET_VALUE, 60_000);
    const message = await expectUnavailable(() => store.increment('k', 60_000));
    expect(message).toMatch(/not an integer/);
  });

  it('selects the database from the URL', async () => {
    const store = open({ url: `${server.url}/3`, prefix: 'db:' });
    await store.set('k', 'in-db-3', 60_000);
    expect((await server.cli('-n', '3', 'GET', 'db:k')).trim()).toBe('in-db-3');
    expect((await server.cli('-n', '0', 'EXISTS', 'db:k')).trim()).toBe('0');
  });

  it.each([
    ['down', () => server.stop(), () => server.start()],
    ['hung', () => server.freeze(), async () => server.thaw()],
  ])('closes promptly while the server is %s', async (_state, breakIt, repair) => {
    const store = open();
    await store.ping();
    await breakIt();
    try {
      const started = performance.now();
      await store.close();
      expect(performance.now() - started).toBeLessThan(COMMAND_TIMEOUT + SLACK);
      await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await repair();
    }
  });
});
