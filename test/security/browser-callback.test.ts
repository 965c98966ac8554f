/**
 * Hostile answers at `/callback/:provider`, one row each: login CSRF (an answer the browser never asked
 * for, RFC 9700 §4.7), mix-up (an answer for one provider carrying another's transaction, §4.4), replayed
 * states and codes (§4.5), and provider error text reflected into the page (escaped, capped, shown only
 * once the state and the browser matched). Each row: the exact status, no session cookie, no record
 * created in the store, no Location, nothing issued, and the audit reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/browser.js';
import { confirmTerminalLogin, startLogin } from '../support/browser-login.js';
import { callbackFor, expectBrowserRefused, loginCookieName, opaque, SESSION_COOKIE, startBrowserSecurityEnvironment, withParams, type BrowserSecurityEnvironment, expectNoOpaqueValuesLogged } from './browser-harness.js';
import { sleep } from '../support/common.js';

let g: BrowserSecurityEnvironment;
beforeAll(async () => {
  g = await startBrowserSecurityEnvironment();
});
afterAll(async () => {
  await g?.close();
});

type Provider = 'google' | 'github' | 'facebook' | 'forged';
const USERS: Record<Provider, string> = { google: 'alice', github: 'octocat', facebook: 'alice', forged: 'mallory' };

describe('login CSRF: an answer this browser did not start is refused (RFC 9700 §4.7)', () => {
  it.each<Provider>(['google', 'github', 'facebook', 'forged'])("the attacker's own finished %s login, delivered in the victim's browser: 400, no session", async (provider) => {
    const attacker = new TestBrowser();
    const back = await callbackFor(g, attacker, provider, USERS[provider]);
    const victim = new TestBrowser();
    await expectBrowserRefused(g, 400, () => victim.get(back), { reason: 'browser_mismatch' });
    expect(victim.cookie(g.url, SESSION_COOKIE)).toBeUndefined();
    // The transaction was taken: the attacker cannot use it afterwards either.
    await expectBrowserRefused(g, 400, () => attacker.get(back), { reason: 'state_unknown' });
  });

  it.each<[string, (victim: TestBrowser, state: string) => Promise<void>]>([
    ['a victim with a login of their own in progress (another login cookie)', async (victim) => void (await startLogin(victim, g.url, 'google'))],
    ['a login cookie under the right name with a made-up value', async (victim, state) => victim.setCookie(g.url, loginCookieName(state), opaque())],
    ['a login cookie under the right name that is empty', async (victim, state) => victim.setCookie(g.url, loginCookieName(state), '')],
    ['the value of another login cookie under the right name', async (victim, state) => {
      await startLogin(victim, g.url, 'google');
      const [, own] = [...victim.jar.get(new URL(g.url).host)!].find(([name]) => name.startsWith(`${SESSION_COOKIE}_login_`))!;
      victim.setCookie(g.url, loginCookieName(state), own);
    }],
    ['the state itself as the login cookie', async (victim, state) => victim.setCookie(g.url, loginCookieName(state), state)],
    ['a session cookie of the victim, and no login cookie', async (victim) => victim.setCookie(g.url, SESSION_COOKIE, opaque())],
  ])("the attacker's answer, with %s: 400", async (_what, prepare) => {
    const attacker = new TestBrowser();
    const back = await callbackFor(g, attacker, 'forged', 'mallory');
    const victim = new TestBrowser();
    await prepare(victim, back.searchParams.get('state')!);
    await expectBrowserRefused(g, 400, () => victim.get(back), { reason: 'browser_mismatch' });
  });

  it("a terminal login's answer delivered in another browser: 400 page, nothing sent to the loopback address", async () => {
    const attacker = new TestBrowser();
    const verifier = opaque();
    const { createHash } = await import('node:crypto');
    const address = new URL('/cli/login', g.url);
    address.search = new URLSearchParams({ redirect_uri: 'http://127.0.0.1:50000/callback', code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256', state: opaque(), provider: 'forged' }).toString();
    const back = await g.env.forged.signIn(attacker, await confirmTerminalLogin(attacker, address), 'mallory');
    await expectBrowserRefused(g, 400, () => new TestBrowser().get(back), { reason: 'browser_mismatch' });
    expect(await g.count('tcode')).toBe(0);
  });

  it('a state this gateway never issued: 400', async () => {
    const attacker = new TestBrowser();
    const back = await callbackFor(g, attacker, 'forged', 'mallory');
    await expectBrowserRefused(g, 400, () => attacker.get(withParams(back, (p) => p.set('state', opaque()))), { reason: 'state_unknown' });
  });

  it('the same answer in the browser that started it is accepted (so the rows above fail for the browser alone)', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(g, browser, 'forged', 'mallory');
    const response = await browser.get(back);
    expect(response.status).toBe(303);
    expect(browser.cookie(g.url, SESSION_COOKIE)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The login cookie is cleared once used.
    expect(response.headers.getSetCookie().find((c) => c.startsWith(`${loginCookieName(back.searchParams.get('state')!)}=;`))).toContain('Max-Age=0');
  });
});

describe('mix-up: an answer for one provider carrying another provider\'s transaction (RFC 9700 §4.4)', () => {
  it.each<[Provider, string]>([
    ['google', 'github'],
    ['github', 'google'],
    ['google', 'okta'],
    ['forged', 'google'],
    ['facebook', 'github'],
    ['github', 'facebook'],
  ])("%s's answer delivered to /callback/%s: 400, and the transaction is spent", async (from, to) => {
    const browser = new TestBrowser();
    const back = await callbackFor(g, browser, from, USERS[from]);
    await expectBrowserRefused(g, 400, () => browser.get(withParams(back, () => undefined, `/callback/${to}`)), { reason: 'provider_mismatch' });
    await expectBrowserRefused(g, 400, () => browser.get(back), { reason: 'state_unknown' });
  });

  it("an answer whose `iss` names another provider (RFC 9207): 400", async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(g, browser, 'google', 'alice');
    await expectBrowserRefused(g, 400, () => browser.get(withParams(back, (p) => p.set('iss', g.env.okta.issuer))), { reason: 'response_invalid' });
  });
});

describe('replays (RFC 9700 §4.5)', () => {
  it.each<Provider>(['google', 'forged', 'github'])('a %s answer delivered twice in the same browser: the second is 400', async (provider) => {
    const browser = new TestBrowser();
    const back = await callbackFor(g, browser, provider, USERS[provider]);
    expect((await browser.get(back)).status).toBe(303);
    const session = browser.cookie(g.url, SESSION_COOKIE);
    await expectBrowserRefused(g, 400, () => browser.get(back), { reason: 'state_unknown' });
    expect(browser.cookie(g.url, SESSION_COOKIE)).toBe(session);
  });

  it.each<Provider>(['google', 'forged', 'github'])('a redeemed %s code replayed under a fresh login of the same browser: 400', async (provider) => {
    const browser = new TestBrowser();
    const used = await callbackFor(g, browser, provider, USERS[provider]);
    expect((await browser.get(used)).status).toBe(303);
    const fresh = await startLogin(browser, g.url, provider);
    await expectBrowserRefused(g, 400, () => browser.get(withParams(used, (p) => p.set('state', fresh.searchParams.get('state')!))), { reason: 'code_rejected' });
  });

  it('a refused answer replayed: still 400 (a state works once, whatever happened)', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(g, browser, 'forged', 'mallory');
    g.env.forged.misbehave({ claims: { nonce: 'wrong' } });
    try {
      await expectBrowserRefused(g, 400, () => browser.get(back), { reason: 'id_token_invalid' });
    } finally {
      g.env.forged.misbehave({});
    }
    await expectBrowserRefused(g, 400, () => browser.get(back), { reason: 'state_unknown' });
  });

  it('an answer after its transaction expired (TTL ran out in the store): 400', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(g, browser, 'forged', 'mallory');
    const { createHash } = await import('node:crypto');
    const key = `${g.prefix}login:${createHash('sha256').update(back.searchParams.get('state')!).digest('base64url')}`;
    expect(await g.redis.pexpire(key, 1)).toBe(1);
    await sleep(5);
    await expectBrowserRefused(g, 400, () => browser.get(back), { reason: 'state_unknown' });
  });

  it('a code given twice in one answer: 400', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(g, browser, 'forged', 'mallory');
    await expectBrowserRefused(g, 400, () => browser.get(withParams(back, (p) => p.append('code', p.get('code')!))), { reason: 'bad_request' });
  });
});

describe('error and error_description reflected into the page', () => {
  /** A provider error answer for a login this browser started (the state and the login cookie match). */
  async function providerError(browser: TestBrowser, error: string, description?: string): Promise<URL> {
    const login = await startLogin(browser, g.url, 'google');
    const back = new URL(`/callback/google`, g.url);
    back.searchParams.set('error', error);
    if (description !== undefined) back.searchParams.set('error_description', description);
    back.searchParams.set('state', login.searchParams.get('state')!);
    return back;
  }

  it.each<[string, string, string | undefined, (page: string) => void]>([
    ['a script element in the description', 'access_denied', '<script>alert(document.cookie)</script>', (p) => {
      expect(p).toContain('&lt;script&gt;alert(document.cookie)&lt;/script&gt;');
    }],
    ['an attribute breakout in the error', '"><img src=x onerror=alert(1)>', undefined, (p) => {
      expect(p).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    }],
    ['a closing tag and a phishing link', 'access_denied', '</p><a href="https://evil.example/verify">Re-verify your account</a>', (p) => {
      expect(p).not.toContain('href="https://evil.example');
      expect(p).toContain('&lt;/p&gt;&lt;a href=&quot;https://evil.example/verify&quot;&gt;');
    }],
    ['a javascript: URL as text', 'access_denied', 'javascript:alert(1)', (p) => {
      expect(p).not.toMatch(/href="javascript:/i);
      expect(p).toContain('javascript:alert(1)');
    }],
    ['single quotes and backticks', "x' onmouseover='alert(1)", '`${alert(1)}`', (p) => {
      expect(p).toContain('x&#39; onmouseover=&#39;alert(1)');
      expect(p).toContain('&#96;${alert(1)}&#96;');
    }],
    ['entities already escaped (escaped again, never decoded)', 'access_denied', '&lt;script&gt;', (p) => {
      expect(p).toContain('&amp;lt;script&amp;gt;');
    }],
    ['a style element', 'access_denied', '<style>body{display:none}</style>', (p) => {
      expect(p).not.toContain('<style>');
    }],
    ['an SVG with an event handler', 'access_denied', '<svg/onload=alert(1)>', (p) => {
      expect(p).toContain('&lt;svg/onload=alert(1)&gt;');
    }],
    ['a meta refresh', 'access_denied', '<meta http-equiv="refresh" content="0;url=https://evil.example">', (p) => {
      expect(p).not.toContain('<meta http-equiv="refresh"');
    }],
    ['a description of 10 000 characters (cut to 300)', 'access_denied', 'A'.repeat(10_000), (p) => {
      expect(p).toContain('A'.repeat(300));
      expect(p).not.toContain('A'.repeat(301));
    }],
    ['an error of 2 000 characters (cut to 300)', 'E'.repeat(2_000), undefined, (p) => {
      expect(p).toContain('E'.repeat(300));
      expect(p).not.toContain('E'.repeat(301));
    }],
    ['control characters, line breaks and a right-to-left override (removed)', 'access_denied', 'line1\r\nline2\u0000\u202egnp.exe\u200b', (p) => {
      expect(p).toContain('line1line2gnp.exe');
      expect(p).not.toMatch(/[\u0000\u202e\u200b]/);
    }],
    ['non-ASCII look-alikes (removed: RFC 6749 §4.1.2.1 allows ASCII only)', 'access_denied', 'Аccount lоcked', (p) => {
      expect(p).toContain('ccount lcked');
    }],
  ])('%s: 400, escaped and capped', async (_what, error, description, check) => {
    const browser = new TestBrowser();
    const back = await providerError(browser, error, description);
    const { text } = await expectBrowserRefused(g, 400, () => browser.get(back), { reason: 'provider_error' });
    const message = /<p class="error">([^]*?)<\/p>\n/.exec(text)?.[1] ?? '';
    expect(message).toContain('Google did not sign you in:');
    // Whatever was sent, the page's markup around the message is the page's own.
    expect(text.match(/<script/g)?.length).toBe(1);
    expect(text).not.toMatch(/<(?:img|svg|style|iframe|a href="(?!\/))/);
    check(text);
  });

  it.each<[string, (browser: TestBrowser) => Promise<URL>, string]>([
    ['a state nobody started', async () => new URL(`/callback/google?error=access_denied&error_description=${encodeURIComponent('Call +1 555 0100 to unlock your account')}&state=${opaque()}`, g.url), 'state_unknown'],
    ['no state at all', async () => new URL(`/callback/google?error=access_denied&error_description=${encodeURIComponent('Call +1 555 0100 to unlock your account')}`, g.url), 'state_missing'],
    ['a state started in another browser', async () => providerError(new TestBrowser(), 'access_denied', 'Call +1 555 0100 to unlock your account'), 'browser_mismatch'],
    ['a state started for another provider', async (browser) => withParams(await providerError(browser, 'access_denied', 'Call +1 555 0100 to unlock your account'), () => undefined, '/callback/okta'), 'provider_mismatch'],
  ])('with %s the provider text is never shown: 400', async (_what, make, reason) => {
    const browser = new TestBrowser();
    const back = await make(browser);
    const { text } = await expectBrowserRefused(g, 400, () => browser.get(back), { reason });
    // Not '555' alone: the page's random request id may contain those digits.
    for (const piece of ['+1 555 0100', '555 0100', 'to unlock']) expect(text).not.toContain(piece);
    expect(text).not.toContain('did not sign you in');
  });

  it('an error given twice: 400', async () => {
    const browser = new TestBrowser();
    const back = await providerError(browser, 'access_denied');
    back.searchParams.append('error', 'server_error');
    await expectBrowserRefused(g, 400, () => browser.get(back), { reason: 'bad_request' });
  });
});

describe('the log', () => {
  it('holds no code, state, login cookie or session cookie value from any of the requests above', async () => {
    const browser = new TestBrowser();
    const back = await callbackFor(g, browser, 'google', 'alice');
    const binding = browser.cookie(g.url, loginCookieName(back.searchParams.get('state')!))!;
    await browser.get(back);
    const logs = JSON.stringify(g.env.gateway.logs());
    for (const value of [back.searchParams.get('code')!, back.searchParams.get('state')!, binding, browser.cookie(g.url, SESSION_COOKIE)!]) {
      expect(value.length).toBeGreaterThan(20);
      expect(logs).not.toContain(value);
    }
  });
});

describe('the log', () => {
  it('holds no state, code, verifier, cookie value or session token from any request above', () => {
    expect(expectNoOpaqueValuesLogged(g)).toBeGreaterThan(50);
  });
});
