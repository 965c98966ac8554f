/**
 * Every bad input to the browser login, one row each, against the real Redis. Each must end on an HTML
 * error page with the right status (400 for what the client sent, 403 for a refusal, 502/503 when the
 * provider fails), and leave no session cookie, no session record, no credentials and no redirect at all
 * (so none off-site); each failed callback is audited with its reason code.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/browser.js';
import { loginAs, providerConfig, reservePublicUrl, startLogin } from '../support/browser-login.js';
import { redisStoreConfig, startTestGateway } from '../support/gateway.js';
import { OidcDouble } from '../support/oidc-double.js';
import { useLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';

const setup = useLoginEnvironment();
afterEach(() => {
  setup.env.forged.misbehave({});
  setup.env.forged.heal();
  setup.env.github.heal();
});

/** Browser sessions and credential sets in the store. */
async function records(): Promise<{ sessions: number; credentials: number }> {
  const [sessions, credentials] = await Promise.all([setup.redis.keys(`${setup.prefix}bsess:*`), setup.redis.keys(`${setup.prefix}sess:*`)]);
  return { sessions: sessions.length, credentials: credentials.length };
}

/** The shared assertions: status, an HTML page, no Location, no session cookie, nothing stored, the audit reason. */
async function expectRefused(response: Response, status: number, reason: string | undefined, before: { sessions: number; credentials: number }): Promise<string> {
  const text = await response.text();
  expect(response.status, text.slice(0, 2000)).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  expect(response.headers.get('location')).toBeNull();
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(response.headers.getSetCookie().filter((c) => /^stsgate_session=[^;]/.test(c))).toEqual([]);
  expect(await records()).toEqual(before);
  if (reason !== undefined) {
    const requestId = response.headers.get('x-request-id');
    expect(setup.env.gateway.logs().find((l) => l.requestId === requestId && l.event === 'login_failed')).toMatchObject({ reason });
  }
  return text;
}

/** Every code, state and nonce the tests saw: none may appear in any log line. */
const seen = new Set<string>();

/** Starts a login and signs in at the provider; returns the callback URL (not yet delivered). */
async function callbackFor(browser: TestBrowser, provider: 'google' | 'forged' | 'github', user: string): Promise<URL> {
  const double = { google: setup.env.google, forged: setup.env.forged, github: setup.env.github }[provider];
  const login = await startLogin(browser, setup.env.gateway.url, provider);
  const back = await double.signIn(browser, login, user);
  for (const value of [login.searchParams.get('nonce'), login.searchParams.get('code_challenge'), back.searchParams.get('code'), back.searchParams.get('state')]) {
    if (value) seen.add(value);
  }
  return back;
}

function withParams(url: URL, change: (params: URLSearchParams) => void, path?: string): URL {
  const out = new URL(url);
  if (path !== undefined) out.pathname = path;
  change(out.searchParams);
  return out;
}

describe('state', () => {
  it('missing state: 400', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'google', 'alice');
    const before = await records();
    await expectRefused(await browser.get(withParams(back, (p) => p.delete('state'))), 400, 'state_missing', before);
  });

  it('mismatched (unknown) state: 400', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'google', 'alice');
    const before = await records();
    await expectRefused(await browser.get(withParams(back, (p) => p.set('state', randomBytes(32).toString('base64url')))), 400, 'state_unknown', before);
  });

  it('a state given twice: 400', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'google', 'alice');
    const before = await records();
    await expectRefused(await browser.get(withParams(back, (p) => p.append('state', p.get('state')!))), 400, 'bad_request', before);
  });

  it('replayed state (a callback delivered twice): the second is 400', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'google', 'alice');
    expect((await browser.get(back)).status).toBe(303);
    const before = await records();
    const attacker = new TestBrowser();
    await expectRefused(await attacker.get(back), 400, 'state_unknown', before);
  });

  it('an expired transaction (gone from the store): 400', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'google', 'alice');
    for (const key of await setup.redis.keys(`${setup.prefix}login:*`)) await setup.redis.del(key);
    const before = await records();
    await expectRefused(await browser.get(back), 400, 'state_unknown', before);
  });

  it('a provider error with an unknown state shows no provider text at all', async () => {
    const browser = new TestBrowser();
    const before = await records();
    const forged = new URL(`${setup.env.gateway.url}/callback/google?error=access_denied&error_description=${encodeURIComponent('Call +1 555 0100 to unlock')}&state=${randomBytes(32).toString('base64url')}`);
    const text = await expectRefused(await browser.get(forged), 400, 'state_unknown', before);
    // Not '555' alone: the page's random request id may contain those digits.
    for (const piece of ['+1 555 0100', '555 0100', 'to unlock']) expect(text).not.toContain(piece);
  });
});

