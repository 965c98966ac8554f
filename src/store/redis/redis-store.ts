/**
 * The Redis adapter (standalone URL, Sentinel, Cluster) over ioredis. It fails fast and closed: every
 * operation has one deadline (the configured command timeout), nothing queues while Redis is away, every
 * failure is a StoreUnavailableError without values or passwords in it, and the client reconnects forever
 * with capped backoff so service resumes by itself.
 */

import { createHash } from 'node:crypto';
import { Cluster, Command, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisStoreConfig } from '../../config/types.js';
import { assertValidTtl, StoreUnavailableError, type Store } from '../store.js';
import { groupBySlot } from './key-slot.js';

/** Connection state changes, for whoever wants to log or export them (the store itself never logs). */
export type RedisStoreEvent =
  | { type: 'ready' }
  | { type: 'disconnected' }
  | { type: 'reconnecting'; delayMs?: number }
  | { type: 'error'; message: string }
  | { type: 'closed' };

/** Runtime knobs that are not configuration: event hook and connection pacing. */
export interface RedisStoreOptions {
  /** Called on connection state changes; it must not throw (a throw is swallowed). */
  onEvent?: (event: RedisStoreEvent) => void;
  /** Cap of the reconnect backoff; reconnecting never stops. Default 2000 ms. */
  maxReconnectDelayMs?: number;
  /** How long one TCP (and TLS) connect may take. Default max(2000, 2 × command timeout). */
  connectTimeoutMs?: number;
  /** How long a graceful QUIT may take on close before the connection is cut. Default the command timeout. */
  closeTimeoutMs?: number;
}

/** Which Redis deployment a store talks to; it decides how multi-key operations are split. */
export type RedisTopology = 'standalone' | 'sentinel' | 'cluster';

/** What a RedisStore needs besides its client; createRedisStore derives it from the config. */
export interface RedisStoreSettings {
  topology: RedisTopology;
  prefix: string;
  commandTimeoutMs: number;
  closeTimeoutMs: number;
  description: string;
  /** Strings that must never appear in an error message (passwords), scrubbed as a last line of defence. */
  secrets: string[];
}

/**
 * SET with PX for every key, in one atomic step: what a MULTI of SETs does, but as one command, so that it
 * is one command in a batch with whatever else is in flight (a MULTI is three more, and measured dearer). With n keys,
 * KEYS[i] is set to value number ARGV[n + i] (of the values from ARGV[2n + 1] on) for ARGV[i] ms: a value
 * several keys share (a credential set under its session and its cache entry) is sent once.
 */
const SET_MANY_SCRIPT = `
local n = #KEYS
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[2 * n + tonumber(ARGV[n + i])], 'PX', ARGV[i])
end
return n
`;

/**
 * Keep the greater of the stored value and ARGV[1] (Lua compares strings byte by byte, as memcmp), and
 * give the key the longer of its remaining TTL and ARGV[2] ms; returns the value stored afterwards.
 */
const SET_MAX_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
local ttl = redis.call('PTTL', KEYS[1])
if current < ARGV[1] then
  current = ARGV[1]
  redis.call('SET', KEYS[1], current, 'KEEPTTL')
