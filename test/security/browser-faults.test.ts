/**
 * The store fails during browser logins, and stsgate fails closed and recovers without a restart. The
 * login environment runs on its own redis-server process: while Redis is down every step that needs it
 * answers 503 (a page, or JSON at /v1/credentials) with no cookie and no redirect; restarted empty, a
 * login in flight and every session before it are gone (refused, never revived); back again, a login
 * completes on the same gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreConfig } from '../../src/config/types.js';
import { TestBrowser } from '../support/browser.js';
import { loginAs, startLogin } from '../support/browser-login.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { startRedis, type RedisServer } from '../support/redis-servers.js';
import { expectPageHeaders, SESSION_COOKIE } from './browser-harness.js';
import { sleep } from '../support/common.js';

let redis: RedisServer;
let env: LoginEnvironment;
beforeAll(async () => {
  redis = await startRedis();
  const store: StoreConfig = { kind: 'standalone', url: redis.url, prefix: 'browser-faults:', commandTimeoutMs: 250 };
  env = await startLoginEnvironment({ store });
});
afterAll(async () => {
  await env?.close();
  await redis?.stop();
});

/** A 503 with no cookie set to a value and no Location. */
async function expectUnavailable(response: Response, format: 'html' | 'json'): Promise<void> {
  const text = await response.text();
  expect(response.status, text.slice(0, 300)).toBe(503);
  expect(response.headers.get('location')).toBeNull();
  expect(response.headers.getSetCookie().filter((c) => !/^[^=]+=;/.test(c))).toEqual([]);
  expect(text).not.toMatch(/ASIA[A-Z2-7]{16}/);
  if (format === 'html') {
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expectPageHeaders(response);
  } else {
    expect(JSON.parse(text)).toMatchObject({ error: 'ServiceUnavailable' });
  }
}

/** Retries `/login/forged` until it redirects again (the store client reconnects by itself). */
async function untilLoginsWork(withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const response = await new TestBrowser().get(`${env.gateway.url}/login/forged`);
    await response.body?.cancel();
    if (response.status === 302) return;
    if (Date.now() > deadline) throw new Error(`logins still fail after ${withinMs} ms (HTTP ${response.status})`);
    await sleep(100);
  }
}

describe('Redis down during logins', () => {
  it('every step that needs the store answers 503, sets no cookie and redirects nowhere; then recovers', async () => {
    const signedIn = new TestBrowser();
    expect((await loginAs(signedIn, env.gateway.url, 'forged', env.forged, 'mallory')).status).toBe(303);
    const inFlight = new TestBrowser();
    const back = await env.forged.signIn(inFlight, await startLogin(inFlight, env.gateway.url, 'forged'), 'mallory');

    await redis.stop();
    await expectUnavailable(await new TestBrowser().get(`${env.gateway.url}/login/forged`), 'html');
    await expectUnavailable(await inFlight.get(back), 'html');
    expect(inFlight.cookie(env.gateway.url, SESSION_COOKIE)).toBeUndefined();
    await expectUnavailable(await signedIn.get(`${env.gateway.url}/v1/credentials?role=reader`), 'json');
    await expectUnavailable(await signedIn.get(`${env.gateway.url}/`), 'html');

    await redis.start(); // no persistence: back empty
    await untilLoginsWork(10_000);
    // Restarted empty: the session from before is gone (refused, not revived), and so is the login in flight.
    expect((await signedIn.get(`${env.gateway.url}/v1/credentials?role=reader`)).status).toBe(401);
    const replayed = await inFlight.get(back);
    expect(replayed.status).toBe(400);
    expect(replayed.headers.getSetCookie().filter((c) => c.startsWith(`${SESSION_COOKIE}=`) && !c.startsWith(`${SESSION_COOKIE}=;`))).toEqual([]);
    // And a new login completes on the same gateway, without a restart.
    const again = new TestBrowser();
    expect((await loginAs(again, env.gateway.url, 'forged', env.forged, 'mallory')).status).toBe(303);
    expect((await again.get(`${env.gateway.url}/v1/credentials?role=reader`)).status).toBe(200);
  });
});
