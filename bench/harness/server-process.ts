/**
 * The parent side of a benchmark server: one child process per server under test (so that the load
 * generator never shares its event loop), its memory read from /proc, and a guarantee that every child
 * started is gone when the run ends, however it ends.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { MemoryMessage, ReadyMessage } from '../servers/lifecycle.js';
import { execForm, finalStage, readDockerfile } from '../../test/deploy/dockerfile.js';
import { memoryBytes, processTree, startTime } from './proc.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Where bench/tsconfig.servers.json compiles a checkout's src/ and bench/servers/ to. */
export const buildDirOf = (repo: string): string => join(repo, 'node_modules', '.cache', 'stsgate-bench', 'build');
/** This checkout's build. */
export const BUILD_DIR = buildDirOf(REPO);

/**
 * Compiles the gateway and the benchmark servers (bench/tsconfig.servers.json, incremental) so that they
 * run as the production image runs stsgate: node on compiled JavaScript, with no TypeScript loader in the
 * process (tsx alone adds about 70 MB of RSS and its own loader thread). Returns the seconds it took.
 */
export async function buildServers(repo: string = REPO): Promise<number> {
  const started = performance.now();
  const build = buildDirOf(repo);
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  // Written afresh, with tsc's incremental state: a checkout whose node_modules was copied with hard
  // links (`cp -al`, as bench:ab suggests) shares these files with the original, and tsc would write one
  // build into both (or, trusting the shared state, none).
  await rm(dirname(build), { force: true, recursive: true });
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', join(repo, 'bench', 'tsconfig.servers.json')], { cwd: repo, timeout: 180_000 });
  } catch (err) {
    // Type errors still emit (noEmitOnError: false); only a missing output is fatal.
    if (!existsSync(join(build, 'bench', 'servers', 'gateway.js'))) throw err;
  }
  // src/idp finds provider definitions at <package root>/providers, i.e. next to build/src.
  const providers = join(build, 'providers');
  await rm(providers, { force: true, recursive: true });
  if (existsSync(join(repo, 'providers'))) await symlink(join(repo, 'providers'), providers);
  return (performance.now() - started) / 1000;
}

const running = new Set<ChildProcess>();

/** Last resort: kill whatever is still running when this process exits (normally, by error or by signal), a cluster's workers too. */
process.on('exit', () => {
  for (const child of running) {
    for (const pid of child.pid === undefined ? [] : processTree(child.pid).slice(1)) kill(pid);
    child.kill('SIGKILL');
  }
});

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

export interface StartOptions {
  /** Extra Node flags, e.g. `--cpu-prof`. */
  nodeFlags?: string[];
  env?: Record<string, string>;
  /** The build to start it from (default this checkout's, BUILD_DIR): another checkout's, to compare two commits. */
  buildDir?: string;
  /** Show the child's stdout (default: discarded, as a log shipper would take it). */
  showStdout?: boolean;
  /** Read the child's stdout instead, line by line (what V8's `--trace-gc-nvp` prints goes there too). */
  onStdoutLine?: (line: string) => void;
  readyTimeoutMs?: number;
}

/** A server running in its own Node process, from compiled JavaScript. */
export class ServerProcess {
  readonly name: string;
  readonly url: string;
  /** The metrics and admin listener (the gateway's); the public URL for servers without one. */
  readonly adminUrl: string;
  /** What the server reported when it was ready. */
  readonly ready: ReadyMessage;
  readonly #child: ChildProcess;
  readonly #stderr: string[];

  private constructor(name: string, ready: ReadyMessage, child: ChildProcess, stderr: string[]) {
    this.name = name;
    this.url = ready.url;
    this.adminUrl = ready.adminUrl ?? ready.url;
    this.ready = ready;
    this.#child = child;
    this.#stderr = stderr;
  }

