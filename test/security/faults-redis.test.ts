/**
 * The store fails, and stsgate fails closed and recovers without a restart. Each scenario runs a gateway
 * against its own redis-server process: down at start (not ready; 503 in each protocol's format; no
 * in-memory fallback), killed under load (no credentials answered that were not stored), frozen (the
 * per-command timeout answers 503 quickly, with no queue building up), restarted empty (a revoked
 * credential stays refused), refusing writes, and back again (service resumes by itself).
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StoreConfig } from '../../src/config/types.js';
import { TOKEN_TYPE } from '../../src/http/oauth.js';
import { issuerFor } from '../support/gateway.js';
import { startRedis, type RedisServer } from '../support/redis-servers.js';
import { TestIssuer } from '../support/test-issuer.js';
import { encodeForm, expectProtocolError, keysFrom, MAIN, postOAuth, postRaw, postSts, signedStsPost, startSecurityGateway, type SecurityGateway } from './harness.js';
import { sleep } from '../support/common.js';

const COMMAND_TIMEOUT_MS = 250;

let idp: TestIssuer;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  idp = await TestIssuer.start();
});
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
});
afterAll(async () => {
  await idp?.close();
});

function storeFor(redis: RedisServer): StoreConfig {
  return { kind: 'standalone', url: redis.url, prefix: `faults-${Math.random().toString(36).slice(2, 8)}:`, commandTimeoutMs: COMMAND_TIMEOUT_MS };
}

async function gatewayOn(redis: RedisServer, limits?: { exchangePerAddressPerMinute: number }): Promise<SecurityGateway> {
  const g = await startSecurityGateway({
    issuers: [issuerFor(idp)],
    store: storeFor(redis),
    ...(limits ? { config: { limits: { maxBodyBytes: 65536, exchangePerSubjectPerMinute: 0, ...limits } } } : {}),
  });
  cleanup.push(() => g.close());
  return g;
}

type Outcome = { protocol: 'aws' | 'oauth'; status: number; body: string; ms: number };

async function exchange(g: SecurityGateway, protocol: 'aws' | 'oauth', sessionName: string): Promise<Outcome> {
  const token = await idp.mint(MAIN);
  const started = performance.now();
  const res = protocol === 'aws' ? await postSts(g.url, { WebIdentityToken: token, RoleSessionName: sessionName }) : await postOAuth(g.url, { subject_token: token, session_name: sessionName });
  return { protocol, status: res.status, body: await res.text(), ms: performance.now() - started };
}

/** Waits until /readyz answers 200; returns how long it took. */
async function untilReady(g: SecurityGateway, withinMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if ((await fetch(`${g.url}/readyz`)).status === 200) return performance.now() - started;
    if (performance.now() - started > withinMs) throw new Error(`not ready within ${withinMs} ms`);
    await sleep(50);
  }
}

function expectUnavailable(outcome: Outcome): void {
  const res = new Response(outcome.body, { status: outcome.status, headers: { 'content-type': outcome.protocol === 'aws' ? 'text/xml' : 'application/json', 'cache-control': 'no-store' } });
  expectProtocolError(outcome.protocol, res, outcome.body, outcome.protocol === 'aws' ? [503, 'ServiceUnavailable'] : [503, 'temporarily_unavailable']);
  if (outcome.protocol === 'aws') expect(outcome.body).toContain('<Type>Receiver</Type>');
}

/** Every stored key of this gateway, with its TTL; fails when a key has none. */
async function storedSessions(redis: RedisServer, g: SecurityGateway): Promise<string[]> {
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    const keys = await client.keys(`${g.prefix}*`);
    for (const key of keys) expect(await client.pttl(key), `${key} has a TTL`).toBeGreaterThan(0);
    return keys.filter((k) => k.startsWith(`${g.prefix}sess:`));
  } finally {
    client.disconnect();
  }
}

const sessionKey = (g: SecurityGateway, accessKeyId: string) => `${g.prefix}sess:{${accessKeyId.slice('ASIA'.length)}}`;

