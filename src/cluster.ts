/**
 * `workers: n` with node:cluster, so that one machine or pod uses every core. The primary serves nothing
 * and opens no store: it forks n workers that each run the whole gateway on the same port (they accept
 * from one shared listening socket), restarts a worker that dies unexpectedly, and on SIGTERM or SIGINT
 * forwards the signal and exits once every worker has shut down. Workers are replicas in one process
 * tree; the config loader refuses several of them without a shared store and shared keys.
 *
 * The admin listener (`admin.listen`) is shared by the workers like the public port, rather than served
 * by the primary: the admin API needs the store and the services only workers build, and the primary
 * stays free of both. Its `/metrics` still answers for the whole tree, summed by the primary (below).
 */
import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Logger } from './observability/logger.js';
import type { GatewayMetrics } from './observability/metrics.js';

/** The message a worker sends once it listens, so that a crash at start is told apart from one in service. */
const LISTENING = 'stsgate:listening';

/** A worker asks the primary for every worker's metrics, summed; the primary answers with the same type. */
const METRICS = 'stsgate:metrics';

/** How long a worker must have run for its death to count as a fresh failure rather than a crash loop. */
const STABLE_AFTER_MS = 10_000;

/** Where Linux states a container's CPU limit: cgroup v2, then the v1 CFS quota and period. */
const CGROUP_CPU_MAX = '/sys/fs/cgroup/cpu.max';
const CGROUP_V1_QUOTA = '/sys/fs/cgroup/cpu/cpu.cfs_quota_us';
const CGROUP_V1_PERIOD = '/sys/fs/cgroup/cpu/cpu.cfs_period_us';

/**
 * The CPU limit of this process's container in whole cores (at least 1), or undefined when it has none.
 * Rounded down, as Go's automaxprocs does: a process more than the quota pays for only gets throttled.
 */
export function cpuLimit(read: (path: string) => string | undefined = readIfPresent): number | undefined {
  const cores = (quota: number, period: number) => (quota > 0 && period > 0 ? Math.max(1, Math.floor(quota / period)) : undefined);
  const v2 = read(CGROUP_CPU_MAX)?.trim().split(/\s+/);
  if (v2?.length === 2) return v2[0] === 'max' ? undefined : cores(Number(v2[0]), Number(v2[1]));
  const quota = read(CGROUP_V1_QUOTA);
  const period = read(CGROUP_V1_PERIOD);
  return quota === undefined || period === undefined ? undefined : cores(Number(quota.trim()), Number(period.trim()));
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The number of worker processes a `workers` setting means here. "auto" is one per core this process may
 * run on, but no more than the container's CPU limit: os.availableParallelism() counts the node's CPUs,
 * so a pod limited to 2 cores on a 64-core node would otherwise start 64 workers.
 */
export function workerCount(setting: number | 'auto', limit: number | undefined = setting === 'auto' ? cpuLimit() : undefined): number {
  if (setting !== 'auto') return setting;
  return Math.max(1, Math.min(availableParallelism(), limit ?? Infinity));
}

/** True in the process that should fork workers instead of serving. */
export function isClusterPrimary(workers: number): boolean {
  return workers > 1 && cluster.isPrimary;
}

/** In a worker: tells the primary the gateway listens. Does nothing in a standalone process. */
export function reportListening(): void {
  if (cluster.isWorker) process.send?.({ type: LISTENING });
}

/** This worker's id (1, 2, ...), or undefined outside a cluster. */
export function workerId(): number | undefined {
  return cluster.worker?.id;
}

/**
 * In a worker: makes `/metrics` answer for the whole process tree. A scrape reaches whichever worker
 * accepts it, so one worker's own counters would jump between scrapes; the primary sums every worker's
 * registry (prom-client's AggregatorRegistry). Does nothing in a standalone process.
 */
export async function shareMetricsWithPrimary(metrics: GatewayMetrics): Promise<void> {
  if (!cluster.isWorker) return;
  // Loaded here, not at the top: the CLI imports this file for every command, and most never serve.
  const { AggregatorRegistry } = await import('prom-client');
  // Constructing one is what installs prom-client's listener that answers the primary's requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([metrics.registry]);
  const waiting = new Map<number, { resolve(text: string): void; reject(err: Error): void; timer: NodeJS.Timeout }>();
  let next = 0;
  process.on('message', (message: { type?: unknown; id?: number; text?: string; error?: string }) => {
    const request = message?.type === METRICS && message.id !== undefined ? waiting.get(message.id) : undefined;
    if (!request) return;
    waiting.delete(message.id!);
    clearTimeout(request.timer);
    if (message.text !== undefined) request.resolve(message.text);
    else request.reject(new Error(`metrics from the primary: ${message.error ?? 'no answer'}`));
  });
  metrics.exposeFrom(
    () =>
      new Promise<string>((resolve, reject) => {
        const id = next++;
        // Longer than the primary's own wait for the workers (5 s in prom-client).
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error('metrics from the primary: timed out'));
        }, 6_000);
        waiting.set(id, { resolve, reject, timer });
        process.send!({ type: METRICS, id });
      }),
  );
}

