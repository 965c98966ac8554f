/**
 * What the Redis store does on the wire. How it batches its commands (RedisStore #batchTurn): every
 * command issued in one event-loop turn goes out in one write, and while a batch is out the next one
 * waits for its replies. And which servers it refuses (older than Redis 7.0). A loopback proxy between
 * the store and Redis sees each write as it arrives and can delay the replies, rewrite them or cut the
 * connection, so the batching, its release and its failure paths are observed, not inferred.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createRedisStore, type RedisStore } from '../../src/store/redis/redis-store.js';
import { StoreUnavailableError } from '../../src/store/store.js';
import { deleteByPrefix, eventually, uniquePrefix } from './redis-harness.js';

const upstream = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = uniquePrefix();
const raw = new Redis(upstream.toString(), { lazyConnect: true, maxRetriesPerRequest: 1 });

/** What reached Redis through the proxy: one entry per chunk the store wrote, with the commands in it. */
interface Arrival {
  at: number;
  commands: string[];
}

class RecordingProxy {
  readonly arrivals: Arrival[] = [];
  /** When each chunk of replies was passed on to the store. */
  readonly repliesAt: number[] = [];
  replyDelayMs = 0;
  /** Rewrites what Redis answers before the store sees it (same length: RESP counts bytes). */
  rewriteReplies: ((text: string) => string) | undefined;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<RecordingProxy> {
    const server = createServer();
    const proxy = new RecordingProxy(server);
    server.on('connection', (client) => proxy.#relay(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Cuts every connection through the proxy (the store's and Redis's side). */
  cut(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #relay(client: Socket): void {
    const server = connect(Number(upstream.port || 6379), upstream.hostname);
    for (const socket of [client, server]) {
      this.#sockets.add(socket);
      socket.on('close', () => {
        this.#sockets.delete(socket);
        client.destroy();
        server.destroy();
      });
      socket.on('error', () => {});
    }
    client.on('data', (chunk: Buffer) => {
      // RESP arrays: the command name is the first bulk string after each `*<n>` header.
      const commands = [...chunk.toString('latin1').matchAll(/\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n/g)].map((m) => m[1]!.toUpperCase());
      this.arrivals.push({ at: performance.now(), commands });
      server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => {
      const rewrite = this.rewriteReplies;
      const reply = rewrite ? Buffer.from(rewrite(chunk.toString('latin1')), 'latin1') : chunk;
      setTimeout(() => {
        this.repliesAt.push(performance.now());
        client.write(reply);
      }, this.replyDelayMs);
    });
  }
}

const proxies: RecordingProxy[] = [];
const stores: RedisStore[] = [];

async function storeThroughProxy(commandTimeoutMs = 5_000): Promise<{ store: RedisStore; proxy: RecordingProxy }> {
  const proxy = await RecordingProxy.start();
  proxies.push(proxy);
  const store = createRedisStore({ kind: 'standalone', url: proxy.url, prefix, commandTimeoutMs });
  stores.push(store);
  // Connected and past ioredis's ready check: from here the proxy sees only what the test sends.
  await store.ping();
  proxy.arrivals.length = 0;
  proxy.repliesAt.length = 0;
  return { store, proxy };
}

afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

afterAll(async () => {
  await deleteByPrefix(raw, prefix);
  await raw.quit();
});

describe('RedisStore command batching (standalone)', () => {
  it('sends every command of one event-loop turn in one write', async () => {
    const { store, proxy } = await storeThroughProxy();
    await store.set('a', 'A', 60_000);
    proxy.arrivals.length = 0;

    const answers = await Promise.all([
      ...Array.from({ length: 20 }, () => store.get('a')),
      store.increment('n', 60_000),
      store.getMany(['a', 'missing']),
    ]);

    expect(answers.slice(0, 20)).toEqual(Array(20).fill('A'));
    expect(answers[20]).toBe(1);
    expect(answers[21]).toEqual(['A', undefined]);
    // 20 GETs, INCR, MGET: 22 commands, one write; then the new counter's TTL, once its count is known.
    expect(proxy.arrivals.map((a) => a.commands)).toEqual([[...Array<string>(20).fill('GET'), 'INCR', 'MGET'], ['PEXPIRE']]);
  });

  it('holds the next batch until the batch in flight is answered, then sends it whole', async () => {
    const { store, proxy } = await storeThroughProxy();
    proxy.replyDelayMs = 150;
    const first = Promise.all([store.set('x', '1', 60_000), store.get('x')]);
    // A later turn, while the first batch waits for its (delayed) replies.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const second = Promise.all([store.get('x'), store.get('x'), store.increment('m', 60_000)]);

    expect(await first).toEqual([undefined, '1']);
    expect(await second).toEqual(['1', '1', 1]);
    expect(proxy.arrivals.map((a) => a.commands)).toEqual([['SET', 'GET'], ['GET', 'GET', 'INCR'], ['PEXPIRE']]);
    // The second write left only after the first batch's replies had been passed back.
    expect(proxy.arrivals[1]!.at).toBeGreaterThanOrEqual(proxy.repliesAt[0]!);
  });

  it('answers a script Redis has forgotten (NOSCRIPT, resent in full) at once, without waiting on its own batch', async () => {
    const { store, proxy } = await storeThroughProxy(5_000);
    // Redis's script cache empties on restart or failover; the store must resend the script in full.
    await raw.script('FLUSH');
    const started = performance.now();
    const [, value, counted] = await Promise.all([
      store.setMany([
        { key: 's1', value: 'shared', ttlMs: 60_000 },
        { key: 's2', value: 'shared', ttlMs: 60_000 },
      ]),
      store.get('s1'),
      store.increment('k', 60_000),
    ]);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect([value, counted]).toEqual([undefined, 1]);
    expect(await store.getMany(['s1', 's2'])).toEqual(['shared', 'shared']);
    expect(proxy.arrivals.flatMap((a) => a.commands)).toContain('EVAL');
  });

  it('fails a batch in flight and the batch held behind it at once when the connection drops, then recovers', async () => {
    const { store, proxy } = await storeThroughProxy(3_000);
    proxy.replyDelayMs = 400;
    const started = performance.now();
    const inFlight = store.get('y');
    await new Promise((resolve) => setTimeout(resolve, 30));
    const held = store.increment('z', 60_000);
    await new Promise((resolve) => setTimeout(resolve, 30));
    proxy.cut();

    await expect(inFlight).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(held).rejects.toBeInstanceOf(StoreUnavailableError);
    // Well before the 3 s deadline: nothing waited for a reply that could no longer come.
    expect(performance.now() - started).toBeLessThan(1_500);

    proxy.replyDelayMs = 0;
    await expect(store.set('y', 'back', 60_000)).resolves.toBeUndefined();
    expect(await store.get('y')).toBe('back');
  });
});

describe('RedisStore and the server it finds', () => {
  it('fails every operation, closed and saying why, on a server older than Redis 7.0 (counters need PEXPIRE NX)', async () => {
    const proxy = await RecordingProxy.start();
    proxies.push(proxy);
    // The real server, announcing itself as 6.2 (the same number of characters as its own version).
    proxy.rewriteReplies = (text) => text.replace(/redis_version:\d\.\d/g, 'redis_version:6.2');
    const events: string[] = [];
    const store = createRedisStore({ kind: 'standalone', url: proxy.url, prefix, commandTimeoutMs: 2_000 }, { onEvent: (e) => events.push(e.type === 'error' ? e.message : e.type) });
    stores.push(store);
    await eventually(async () => {
      expect(events).toContain('the server runs Redis 6.2; stsgate needs 7.0 or later');
    });
    await expect(store.increment('old', 60_000)).rejects.toThrow(/^redis increment failed: the server runs Redis 6\.2; stsgate needs 7\.0 or later$/);
    await expect(store.set('old', 'x', 60_000)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.ping()).rejects.toThrow(/Redis 6\.2/);
    // Refused before anything was sent: nothing counted, nothing written.
    expect(await raw.exists(`${prefix}old`)).toBe(0);
  });
});
