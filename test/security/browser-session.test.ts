/**
 * The browser session, attacked: session fixation (a cookie chosen before login is never adopted; every
 * login makes a new session id; an old id is dead after re-login and after logout), the flags of every
 * cookie the gateway sets, `/v1/credentials` without a live session or from another site (and never
 * readable cross-origin), logout CSRF, and framing and CSP headers on every HTML page. Refusal rows check
 * the exact status, no session cookie, no record created, no Location and nothing issued.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSetCookie, TestBrowser } from '../support/browser.js';
import { loginAs, providerConfig, readTerminalConfirmation, startLogin } from '../support/browser-login.js';
import { startTestGateway } from '../support/gateway.js';
import { OidcDouble } from '../support/oidc-double.js';
import { callbackFor, expectBrowserRefused, expectPageHeaders, opaque, SESSION_COOKIE, startBrowserSecurityEnvironment, type BrowserSecurityEnvironment, expectNoOpaqueValuesLogged } from './browser-harness.js';
import { securityStore } from './harness.js';
import { sleep } from '../support/common.js';

let g: BrowserSecurityEnvironment;
beforeAll(async () => {
  g = await startBrowserSecurityEnvironment();
});
afterAll(async () => {
  await g?.close();
});

/** Signs `browser` in as mallory at the forging provider (granted reader); returns the session cookie. */
async function signIn(browser = new TestBrowser()): Promise<{ browser: TestBrowser; cookie: string }> {
  expect((await loginAs(browser, g.url, 'forged', g.env.forged, 'mallory')).status).toBe(303);
  return { browser, cookie: browser.cookie(g.url, SESSION_COOKIE)! };
}

const sessionKey = (cookie: string) => `${g.prefix}bsess:${createHash('sha256').update(cookie).digest('base64url')}`;
const credentials = (browser: TestBrowser, headers: Record<string, string> = {}) => browser.get(`${g.url}/v1/credentials?role=reader`, headers);
/** Headers with `SELF` standing for the gateway's own origin. */
const own = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v === 'SELF' ? g.url : v]));
const withCookie = (cookie: string) => {
  const browser = new TestBrowser();
  browser.setCookie(g.url, SESSION_COOKIE, cookie);
  return browser;
};

describe('session fixation', () => {
  it.each<[string, () => Promise<string>]>([
    ['a well-formed value the attacker made up', async () => opaque()],
    ['a malformed value', async () => '../../x'],
    ["the attacker's own live session id", async () => (await signIn()).cookie],
    ['a value of 4 000 characters', async () => 'A'.repeat(4_000)],
  ])('a cookie planted before login (%s) is never adopted: a new id, and the planted one gets nothing (401)', async (_what, plant) => {
    const planted = await plant();
    const browser = withCookie(planted);
    await loginAs(browser, g.url, 'forged', g.env.forged, 'mallory');
    const issued = browser.cookie(g.url, SESSION_COOKIE)!;
    expect(issued).not.toBe(planted);
    expect(issued).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await g.redis.exists(sessionKey(planted))).toBe(0);
    await expectBrowserRefused(g, 401, () => credentials(withCookie(planted)), { format: 'json', error: 'MissingAuthenticationToken' });
    expect((await credentials(browser)).status).toBe(200);
  });

  it('no session cookie is set before the login completes (at /login, at the provider, on a refused callback)', async () => {
    const browser = new TestBrowser();
    const start = await browser.get(`${g.url}/login/forged`);
    expect(start.headers.getSetCookie().filter((c) => c.startsWith(`${SESSION_COOKIE}=`))).toEqual([]);
    expect(browser.cookie(g.url, SESSION_COOKIE)).toBeUndefined();
  });

  it('every login makes a new session id, and only the last is alive', async () => {
    const browser = new TestBrowser();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      await loginAs(browser, g.url, 'forged', g.env.forged, 'mallory');
      ids.push(browser.cookie(g.url, SESSION_COOKIE)!);
    }
    expect(new Set(ids).size).toBe(4);
    for (const old of ids.slice(0, -1)) {
      expect(await g.redis.exists(sessionKey(old))).toBe(0);
      await expectBrowserRefused(g, 401, () => credentials(withCookie(old)), { format: 'json', error: 'MissingAuthenticationToken' });
    }
    expect(await g.redis.exists(sessionKey(ids.at(-1)!))).toBe(1);
  });

  it('the old session id is dead after re-login with another provider', async () => {
    const { browser, cookie } = await signIn();
    await loginAs(browser, g.url, 'google', g.env.google, 'alice');
    expect(browser.cookie(g.url, SESSION_COOKIE)).not.toBe(cookie);
    await expectBrowserRefused(g, 401, () => credentials(withCookie(cookie)), { format: 'json', error: 'MissingAuthenticationToken' });
  });

  it('the session id is dead after logout, for the page and for /v1/credentials', async () => {
    const { browser, cookie } = await signIn();
    const out = await browser.request(`${g.url}/logout`, { form: {}, headers: { origin: g.url } });
    expect(out.status).toBe(303);
    expect(await g.redis.exists(sessionKey(cookie))).toBe(0);
    await expectBrowserRefused(g, 401, () => credentials(withCookie(cookie)), { format: 'json', error: 'MissingAuthenticationToken' });
    const page = await withCookie(cookie).get(`${g.url}/`);
    expect(await page.text()).toContain('<h1>Sign in</h1>');
    // The stale cookie is cleared, not renewed.
    expect(page.headers.getSetCookie()).toEqual([`${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`]);
  });

  it('a session cookie under another name, or in another case, is not a session', async () => {
    const { cookie } = await signIn();
    for (const name of ['STSGATE_SESSION', 'stsgate_session ', 'stsgate_session_form']) {
      const browser = new TestBrowser();
      browser.setCookie(g.url, name, cookie);
      await expectBrowserRefused(g, 401, () => credentials(browser), { format: 'json', error: 'MissingAuthenticationToken' });
    }
  });
});