describe('mix-up (RFC 9700 §4.4)', () => {
  it("a callback for google carrying github's transaction: 400, and the transaction is spent", async () => {
    const browser = new TestBrowser();
    const github = await callbackFor(browser, 'github', 'octocat');
    const before = await records();
    const mixed = withParams(github, () => undefined, '/callback/google');
    await expectRefused(await browser.get(mixed), 400, 'provider_mismatch', before);
    await expectRefused(await browser.get(github), 400, 'state_unknown', before);
  });

  it("google's answer delivered to okta's callback: 400", async () => {
    const browser = new TestBrowser();
    const google = await callbackFor(browser, 'google', 'alice');
    const before = await records();
    await expectRefused(await browser.get(withParams(google, () => undefined, '/callback/okta')), 400, 'provider_mismatch', before);
  });
});

describe('PKCE and the authorization code', () => {
  it("a code injected into another login's transaction (wrong PKCE verifier): 400", async () => {
    const victim = new TestBrowser();
    const attacker = new TestBrowser();
    const attackersCallback = await callbackFor(attacker, 'google', 'bob');
    const victimsLogin = await startLogin(victim, setup.env.gateway.url, 'google');
    const before = await records();
    const injected = withParams(attackersCallback, (p) => p.set('state', victimsLogin.searchParams.get('state')!));
    await expectRefused(await victim.get(injected), 400, 'code_rejected', before);
  });

  it('a code issued without a PKCE challenge (downgrade) is refused when redeemed with a verifier: 400', async () => {
    const victim = new TestBrowser();
    const login = await startLogin(victim, setup.env.gateway.url, 'google');
    const withoutPkce = withParams(login, (p) => {
      p.delete('code_challenge');
      p.delete('code_challenge_method');
    });
    const back = await setup.env.google.signIn(new TestBrowser(), withoutPkce, 'bob');
    const before = await records();
    await expectRefused(await victim.get(back), 400, 'code_rejected', before);
  });

  it('a replayed authorization code (already redeemed) in a fresh login: 400', async () => {
    const first = new TestBrowser();
    const used = await callbackFor(first, 'forged', 'mallory');
    expect((await first.get(used)).status).toBe(303);
    const second = new TestBrowser();
    const fresh = await startLogin(second, setup.env.gateway.url, 'forged');
    const before = await records();
    const replay = withParams(used, (p) => p.set('state', fresh.searchParams.get('state')!));
    await expectRefused(await second.get(replay), 400, 'code_rejected', before);
  });

  it('a callback without a code: 400', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'google', 'alice');
    const before = await records();
    await expectRefused(await browser.get(withParams(back, (p) => p.delete('code'))), 400, 'code_missing', before);
  });
});

describe('the ID token', () => {
  const now = () => Math.floor(Date.now() / 1000);
  it.each<[string, Parameters<LoginEnvironment['forged']['misbehave']>[0]]>([
    ['a nonce mismatch', { claims: { nonce: 'not-the-one-sent' } }],
    ['a missing nonce', { claims: { nonce: undefined } }],
    ['a wrong issuer', { claims: { iss: 'https://accounts.evil.example' } }],
    ['a wrong audience', { claims: { aud: 'someone-else' } }],
    ['an audience list without this client', { claims: { aud: ['a', 'b'] } }],
    ['a signature by a key the provider does not publish', { foreignKey: true }],
    ['an expired token', { claims: { iat: now() - 900, exp: now() - 600 } }],
    ['a token issued in the future', { claims: { iat: now() + 3600, exp: now() + 7200 } }],
  ])('%s: 400, nothing issued', async (_name, how) => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'forged', 'mallory');
    setup.env.forged.misbehave(how);
    const before = await records();
    await expectRefused(await browser.get(back), 400, 'id_token_invalid', before);
  });

  it('the same provider behaving: mallory is signed in (so the rows above fail for the ID token alone)', async () => {
    const browser = new TestBrowser();
    expect((await loginAs(browser, setup.env.gateway.url, 'forged', setup.env.forged, 'mallory')).status).toBe(303);
  });

  it('an `iss` response parameter that is not the issuer (RFC 9207): 400', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'google', 'alice');
    expect(back.searchParams.get('iss')).toBe(setup.env.google.issuer);
    const before = await records();
    await expectRefused(await browser.get(withParams(back, (p) => p.set('iss', 'https://evil.example'))), 400, 'response_invalid', before);
  });
});

