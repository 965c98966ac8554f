/**
 * The gateway under test: the real composition root (`startGateway`), Redis-backed, logging as in
 * production. With `workers` > 1 (or "auto" on more than one core) it runs as `stsgate serve` does
 * (src/cli.ts): this process is the cluster primary (`runPrimary`), and each worker starts the gateway on
 * the shared ports, shares its metrics with the primary and reports that it listens.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { isClusterPrimary, releaseWorker, reportListening, runPrimary, shareMetricsWithPrimary, workerCount, workerId } from '../../src/cluster.js';
import { createLogger } from '../../src/observability/logger.js';
import { reportReady, serveUntilStopped, stopWhenAsked } from './lifecycle.js';
import { benchGatewayConfig, GATEWAY_SETTINGS_ENV, type GatewayBenchSettings } from './settings.js';

/** A worker's message to the primary once its gateway listens: its URLs (every worker's are the same shared ports). */
const WORKER_READY = 'stsgate-bench:worker-ready';
interface WorkerReady {
  type: typeof WORKER_READY;
  url: string;
  adminUrl: string;
}
const SHUTDOWN_GRACE_MS = 1000;

const raw = process.env[GATEWAY_SETTINGS_ENV];
if (!raw) throw new Error(`${GATEWAY_SETTINGS_ENV} is not set: start this through bench/run.ts`);
const config = benchGatewayConfig(JSON.parse(raw) as GatewayBenchSettings);
const workers = workerCount(config.workers ?? 1);
/** What the parent is told of the `workers` setting, so that it reports what ran rather than what it expects. */
const resolved = { count: workers, availableParallelism: availableParallelism() };
/** Loaded only by a process that serves, as `stsgate serve` does: a cluster's primary never loads the gateway. */
const loadGateway = async () => {
  const [{ startGateway }, { GatewayMetrics }] = await Promise.all([import('../../src/main.js'), import('../../src/observability/metrics.js')]);
  return { startGateway, GatewayMetrics };
};

if (isClusterPrimary(workers)) {
  await primary();
} else if (cluster.isWorker) {
  await worker();
} else {
  const { startGateway } = await loadGateway();
  const gateway = await startGateway(config, { port: 0, adminPort: 0, shutdownGraceMs: SHUTDOWN_GRACE_MS });
  serveUntilStopped(gateway.server, () => gateway.close(), { adminUrl: gateway.adminUrl, workers: resolved });
}

/**
 * The primary: forks the workers with `runPrimary` and reports ready to bench/run.ts once every worker
 * listens. A stop (the parent's, a signal, the parent gone) becomes the SIGTERM `runPrimary` forwards to
 * the workers; the process ends when they have all exited.
 */
async function primary(): Promise<void> {
  const done = runPrimary({ workers, logger: createLogger(), stopTimeoutMs: SHUTDOWN_GRACE_MS + 5_000 });
  stopWhenAsked(async () => {
    process.kill(process.pid, 'SIGTERM');
    await done;
  });
  const ready = new Map<number, WorkerReady>();
  cluster.on('message', (from, message: WorkerReady | null) => {
    if (message?.type !== WORKER_READY || ready.size === workers) return;
    ready.set(from.id, message);
    if (ready.size < workers) return;
    const urls = new Set([...ready.values()].map((m) => `${m.url} ${m.adminUrl}`));
    if (urls.size !== 1) throw new Error(`the workers listen on different ports: ${[...urls].join(', ')}`);
    reportReady({ type: 'ready', url: message.url, adminUrl: message.adminUrl, workers: resolved });
  });
  process.exit(await done);
}

/** A worker: the gateway as `stsgate serve` starts it in a worker, stopped by the signal the primary forwards. */
async function worker(): Promise<void> {
  const { startGateway, GatewayMetrics } = await loadGateway();
  const metrics = new GatewayMetrics();
  await shareMetricsWithPrimary(metrics);
  const gateway = await startGateway(config, { logger: createLogger({ buffered: true }).child({ worker: workerId() }), metrics, port: 0, adminPort: 0, shutdownGraceMs: SHUTDOWN_GRACE_MS });
  reportListening();
  const ready: WorkerReady = { type: WORKER_READY, url: gateway.url, adminUrl: gateway.adminUrl };
  process.send!(ready);
  // Once: a terminal's Ctrl-C reaches a worker both directly and forwarded by the primary.
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    gateway.close().then(
      () => {
        releaseWorker();
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