describe('cookie flags', () => {
  /** Every cookie the gateway sets with a value during a terminal confirmation and a browser login. */
  async function cookiesSet(url: string, publicUrl: string, provider: string, signIn: (browser: TestBrowser, at: URL) => Promise<URL>): Promise<Map<string, ReturnType<typeof parseSetCookie>>> {
    const found = new Map<string, ReturnType<typeof parseSetCookie>>();
    const collect = (response: Response) => {
      for (const header of response.headers.getSetCookie()) {
        const cookie = parseSetCookie(header);
        if (cookie.value !== '') found.set(cookie.name.replace(/_login_.*/, '_login_*'), cookie);
      }
    };
    const browser = new TestBrowser();
    const challenge = createHash('sha256').update(opaque()).digest('base64url');
    const confirm = await browser.get(`${url}/cli/login?${new URLSearchParams({ redirect_uri: 'http://127.0.0.1:50000/callback', code_challenge: challenge, code_challenge_method: 'S256', state: opaque(), provider })}`);
    collect(confirm);
    expect(readTerminalConfirmation(await confirm.text()).code).toMatch(/^[A-Z2-7]{4}-[A-Z2-7]{4}$/);
    const start = await browser.get(`${url}/login/${provider}`);
    collect(start);
    const back = await signIn(browser, new URL(start.headers.get('location')!));
    // A TLS terminator would forward the answer to the gateway; the test delivers it directly.
    const callback = await browser.get(new URL(`${back.pathname}${back.search}`, url));
    expect(callback.status).toBe(303);
    collect(callback);
    expect(new URL(publicUrl).origin).toBe(back.origin);
    return found;
  }

  const expectFlags = (cookie: ReturnType<typeof parseSetCookie>, secure: boolean) => {
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(cookie.attributes).toMatchObject({ httponly: '', samesite: 'Lax', path: '/' });
    expect(cookie.attributes.domain).toBeUndefined();
    expect(cookie.attributes.secure).toBe(secure ? '' : undefined);
  };

  it.each(['stsgate_session', 'stsgate_session_login_*', 'stsgate_session_form'])('%s under a plain-http public_url (development): HttpOnly, SameSite=Lax, Path=/, no Domain, not Secure', async (name) => {
    const found = await cookiesSet(g.url, g.url, 'forged', (browser, at) => g.env.forged.signIn(browser, at, 'mallory'));
    expect([...found.keys()].sort()).toEqual(['stsgate_session', 'stsgate_session_form', 'stsgate_session_login_*']);
    expectFlags(found.get(name)!, false);
  });

  describe('under an https public_url', () => {
    let found: Map<string, ReturnType<typeof parseSetCookie>>;
    let credentialStatus: { prefixed: number; unprefixed: number };
    beforeAll(async () => {
      const publicUrl = 'https://sts.example.com';
      const idp = await OidcDouble.start({ zoe: { sub: 'z-1' } });
      idp.addClient({ clientId: 'tls-client', clientSecret: 'tls-secret', redirectUri: `${publicUrl}/callback/tls` });
      const gateway = await startTestGateway({
        issuers: [],
        store: securityStore(),
        rules: [{ name: 'zoe reads', match: { source: 'tls', conditions: [{ claim: 'sub', op: 'equals', value: 'z-1', ignoreCase: false }] }, roles: ['reader'] }],
        config: { publicUrl, providers: [providerConfig('tls', 'oidc', { issuer: idp.issuer })] },
      });
      try {
        found = await cookiesSet(gateway.url, publicUrl, 'tls', (browser, at) => idp.signIn(browser, at, 'zoe'));
        const session = found.get('__Host-stsgate_session')?.value ?? '';
        const asCookie = async (name: string) => (await fetch(`${gateway.url}/v1/credentials?role=reader`, { headers: { cookie: `${name}=${session}` } })).status;
        credentialStatus = { prefixed: await asCookie('__Host-stsgate_session'), unprefixed: await asCookie('stsgate_session') };
      } finally {
        await gateway.close();
        await idp.close();
      }
    });

    // RFC 6265bis §4.1.3.2: a __Host- cookie is accepted only Secure, with Path=/ and no Domain, so a
    // sibling subdomain (or a plain-http page of this host) can neither set nor overwrite it.
    it('every cookie carries the __Host- prefix', () => {
      expect([...found.keys()].sort()).toEqual(['__Host-stsgate_session', '__Host-stsgate_session_form', '__Host-stsgate_session_login_*']);
    });

    it('the session is read from the __Host- cookie only: the same value under the plain name (which a sibling subdomain can set) is no session', () => {
      expect(credentialStatus).toEqual({ prefixed: 200, unprefixed: 401 });
    });

    it.each(['__Host-stsgate_session', '__Host-stsgate_session_login_*', '__Host-stsgate_session_form'])('%s: also Secure', (name) => {
      expectFlags(found.get(name)!, true);
    });
  });
});

