import Router from '@koa/router';
import type { Store } from '../store/store.js';

export interface HealthDependencies {
  store: Store;
  /** False once shutdown has begun, so the load balancer stops sending traffic first. */
  accepting: () => boolean;
}

/** `/healthz` (the process runs) and `/readyz` (the store answers, keys are loaded, not shutting down). */
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
  return router;
}
