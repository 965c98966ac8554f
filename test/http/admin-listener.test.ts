/**
 * The metrics and admin listener: its own port with `/metrics`, `/healthz` and `/readyz`; `/metrics` off
 * the public port unless configured; the admin API behind a bearer token (here a test-only route group,
 * as the real admin routes are mounted), 404 throughout when no token is configured; both ports closed
 * on shutdown, metrics still served while the public port drains; and the `admin:` configuration.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Router from '@koa/router';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { TOKEN_EXCHANGE_GRANT, TOKEN_TYPE } from '../../src/http/oauth.js';
import { capturedLogs, issuerFor, redisStoreConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { parsePrometheusText, sumOf } from '../support/prometheus.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';

const TOKEN = randomBytes(32).toString('base64url');

/** A stand-in for the real admin routes: what it answers shows the request got through the gate. */
function echoRoutes(): Router {
  const router = new Router();
  router.get('/admin/echo', (ctx) => {
    ctx.body = { reached: true };
  });
  router.post('/admin/echo', (ctx) => {
    ctx.body = { reached: true, method: 'POST' };
  });
  return router;
}

const started: TestGateway[] = [];
async function gateway(admin: { token?: string; metricsOnPublicPort?: boolean } = {}, shutdown?: { delaySeconds: number; graceSeconds: number }): Promise<TestGateway> {
  const g = await startTestGateway({
    issuers: [],
    config: {
      admin: { listen: { host: '127.0.0.1', port: 0 }, metricsOnPublicPort: admin.metricsOnPublicPort ?? false, ...(admin.token ? { token: admin.token } : {}) },
      ...(shutdown ? { shutdown } : {}),
    },
    adminRoutes: [echoRoutes()],
  });
  started.push(g);
  return g;
}
afterAll(async () => {
  await Promise.all(started.map((g) => g.close()));
});

async function expectJsonError(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.headers.get('cache-control')).toBe('no-store');
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body).toMatchObject({ error: code });
  expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
  return body;
}