end
if ttl < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return current
`;

/** A Lua script sent by its SHA, and in full when the server's script cache does not know it. */
interface Script {
  text: string;
  sha: string;
}

function script(text: string): Script {
  return { text, sha: createHash('sha1').update(text).digest('hex') };
}

const SET_MANY = script(SET_MANY_SCRIPT);
const SET_MAX = script(SET_MAX_SCRIPT);

/** SET_MANY's ARGV for `writes`: their TTLs, then which value each takes, then each distinct value once. */
function setManyArguments(writes: readonly { value: string; ttlMs: number }[]): (string | number)[] {
  const values: string[] = [];
  const picks = writes.map(({ value }) => {
    const index = values.indexOf(value);
    return index >= 0 ? index + 1 : values.push(value);
  });
  return [...writes.map((w) => w.ttlMs), ...picks, ...values];
}

async function runScript(client: Redis | Cluster, { text, sha }: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
  try {
    return await client.evalsha(sha, keys.length, ...keys, ...args);
  } catch (error) {
    // The script cache is per server and empties on restart or failover: send the script once more.
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(text, keys.length, ...keys, ...args);
  }
}

/** A Store on Redis; build it with createRedisStore. */
export class RedisStore implements Store {
  readonly description: string;
  readonly #client: Redis | Cluster;
  readonly #settings: RedisStoreSettings;
  readonly #readyWaiters = new Set<{ resolve: () => void; reject: (error: Error) => void }>();
  /** Connection errors since the client was last ready; see #connected for why it matters. */
  #failuresSinceReady = 0;
  /** The last connection error (already scrubbed), so a failure says why rather than only "not connected". */
  #lastError: string | undefined;
  #closing: Promise<void> | undefined;
  /** Why this server cannot serve the store (older than Redis 7.0), once its INFO has said so. */
  #unsupported: string | undefined;
  /** Whether commands are being held for the next write (#batchTurn). */
  #holding = false;
  /** The reply to the last command of the batch last written; the next batch is written once it is in. */
  #inFlight: Promise<unknown> | undefined;

  /** Wraps an ioredis client; prefer createRedisStore, which builds the client with the options this needs. */
  constructor(client: Redis | Cluster, settings: RedisStoreSettings, onEvent?: (event: RedisStoreEvent) => void) {
    this.#client = client;
    this.#settings = settings;
    this.description = settings.description;
    this.#watch(onEvent);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    assertValidTtl(ttlMs);
    await this.#run('set', (c) => c.set(this.#key(key), value, 'PX', ttlMs));
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#run('get', (c) => c.get(this.#key(key)))) ?? undefined;
  }

  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    this.#assertOpen();
    if (keys.length === 0) return [];
    const rawKeys = keys.map((key) => this.#key(key));
    return this.#run('getMany', async (c) => {
      if (this.#settings.topology !== 'cluster') {
        return (await c.mget(rawKeys)).map((value) => value ?? undefined);
      }
      // One MGET per slot, all slots in parallel; then put the answers back in the caller's order.
      const found = new Map<string, string | undefined>();
      const groups = groupBySlot([...new Set(rawKeys)], (rawKey) => rawKey);
      await Promise.all(
        groups.map(async (group) => {
          const values = await c.mget(group);
          group.forEach((rawKey, i) => found.set(rawKey, values[i] ?? undefined));
        }),
      );
      return rawKeys.map((rawKey) => found.get(rawKey));
    });
  }

  async take(key: string): Promise<string | undefined> {
    // GETDEL (Redis >= 6.2): one atomic command, so two takers can never both get the value.
    return (await this.#run('take', (c) => c.getdel(this.#key(key)))) ?? undefined;
  }

  async delete(...keys: string[]): Promise<number> {
    this.#assertOpen();
    if (keys.length === 0) return 0;
    const rawKeys = [...new Set(keys.map((key) => this.#key(key)))];
    return this.#run('delete', async (c) => {
      if (this.#settings.topology !== 'cluster') return c.del(rawKeys);
      const counts = await Promise.all(groupBySlot(rawKeys, (rawKey) => rawKey).map((group) => c.del(group)));
      return counts.reduce((sum, n) => sum + n, 0);
    });
  }

  async setMany(entries: readonly { key: string; value: string; ttlMs: number }[]): Promise<void> {
    // Validate everything first, so a bad entry leaves nothing half-written.
    for (const entry of entries) assertValidTtl(entry.ttlMs);
    this.#assertOpen();
    if (entries.length === 0) return;
    const writes = entries.map(({ key, value, ttlMs }) => ({ rawKey: this.#key(key), value, ttlMs }));
    await this.#run('setMany', async (c) => {
      // Standalone and Sentinel: one script, atomic. Cluster: one per slot (atomic per slot), in parallel.
      // A script, unlike a MULTI, is one command in the batch (#batchTurn) and sends a shared
      // value once: a MULTI here cost Redis and the gateway more per fresh issuance (bench/README.md).
      const groups = this.#settings.topology === 'cluster' ? groupBySlot(writes, (w) => w.rawKey) : [writes];
      await Promise.all(groups.map((group) => runScript(c, SET_MANY, group.map((w) => w.rawKey), setManyArguments(group))));
    });
  }

  async increment(key: string, ttlMs: number): Promise<number> {
    assertValidTtl(ttlMs);
    const rawKey = this.#key(key);
    return this.#run('increment', async (c) => {
      // INCR creates the counter at 1 or counts it. PEXPIRE NX (Redis 7.0: only when it has no TTL) follows
      // the counts that need it, not every count: the first (which creates the counter), and the second and
      // every 64th, so that a counter whose first PEXPIRE was lost (a connection cut between the two) gets
      // its TTL soon after; never extended. One command per count instead of two (bench/README.md). A key
      // names its window: a counter that never gets a TTL (lost at its only count or two) is a few bytes
      // left in Redis, never a limit that fails to reset. Redis spends about 15 µs starting a script.
      const value = await c.incr(rawKey);
      if (value <= 2 || value % 64 === 0) await c.pexpire(rawKey, ttlMs, 'NX');
      return value;
    });
  }

  async setMax(key: string, value: string, ttlMs: number): Promise<string> {
    assertValidTtl(ttlMs);
    return (await this.#run('setMax', (c) => runScript(c, SET_MAX, [this.#key(key)], [value, ttlMs]))) as string;
  }

  async keysWithPrefix(keyPrefix: string): Promise<string[]> {
    const { prefix } = this.#settings;
    // SCAN MATCH is a glob: the prefixes' own glob characters are escaped to match literally.
    const pattern = `${(prefix + keyPrefix).replace(/[\\*?[\]]/g, '\\$&')}*`;
    const found = await this.#run('keysWithPrefix', async (c) => {
      const nodes = c instanceof Cluster ? c.nodes('master') : [c];
      const perNode = await Promise.all(nodes.map((node) => scanAll(node, pattern)));
      return perNode.flat();
    });
    return [...new Set(found)].map((rawKey) => rawKey.slice(prefix.length));
  }

  /** Remaining TTL in ms; undefined when absent; Infinity only for a key some other writer left without a TTL. */
  async ttl(key: string): Promise<number | undefined> {
    const pttl = await this.#run('ttl', (c) => c.pttl(this.#key(key)));
    if (pttl === -2) return undefined;
    return pttl === -1 ? Number.POSITIVE_INFINITY : pttl;
  }

  /** On a Cluster, the master of every slot must answer: one missing master makes part of the keys unreachable. */
  async ping(): Promise<void> {
    await this.#run('ping', async (c) => {
      if (c instanceof Cluster) await pingSlotOwners(c);
      else await c.ping();
    });
  }

  async close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    for (const waiter of this.#readyWaiters) waiter.reject(this.#closedError());
    this.#readyWaiters.clear();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#client.quit(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('quit timed out')), this.#settings.closeTimeoutMs);
        }),
      ]);
    } catch {
      // QUIT could not be sent or took too long (Redis away or stuck): cut the connection instead.
      this.#client.disconnect();
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The one place keys get their prefix (ioredis keyPrefix misses some commands, e.g. scripts on Cluster).
   * Slots are computed on the prefixed key, so a prefix holding a `{…}` tag is still handled correctly: it
   * just pins every key to one slot.
   */
  #key(key: string): string {
    return this.#settings.prefix + key;
  }

  /**
   * Runs one store operation under one deadline (the command timeout) covering the wait for a connection and
   * every round trip, and turns any failure into a StoreUnavailableError.
   */
  async #run<T>(operation: string, work: (client: Redis | Cluster) => Promise<T>): Promise<T> {
    this.#assertOpen();
    if (this.#unsupported) throw new StoreUnavailableError(`redis ${operation} failed: ${this.#unsupported}`);
    if (this.#client.status === 'ready') return this.#runConnected(operation, work);
    const { commandTimeoutMs } = this.#settings;
    const deadline = new AbortController();
    let connected = false;
    const timer = setTimeout(() => {
      const waitedFor = connected ? '' : ` waiting for a connection${this.#lastErrorNote()}`;
      deadline.abort(new StoreUnavailableError(`redis ${operation} failed: timed out after ${commandTimeoutMs} ms${waitedFor}`));
    }, commandTimeoutMs);
    const attempt = (async () => {
      await this.#connected(operation, deadline.signal);
      connected = true;
      return work(this.#client);
    })();
    // When the deadline wins, the attempt may still fail later; nobody is waiting for it any more.
    attempt.catch(() => {});
    try {
      return await Promise.race([
        attempt,
        new Promise<never>((_, reject) => {
          deadline.signal.addEventListener('abort', () => reject(deadline.signal.reason), { once: true });
        }),
      ]);
    } catch (error) {
      throw this.#unavailable(operation, error);
    } finally {
      clearTimeout(timer);
      deadline.abort();
    }
  }

  /**
   * Batches commands the way ioredis's auto-pipelining does, without the pipeline it builds per batch.
   * A standalone or Sentinel connection is corked at a command when none is held: every command issued
   * from then on (by this request and by every other one in flight) waits, until this event-loop turn's
   * check phase and, if a batch is still out, until the reply to its last command has come (one batch in
   * flight at a time, so under load each write carries many requests' commands); then all go in one write.
   * Replies come in order, so that last reply means the whole batch is answered. A connection that drops
   * rejects every command it carried, which releases the next batch (onto the dead socket: ioredis has
   * rejected those commands too). A Redis that stops answering holds the batch until each operation's
   * deadline, as it would hold auto-pipelined commands.
   *
   * Why not auto-pipelining itself: per batch it makes a pipeline (an object, a promise, result arrays,
   * a callback per command) whose allocations outlived young-generation collections: in a loop of GETs
   * about 5 KB of old-generation garbage per command; in the gateway a cache hit promoted 12 KB instead
   * of 5 and cost 1.2 times the CPU (bench/README.md, "Issue 17, fourth round"; `npm run bench:gc`).
   * A Cluster keeps auto-pipelining, which also routes each batch to the node that owns its slot.
   */
  #batchTurn(): void {
    const client = this.#client;
    if (this.#holding || !(client instanceof Redis)) return;
    const stream = client.stream;
    if (!stream?.writable) return;
    this.#holding = true;
    stream.cork();
    const write = () => {
      this.#holding = false;
      // The stream corked above, even if the client has since moved to a new connection.
      stream.uncork();
      const tail = client.commandQueue.peekBack()?.command;
      const last = tail instanceof Command ? tail.promise : undefined;
      this.#inFlight = last;
      const answered = () => {
        if (this.#inFlight === last) this.#inFlight = undefined;
      };
      last?.then(answered, answered);
    };
    setImmediate(() => {
      const out = this.#inFlight;
      if (out) out.then(write, write);
      else write();
    });
  }

  /**
   * #run when the client is already connected (every operation but the first few): the same deadline and
   * the same errors, without the AbortController that only the wait for a connection needs. That
   * controller, its listener and the DOMException `abort()` makes cost about 3% of the main thread per
   * operation under load (bench/PROFILE.md: DOMException and createAbortSignal among the top functions).
   */
  #runConnected<T>(operation: string, work: (client: Redis | Cluster) => Promise<T>): Promise<T> {
    const { commandTimeoutMs } = this.#settings;
    this.#batchTurn();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreUnavailableError(`redis ${operation} failed: timed out after ${commandTimeoutMs} ms`)), commandTimeoutMs);
      let attempt: Promise<T>;
      try {
        attempt = work(this.#client);
      } catch (error) {
        clearTimeout(timer);
        reject(this.#unavailable(operation, error));
        return;
      }
      // After the deadline has rejected, a late outcome settles nothing (a promise settles once).
      attempt.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(this.#unavailable(operation, error));
        },
      );
    });
  }

  /**
   * Resolves once the client is ready. A client between two connections gets until the deadline, which
   * rides out a quick restart or failover; once a connection attempt has failed, Redis is known to be down,
   * and waiting would only hold every request for the full timeout, so the operation fails at once.
   */
  #connected(operation: string, signal: AbortSignal): Promise<void> {
    if (this.#client.status === 'ready') return Promise.resolve();
    if (this.#client.status === 'end') {
      return Promise.reject(new StoreUnavailableError(`redis ${operation} failed: connection ended${this.#lastErrorNote()}`));
    }
    if (this.#failuresSinceReady > 0) {
      return Promise.reject(
        new StoreUnavailableError(`redis ${operation} failed: not connected (reconnecting)${this.#lastErrorNote()}`),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject,
      };
      const onAbort = () => {
        this.#readyWaiters.delete(waiter);
        reject(signal.reason);
      };
      this.#readyWaiters.add(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #watch(onEvent: ((event: RedisStoreEvent) => void) | undefined): void {
    const emit = (event: RedisStoreEvent) => {
      try {
        onEvent?.(event);
      } catch {
        // A faulty listener must not break the connection handling.
      }
    };
    let wasReady = false;
    this.#client.on('ready', () => {
      wasReady = true;
      this.#failuresSinceReady = 0;
      this.#lastError = undefined;
      for (const waiter of this.#readyWaiters) waiter.resolve();
      this.#readyWaiters.clear();
      emit({ type: 'ready' });
      this.#checkVersion(emit);
    });
    this.#client.on('close', () => {
      if (wasReady) emit({ type: 'disconnected' });
      wasReady = false;
    });
    this.#client.on('reconnecting', (delayMs?: unknown) => {
      emit(typeof delayMs === 'number' ? { type: 'reconnecting', delayMs } : { type: 'reconnecting' });
    });
    this.#client.on('end', () => emit({ type: 'closed' }));
    // Always listen for 'error': without a listener ioredis prints to the console, and the store never logs.
    this.#client.on('error', (error: unknown) => {
      if (this.#client.status !== 'ready') this.#failuresSinceReady++;
      this.#lastError = this.#describe(error);
      emit({ type: 'error', message: this.#lastError });
    });
    this.#client.on('node error', (error: unknown, node: unknown) => {
      if (this.#client.status !== 'ready') this.#failuresSinceReady++;
      this.#lastError = `node ${String(node)}: ${this.#describe(error)}`;
      emit({ type: 'error', message: this.#lastError });
    });
  }

  #lastErrorNote(): string {
    return this.#lastError ? `; last error: ${this.#lastError}` : '';
  }

  /**
   * Counters get their TTL by `PEXPIRE … NX`, new in Redis 7.0, and only at some counts (increment): an
   * older server would fail those and take the others, leaving counters without a TTL. So every server
   * the store connects to is asked its version, and one older than 7.0 fails every operation, closed,
   * saying why, until a connection reaches a newer one (a Cluster: the node that answers).
   */
  #checkVersion(emit: (event: RedisStoreEvent) => void): void {
    this.#client.info('server').then(
      (text) => {
        const version = /^redis_version:(\d+)\.(\d+)/m.exec(text);
        if (version && Number(version[1]) < 7) {
          this.#unsupported = `the server runs Redis ${version[1]}.${version[2]}; stsgate needs 7.0 or later`;
          emit({ type: 'error', message: this.#unsupported });
        } else this.#unsupported = undefined;
      },
      () => {
        // Not answered (the connection went again): the next ready asks once more.
      },
    );
  }

  #assertOpen(): void {
    if (this.#closing) throw this.#closedError();
  }

  #closedError(): StoreUnavailableError {
    return new StoreUnavailableError('redis store is closed');
  }

  #unavailable(operation: string, error: unknown): Error {
    if (error instanceof StoreUnavailableError || error instanceof RangeError) return error;
    return new StoreUnavailableError(`redis ${operation} failed: ${this.#describe(error)}`);
  }

  /**
   * A short reason for a failure, safe to log. The original error is deliberately not kept as `cause`: ioredis
   * attaches the command and its arguments (values) to reply errors.
   */
  #describe(error: unknown): string {
    if (!(error instanceof Error)) return 'unknown error';
    let reason: string;
    if (error.name === 'MaxRetriesPerRequestError') reason = 'connection lost';
    else if (/enableOfflineQueue/.test(error.message)) reason = 'not connected';
    else if (error.message.startsWith('Connection is closed')) reason = 'connection closed';
    else {
      // Redis echoes arguments in "unknown command" errors; keep only what comes before them.
      reason = error.message.split(', with args beginning with')[0]!.split('\n')[0]!.slice(0, 200);
    }
    for (const secret of this.#settings.secrets) {
      if (secret) reason = reason.split(secret).join('***');
    }
    return reason;
  }
}

