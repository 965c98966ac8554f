/**
 * Abuse limits on logins, counted in Redis so that they hold across replicas: a cap on login transactions
 * started per client address (`limits.pending_logins_per_address` per ten minutes: each is a store record
 * for a browser nobody has authenticated yet), and a per-address request limit on `/login`, `/callback`,
 * `/cli/login` and `/cli/token` together (`limits.login_per_address_per_minute`). Two replicas share one
 * Redis behind a load balancer (`listen.trusted_proxies: [127.0.0.1]`, the test playing the balancer's
 * X-Forwarded-For). Over a limit: 429 with Retry-After (an HTML page, or OAuth `slow_down`), no cookie,
 * no transaction stored, no Location.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { TestBrowser } from '../support/browser.js';
import { confirmTerminalLogin, readTerminalConfirmation, startLogin } from '../support/browser-login.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { expectBrowserRefused, opaque, startBrowserSecurityEnvironment, type BrowserSecurityEnvironment, expectNoOpaqueValuesLogged } from './browser-harness.js';
import { ACCOUNT_ID, sleep } from '../support/common.js';

const PENDING = 4;
const REQUESTS = 12;

let g: BrowserSecurityEnvironment;
/** A second replica on the same Redis, prefix and keys. */
let b: TestGateway;
beforeAll(async () => {
  g = await startBrowserSecurityEnvironment({
    gateway: {
      listen: { host: '127.0.0.1', port: 0, trustedProxies: ['127.0.0.1'] },
      limits: { maxBodyBytes: 65_536, loginPerAddressPerMinute: REQUESTS, pendingLoginsPerAddress: PENDING },
    },
  });
  b = await startTestGateway({ issuers: [], store: g.env.gateway.config.store, roles: g.env.gateway.config.roles, rules: g.env.gateway.config.rules, config: g.env.gateway.config });
});
afterAll(async () => {
  await b?.close();
  await g?.close();
});

/** A browser behind the load balancer, seen as `address`. */
const from = (address: string) => new TestBrowser({ headers: { 'x-forwarded-for': address } });
/** Alternates between the two replicas. */
const replica = (i: number) => (i % 2 === 0 ? g.url : b.url);
let next = 1;
/** A fresh client address (documentation ranges), so that rows do not share counters. */
const fresh = () => `198.51.100.${next++}`;

function terminalLink(base: string): URL {
  const url = new URL('/cli/login', base);
  url.search = new URLSearchParams({ redirect_uri: 'http://127.0.0.1:50000/callback', code_challenge: createHash('sha256').update(opaque()).digest('base64url'), code_challenge_method: 'S256', state: opaque(), provider: 'forged' }).toString();
  return url;
}

/**
 * Fixed windows: a row that fills one must not straddle its end. Waits (at most a few seconds, rarely)
 * when the current minute, or ten minutes, is about to roll over.
 */
async function awayFromWindowEdge(): Promise<void> {
  for (const windowMs of [60_000, 600_000]) {
    const left = windowMs - (Date.now() % windowMs);
    if (left < 5_000) await sleep(left + 50);
  }
}