  /** Starts the compiled `bench/servers/<script>.js` (see buildServers) and waits until it reports its URL. */
  static async start(name: string, script: string, options: StartOptions = {}): Promise<ServerProcess> {
    const path = join(options.buildDir ?? BUILD_DIR, 'bench', 'servers', `${script}.js`);
    const child = fork(path, [], {
      execArgv: options.nodeFlags ?? [],
      env: { ...process.env, ...options.env },
      stdio: ['ignore', options.onStdoutLine ? 'pipe' : options.showStdout ? 'inherit' : 'ignore', 'pipe', 'ipc'],
    });
    if (options.onStdoutLine) {
      const onLine = options.onStdoutLine;
      let partial = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) onLine(line);
      });
    }
    running.add(child);
    child.once('exit', () => running.delete(child));
    const stderr: string[] = [];
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr.push(chunk);
      if (stderr.length > 200) stderr.shift();
    });
    const timeoutMs = options.readyTimeoutMs ?? 20_000;
    try {
      const ready = await new Promise<ReadyMessage>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs} ms`)), timeoutMs);
        child.once('message', (message: ReadyMessage) => {
          clearTimeout(timer);
          resolve(message);
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`));
        });
      });
      return new ServerProcess(name, ready, child, stderr);
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\n${stderr.join('').slice(-4000)}`);
    }
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** This process and every process it started (a cluster primary's workers), itself first. */
  processTree(): number[] {
    return processTree(this.pid);
  }

  /** Resident set size now, in bytes (VmRSS). */
  rssBytes(): number {
    return memoryBytes(this.pid, 'VmRSS');
  }

  /** Peak resident set size over the process's life, in bytes (VmHWM). */
  peakRssBytes(): number {
    return memoryBytes(this.pid, 'VmHWM');
  }

  /** The child's memory as V8 reports it (after a full GC when started with --expose-gc). */
  async memoryUsage(timeoutMs = 5_000): Promise<NodeJS.MemoryUsage> {
    return (await this.ask<MemoryMessage>({ type: 'memory' }, 'memory', timeoutMs)).usage;
  }

  /** Sends the child `message` and resolves with its first answer of `type` (`memory`, `heap-sampling`). */
  ask<T extends { type: string }>(message: { type: string; [field: string]: unknown }, type: T['type'], timeoutMs = 5_000): Promise<T> {
    const child = this.#child;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off('message', onMessage);
        reject(new Error(`${this.name} did not answer ${message.type}`));
      }, timeoutMs);
      const onMessage = (answer: { type: string }) => {
        if (answer?.type !== type) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(answer as T);
      };
      child.on('message', onMessage);
      child.send(message);
    });
  }

  /** What the child wrote on stderr lately (for failure reports). */
  stderrTail(): string {
    return this.#stderr.join('').slice(-4000);
  }

  /**
   * Asks the child to stop cleanly (so profiles get written), killing it if it has not exited in time;
   * then kills any process it started that outlived it (a cluster worker), by pid and start time.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const descendants = this.processTree()
      .slice(1)
      .map((pid) => ({ pid, started: startTime(pid) }));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.send({ type: 'stop' });
    else child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
    for (const { pid, started } of descendants) if (started !== undefined && startTime(pid) === started) kill(pid);
  }
}

/** Stops every child still running (in parallel); used on every exit path of the run. */
export async function stopAll(servers: Iterable<ServerProcess>): Promise<void> {
  await Promise.all([...servers].map((server) => server.stop().catch(() => undefined)));
}

/** Samples a server's resident memory every `intervalMs` and keeps the largest value seen. */
export class RssSampler {
  #peak = 0;
  readonly #timer: NodeJS.Timeout;
  readonly #server: ServerProcess;

  constructor(server: ServerProcess, intervalMs = 50) {
    this.#server = server;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  /** Stops sampling; returns the peak in bytes. */
  stop(): number {
    clearInterval(this.#timer);
    this.#sample();
    return this.#peak;
  }

  #sample(): void {
    this.#peak = Math.max(this.#peak, this.#server.rssBytes());
  }
}

/** The Node flags the production image runs the gateway with (the Dockerfile's ENTRYPOINT), so that a benchmark runs it the same way. */
export function imageNodeFlags(): string[] {
  const entrypoint = finalStage(readDockerfile()).find((i) => i.keyword === 'ENTRYPOINT');
  const command = entrypoint ? execForm(entrypoint.args) : undefined;
  if (!command || command[0] !== 'node' || command.at(-1) !== 'dist/cli.js') throw new Error('the Dockerfile ENTRYPOINT is not ["node", ...flags, "dist/cli.js"]');
  return command.slice(1, -1);
}
