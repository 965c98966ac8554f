/**
 * The admin API's revocations router, mounted in a small Koa app as the admin listener will mount it
 * (that listener and its bearer-token authentication are built elsewhere): on real Redis, a watermark
 * written, refused bodies answered 400 in JSON with nothing stored, the list, and the audit line. Also
 * `stsgate revoke`'s usage errors (exit 2, nothing written).
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GatewayConfig } from '../../src/config/types.js';
import { RevocationWatermarks } from '../../src/credentials/revocations.js';
import { revocationRoutes } from '../../src/http/admin-revocations.js';
import { errorHandler } from '../../src/http/middleware/errors.js';
import { assignRequestId } from '../../src/http/middleware/request.js';
import { AuditLog } from '../../src/observability/audit.js';
import { createLogger } from '../../src/observability/logger.js';
import { createStore } from '../../src/store/index.js';
import { storeKeys } from '../../src/store/keys.js';
import type { Store } from '../../src/store/store.js';
import { runCliToEnd } from '../support/cli-process.js';
import { REDIS_URL, redisStoreConfig } from '../support/gateway.js';
import { makeTempDir } from '../support/gateway-process.js';
import { ACCOUNT_ID } from '../support/common.js';

const config = { roles: [{ name: 'deployer', maxSessionSeconds: 3600 }], providers: [{ id: 'google' }], issuers: [{ id: 'ci' }] } as unknown as Pick<GatewayConfig, 'roles' | 'providers' | 'issuers'>;

let store: Store;
let server: ReturnType<Koa['listen']>;
let url: string;
const auditLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  store = createStore(redisStoreConfig());
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') auditLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  const app = new Koa();
  app.use(assignRequestId);
  app.use(errorHandler(logger));
  // What the admin listener's authentication leaves for the router: the caller's name.
  app.use(async (ctx, next) => {
    ctx.state.adminCaller = 'incident-bot';
    await next();
  });
  const router = revocationRoutes({ revocations: new RevocationWatermarks({ store, maxLifetimeSeconds: 3600 }), config, audit: new AuditLog(logger), maxBodyBytes: 4096 });
  app.use(router.routes()).use(router.allowedMethods());
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/revocations`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await store?.close();
});

const post = (body: unknown, type = 'application/json') => fetch(url, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('POST /admin/revocations', () => {
  it.each<[string, Record<string, unknown>, string, Record<string, unknown>]>([
    ['a subject of a source', { subject: 'alice', source: 'google', reason: 'left the company' }, storeKeys.revocationSubject('google', 'alice'), { kind: 'subject', source: 'google', subject: 'alice', reason: 'left the company' }],
    ['a subject of any source', { subject: 'bob' }, storeKeys.revocationSubjectAnySource('bob'), { kind: 'subject', subject: 'bob' }],
    ['a role', { role: 'deployer' }, storeKeys.revocationRole('deployer'), { kind: 'role', role: 'deployer' }],
    ['everyone, issued before a time', { all: true, issued_before: new Date(Date.now() - 60_000).toISOString() }, storeKeys.revocationAll(), { kind: 'all' }],
  ])('writes a watermark for %s: 201 with it, stored with its TTL, one audit line naming the caller', async (_name, body, key, expected) => {
    const before = auditLines.length;
    const res = await post(body);
    expect(res.status).toBe(201);
    const answer = (await res.json()) as Record<string, unknown>;
    expect(answer).toMatchObject({ ...expected, by: 'admin-api:incident-bot', ttl_seconds: expect.any(Number) });
    expect(answer.ttl_seconds).toBeGreaterThan(3500);
    expect(JSON.parse((await store.get(key))!)).toMatchObject({ ...expected, issued_before: answer.issued_before });
    expect(await store.ttl(key)).toBeGreaterThan(3_500_000);
    const audit = auditLines.slice(before).filter((line) => line.event === 'revocation_watermark');
    expect(audit).toEqual([expect.objectContaining({ log: 'audit', kind: expected.kind, by: 'admin-api:incident-bot', issuedBefore: answer.issued_before })]);
  });

  it.each<[string, string, string]>([
    ['not JSON', '{', 'not JSON'],
    ['no target', JSON.stringify({ reason: 'x' }), 'exactly one'],
    ['two targets', JSON.stringify({ role: 'deployer', all: true }), 'exactly one'],
    ['an unknown role', JSON.stringify({ role: 'root' }), 'is not configured'],
    ['an unknown source', JSON.stringify({ subject: 'alice', source: 'okta' }), 'not a configured provider or issuer'],
    ['all: false', JSON.stringify({ all: false }), 'all'],
    ['an unknown member', JSON.stringify({ all: true, scope: 'x' }), 'scope'],
    ['a subject that is not a string', JSON.stringify({ subject: 7 }), 'subject'],
    ['a time without a zone', JSON.stringify({ all: true, issued_before: '2026-01-01T00:00:00' }), 'ISO 8601'],
    ['a time in the future', JSON.stringify({ all: true, issued_before: new Date(Date.now() + 3_600_000).toISOString() }), 'in the future'],
    ['a reason on two lines', JSON.stringify({ all: true, reason: 'a\nb' }), 'reason'],
  ])('refuses %s: 400 JSON, nothing stored', async (_name, body, message) => {
    const key = storeKeys.revocationSubject('okta', 'alice');
    const res = await post(body);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { error: string; message: string };
    expect(answer.error).toBe('ValidationError');
    expect(answer.message).toContain(message);
    expect(await store.get(key)).toBeUndefined();
    expect(await store.get(storeKeys.revocationRole('root'))).toBeUndefined();
  });

  it('refuses a body that is not JSON by its type: 415', async () => {
    expect((await post('all=true', 'application/x-www-form-urlencoded')).status).toBe(415);
  });
});

describe('GET /admin/revocations', () => {
  it('lists the live watermarks with their TTL', async () => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    const { revocations } = (await res.json()) as { revocations: Record<string, unknown>[] };
    expect(revocations.map((w) => w.kind).sort()).toEqual(['all', 'role', 'subject', 'subject']);
    for (const watermark of revocations) expect(watermark.ttl_seconds).toBeGreaterThan(3400);
  });
});

describe('stsgate revoke usage errors', () => {
  let configFile: string;
  const prefix = `stsgate-test:${randomBytes(6).toString('hex')}:`;

  beforeAll(async () => {
    const dir = makeTempDir('revoke-usage');
    configFile = join(dir, 'gateway.yaml');
    await writeFile(configFile, stringify({
      public_url: 'http://127.0.0.1:8080',
      store: { redis: { url: REDIS_URL, prefix } },
      signing: { algorithm: 'ES256', keys_file: join(dir, 'keys.json') },
      credentials: { encryption_key: randomBytes(32).toString('base64') },
      account_id: ACCOUNT_ID,
      dev: { allow_insecure_http: true },
      issuers: [{ id: 'ci', issuer: 'http://127.0.0.1:1', audiences: ['sts'] }],
      roles: [{ name: 'deployer', scopes: ['x'], audiences: ['y'], max_session_seconds: 3600 }],
      rules: [],
    }));
  });

  it.each<[string, string[], RegExp]>([
    ['no target', [], /exactly one/],
    ['two targets', ['--role', 'deployer', '--all'], /exactly one/],
    ['an unknown role', ['--role', 'root'], /role "root" is not configured; configured roles: deployer/],
    ['an unknown source', ['--subject', 'alice', '--source', 'okta'], /not a configured provider or issuer id; configured: ci/],
    ['a time in the future', ['--all', '--issued-before', '2999-01-01T00:00:00Z'], /in the future/],
    ['--list with a target', ['--list', '--all'], /--list takes no other option/],
  ])('%s: exit 2 with the reason and the usage, nothing written', async (_name, args, reason) => {
    const run = await runCliToEnd(['revoke', '--config', configFile, ...args]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(reason);
    expect(run.stderr).toContain('stsgate revoke --config FILE');
    const check = createStore({ ...redisStoreConfig(prefix) });
    try {
      expect(await check.keysWithPrefix(storeKeys.revocationPrefix())).toEqual([]);
    } finally {
      await check.close();
    }
  });
});
