/**
 * The gateway's stdout logger is buffered (a request never waits for the write): lines logged while a
 * write is in flight go out together in the next one. Nothing may be lost or reordered on the way out:
 * an exit straight after logging (pino's synchronous flush on exit), and flushLogs (what `serve` runs
 * after SIGTERM) leaves nothing behind even when the process then dies without any exit handler.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli-process.js';

const SCRIPT = fileURLToPath(new URL('../support/buffered-log-lines.ts', import.meta.url));
const COUNT = 20_000;

/** Runs the script through a pipe read slowly at first (so that writes queue up); returns its stdout lines. */
async function run(how: 'exit' | 'flush-then-kill'): Promise<{ lines: string[]; signal: NodeJS.Signals | null; code: number | null }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, how, String(COUNT)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  child.stdout.pause();
  setTimeout(() => child.stdout.resume(), 300);
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  return { lines: Buffer.concat(chunks).toString('utf8').split('\n').filter((line) => line !== ''), code, signal };
}

function expectEveryLineInOrder(lines: string[]): void {
  const numbers = lines.map((line) => (JSON.parse(line) as { n: number; msg: string }).n);
  expect(numbers.length).toBe(COUNT);
  expect(numbers.every((n, i) => n === i)).toBe(true);
}

describe('buffered stdout logger', () => {
  it('writes every line, in order, when the process exits straight after logging', async () => {
    const { lines, code } = await run('exit');
    expect(code).toBe(0);
    expectEveryLineInOrder(lines);
  });

  it('writes a lone line within its flush interval, while the process goes on without logging', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, 'idle'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const started = await new Promise<number>((resolve) => child.once('spawn', () => resolve(performance.now())));
      const line = await new Promise<string>((resolve) => child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8'))));
      // The process lives 5 s after logging: a line seen well before that was written by the flush timer (100 ms), not at exit.
      expect(child.exitCode).toBeNull();
      expect(performance.now() - started).toBeLessThan(4_000);
      expect(JSON.parse(line)).toMatchObject({ msg: 'alone', n: 0 });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('has written every line once flushLogs resolves: a SIGKILL after it loses nothing', async () => {
    const { lines, signal } = await run('flush-then-kill');
    expect(signal).toBe('SIGKILL');
    expectEveryLineInOrder(lines);
  });
});
