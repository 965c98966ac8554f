/**
 * The small helpers every kind of test needs, in one place: the test account id, a free loopback port, a
 * pause, whether a loopback port answers, and a form POST.
 */
import { request } from 'node:http';
import { connect, createServer } from 'node:net';

/** The AWS account id every test gateway is configured with. */
export const ACCOUNT_ID = '123456789012';

/** Whether something accepts TCP connections on `port` of 127.0.0.1 (a server started by a test is up). */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Resolves after `ms` milliseconds (keep it short: tests prefer an injected clock to waiting). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Ports handed out in this test process, so two helpers never get the same one before either listens. */
const handedOut = new Set<number>();

/** Where freePort looks: `from` up to (not including) `from + count`. */
export interface PortRange {
  from?: number;
  count?: number;
  /** Also require port + 10000 to be free (a Redis Cluster node's bus port). */
  withClusterBus?: boolean;
  avoid?: readonly number[];
}

/**
 * A loopback port nobody listens on. By default from 12000-19999: below Linux's ephemeral range (where
 * outgoing connections take their local ports) and clear of the Redis helpers' 20000-29999 and their
 * cluster bus ports (test/support/redis-servers.ts).
 */
export async function freePort(range: PortRange = {}): Promise<number> {
  const { from = 12_000, count = 8_000 } = range;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * count);
    if (handedOut.has(port) || range.avoid?.includes(port)) continue;
    if (!(await canBind(port))) continue;
    if (range.withClusterBus && !(await canBind(port + 10_000))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free loopback port found');
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * POSTs a form (application/x-www-form-urlencoded) on a new connection, as separate clients would (with
 * `workers`, the primary hands out connections, not requests), and answers a fetch Response.
 */
export function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const answer = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) answer.append(name, one);
        }
        const status = res.statusCode!;
        // A Response may not carry a body with these statuses.
        const body = [101, 204, 205, 304].includes(status) ? null : Buffer.concat(chunks);
        resolve(new Response(body, { status, statusText: res.statusMessage ?? '', headers: answer }));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(new URLSearchParams(form).toString());
  });
}
