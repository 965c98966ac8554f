/**
 * Runs the `stsgate` command in a child process, from the TypeScript source through tsx (never a
 * possibly stale dist/), with its output collected so tests can wait for a line and read everything.
 *
 *   const login = runCli(['login', '--gateway', url, '--no-browser'], { XDG_CONFIG_HOME: dir });
 *   const address = await login.waitFor(/http:\S+\/cli\/login\?\S+/, 'stderr');
 *   expect(await login.exited).toBe(0);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI_SOURCE = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

/** The shell words that run the CLI (for `credential_process` lines): node with tsx's loader. */
export function cliCommandLine(): string[] {
  return [process.execPath, '--import', 'tsx', CLI_SOURCE];
}

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in the stream, or rejects after `timeoutMs` (or when the process ends first). */
  waitFor(pattern: RegExp, stream: 'stdout' | 'stderr', timeoutMs?: number): Promise<RegExpMatchArray>;
  /** The exit code (a signal counts as 128 + its number, as shells report it). */
  exited: Promise<number>;
}

/**
 * Starts `stsgate <args>` with `env` added to (or, with `undefined`, removed from) this process's environment;
 * its stdin is empty unless `stdin: 'pipe'` (then write to `child.stdin`).
 */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, options: { stdin?: 'pipe' } = {}): CliProcess {
  const merged: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...env })) if (value !== undefined) merged[key] = value;
  const [command, ...prefix] = cliCommandLine();
  const child = spawn(command!, [...prefix, ...args], { cwd: REPO_ROOT, env: merged, stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    out.stdout += chunk.toString('utf8');
    wake();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    out.stderr += chunk.toString('utf8');
    wake();
  });
  let ended = false;
  const exited = new Promise<number>((resolve) => {
    child.on('close', (code, signal) => {
      ended = true;
      wake();
      resolve(code ?? 128 + (signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : signal === 'SIGKILL' ? 9 : 0));
    });
  });
  return {
    child,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    exited,
    waitFor(pattern, stream, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(out[stream]);
          if (match) {
            cleanup();
            resolve(match);
          } else if (ended) {
            cleanup();
            reject(new Error(`stsgate ${args[0]} ended before ${pattern} appeared on ${stream}.\nstdout: ${out.stdout}\nstderr: ${out.stderr}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${pattern} on ${stream} of stsgate ${args[0]} within ${timeoutMs} ms.\nstdout: ${out.stdout}\nstderr: ${out.stderr}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Runs `stsgate <args>` to the end: its exit code and output. */
export async function runCliToEnd(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const cli = runCli(args, env);
  const code = await cli.exited;
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}