/** Builds a RedisStore for the configured topology; it connects in the background and reconnects forever. */
export function createRedisStore(config: RedisStoreConfig, options: RedisStoreOptions = {}): RedisStore {
  const commandTimeoutMs = config.commandTimeoutMs;
  if (!Number.isSafeInteger(commandTimeoutMs) || commandTimeoutMs < 1) {
    throw new RangeError('store.commandTimeoutMs: must be an integer >= 1');
  }
  const maxDelay = options.maxReconnectDelayMs ?? 2_000;
  // Exponential backoff with jitter, capped, never giving up: service resumes by itself when Redis is back,
  // and many gateway replicas do not reconnect in lockstep.
  const backoff = (attempt: number) => Math.round(Math.min(maxDelay, 50 * 2 ** Math.min(attempt, 16)) * (0.5 + Math.random() / 2));
  // No ioredis `commandTimeout`: every store operation runs under its own deadline (#run), which covers all
  // of its commands; a timer per command besides would cost the same again, five or six times per exchange.
  const common: RedisOptions = {
    connectTimeout: options.connectTimeoutMs ?? Math.max(2_000, 2 * commandTimeoutMs),
    // Fail fast: nothing waits in an unbounded queue while Redis is away (the store waits for a connection
    // itself, bounded by the command timeout), and commands in flight when a connection drops fail at once
    // instead of being replayed later, after the caller has already been told they failed.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: backoff,
    keepAlive: 10_000,
    // Commands issued in the same event-loop turn (by one request, or by the many requests in flight under
    // load) go out in one write and come back in one read: each socket write to Redis costs more gateway
    // CPU than a request's whole rule evaluation (bench/PROFILE.md, bench/README.md "What changed"). The
    // store batches them itself (RedisStore #batchTurn), more cheaply than ioredis's auto-pipelining.
    enableAutoPipelining: false,
    // A primary that became a replica (a failover behind one DNS name, or one Sentinel has not announced
    // yet) answers READONLY: reconnect to find the new primary rather than fail every write until restart.
    reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 1 : false),
  };
  const settings = {
    prefix: config.prefix,
    commandTimeoutMs,
    closeTimeoutMs: options.closeTimeoutMs ?? commandTimeoutMs,
  };
  const withPrefix = config.prefix ? `, prefix "${config.prefix}"` : '';

  switch (config.kind) {
    case 'standalone': {
      const target = parseRedisUrl(config.url);
      const client = new Redis({
        ...common,
        host: target.host,
        port: target.port,
        username: target.username,
        password: target.password,
        db: target.db,
        tls: target.tls ? { servername: target.host } : undefined,
      });
      const db = target.db ? `, db ${target.db}` : '';
      return new RedisStore(
        client,
        {
          ...settings,
          topology: 'standalone',
          description: `redis standalone ${target.tls ? 'rediss' : 'redis'}://${hostPort(target.host, target.port)}${db}${withPrefix}`,
          secrets: [target.password ?? ''],
        },
        options.onEvent,
      );
    }
    case 'sentinel': {
      const client = new Redis({
        ...common,
        sentinels: config.sentinels,
        name: config.name,
        role: 'master',
        password: config.password,
        sentinelPassword: config.sentinelPassword,
        db: config.db ?? 0,
        tls: config.tls ? {} : undefined,
        enableTLSForSentinelMode: config.tls,
        sentinelTLS: config.tls ? {} : undefined,
        sentinelCommandTimeout: commandTimeoutMs,
        // Must return a number: ioredis ends the client for good when no sentinel answers and this gives up.
        sentinelRetryStrategy: backoff,
        // Follow +switch-master at once instead of waiting for the old master to answer READONLY.
        failoverDetector: true,
      });
      const db = config.db ? `, db ${config.db}` : '';
      return new RedisStore(
        client,
        {
          ...settings,
          topology: 'sentinel',
          description: `redis sentinel master "${config.name}" via ${config.sentinels.map((s) => hostPort(s.host, s.port)).join(', ')}${config.tls ? ' (TLS)' : ''}${db}${withPrefix}`,
          secrets: [config.password ?? '', config.sentinelPassword ?? ''],
        },
        options.onEvent,
      );
    }
    case 'cluster': {
      const clusterOptions: ClusterOptions = {
        enableAutoPipelining: true,
        // ioredis routes an auto-pipelined command by its first argument, which for a script is its SHA,
        // not its key: scripts go on their own, to the node that owns the key.
        autoPipeliningIgnoredCommands: ['evalsha', 'eval'],
        // The cluster-level queue too: before the slot map is known, fail (after the store's bounded wait).
        enableOfflineQueue: false,
        clusterRetryStrategy: backoff,
        slotsRefreshTimeout: commandTimeoutMs,
        // Node connections: ioredis forces lazy connects with a per-node queue and no per-node retry (it
        // refreshes the slot map instead); the no-replay rules still apply per node (the deadline is #run's).
        redisOptions: {
          connectTimeout: common.connectTimeout,
          maxRetriesPerRequest: 0,
          autoResendUnfulfilledCommands: false,
          keepAlive: 10_000,
          password: config.password,
          tls: config.tls ? {} : undefined,
        },
      };
      const client = new Cluster(config.nodes, clusterOptions);
      return new RedisStore(
        client,
        {
          ...settings,
          topology: 'cluster',
          description: `redis cluster via ${config.nodes.map((n) => hostPort(n.host, n.port)).join(', ')}${config.tls ? ' (TLS)' : ''}${withPrefix}`,
          secrets: [config.password ?? ''],
        },
        options.onEvent,
      );
    }
  }
}