describe('ports', () => {
  let plain: TestGateway;
  let opted: TestGateway;
  beforeAll(async () => {
    [plain, opted] = await Promise.all([gateway(), gateway({ metricsOnPublicPort: true })]);
  });

  it('listens on a port of its own', () => {
    expect(new URL(plain.adminUrl).port).not.toBe(new URL(plain.url).port);
    expect(plain.logs().find((l) => l.msg === 'stsgate listening')).toMatchObject({ url: plain.url, adminUrl: plain.adminUrl, adminApi: false });
  });

  it('serves Prometheus metrics on the admin port, counting the public port\'s requests', async () => {
    await fetch(`${plain.url}/.well-known/jwks.json`);
    const res = await fetch(`${plain.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(sumOf(parsePrometheusText(await res.text()), 'stsgate_http_requests_total', { route: '.well-known' })).toBeGreaterThanOrEqual(1);
  });

  it('answers /metrics on the public port with 404, like any unknown path, unless metrics_on_public_port', async () => {
    await expectJsonError(await fetch(`${plain.url}/metrics`), 404, 'NotFound');
    const res = await fetch(`${opted.url}/metrics`);
    expect(res.status).toBe(200);
    expect(parsePrometheusText(await res.text()).length).toBeGreaterThan(0);
  });

  it.each(['/healthz', '/readyz'])('serves %s on both ports', async (path) => {
    for (const base of [plain.url, plain.adminUrl]) expect((await fetch(`${base}${path}`)).status).toBe(200);
  });

  it.each(['/', '/oauth2/token', '/.well-known/jwks.json', '/login/x'])('serves nothing of the public surface on the admin port: %s', async (path) => {
    await expectJsonError(await fetch(`${plain.adminUrl}${path}`), 404, 'NotFound');
  });

  it('never serves the admin API on the public port', async () => {
    const token = await gateway({ token: TOKEN });
    await expectJsonError(await fetch(`${token.url}/admin/echo`, { headers: { authorization: `Bearer ${TOKEN}` } }), 404, 'NotFound');
  });
});

describe('admin API without a token configured', () => {
  let g: TestGateway;
  beforeAll(async () => {
    g = await gateway();
  });

  it.each([
    ['GET', '/admin/echo', {}],
    ['POST', '/admin/echo', {}],
    ['GET', '/admin/echo', { authorization: `Bearer ${TOKEN}` }],
    ['GET', '/admin', {}],
    ['GET', '/ADMIN/echo', {}],
  ] as const)('%s %s %j is 404', async (method, path, headers) => {
    const res = await fetch(`${g.adminUrl}${path}`, { method, headers });
    await expectJsonError(res, 404, 'NotFound');
    expect(res.headers.get('www-authenticate')).toBeNull();
  });
});

describe('admin API with a token', () => {
  let g: TestGateway;
  beforeAll(async () => {
    g = await gateway({ token: TOKEN });
  });

  const BARE = 'Bearer realm="stsgate admin"';
  const INVALID = /^Bearer realm="stsgate admin", error="invalid_token"/;

  it.each([
    ['no Authorization header', {}, BARE],
    ['the wrong token', { authorization: `Bearer ${randomBytes(32).toString('base64url')}` }, INVALID],
    ['the token with one character less', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }, INVALID],
    ['the token with one character more', { authorization: `Bearer ${TOKEN}A` }, INVALID],
    ['the token in upper case', { authorization: `Bearer ${TOKEN.toUpperCase()}` }, INVALID],
    ['an empty bearer token', { authorization: 'Bearer ' }, INVALID],
    ['the token under Basic', { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }, INVALID],
    ['the token without a scheme', { authorization: TOKEN }, INVALID],
    ['the token followed by another word', { authorization: `Bearer ${TOKEN} ${TOKEN}` }, INVALID],
    ['the token in a cookie', { cookie: `token=${TOKEN}` }, BARE],
  ] as [string, Record<string, string>, string | RegExp][])('%s: 401 with a Bearer challenge, nothing reached', async (_name, headers, challenge) => {
    for (const method of ['GET', 'POST']) {
      const res = await fetch(`${g.adminUrl}/admin/echo`, { method, headers });
      const body = await expectJsonError(res, 401, 'InvalidClientTokenId');
      expect(body).not.toHaveProperty('reached');
      const header = res.headers.get('www-authenticate');
      if (typeof challenge === 'string') expect(header).toBe(challenge);
      else expect(header).toMatch(challenge);
    }
  });

  it.each(['/admin/echo/', '/ADMIN/echo', '/Admin/Echo', '/admin/nope', '/admin', '/anything', '//admin/echo', '/%61dmin/echo'])(
    'a spelling of the path does not pass the gate without the token: %s',
    async (path) => {
      const res = await fetch(`${g.adminUrl}${path}`);
      await expectJsonError(res, 401, 'InvalidClientTokenId');
    },
  );

  it.each([`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER  ${TOKEN}`])('reaches the admin routes with %s', async (authorization) => {
    for (const method of ['GET', 'POST']) {
      const res = await fetch(`${g.adminUrl}/admin/echo`, { method, headers: { authorization } });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json()).toMatchObject({ reached: true });
    }
  });

  it('answers an unknown admin path with 404 only once the token is right', async () => {
    await expectJsonError(await fetch(`${g.adminUrl}/admin/nope`, { headers: { authorization: `Bearer ${TOKEN}` } }), 404, 'NotFound');
  });

  it('keeps the probes and metrics open without the token', async () => {
    for (const path of ['/metrics', '/healthz', '/readyz']) expect((await fetch(`${g.adminUrl}${path}`)).status).toBe(200);
  });

  it('writes the token into no log line', () => {
    expect(capturedLogs.join('\n')).toContain('"path":"/admin/echo"');
    expect(capturedLogs.join('\n')).not.toContain(TOKEN.slice(-16));
  });
});

describe('shutdown', () => {
  it('keeps metrics scrapeable while the public port drains, then closes both ports', async () => {
    const g = await gateway({}, { delaySeconds: 0.4, graceSeconds: 1 });
    const closing = g.close();
    // During the readiness delay: readiness fails on both ports, metrics still answer.
    expect((await fetch(`${g.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${g.adminUrl}/readyz`)).status).toBe(503);
    expect((await fetch(`${g.adminUrl}/metrics`)).status).toBe(200);
    await closing;
    for (const base of [g.url, g.adminUrl]) await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it('refuses to start when the admin port is taken', async () => {
    const first = await gateway();
    const port = Number(new URL(first.adminUrl).port);
    await expect(startTestGateway({ issuers: [], config: { admin: { listen: { host: '127.0.0.1', port }, metricsOnPublicPort: false } } }).then((g) => g.close().then(() => 'started'))).rejects.toThrow(/EADDRINUSE/);
  });
});

describe('admin: configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stsgate-admin-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = { public_url: 'https://sts.example.com', account_id: ACCOUNT_ID, listen: { host: '127.0.0.1', port: 8080 } };
  const parse = (admin: unknown) => parseConfig(stringify({ ...base, ...(admin === undefined ? {} : { admin }) }), {}, dir);
  const problems = (admin: unknown): string[] => {
    try {
      parse(admin);
    } catch (err) {
      if (err instanceof ConfigError) return [...err.problems];
      throw err;
    }
    throw new Error('expected a ConfigError');
  };

  it('defaults to listen.host, port 9090, metrics off the public port and no admin API', () => {
    expect(parse(undefined).admin).toEqual({ listen: { host: '127.0.0.1', port: 9090 }, metricsOnPublicPort: false });
  });

  it('reads the token from token_file (trailing newline dropped)', () => {
    writeFileSync(join(dir, 'admin-token'), `${TOKEN}\n`, { mode: 0o600 });
    expect(parse({ listen: { host: '0.0.0.0', port: '9100' }, metrics_on_public_port: true, token_file: 'admin-token' }).admin).toEqual({
      listen: { host: '0.0.0.0', port: 9100 },
      metricsOnPublicPort: true,
      token: TOKEN,
    });
  });

  const WEAK = 'expected a bearer token of 32 to 4096 characters';
  it.each([
    ['a short token', { token: 'x'.repeat(31) }, `admin.token: found a string of 31 characters, ${WEAK}`],
    ['a token with a space', { token: `${'a'.repeat(20)} ${'b'.repeat(20)}` }, `admin.token: found a string of 41 characters, ${WEAK}`],
    ['a numeric token', { token: 1234567890 }, `admin.token: found a number, ${WEAK}`],
    ['an unreadable token_file', { token_file: 'missing-token' }, 'admin.token_file: cannot read "missing-token" (ENOENT)'],
    ['the public port', { listen: { port: 8080 } }, 'admin.listen.port: found 8080, the port of listen, expected another port'],
    ['the public port on the wildcard address', { listen: { host: '0.0.0.0', port: 8080 } }, 'admin.listen.port: found 8080, the port of listen'],
    ['a port out of range', { listen: { port: 70_000 } }, 'admin.listen.port: found 70000, expected an integer in 1..65535'],
    ['an unknown key', { metrics_on_public: true }, 'admin: unknown key "metrics_on_public"'],
    ['metrics_on_public_port as a string', { metrics_on_public_port: 'true' }, 'admin.metrics_on_public_port:'],
  ])('refuses %s, never echoing a token', (_name, admin, problem) => {
    const found = problems(admin);
    expect(found.join('\n')).toContain(problem);
    expect(found.join('\n')).not.toContain('x'.repeat(31));
    expect(found.join('\n')).not.toContain('a'.repeat(20));
  });

  it('accepts the same port on another address', () => {
    expect(parse({ listen: { host: '127.0.0.2', port: 8080 } }).admin?.listen).toEqual({ host: '127.0.0.2', port: 8080 });
  });
});

describe('revocations through the admin API of a running gateway', () => {
  let issuer: TestIssuer;
  let g: TestGateway;
  beforeAll(async () => {
    issuer = await TestIssuer.start();
    g = await startTestGateway({
      issuers: [issuerFor(issuer)],
      store: redisStoreConfig(),
      config: { admin: { listen: { host: '127.0.0.1', port: 0 }, metricsOnPublicPort: false, token: TOKEN } },
    });
    started.push(g);
  });
  afterAll(async () => {
    await issuer?.close();
  });

  async function issue(subject: string): Promise<string> {
    const res = await postForm(`${g.url}/oauth2/token`, {
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: await issuer.mint({ sub: subject, repository: 'acme/app', ref: 'refs/heads/main' }),
      subject_token_type: TOKEN_TYPE.jwt,
      audience: 'deployer',
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { access_token: string }).access_token;
  }

  async function active(token: string): Promise<unknown> {
    return ((await (await postForm(`${g.url}/oauth2/introspect`, { token })).json()) as { active: unknown }).active;
  }

  function revoke(body: unknown, authorization = `Bearer ${TOKEN}`): Promise<Response> {
    return fetch(`${g.adminUrl}/admin/revocations`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  it('refuses a revocation without the admin token and writes nothing', async () => {
    const token = await issue('admin-api-untouched');
    await expectJsonError(await revoke({ subject: 'admin-api-untouched', source: 'ci' }, `Bearer ${randomBytes(32).toString('base64url')}`), 401, 'InvalidClientTokenId');
    expect(await active(token)).toBe(true);
    const list = (await (await fetch(`${g.adminUrl}/admin/revocations`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { revocations: unknown[] };
    expect(JSON.stringify(list.revocations)).not.toContain('admin-api-untouched');
  });

  it('ends a subject\'s sets at once, lists the watermark and audits who asked and why', async () => {
    const before = await issue('admin-api-leaver');
    const bystander = await issue('admin-api-stays');
    const res = await revoke({ subject: 'admin-api-leaver', source: 'ci', reason: 'left the company' });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await active(before)).toBe(false);
    expect(await active(bystander)).toBe(true);
    const after = await issue('admin-api-leaver');
    expect(after).not.toBe(before);
    expect(await active(after)).toBe(true);

    const list = (await (await fetch(`${g.adminUrl}/admin/revocations`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { revocations: Record<string, unknown>[] };
    expect(list.revocations.find((w) => JSON.stringify(w).includes('admin-api-leaver'))).toMatchObject({ reason: 'left the company' });
    const line = g.logs().find((l) => l.event === 'revocation_watermark');
    expect(line).toMatchObject({ reason: 'left the company' });
    expect(String(line?.by)).toMatch(/^admin-api:admin-token from /);
    expect(JSON.stringify(g.logs())).not.toContain(TOKEN);
  });
});
