import Router from '@koa/router';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Store } from '../store/store.js';

export interface HealthDependencies {
  store: Store;
  metrics: GatewayMetrics;
  /** False once shutdown has begun, so the load balancer stops sending traffic first. */
  accepting: () => boolean;
  /** Serve `/metrics` too: always on the admin listener, on the public port only when configured. */
  serveMetrics: boolean;
}

/** `/healthz` (the process runs), `/readyz` (the store answers, keys are loaded, not shutting down), and `/metrics` when asked. */
export function healthRoutes(deps: HealthDependencies): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const checks: Record<string, string> = { keys: 'ok', store: 'ok', shutdown: deps.accepting() ? 'ok' : 'draining' };
    try {
      await deps.store.ping();
    } catch {
      checks.store = 'unreachable';
    }
    const ready = Object.values(checks).every((v) => v === 'ok');
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready', checks };
  });
  if (!deps.serveMetrics) return router;
  router.get('/metrics', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.exposition();
  });
  return router;
}
