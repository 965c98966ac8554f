/**
 * The routes with a literal path are found by one lookup and run as a chain composed at start
 * (http/app.ts: routed). What they answer must be what @koa/router alone answers, for every spelling
 * the router accepts, and the routes the shortcut must not take (parameters, parameter handlers,
 * path-less middleware, a literal path an earlier pattern also matches) stay with the router.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactRoutes, routed } from '../../src/http/app.js';

/** What a handler saw of the routing, so that both paths can be compared field by field. */
function seen(ctx: Context) {
  const routing = ctx as unknown as Record<string, unknown>;
  return { params: ctx.params, routerPath: routing.routerPath, matchedRoute: routing._matchedRoute, matched: (routing.matched as unknown[]).length, routeMatched: routing.routeMatched };
}

function build(): Router {
  const router = new Router();
  const group = new Router();
  group.get('/plain', (ctx) => {
    ctx.body = { route: 'plain', ...seen(ctx) };
  });
  group.post('/plain', (ctx) => {
    ctx.body = { route: 'plain-post' };
  });
  group.get('/items/:id', (ctx) => {
    ctx.body = { route: 'item', ...seen(ctx) };
  });
  // A literal path an earlier pattern also matches: the router runs both layers, so no shortcut.
  group.get('/items/new', (ctx) => {
    ctx.body = { route: 'items-new', ...seen(ctx) };
  });
  router.use(group.routes());
  // Path-less middleware in a group: every path of the group passes through it.
  const guarded = new Router({ prefix: '/guarded' });
  guarded.use(async (ctx, next) => {
    ctx.set('x-guard', 'ran');
    await next();
  });
  guarded.get('/door', (ctx) => {
    ctx.body = { route: 'door' };
  });
  router.use(guarded.routes());
  return router;
}

async function serve(router: Router, shortcut: boolean): Promise<{ server: Server; url: string }> {
  const app = new Koa();
  app.use(shortcut ? routed(router) : (router.routes() as unknown as Koa.Middleware));
  app.use(router.allowedMethods() as unknown as Koa.Middleware);
  const server = createServer(app.callback()).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('exact routes', () => {
  it('takes only literal routes the router would run alone', () => {
    const keys = [...exactRoutes(build()).keys()].sort();
    expect(keys).toEqual(['GET /plain', 'HEAD /plain', 'POST /plain']);
  });

  describe('answer as the router does', () => {
    let withShortcut: { server: Server; url: string };
    let routerOnly: { server: Server; url: string };
    beforeAll(async () => {
      withShortcut = await serve(build(), true);
      routerOnly = await serve(build(), false);
    });
    afterAll(() => {
      withShortcut.server.close();
      routerOnly.server.close();
    });

    const requests: [string, string][] = [
      ['GET', '/plain'],
      ['HEAD', '/plain'],
      ['POST', '/plain'],
      ['GET', '/PLAIN'],
      ['GET', '/plain/'],
      ['PUT', '/plain'],
      ['DELETE', '/plain'],
      ['PATCH', '/plain'],
      ['GET', '/items/7'],
      ['GET', '/items/new'],
      ['GET', '/guarded/door'],
      ['GET', '/nowhere'],
    ];
    it.each(requests)('%s %s', async (method, path) => {
      const [a, b] = await Promise.all([fetch(withShortcut.url + path, { method }), fetch(routerOnly.url + path, { method })]);
      expect(a.status).toBe(b.status);
      expect(a.headers.get('allow')).toBe(b.headers.get('allow'));
      expect(a.headers.get('x-guard')).toBe(b.headers.get('x-guard'));
      expect(await a.text()).toBe(await b.text());
    });

    // `matched`: every layer on the path, whatever its method (GET and POST), as allowedMethods needs for a 405.
    it('gives a shortcut route the routing fields the router gives it', async () => {
      const body = (await (await fetch(`${withShortcut.url}/plain`)).json()) as Record<string, unknown>;
      expect(body).toEqual({ route: 'plain', params: {}, routerPath: '/plain', matchedRoute: '/plain', matched: 2, routeMatched: true });
    });
  });
});