/** Every key on one node matching a SCAN pattern (SCAN may return a key twice; callers dedupe). */
async function scanAll(node: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

/**
 * Pings the master of every slot. Pinging the connected masters is not enough: ioredis drops a dead node from
 * its pool at once, while its slots still point at it until the cluster fails it over.
 */
async function pingSlotOwners(cluster: Cluster): Promise<void> {
  const owners = new Set<string>();
  for (let slot = 0; slot < 16384; slot++) {
    const owner = cluster.slots[slot]?.[0];
    if (!owner) throw new Error(`cluster slot ${slot} has no master`);
    owners.add(owner);
  }
  const connected = new Map(cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]));
  const missing = [...owners].filter((owner) => !connected.has(owner));
  if (missing.length > 0) {
    // Ask the cluster again so a master that came back gets a connection (and a changed map is picked up).
    cluster.refreshSlotsCache();
    throw new Error(`cluster master ${missing.join(', ')} not connected`);
  }
  await Promise.all([...owners].map((owner) => connected.get(owner)!.ping()));
}

interface RedisTarget {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
  tls: boolean;
}

/** Reads redis://[user[:password]@]host[:port][/db] and rediss://…; errors never repeat the URL (it may hold a password). */
export function parseRedisUrl(url: string): RedisTarget {
  const expected = 'expected redis://[user:password@]host[:port][/db] or rediss://…';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`store.url: not a valid URL; ${expected}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`store.url: scheme ${JSON.stringify(parsed.protocol)} is not supported; ${expected}`);
  }
  // WHATWG URL keeps IPv6 brackets in hostname; sockets want the bare address.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new Error(`store.url: no host; ${expected}`);
  const path = parsed.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d+$/.test(path)) throw new Error(`store.url: the path must be a database number; ${expected}`);
  return {
    host,
    port: parsed.port ? Number(parsed.port) : 6379,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: path ? Number(path) : 0,
    tls: parsed.protocol === 'rediss:',
  };
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