/**
 * In a worker, after the gateway has closed: lets go of the IPC channel to the primary, which would
 * otherwise keep the process alive. Does nothing in a standalone process.
 */
export function releaseWorker(): void {
  if (cluster.isWorker && cluster.worker?.isConnected()) cluster.worker.disconnect();
}

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  /** How long workers may take to exit after a forwarded signal before they are killed (delay + grace + margin). */
  stopTimeoutMs: number;
  /** Delay before the first restart of a worker that died; doubled for each further early death. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
}

/**
 * Runs the primary until it is told to stop; resolves the process exit code: 0 when every worker shut
 * down cleanly, 1 when one failed to, or when the gateway cannot start at all.
 */
export async function runPrimary(options: PrimaryOptions): Promise<number> {
  const { logger } = options;
  const { AggregatorRegistry } = await import('prom-client');
  const restartDelayMs = options.restartDelayMs ?? 100;
  const maxRestartDelayMs = options.maxRestartDelayMs ?? 30_000;
  const started = new Map<number, { at: number; listening: boolean }>();
  const aggregator = new AggregatorRegistry();
  const restarts = new Set<NodeJS.Timeout>();
  let everListened = false;
  let youngDeaths = 0;
  let stopping = false;
  let exitCode = 0;

  return new Promise<number>((resolve) => {
    let killTimer: NodeJS.Timeout | undefined;
    const running = () => Object.keys(cluster.workers ?? {}).length;
    const finish = () => {
      clearTimeout(killTimer);
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
      cluster.removeListener('exit', onExit);
      logger.info({ exitCode }, exitCode === 0 ? 'all workers stopped' : 'workers stopped with failures');
      resolve(exitCode);
    };

    const fork = () => {
      const worker = cluster.fork();
      const state = { at: Date.now(), listening: false };
      started.set(worker.id, state);
      worker.on('message', (message: { type?: unknown; id?: unknown } | null) => {
        if (message?.type === METRICS) {
          const reply = (body: { text: string } | { error: string }) => {
            if (worker.isConnected()) worker.send({ type: METRICS, id: message.id, ...body });
          };
          aggregator.clusterMetrics().then((text) => reply({ text }), (err: unknown) => reply({ error: String(err) }));
          return;
        }
        if (message?.type !== LISTENING) return;
        state.listening = true;
        everListened = true;
        logger.info({ worker: worker.id, pid: worker.process.pid }, 'worker listening');
      });
    };

    const stop = (signal: NodeJS.Signals, reason: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, reason, workers: running() }, 'stopping workers');
      for (const timer of restarts) clearTimeout(timer);
      restarts.clear();
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
      killTimer = setTimeout(() => {
        logger.error({ workers: running(), timeoutMs: options.stopTimeoutMs }, 'workers did not stop in time; killing them');
        exitCode = 1;
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
      }, options.stopTimeoutMs);
      if (running() === 0) finish();
    };

    const onSignal = (signal: NodeJS.Signals) => {
      // A terminal's Ctrl-C reaches the workers too; forwarding it again is harmless (they stop once).
      if (stopping) logger.info({ signal }, 'already stopping');
      else stop(signal, 'signal');
    };

    const onExit = (worker: Worker, code: number | null, signal: NodeJS.Signals | null) => {
      const state = started.get(worker.id);
      started.delete(worker.id);
      const fields = { worker: worker.id, pid: worker.process.pid, code, signal };
      if (stopping) {
        if (code === 0) logger.info(fields, 'worker stopped');
        else {
          exitCode = 1;
          logger.error(fields, 'worker did not stop cleanly');
        }
        if (running() === 0) finish();
        return;
      }
      logger.error(fields, 'worker exited unexpectedly');
      if (!state?.listening && !everListened) {
        // Nothing has ever come up (bad keys file, port taken...): restarting would only loop.
        exitCode = 1;
        stop('SIGTERM', 'a worker failed to start');
        return;
      }
      youngDeaths = state !== undefined && Date.now() - state.at < STABLE_AFTER_MS ? youngDeaths + 1 : 0;
      const delay = Math.min(maxRestartDelayMs, restartDelayMs * 2 ** Math.max(0, youngDeaths - 1));
      logger.info({ worker: worker.id, delayMs: delay }, 'restarting worker');
      const timer = setTimeout(() => {
        restarts.delete(timer);
        if (!stopping) fork();
      }, delay);
      restarts.add(timer);
    };

    // Workers accept from the shared socket themselves (SCHED_NONE) rather than through the primary's
    // round-robin (Node's default on Linux): round-robin queues accepted connections in the primary and
    // resets every one still queued when the last worker closes, so a shutdown under load cut off
    // requests the kernel had accepted (measured: 22 of 200 in a burst). Shared accept loses only what a
    // single process loses, and spread a burst evenly here. NODE_CLUSTER_SCHED_POLICY still overrides.
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    cluster.on('exit', onExit);
    logger.info({ workers: options.workers, pid: process.pid }, 'starting workers');
    for (let i = 0; i < options.workers; i++) fork();
  });
}