describe('return_to', () => {
  it.each([
    ['an absolute URL elsewhere', 'https://evil.example/'],
    ['an upper-case scheme elsewhere', 'HTTPS://EVIL.EXAMPLE'],
    ['a host that only starts like an allowed one', 'https://app.example.com.evil.example/'],
    ['an allowed host on another scheme', 'http://app.example.com/'],
    ['a network-path reference', '//evil.example/path'],
    ['a slash-backslash', '/\\evil.example'],
    ['backslashes', '\\\\evil.example'],
    ['an encoded double slash', '/%2F%2Fevil.example'],
    ['an encoded double slash without the leading slash', '%2F%2Fevil.example'],
    ['an encoded backslash', '/%5Cevil.example'],
    ['double encoding', '/%252F%252Fevil.example'],
    ['a tab inside', '/\t/evil.example'],
    ['a CRLF (header injection)', '/ok\r\nLocation: https://evil.example'],
    ['a NUL', '/ok\u0000'],
    ['credentials in the URL', `http://127.0.0.1:1@evil.example/`],
    ['a javascript: URL', 'javascript:alert(document.cookie)'],
    ['a data: URL', 'data:text/html,<script>alert(1)</script>'],
    ['a relative path without a slash', 'evil.example'],
  ])('%s: 400 at /login, no transaction stored', async (_name, returnTo) => {
    const browser = new TestBrowser();
    const transactions = (await setup.redis.keys(`${setup.prefix}login:*`)).length;
    const before = await records();
    const url = new URL(`${setup.env.gateway.url}/login/google`);
    url.searchParams.set('return_to', returnTo);
    const text = await expectRefused(await browser.get(url), 400, 'return_to_refused', before);
    expect(text).toContain('outside this site');
    expect((await setup.redis.keys(`${setup.prefix}login:*`)).length).toBe(transactions);
  });

  it('an own-origin absolute URL and an allowed origin pass', async () => {
    const browser = new TestBrowser();
    for (const ok of [`${setup.env.publicUrl}/x?y=1`, 'https://app.example.com/welcome']) {
      const url = new URL(`${setup.env.gateway.url}/login/google`);
      url.searchParams.set('return_to', ok);
      expect((await browser.get(url)).status).toBe(302);
    }
  });
});

describe('the provider', () => {
  it('an error returned by the provider: 400 with its description escaped', async () => {
    const browser = new TestBrowser();
    const login = await startLogin(browser, setup.env.gateway.url, 'google');
    const back = await setup.env.google.deny(browser, login, '<script>alert(1)</script> & "no"');
    expect(back.searchParams.get('error')).toBe('access_denied');
    const before = await records();
    const text = await expectRefused(await browser.get(back), 400, 'provider_error', before);
    expect(text).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;no&quot;');
    expect(text).not.toContain('<script>alert');
  });

  it('unreachable at discovery: 503 at /login, no transaction stored', async () => {
    const browser = new TestBrowser();
    const transactions = (await setup.redis.keys(`${setup.prefix}login:*`)).length;
    const before = await records();
    const text = await expectRefused(await browser.get(`${setup.env.gateway.url}/login/down`), 503, 'provider_unreachable', before);
    expect(text).toContain('Down Ltd. could not be reached');
    expect((await setup.redis.keys(`${setup.prefix}login:*`)).length).toBe(transactions);
  });

  it('token endpoint unreachable at the callback: 503', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'forged', 'mallory');
    setup.env.forged.sabotage('/token', 'reset');
    const before = await records();
    await expectRefused(await browser.get(back), 503, 'provider_unreachable', before);
  });

  it('token endpoint failing with 500: 502', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'forged', 'mallory');
    setup.env.forged.sabotage('/token', 500);
    const before = await records();
    await expectRefused(await browser.get(back), 502, 'provider_failed', before);
  });

  it("GitHub's API failing after the code exchange: 502", async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'github', 'octocat');
    setup.env.github.sabotage('/api/v3/user/teams', 500);
    const before = await records();
    await expectRefused(await browser.get(back), 502, 'provider_failed', before);
  });

  it("GitHub's 200-with-error token answer for a bad code: 400", async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(browser, 'github', 'octocat');
    const before = await records();
    await expectRefused(await browser.get(withParams(back, (p) => p.set('code', 'not-a-code'))), 400, 'code_rejected', before);
  });

  it('an unknown provider: 404 page at /login and /callback', async () => {
    const browser = new TestBrowser();
    const before = await records();
    await expectRefused(await browser.get(`${setup.env.gateway.url}/login/myspace`), 404, undefined, before);
    await expectRefused(await browser.get(`${setup.env.gateway.url}/callback/myspace?state=x&code=y`), 404, undefined, before);
  });
});