async function expectThrottled(response: Response, text: string, maxSeconds: number): Promise<void> {
  const retryAfter = Number(response.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(maxSeconds);
  if (response.headers.get('content-type')?.startsWith('text/html')) {
    expect(text).toContain('<h1>Too many requests</h1>');
    expect(text).toMatch(/Try again in \d+ (seconds|minutes)\./);
  }
}

describe('pending login transactions per client address', () => {
  it(`allows ${PENDING} started logins from one address on either replica, then 429 with Retry-After and no transaction stored`, async () => {
    await awayFromWindowEdge();
    const address = fresh();
    for (let i = 0; i < PENDING; i++) await startLogin(from(address), replica(i), 'forged');
    const { response, text } = await expectBrowserRefused(g, 429, () => from(address).get(`${replica(PENDING)}/login/forged`), { reason: undefined });
    await expectThrottled(response, text, 600);
    // The other replica refuses it too, and so does a confirmed terminal login (it starts a transaction).
    await expectBrowserRefused(g, 429, () => from(address).get(`${replica(PENDING + 1)}/login/google`));
    const browser = from(address);
    const page = readTerminalConfirmation(await (await browser.get(terminalLink(g.url))).text());
    await expectBrowserRefused(g, 429, () => browser.request(`${g.url}/cli/login`, { form: { ...page.fields, provider: 'forged' }, headers: { origin: g.url } }));
  });

  it('another address is not affected', async () => {
    await awayFromWindowEdge();
    const address = fresh();
    for (let i = 0; i < PENDING; i++) await startLogin(from(address), replica(i), 'forged');
    await expectBrowserRefused(g, 429, () => from(address).get(`${g.url}/login/forged`));
    expect((await from(fresh()).get(`${g.url}/login/forged`)).status).toBe(302);
  });

  it('IPv6 addresses count by their /64: another host of the same /64 is refused, another /64 is not', async () => {
    await awayFromWindowEdge();
    for (let i = 0; i < PENDING; i++) await startLogin(from(`2001:db8:7:1::${i + 1}`), replica(i), 'forged');
    await expectBrowserRefused(g, 429, () => from('2001:db8:7:1:ffff:ffff:ffff:ffff').get(`${g.url}/login/forged`));
    expect((await from('2001:db8:7:2::1').get(`${g.url}/login/forged`)).status).toBe(302);
  });

  it('addresses a client writes into X-Forwarded-For itself are not believed (only the balancer\'s entry counts)', async () => {
    await awayFromWindowEdge();
    const address = fresh();
    for (let i = 0; i < PENDING; i++) await startLogin(from(address), replica(i), 'forged');
    const spoofing = new TestBrowser({ headers: { 'x-forwarded-for': `203.0.113.${next++}, ${address}` } });
    await expectBrowserRefused(g, 429, () => spoofing.get(`${g.url}/login/forged`));
  });

  it('requests refused before a transaction would be stored do not count (a bad return_to)', async () => {
    await awayFromWindowEdge();
    const address = fresh();
    for (let i = 0; i < PENDING * 2; i++) expect((await from(address).get(`${replica(i)}/login/forged?return_to=//evil.example`)).status).toBe(400);
    expect((await from(address).get(`${g.url}/login/forged`)).status).toBe(302);
  });

  it('a login still completes across replicas below the cap: started on one, finished on the other', async () => {
    const browser = from(fresh());
    const login = await startLogin(browser, g.url, 'forged');
    const back = await g.env.forged.signIn(browser, login, 'mallory');
    // The provider sends the browser to the public URL; the balancer forwards it to the other replica
    // (one host for the browser: its cookies go along).
    browser.jar.set(new URL(b.url).host, new Map(browser.jar.get(new URL(g.url).host)));
    const response = await browser.get(new URL(`${back.pathname}${back.search}`, b.url));
    expect(response.status).toBe(303);
    expect(browser.cookie(b.url, 'stsgate_session')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('login requests per client address per minute', () => {
  it(`allows ${REQUESTS} requests to /login, /callback, /cli/login and /cli/token together, then refuses each with 429`, async () => {
    await awayFromWindowEdge();
    const address = fresh();
    const browser = from(address);
    const requests = [
      (base: string) => browser.get(`${base}/login/forged?return_to=//evil.example`),
      (base: string) => browser.get(`${base}/callback/forged?state=${opaque()}&code=x`),
      (base: string) => browser.get(`${base}/cli/login?redirect_uri=https://evil.example/`),
      (base: string) => browser.request(`${base}/cli/token`, { form: { grant_type: 'authorization_code', code: opaque(), code_verifier: opaque(), redirect_uri: 'http://127.0.0.1:1/callback' } }),
    ];
    for (let i = 0; i < REQUESTS; i++) expect((await requests[i % 4]!(replica(i))).status).toBe(400);
    const login = await expectBrowserRefused(g, 429, () => requests[0]!(g.url));
    await expectThrottled(login.response, login.text, 60);
    const callback = await expectBrowserRefused(g, 429, () => requests[1]!(b.url));
    await expectThrottled(callback.response, callback.text, 60);
    await expectBrowserRefused(g, 429, () => requests[2]!(g.url));
    const token = await expectBrowserRefused(g, 429, () => requests[3]!(b.url), { format: 'oauth', error: 'slow_down' });
    await expectThrottled(token.response, token.text, 60);
    // The confirmation form's POST is counted too.
    await expectBrowserRefused(g, 429, () => browser.request(`${g.url}/cli/login`, { form: { provider: 'forged' }, headers: { origin: g.url } }));
  });

  it('other endpoints and other addresses are not affected', async () => {
    await awayFromWindowEdge();
    const address = fresh();
    const browser = from(address);
    for (let i = 0; i < REQUESTS + 1; i++) await browser.get(`${replica(i)}/callback/forged?state=${opaque()}&code=x`);
    expect((await browser.get(`${g.url}/`)).status).toBe(200);
    expect((await browser.get(`${g.url}/v1/credentials`)).status).toBe(401);
    expect((await from(fresh()).get(`${g.url}/callback/forged?state=${opaque()}&code=x`)).status).toBe(400);
  });

  it('a terminal login costs three requests up to its code (the confirmation page, its form, the callback)', async () => {
    await awayFromWindowEdge();
    const browser = from(fresh());
    const before = await g.redis.keys(`${g.prefix}rl:login:*`);
    const back = await g.env.forged.signIn(browser, await confirmTerminalLogin(browser, terminalLink(g.url)), 'mallory');
    expect((await browser.get(back)).status).toBe(303);
    const counters = (await g.redis.keys(`${g.prefix}rl:login:*`)).filter((k) => !before.includes(k));
    expect(counters).toHaveLength(1);
    expect(await g.redis.get(counters[0]!)).toBe('3');
  });
});

describe('configuration', () => {
  it('defaults to 60 login requests a minute and 20 pending logins per address; 0 turns either off', () => {
    const base = { public_url: 'https://sts.example.com', account_id: ACCOUNT_ID };
    expect(parseConfig(JSON.stringify(base), {}).limits).toMatchObject({ loginPerAddressPerMinute: 60, pendingLoginsPerAddress: 20 });
    expect(parseConfig(JSON.stringify({ ...base, limits: { login_per_address_per_minute: 0, pending_logins_per_address: 0 } }), {}).limits).toMatchObject({ loginPerAddressPerMinute: 0, pendingLoginsPerAddress: 0 });
    expect(() => parseConfig(JSON.stringify({ ...base, limits: { pending_logins_per_address: -1 } }), {})).toThrow(/limits\.pending_logins_per_address: found -1, expected an integer in 0\.\.1000000/);
  });
});

describe('the log', () => {
  it('holds no state, code, verifier, cookie value or session token from any request above', () => {
    expect(expectNoOpaqueValuesLogged(g)).toBeGreaterThan(50);
  });
});