describe('Redis down at start', () => {
  it('is not ready, answers 503 in both formats quickly, issues nothing and uses no fallback; then resumes by itself', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    await redis.stop();
    const g = await gatewayOn(redis);
    expect(g.gateway.store.description).toMatch(/^redis standalone/);

    const ready = await fetch(`${g.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not ready', checks: { store: 'unreachable' } });
    expect((await fetch(`${g.url}/healthz`)).status).toBe(200);

    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => exchange(g, i % 2 === 0 ? 'aws' : 'oauth', `down-${i}`)));
    for (const outcome of outcomes) {
      expectUnavailable(outcome);
      // Fast: the first failed connection attempt makes later operations fail at once (no wait for a timeout).
      expect(outcome.ms).toBeLessThan(2_500);
    }
    expect(g.issuedCount()).toBe(0);

    // Back again: no restart of the gateway.
    await redis.start();
    expect(await untilReady(g, 6_000)).toBeLessThan(6_000);
    const after = await exchange(g, 'aws', 'after');
    expect(after.status, after.body).toBe(200);
    // Only the one credential set issued after the store came back exists anywhere.
    expect(await storedSessions(redis, g)).toEqual([sessionKey(g, keysFrom(after.body).accessKeyId)]);
  });
});

describe('Redis killed under load', () => {
  it('never answers with credentials that were not stored', async () => {
    const redis = await startRedis({ persistent: true });
    cleanup.push(() => redis.stop());
    const g = await gatewayOn(redis);
    const outcomes: Outcome[] = [];
    let running = true;
    const worker = async (w: number) => {
      for (let i = 0; running; i++) outcomes.push(await exchange(g, (w + i) % 2 === 0 ? 'aws' : 'oauth', `load-${w}-${i}`));
    };
    const workers = Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
    await sleep(400);
    await redis.stop(); // SIGKILL, mid-request for some
    await sleep(500);
    running = false;
    await workers;

    const statuses = new Set(outcomes.map((o) => o.status));
    expect([...statuses].filter((s) => s !== 200 && s !== 503)).toEqual([]);
    const answered = outcomes.filter((o) => o.status === 200);
    const refused = outcomes.filter((o) => o.status === 503);
    expect(answered.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const outcome of refused) expectUnavailable(outcome);

    // Redis comes back with every write it acknowledged (append-only file): each credential handed out
    // must be among them.
    await redis.start();
    await untilReady(g, 6_000);
    const stored = new Set(await storedSessions(redis, g));
    const missing = answered.map((o) => sessionKey(g, keysFrom(o.body).accessKeyId)).filter((key) => !stored.has(key));
    expect(missing).toEqual([]);
    // And the gateway serves again.
    expect((await exchange(g, 'oauth', 'after-kill')).status).toBe(200);
  });
});

describe('Redis frozen (accepts connections, answers nothing)', () => {
  it('answers 503 within the command timeout, for many requests at once, and resumes when it thaws', async () => {
    const redis = await startRedis();
    cleanup.push(async () => {
      redis.thaw();
      await redis.stop();
    });
    const g = await gatewayOn(redis, { exchangePerAddressPerMinute: 0 });
    expect((await exchange(g, 'aws', 'warm')).status).toBe(200);

    redis.freeze();
    const started = performance.now();
    const [ready, ...outcomes] = await Promise.all([
      fetch(`${g.url}/readyz`).then((r) => r.status),
      ...Array.from({ length: 40 }, (_, i) => exchange(g, i % 2 === 0 ? 'aws' : 'oauth', `frozen-${i}`)),
    ]);
    const wall = performance.now() - started;
    expect(ready).toBe(503);
    for (const outcome of outcomes) {
      expectUnavailable(outcome as Outcome);
      // One store round trip is attempted and cut at the command timeout (250 ms), plus token checking
      // (generous for a loaded machine: without the timeout these would wait forever).
      expect((outcome as Outcome).ms).toBeLessThan(COMMAND_TIMEOUT_MS + 2_000);
    }
    // Forty requests did not queue behind each other (forty sequential timeouts would take 10 s).
    expect(wall).toBeLessThan(COMMAND_TIMEOUT_MS + 3_000);

    redis.thaw();
    await untilReady(g, 6_000);
    expect((await exchange(g, 'oauth', 'thawed')).status).toBe(200);
  });
});

describe('Redis restarted empty', () => {
  it('a revoked credential stays refused, and so does every credential whose record is gone', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const g = await gatewayOn(redis);
    const live = keysFrom((await exchange(g, 'oauth', 'live')).body);
    const revoked = keysFrom((await exchange(g, 'oauth', 'revoked')).body);
    expect((await postRaw(`${g.url}/oauth2/revoke`, { raw: encodeForm({ token: revoked.accessToken! }) })).status).toBe(200);
    const who = { Action: 'GetCallerIdentity', Version: '2011-06-15' };
    expect((await signedStsPost(g.url, live, who)).status).toBe(200);
    expect((await signedStsPost(g.url, revoked, who)).status).toBe(403);

    await redis.stop();
    await redis.start(); // no persistence: back empty
    await untilReady(g, 6_000);

    for (const keys of [revoked, live]) {
      const sig = await signedStsPost(g.url, keys, who);
      const body = await sig.text();
      expectProtocolError('aws', sig, body, [403, 'InvalidClientTokenId']);
      const chained = await postOAuth(g.url, { subject_token: keys.accessToken!, subject_token_type: TOKEN_TYPE.accessToken, audience: undefined });
      expectProtocolError('oauth', chained, await chained.text(), [400, 'invalid_request']);
      const introspected = await postRaw(`${g.url}/oauth2/introspect`, { raw: encodeForm({ token: keys.accessToken! }) });
      expect(await introspected.json()).toEqual({ active: false });
    }
    // A fresh exchange issues a new set: nothing stale was cached in the process.
    const again = keysFrom((await exchange(g, 'oauth', 'live')).body);
    expect(again.accessKeyId).not.toBe(live.accessKeyId);
    expect((await signedStsPost(g.url, again, { ...who })).status).toBe(200);
  });
});

describe('Redis refusing writes (out of memory)', () => {
  it('answers 503 rather than credentials it could not store, also when counting rate limits; resumes when memory is back', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const plain = await gatewayOn(redis);
    const limited = await gatewayOn(redis, { exchangePerAddressPerMinute: 1000 });
    await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await redis.cli('CONFIG', 'SET', 'maxmemory', '1');
    for (const g of [plain, limited]) {
      for (const protocol of ['aws', 'oauth'] as const) expectUnavailable(await exchange(g, protocol, `oom-${protocol}`));
      expect(g.issuedCount()).toBe(0);
    }
    await redis.cli('CONFIG', 'SET', 'maxmemory', '0');
    for (const g of [plain, limited]) expect((await exchange(g, 'aws', 'after-oom')).status).toBe(200);
  });
});