describe('the provider JWKS', () => {
  it('unreachable when the ID token is first checked: 503, nothing stored', async () => {
    // A provider of its own: the shared one's keys are cached by earlier logins.
    const { port, publicUrl } = await reservePublicUrl();
    const idp = await OidcDouble.start({ zoe: { sub: 'z-1' } });
    idp.addClient({ clientId: 'fresh-client', clientSecret: 'fresh-secret', redirectUri: `${publicUrl}/callback/fresh` });
    const store = redisStoreConfig();
    const gateway = await startTestGateway({
      issuers: [],
      port,
      store,
      rules: [{ name: 'zoe reads', match: { source: 'fresh', conditions: [] }, roles: ['reader'] }],
      config: { publicUrl, providers: [providerConfig('fresh', 'oidc', { issuer: idp.issuer })] },
    });
    try {
      const browser = new TestBrowser();
      const back = await idp.signIn(browser, await startLogin(browser, gateway.url, 'fresh'), 'zoe');
      idp.sabotage('/jwks', 'reset');
      const response = await browser.get(back);
      expect(response.status).toBe(503);
      expect(response.headers.get('location')).toBeNull();
      expect(response.headers.getSetCookie().filter((c) => /^stsgate_session=[^;]/.test(c))).toEqual([]);
      expect(await setup.redis.keys(`${store.prefix}bsess:*`)).toEqual([]);
      expect(await setup.redis.keys(`${store.prefix}sess:*`)).toEqual([]);
      expect(gateway.logs().find((l) => l.event === 'login_failed')).toMatchObject({ reason: 'provider_unreachable' });
    } finally {
      await gateway.close();
      await idp.close();
    }
  });
});

describe('logout is same-site only', () => {
  it.each<[string, Record<string, string>]>([
    ['a cross-site Origin', { origin: 'https://evil.example' }],
    ['a cross-site fetch', { 'sec-fetch-site': 'cross-site' }],
    ['a same-site (other subdomain) fetch', { 'sec-fetch-site': 'same-site' }],
    ['an opaque origin', { origin: 'null' }],
    ['neither header and no form token', {}],
  ])('%s: 403, the session stays', async (_name, headers) => {
    const browser = new TestBrowser();
    await loginAs(browser, setup.env.gateway.url, 'google', setup.env.google, 'alice');
    const before = await records();
    const response = await browser.request(`${setup.env.gateway.url}/logout`, { form: {}, headers });
    expect(response.status).toBe(403);
    expect(response.headers.get('location')).toBeNull();
    expect(await records()).toEqual(before);
    expect((await browser.get(`${setup.env.gateway.url}/v1/credentials?role=reader`)).status).toBe(200);
  });

  it("the page's form token works without Origin headers", async () => {
    const browser = new TestBrowser();
    await loginAs(browser, setup.env.gateway.url, 'google', setup.env.google, 'alice');
    const page = await (await browser.get(`${setup.env.gateway.url}/`)).text();
    const token = /name="csrf_token" value="([^"]+)"/.exec(page)![1]!;
    const response = await browser.request(`${setup.env.gateway.url}/logout`, { form: { csrf_token: token } });
    expect(response.status).toBe(303);
    expect((await browser.get(`${setup.env.gateway.url}/v1/credentials?role=reader`)).status).toBe(401);
  });
});

describe('/v1/credentials without a session', () => {
  it.each([
    ['no cookie', undefined],
    ['an unknown cookie', randomBytes(32).toString('base64url')],
    ['a malformed cookie', '../../etc/passwd'],
  ])('%s: 401 JSON', async (_name, cookie) => {
    const browser = new TestBrowser();
    if (cookie !== undefined) browser.setCookie(setup.env.gateway.url, 'stsgate_session', cookie);
    const response = await browser.get(`${setup.env.gateway.url}/v1/credentials?role=reader`);
    expect(response.status).toBe(401);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toMatchObject({ error: 'MissingAuthenticationToken' });
  });
});

describe('the log', () => {
  it('holds no code, state, nonce or PKCE value from any of the requests above', () => {
    expect(seen.size).toBeGreaterThan(20);
    const logs = JSON.stringify(setup.env.gateway.logs());
    for (const value of seen) expect(logs).not.toContain(value);
  });
});
