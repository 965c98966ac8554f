/** The baseline: a bare Koa app answering a fixed string, on the same Node as the gateway. */
import { createServer } from 'node:http';
import Koa from 'koa';
import { listenOnLoopback, serveUntilStopped } from './lifecycle.js';

const app = new Koa();
app.use((ctx) => {
  ctx.body = 'ok';
});
const server = createServer(app.callback());
await listenOnLoopback(server);
serveUntilStopped(server);
