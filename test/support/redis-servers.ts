/**
 * Real redis-server processes for tests: standalone, a Cluster of masters, and a master watched by one
 * Sentinel. Each runs on free loopback ports with no persistence, in its own temp dir, and is killed when the
 * test stops it or, failing that, when the test process exits.
 */

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, sleep } from './common.js';

const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';
const HOST = '127.0.0.1';
const run = promisify(execFile);

/** Every process and dir we made, so an exiting test process leaves nothing behind even if a test forgot. */
const liveProcesses = new Set<ChildProcess>();
const liveDirs = new Set<string>();
process.on('exit', () => {
  for (const child of liveProcesses) child.kill('SIGKILL');
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

export interface HostPort {
  host: string;
  port: number;
}

/** One standalone redis-server; it can be stopped, restarted on its port, frozen and thawed. */
export interface RedisServer extends HostPort {
  /** redis://[:password@]127.0.0.1:port */
  url: string;
  password?: string;
  /** Stops the process (the port stays this server's for `start`). Safe to call twice. */
  stop(): Promise<void>;
  /** Starts the process again on the same port, after `stop`. */
  start(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing answers, like a hung server. */
  freeze(): void;
  /** SIGCONT after `freeze`. */
  thaw(): void;
  /** Runs one command through redis-cli and returns its raw output. */
  cli(...args: string[]): Promise<string>;
}

export interface StartRedisOptions {
  /** requirepass for the server. */
  password?: string;
  /** Extra redis-server arguments. */
  args?: string[];
  /**
   * Append-only persistence, kept across `stop`/`start`: a killed server comes back with every write it
   * acknowledged (Redis writes the AOF before replying). Default: no persistence, back empty.
   */
  persistent?: boolean;
}

/** Starts a standalone redis-server on a free loopback port. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = await redisPort();
  const dir = makeDir('redis');
  const extra = [
    ...(options.password ? ['--requirepass', options.password] : []),
    ...(options.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : []),
    ...(options.args ?? []),
  ];
  let child: ChildProcess | undefined = await spawnServer(port, dir, extra, options.password);
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  return {
    host: HOST,
    port,
    url: `redis://${auth}${HOST}:${port}`,
    ...(options.password ? { password: options.password } : {}),
    async stop() {
      if (child) await stopProcess(child);
      child = undefined;
      if (!options.persistent) removeDir(dir);
    },
    async start() {
      if (child) throw new Error(`redis on port ${port} is already running`);
      mkdirSync(dir, { recursive: true });
      liveDirs.add(dir);
      child = await spawnServer(port, dir, extra, options.password);
    },
    freeze() {
      child?.kill('SIGSTOP');
    },
    thaw() {
      child?.kill('SIGCONT');
    },
    cli: (...args) => cli(port, options.password, ...args),
  };
}

export interface RedisClusterHandle {
  /** Every master, usable as seed nodes. */
  nodes: HostPort[];
  /** Stops master `index` (its slots become unreachable; no replica takes over). */
  stopNode(index: number): Promise<void>;
  /** Starts master `index` again on its port; it rejoins with its saved node config and slots. */
  startNode(index: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a Redis Cluster of `masters` masters (no replicas), slots split evenly; resolves when cluster_state is ok. */
export async function startRedisCluster(options: { masters?: number } = {}): Promise<RedisClusterHandle> {
  const masters = options.masters ?? 3;
  const dir = makeDir('redis-cluster');
  const ports: number[] = [];
  // The cluster bus listens on port + 10000, so both must be free.
  for (let i = 0; i < masters; i++) ports.push(await redisPort({ withClusterBus: true, avoid: ports }));
  const nodeArgs = (port: number) => [
    '--cluster-enabled', 'yes',
    // Kept in the temp dir across stopNode/startNode, so a restarted node knows its id, epoch and slots.
    '--cluster-config-file', `nodes-${port}.conf`,
    '--cluster-node-timeout', '3000',
  ];
  const children: (ChildProcess | undefined)[] = [];
  const stop = async () => {
    await Promise.all(children.map((child) => child && stopProcess(child)));
    removeDir(dir);
  };
  try {
    children.push(...(await Promise.all(ports.map((port) => spawnServer(port, dir, nodeArgs(port))))));
    // What `redis-cli --cluster create` does, minus its one-second polling: distinct config epochs, an even
    // slot split, and every node introduced to the first.
    await Promise.all(
      ports.map(async (port, i) => {
        const first = Math.floor((16384 * i) / masters);
        const last = Math.floor((16384 * (i + 1)) / masters) - 1;
        await cli(port, undefined, 'CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1));
        await cli(port, undefined, 'CLUSTER', 'ADDSLOTSRANGE', String(first), String(last));
      }),
    );
    for (const port of ports.slice(1)) await cli(ports[0]!, undefined, 'CLUSTER', 'MEET', HOST, String(port));
    await waitFor(`cluster on ports ${ports.join(', ')}`, 20_000, async () => {
      const infos = await Promise.all(ports.map((port) => cli(port, undefined, 'CLUSTER', 'INFO')));
      return infos.every(
        (info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${masters}\r`),
      );
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    nodes: ports.map((port) => ({ host: HOST, port })),
    async stopNode(index) {
      const child = children[index];
      children[index] = undefined;
      if (child) await stopProcess(child);
    },
    async startNode(index) {
      if (children[index]) throw new Error(`cluster node ${index} is already running`);
      children[index] = await spawnServer(ports[index]!, dir, nodeArgs(ports[index]!));
    },
    stop,
  };
}

export interface RedisSentinelHandle {
  /** The monitored master's name, as clients ask sentinels for it. */
  name: string;
  master: RedisServer;
  sentinels: HostPort[];
  password?: string;
  /** Stops the Sentinel only (the master keeps running). */
  stopSentinel(): Promise<void>;
  /** Starts the Sentinel again on its port. */
  startSentinel(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts one master and one Sentinel monitoring it; resolves when the Sentinel reports the master. */
export async function startRedisSentinel(options: { password?: string } = {}): Promise<RedisSentinelHandle> {
  const master = await startRedis(options.password ? { password: options.password } : {});
  const name = `master${Math.floor(Math.random() * 1e6)}`;
  const port = await redisPort();
  const dir = makeDir('redis-sentinel');
  const config = join(dir, 'sentinel.conf');
  // Sentinel rewrites its config file, so it gets its own in the temp dir.
  writeFileSync(
    config,
    [
      `port ${port}`,
      `bind ${HOST}`,
      `dir ${dir}`,
      `logfile ${join(dir, `redis-${port}.log`)}`,
      `sentinel monitor ${name} ${HOST} ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} 2000`,
      `sentinel failover-timeout ${name} 5000`,
      ...(options.password ? [`sentinel auth-pass ${name} ${options.password}`] : []),
      '',
    ].join('\n'),
  );
  let sentinel: ChildProcess | undefined;
  const stop = async () => {
    if (sentinel) await stopProcess(sentinel);
    await master.stop();
    removeDir(dir);
  };
  const startSentinel = async () => {
    if (sentinel) throw new Error(`sentinel on port ${port} is already running`);
    const child = launch([config, '--sentinel']);
    sentinel = child;
    await waitFor(`sentinel on port ${port}`, 10_000, async () => {
      const reply = await cli(port, undefined, 'SENTINEL', 'get-master-addr-by-name', name);
      return reply.includes(String(master.port));
    }, child, join(dir, `redis-${port}.log`));
  };
  try {
    await startSentinel();
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    name,
    master,
    sentinels: [{ host: HOST, port }],
    ...(options.password ? { password: options.password } : {}),
    async stopSentinel() {
      const child = sentinel;
      sentinel = undefined;
      if (child) await stopProcess(child);
    },
    startSentinel,
    stop,
  };
}

async function spawnServer(port: number, dir: string, extra: string[], password?: string): Promise<ChildProcess> {
  const logfile = join(dir, `redis-${port}.log`);
  const child = launch([
    '--port', String(port),
    '--bind', HOST,
    // No persistence: tests must leave nothing on disk and never pause to save.
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--logfile', logfile,
    ...extra,
  ]);
  try {
    await waitFor(`redis-server on port ${port}`, 10_000, async () => (await cli(port, password, 'PING')).includes('PONG'), child, logfile);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return child;
}

function launch(args: string[]): ChildProcess {
  const child = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
  liveProcesses.add(child);
  child.once('exit', () => liveProcesses.delete(child));
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // SIGKILL: there is nothing to save (no persistence), Redis acts on SIGTERM only at its next cron tick
  // (seconds in cluster mode), and a crash is the outage the fault tests want anyway. It works on a frozen
  // process too. Cluster and Sentinel rewrite their config files on every change, so a restart finds them.
  child.kill('SIGKILL');
  await exited;
}

async function cli(port: number, password: string | undefined, ...args: string[]): Promise<string> {
  // REDISCLI_AUTH keeps the password off the command line (and redis-cli's warning off stderr).
  const env = password ? { ...process.env, REDISCLI_AUTH: password } : process.env;
  const { stdout } = await run(REDIS_CLI, ['-h', HOST, '-p', String(port), ...args], { env, timeout: 5_000 });
  return stdout;
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  child?: ChildProcess,
  logfile?: string,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${what} exited early:\n${readLog(logfile)}`);
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`${what} not ready after ${timeoutMs} ms:\n${readLog(logfile)}`);
    await sleep(25);
  }
}

function readLog(logfile: string | undefined): string {
  if (!logfile) return '';
  try {
    return readFileSync(logfile, 'utf8').slice(-4_000);
  } catch {
    return '(no log)';
  }
}

/**
 * A port nobody listens on, from 20000-29999: below Linux's ephemeral range (where outgoing connections take
 * their local ports), with the cluster bus port (+10000) below it too, and clear of the gateways' ports.
 */
function redisPort(options: { withClusterBus?: boolean; avoid?: number[] } = {}): Promise<number> {
  return freePort({ from: 20_000, count: 10_000, ...options });
}

function makeDir(kind: string): string {
  const dir = mkdtempSync(join(tmpdir(), `stsgate-${kind}-`));
  liveDirs.add(dir);
  return dir;
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}
