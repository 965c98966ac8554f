/**
 * The child side of a benchmark server process: tell the parent where it listens, and stop cleanly
 * when asked (a clean exit is what lets `--cpu-prof` write its profile), or when the parent goes away.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a server child sends its parent once it listens. */
export interface ReadyMessage {
  type: 'ready';
  url: string;
  /** The gateway's metrics and admin listener, when the server has one. */
  adminUrl?: string;
  /** The gateway's: how many worker processes its `workers` setting meant (1: one process, no cluster), and the cores it saw. */
  workers?: { count: number; availableParallelism: number };
}

/** The answer to a `{ type: 'memory' }` message. */
export interface MemoryMessage {
  type: 'memory';
  usage: NodeJS.MemoryUsage;
}

/** Reports `server`'s URL (and `details`: the admin URL...) to the parent and arranges a clean stop by `close` (default: close the server). */
export function serveUntilStopped(server: Server, close: () => Promise<void> = () => closeServer(server), details: Omit<ReadyMessage, 'type' | 'url'> = {}): void {
  const { port } = server.address() as AddressInfo;
  stopWhenAsked(close);
  reportReady({ type: 'ready', url: `http://127.0.0.1:${port}`, ...details });
}

/**
 * Arranges a clean stop by `close`: when the parent asks, on SIGTERM or SIGINT, or when the parent goes
 * away. Answers the parent's memory requests. For a server that is not ready yet, call it first and
 * `reportReady` later (a cluster primary waits for its workers).
 */
export function stopWhenAsked(close: () => Promise<void>): void {
  if (!process.send) throw new Error('a benchmark server must be started by bench/run.ts (it needs an IPC channel)');
  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    // Never wait forever: a stuck close still ends the process.
    setTimeout(() => process.exit(code), 5_000).unref();
    close().then(
      () => process.exit(code),
      () => process.exit(1),
    );
  };
  process.on('message', (message: unknown) => {
    const type = (message as { type?: unknown } | null)?.type;
    if (type === 'stop') stop(0);
    // Memory as V8 sees it, after a full collection when the process runs with --expose-gc.
    if (type === 'memory') {
      (globalThis as { gc?: () => void }).gc?.();
      const reply: MemoryMessage = { type: 'memory', usage: process.memoryUsage() };
      process.send?.(reply);
    }
  });
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  // The parent died without stopping us: nobody will, so go.
  process.on('disconnect', () => stop(0));
}

/** Tells the parent where the server listens: the end of its start. */
export function reportReady(ready: ReadyMessage): void {
  process.send!(ready);
}

/** Starts listening on a free loopback port. */
export function listenOnLoopback(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
}

/** Stops accepting connections and closes the open ones. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