describe('/v1/credentials', () => {
  it.each<[string, () => Promise<TestBrowser>]>([
    ['no cookie', async () => new TestBrowser()],
    ['an unknown cookie', async () => withCookie(opaque())],
    ['a malformed cookie', async () => withCookie('x'.repeat(43) + '=')],
    ['an empty cookie', async () => withCookie('')],
    ['an expired session (its TTL ran out in the store)', async () => {
      const { cookie } = await signIn();
      await g.redis.pexpire(sessionKey(cookie), 1);
      await sleep(5);
      return withCookie(cookie);
    }],
    ['an expired session (its own expiry passed while the record lingers)', async () => {
      const { cookie } = await signIn();
      const record = JSON.parse((await g.redis.get(sessionKey(cookie)))!) as { expiresAt: number };
      await g.redis.set(sessionKey(cookie), JSON.stringify({ ...record, expiresAt: Date.now() - 1 }), 'PX', 60_000);
      return withCookie(cookie);
    }],
    ['a session ended by logout', async () => {
      const { browser, cookie } = await signIn();
      await browser.request(`${g.url}/logout`, { form: {}, headers: { origin: g.url } });
      return withCookie(cookie);
    }],
    ['a session revoked in the store', async () => {
      const { cookie } = await signIn();
      await g.redis.del(sessionKey(cookie));
      return withCookie(cookie);
    }],
  ])('%s: 401 JSON, nothing issued', async (_what, make) => {
    const browser = await make();
    const { response } = await expectBrowserRefused(g, 401, () => credentials(browser), { format: 'json', error: 'MissingAuthenticationToken' });
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
  });

  it.each<[string, Record<string, string>]>([
    ['a cross-site fetch', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' }],
    ['a cross-site no-cors load (<script src>, <img>)', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'script' }],
    ['another origin of the same site (a sibling subdomain)', { 'sec-fetch-site': 'same-site', origin: 'https://evil.127.0.0.1.nip.io' }],
    ['an Origin of another site', { origin: 'https://evil.example' }],
    ['an opaque origin (a sandboxed frame)', { origin: 'null' }],
    ['an Origin that only starts like the gateway', { origin: `${'http://127.0.0.1'}.evil.example` }],
    ['a same-origin Origin contradicted by Fetch Metadata', { origin: 'SELF', 'sec-fetch-site': 'cross-site' }],
  ])('with a live session, %s: 403, nothing issued, not readable cross-origin', async (_what, headers) => {
    const { browser } = await signIn();
    const { response } = await expectBrowserRefused(g, 403, () => credentials(browser, own(headers)), { format: 'json', error: 'AccessDenied' });
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(response.headers.get('access-control-allow-credentials')).toBeNull();
    expect(response.headers.get('cross-origin-resource-policy')).toBe('same-origin');
  });

  it('a CORS preflight from another site is not answered with CORS headers', async () => {
    const response = await fetch(`${g.url}/v1/credentials?role=reader`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
    // @koa/router answers OPTIONS with the Allow header only: a browser then refuses the cross-origin request.
    expect(response.headers.get('allow')).toBe('HEAD, GET');
    for (const name of ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-allow-headers', 'access-control-allow-methods']) expect(response.headers.get(name)).toBeNull();
  });

  it.each<[string, Record<string, string>]>([
    ['a direct request (no Fetch Metadata: curl, credential_process helpers)', {}],
    ['a typed or bookmarked URL', { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' }],
    ["the gateway's own page", { 'sec-fetch-site': 'same-origin', origin: 'SELF' }],
  ])('with a live session, %s: 200, still without CORS headers', async (_what, headers) => {
    const { browser } = await signIn();
    const response = await credentials(browser, own(headers));
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(response.headers.get('cross-origin-resource-policy')).toBe('same-origin');
  });
});

describe('logout CSRF: a cross-site POST never ends the session', () => {
  it.each<[string, Record<string, string>, (csrf: string) => Record<string, string>]>([
    ['a cross-site Origin', { origin: 'https://evil.example' }, () => ({})],
    ['a cross-site Origin with the right form token', { origin: 'https://evil.example' }, (csrf) => ({ csrf_token: csrf })],
    ['a cross-site fetch', { 'sec-fetch-site': 'cross-site' }, () => ({})],
    ['a cross-site fetch with the right form token', { 'sec-fetch-site': 'cross-site' }, (csrf) => ({ csrf_token: csrf })],
    ['a same-site (sibling subdomain) fetch', { 'sec-fetch-site': 'same-site' }, () => ({})],
    ['Sec-Fetch-Site: none (no page sent it)', { 'sec-fetch-site': 'none' }, () => ({})],
    ['an Origin that only starts like the gateway', { origin: 'http://127.0.0.1.evil.example' }, () => ({})],
    ['the right Origin contradicted by Fetch Metadata', { origin: 'SELF', 'sec-fetch-site': 'cross-site' }, () => ({})],
    ['an opaque origin and no form token', { origin: 'null' }, () => ({})],
    ['an opaque origin and a wrong form token', { origin: 'null' }, () => ({ csrf_token: opaque() })],
    ['neither header and no form token', {}, () => ({})],
    ['neither header and a wrong form token', {}, () => ({ csrf_token: opaque() })],
    ['neither header and an empty form token', {}, () => ({ csrf_token: '' })],
  ])('%s: 403, the session stays', async (_what, headers, form) => {
    const { browser, cookie } = await signIn();
    const page = await (await browser.get(`${g.url}/`)).text();
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(page)![1]!;
    await expectBrowserRefused(g, 403, () => browser.request(`${g.url}/logout`, { form: form(csrf), headers: own(headers) }));
    expect(await g.redis.exists(sessionKey(cookie))).toBe(1);
    expect((await credentials(browser)).status).toBe(200);
  });

  it("another session's form token, with no site headers: 403", async () => {
    const { browser, cookie } = await signIn();
    const other = await signIn();
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(await (await other.browser.get(`${g.url}/`)).text())![1]!;
    await expectBrowserRefused(g, 403, () => browser.request(`${g.url}/logout`, { form: { csrf_token: csrf } }));
    expect(await g.redis.exists(sessionKey(cookie))).toBe(1);
  });

  it('a text/plain body (a CORS "simple" cross-site form): 415, the session stays', async () => {
    const { browser, cookie } = await signIn();
    await expectBrowserRefused(g, 415, () => fetch(`${g.url}/logout`, { method: 'POST', headers: { cookie: `${SESSION_COOKIE}=${cookie}`, 'content-type': 'text/plain' }, body: 'csrf_token=x', redirect: 'manual' }));
    expect(await g.redis.exists(sessionKey(browser.cookie(g.url, SESSION_COOKIE)!))).toBe(1);
  });

  it.each<[string, Record<string, string>]>([
    ["the gateway's own page in a browser that sends Origin: null (Referrer-Policy no-referrer)", { origin: 'null', 'sec-fetch-site': 'same-origin' }],
    ['a same-origin Origin', { origin: 'SELF' }],
    ['a same-origin fetch', { 'sec-fetch-site': 'same-origin' }],
  ])('%s: 303 to the signed-out notice, the session ends', async (_what, headers) => {
    const { browser, cookie } = await signIn();
    const response = await browser.request(`${g.url}/logout`, { form: {}, headers: own(headers) });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/?signed_out=1');
    expect(await g.redis.exists(sessionKey(cookie))).toBe(0);
  });
});

describe('every HTML page forbids framing and carries the CSP', () => {
  const terminalQuery = () => new URLSearchParams({ redirect_uri: 'http://127.0.0.1:50000/callback', code_challenge: createHash('sha256').update(opaque()).digest('base64url'), code_challenge_method: 'S256', state: opaque() });

  it.each<[string, number, (browser: TestBrowser) => Promise<Response>]>([
    ['the start page, signed out', 200, (b) => b.get(`${g.url}/`)],
    ['the start page with a role, signed out', 200, (b) => b.get(`${g.url}/?role=reader`)],
    ['a 404 page for an unknown provider', 404, (b) => b.get(`${g.url}/login/myspace`)],
    ['a refused return_to', 400, (b) => b.get(`${g.url}/login/google?return_to=//evil.example`)],
    ['a callback without state', 400, (b) => b.get(`${g.url}/callback/google?code=x`)],
    ['a callback with an unknown state', 400, (b) => b.get(`${g.url}/callback/google?code=x&state=${opaque()}`)],
    ['a refused logout', 403, (b) => b.request(`${g.url}/logout`, { form: {}, headers: { origin: 'https://evil.example' } })],
    ['a logout with a body that is not a form', 415, (b) => b.request(`${g.url}/logout`, { method: 'POST', headers: { 'content-type': 'application/json' } })],
    ['the terminal confirmation page', 200, (b) => b.get(`${g.url}/cli/login?${terminalQuery()}`)],
    ['a refused terminal link', 400, (b) => b.get(`${g.url}/cli/login?redirect_uri=https://evil.example/`)],
    ['a refused terminal confirmation', 403, (b) => b.request(`${g.url}/cli/login`, { form: Object.fromEntries(terminalQuery()) })],
    ['an unreachable provider (503)', 503, (b) => b.get(`${g.url}/login/down`)],
  ])('%s (%i)', async (_what, status, send) => {
    const response = await send(new TestBrowser());
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expectPageHeaders(response);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });

  it.each<[string, number, (browser: TestBrowser) => Promise<Response>]>([
    ['the account page', 200, (b) => b.get(`${g.url}/`)],
    ['the credentials page', 200, (b) => b.get(`${g.url}/?role=reader`, { 'sec-fetch-site': 'same-origin' })],
    ['a role the rules do not grant', 403, (b) => b.get(`${g.url}/?role=admin`, { 'sec-fetch-site': 'same-origin' })],
  ])('signed in: %s (%i)', async (_what, status, send) => {
    const { browser } = await signIn();
    const response = await send(browser);
    expect(response.status).toBe(status);
    expectPageHeaders(response);
  });

  it('the denial page of an account no rule grants (403) and the provider error page (400)', async () => {
    const denied = new TestBrowser();
    const back = await callbackFor(g, denied, 'google', 'bob');
    const response = await denied.get(back);
    expect(response.status).toBe(403);
    expectPageHeaders(response);
    const refused = new TestBrowser();
    const login = await startLogin(refused, g.url, 'google');
    const error = await refused.get(`${g.url}/callback/google?error=access_denied&state=${login.searchParams.get('state')!}`);
    expect(error.status).toBe(400);
    expectPageHeaders(error);
  });
});

describe('the log', () => {
  it('holds no state, code, verifier, cookie value or session token from any request above', () => {
    expect(expectNoOpaqueValuesLogged(g)).toBeGreaterThan(50);
  });
});
