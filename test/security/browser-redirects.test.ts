/**
 * Open redirects (RFC 9700 §4.11): `return_to` at `/login/:provider` in every encoding browsers read as
 * another host, and the terminal login's `redirect_uri` at `/cli/login` (its link and its confirmation
 * form). Each refused row: the exact status, no cookie, no login transaction stored, no Location. The
 * accepted forms end, after a real login, on the gateway's own origin or an allowed one.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/browser.js';
import { loginAs, readTerminalConfirmation, startLogin } from '../support/browser-login.js';
import { expectBrowserRefused, opaque, startBrowserSecurityEnvironment, type BrowserSecurityEnvironment, expectNoOpaqueValuesLogged } from './browser-harness.js';

let g: BrowserSecurityEnvironment;
beforeAll(async () => {
  g = await startBrowserSecurityEnvironment();
});
afterAll(async () => {
  await g?.close();
});

const OWN_HOST = () => new URL(g.url).host;

describe('return_to at /login/:provider', () => {
  it.each<[string, () => string]>([
    ['an absolute URL elsewhere', () => 'https://evil.example/'],
    ['an upper-case scheme elsewhere', () => 'HTTPS://EVIL.EXAMPLE/'],
    ['plain http elsewhere', () => 'http://evil.example/'],
    ['the gateway host on another port', () => 'http://127.0.0.1:1/'],
    ['a host that only starts like an allowed one', () => 'https://app.example.com.evil.example/'],
    ['an allowed host with a trailing dot', () => 'https://app.example.com./'],
    ['an allowed host on another scheme', () => 'http://app.example.com/'],
    ['an allowed host on another port', () => 'https://app.example.com:8443/'],
    ['user info naming the allowed host', () => 'https://app.example.com@evil.example/'],
    ['user info naming the gateway', () => `http://${OWN_HOST()}@evil.example/`],
    ['user info on the gateway itself', () => `http://user:pass@${OWN_HOST()}/`],
    ['a fragment naming the allowed host', () => 'https://evil.example#@app.example.com'],
    ['a network-path reference', () => '//evil.example/path'],
    ['a network-path reference with three slashes', () => '///evil.example/path'],
    ['a slash and a backslash', () => '/\\evil.example'],
    ['two backslashes', () => '\\\\evil.example'],
    ['a backslash after the scheme', () => 'https:\\\\evil.example'],
    ['a scheme without slashes (special schemes parse it as a host)', () => 'http:evil.example'],
    ['a scheme with one slash', () => 'https:/evil.example'],
    ['an encoded double slash', () => '/%2F%2Fevil.example'],
    ['an encoded double slash in lower case', () => '/%2f%2fevil.example'],
    ['an encoded double slash without the leading slash', () => '%2F%2Fevil.example'],
    ['an encoded slash after a slash', () => '/%2Fevil.example'],
    ['an encoded backslash', () => '/%5Cevil.example'],
    ['an encoded backslash in lower case', () => '/%5cevil.example'],
    ['double encoding of slashes', () => '/%252F%252Fevil.example'],
    ['double encoding of a backslash', () => '/%255Cevil.example'],
    ['a tab between the slashes', () => '/\t/evil.example'],
    ['a newline between the slashes', () => '/\n/evil.example'],
    ['a carriage return between the slashes', () => '/\r/evil.example'],
    ['a CRLF and a header', () => '/ok\r\nLocation: https://evil.example'],
    ['a leading space', () => ' //evil.example'],
    ['a NUL', () => '/ok\u0000'],
    ['a tab inside the scheme', () => 'java\tscript:alert(1)'],
    ['a javascript: URL', () => 'javascript:alert(document.cookie)'],
    ['a javascript: URL in mixed case', () => 'JaVaScRiPt:alert(1)'],
    ['a javascript: URL with an encoded newline after //', () => 'javascript://%0Aalert(1)'],
    ['a vbscript: URL', () => 'vbscript:msgbox(1)'],
    ['a data: URL', () => 'data:text/html,<script>alert(1)</script>'],
    ['a base64 data: URL', () => 'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='],
    ['a blob: URL', () => `blob:http://${OWN_HOST()}/${opaque()}`],
    ['a file: URL', () => 'file:///etc/passwd'],
    ['a relative path without a slash', () => 'evil.example'],
    ['a DIVISION SLASH pair (U+2215)', () => '/\u2215\u2215evil.example'],
    ['a FULLWIDTH SOLIDUS pair (U+FF0F)', () => '\uff0f\uff0fevil.example'],
    ['a FULLWIDTH SOLIDUS after the leading slash', () => '/\uff0fevil.example'],
    ['a FRACTION SLASH (U+2044)', () => '/\u2044evil.example'],
    ['a BIG SOLIDUS (U+29F8)', () => '/\u29f8evil.example'],
    ['a FULLWIDTH REVERSE SOLIDUS (U+FF3C)', () => '/\uff3cevil.example'],
    ['a SMALL REVERSE SOLIDUS (U+FE68)', () => '/\ufe68evil.example'],
    ['a look-alike host for the allowed origin (Cyrillic а)', () => 'https://\u0430pp.example.com/'],
    ['a fullwidth scheme separator', () => 'https\uff1a//evil.example'],
    ['a zero-width space before the slashes', () => '\u200b//evil.example'],
    ['an ideographic space inside', () => '/\u3000/evil.example'],
    ['a byte order mark', () => '\ufeff//evil.example'],
    ['a 2 049-character path', () => `/${'a'.repeat(2_048)}`],
  ])('%s: 400, nothing stored', async (_what, value) => {
    const url = new URL(`${g.url}/login/google`);
    url.searchParams.set('return_to', value());
    await expectBrowserRefused(g, 400, () => new TestBrowser().get(url), { reason: 'return_to_refused' });
  });

  // Dot segments, plain and percent-encoded (WHATWG URL decodes `%2e` in a path segment to `.`), that a
  // URL parser would normalize into a network-path reference (`//evil.example/x`): refused, not normalized.
  const DOT_SEGMENTS: [string, () => string][] = [
    ['a single-dot segment before //', () => '/.//evil.example/x'],
    ['a double-dot segment before //', () => '/..//evil.example/x'],
    ['a segment and .. before //', () => '/a/..//evil.example/x'],
    ['two levels up before //', () => '/a/b/../..//evil.example/x'],
    ['%2e before //', () => '/%2e//evil.example/x'],
    ['%2E before //', () => '/%2E//evil.example/x'],
    ['.%2e before //', () => '/.%2e//evil.example/x'],
    ['%2e. before //', () => '/%2e.//evil.example/x'],
    ['%2E%2e before //', () => '/%2E%2e//evil.example/x'],
    ['a segment and %2e%2E before //', () => '/a/%2e%2E//evil.example/x'],
    ['the gateway origin with a single dot', () => `${g.url}/.//evil.example/x`],
    ['the gateway origin with a double dot', () => `${g.url}/..//evil.example/x`],
    ['the gateway origin with %2e', () => `${g.url}/%2e//evil.example/x`],
    ['the gateway origin with a segment and .%2E', () => `${g.url}/a/.%2E//evil.example/x`],
    ['the gateway origin with an empty first segment', () => `${g.url}//evil.example/x`],
    ['the allowed origin with dot segments', () => 'https://app.example.com/a/..//evil.example/x'],
    ['harmless-looking dot segments', () => '/a/../b/./c'],
  ];

  it.each(DOT_SEGMENTS)('%s: 400 at the start of the login, nothing stored, so no login ends there', async (_what, value) => {
    const url = new URL(`${g.url}/login/forged`);
    url.searchParams.set('return_to', value());
    await expectBrowserRefused(g, 400, () => new TestBrowser().get(url), { reason: 'return_to_refused' });
  });

  it('a transaction stored with a dangerous return_to (by an older replica) ends on the start page, not there', async () => {
    const browser = new TestBrowser();
    const authorization = await startLogin(browser, g.url, 'forged', { return_to: '/x' });
    const keys = await g.redis.keys(`${g.prefix}login:*`);
    const values = await Promise.all(keys.map((k) => g.redis.get(k)));
    const index = values.findIndex((v) => v?.includes('"returnTo":"/x"'));
    expect(index).toBeGreaterThanOrEqual(0);
    const transaction = JSON.parse(values[index]!) as Record<string, unknown>;
    await g.redis.set(keys[index]!, JSON.stringify({ ...transaction, returnTo: '//evil.example/x' }), 'KEEPTTL');
    const response = await browser.get(await g.env.forged.signIn(browser, authorization, 'mallory'));
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/');
  });

  it('return_to given twice: 400', async () => {
    await expectBrowserRefused(g, 400, () => new TestBrowser().get(`${g.url}/login/google?return_to=/a&return_to=//evil.example`), { reason: 'bad_request' });
  });

  it.each<[string, () => string, (location: string) => void]>([
    ['a same-origin path', () => '/?role=reader', (l) => expect(l).toBe('/?role=reader')],
    ['a same-origin absolute URL (given back as a path)', () => `${g.url}/x?y=1#z`, (l) => expect(l).toBe('/x?y=1#z')],
    ['an allowed origin', () => 'https://app.example.com/welcome', (l) => expect(l).toBe('https://app.example.com/welcome')],
    ['an allowed origin in upper case (normalized)', () => 'HTTPS://APP.EXAMPLE.COM/', (l) => expect(l).toBe('https://app.example.com/')],
    ['dots inside segments', () => '/a.b/..c/c..', (l) => expect(l).toBe('/a.b/..c/c..')],
    ['an encoded dot inside a segment', () => '/%2ea/x', (l) => expect(l).toBe('/%2ea/x')],
    ['dot segments in the query only', () => '/?next=/..//evil.example', (l) => expect(l).toBe('/?next=/..//evil.example')],
    ['percent-encoded non-ASCII in a path', () => '/%E2%88%95%E2%88%95evil.example', (l) => expect(l).toBe('/%E2%88%95%E2%88%95evil.example')],
  ])('%s is followed after a real login, and stays there', async (_what, value, check) => {
    const browser = new TestBrowser();
    const response = await loginAs(browser, g.url, 'forged', g.env.forged, 'mallory', { return_to: value() });
    expect(response.status).toBe(303);
    const location = response.headers.get('location')!;
    check(location);
    // Never a network-path reference, a backslash or another origin than the two allowed.
    const target = new URL(location, g.url);
    expect([new URL(g.url).origin, 'https://app.example.com']).toContain(target.origin);
    expect(location).not.toMatch(/^\/[\\/]|\\/);
  });
});

describe("the terminal login's redirect_uri", () => {
  const challenge = () => createHash('sha256').update(opaque()).digest('base64url');
  const terminal = (redirectUri: string) => ({ redirect_uri: redirectUri, code_challenge: challenge(), code_challenge_method: 'S256', state: opaque(), provider: 'forged' });

  const refused: [string, string][] = [
    ['another host', 'https://evil.example/callback'],
    ['another host over http', 'http://evil.example:50000/callback'],
    ['localhost (RFC 8252 §8.3)', 'http://localhost:50000/callback'],
    ['https to loopback', 'https://127.0.0.1:50000/callback'],
    ['another loopback address', 'http://127.0.0.2:50000/callback'],
    ['a short form parsers widen to 127.0.0.1', 'http://127.1:50000/callback'],
    ['a hexadecimal form', 'http://0x7f.0.0.1:50000/callback'],
    ['an octal form', 'http://0177.0.0.1:50000/callback'],
    ['a decimal form', 'http://2130706433:50000/callback'],
    ['an IPv4-mapped IPv6 address', 'http://[::ffff:127.0.0.1]:50000/callback'],
    ['an IPv6 address with a zone', 'http://[::1%25eth0]:50000/callback'],
    ['no port', 'http://127.0.0.1/callback'],
    ['port 0', 'http://127.0.0.1:0/callback'],
    ['a port above 65535', 'http://127.0.0.1:65536/callback'],
    ['a host after user info', 'http://127.0.0.1:50000@evil.example/callback'],
    ['user info before the loopback host', 'http://evil.example@127.0.0.1:50000/callback'],
    ['a look-alike host', 'http://127.0.0.1.evil.example:50000/callback'],
    ['a query that names another host', 'http://127.0.0.1:50000/callback?next=https://evil.example'],
    ['a fragment', 'http://127.0.0.1:50000/callback#https://evil.example'],
    ['a dot-dot segment', 'http://127.0.0.1:50000/../callback'],
    ['an encoded slash', 'http://127.0.0.1:50000/%2F%2Fevil.example'],
    ['a backslash', 'http://127.0.0.1:50000\\@evil.example/'],
    ['a tab inside', 'http://127.0.0.1:50000/call\tback'],
    ['a newline inside', 'http://127.0.0.1:50000/callback\n'],
    ['upper-case scheme', 'HTTP://127.0.0.1:50000/callback'],
    ['a custom scheme', 'com.example.app:/callback'],
    ['a javascript: URL', 'javascript:alert(1)//127.0.0.1:50000'],
    ['a data: URL', 'data:text/html,<script>alert(1)</script>'],
    ['a FULLWIDTH SOLIDUS in the path', 'http://127.0.0.1:50000/\uff0fevil.example'],
    ['a DIVISION SLASH after the host', 'http://127.0.0.1:50000\u2215evil.example'],
    ['an empty value', ''],
  ];

  it.each(refused)('the link with %s: 400 page, nothing stored, nothing redirected', async (_what, redirectUri) => {
    const url = new URL('/cli/login', g.url);
    url.search = new URLSearchParams(terminal(redirectUri)).toString();
    await expectBrowserRefused(g, 400, () => new TestBrowser().get(url));
  });

  it.each(refused.slice(0, 12))('the confirmation form with %s in place of the page\'s own value: 400, nothing stored', async (_what, redirectUri) => {
    const browser = new TestBrowser();
    const url = new URL('/cli/login', g.url);
    url.search = new URLSearchParams(terminal('http://127.0.0.1:50000/callback')).toString();
    const page = readTerminalConfirmation(await (await browser.get(url)).text());
    await expectBrowserRefused(g, 400, () => browser.request(`${g.url}/cli/login`, { form: { ...page.fields, redirect_uri: redirectUri, provider: 'forged' }, headers: { origin: g.url } }));
  });

  it('redirect_uri given twice: 400', async () => {
    const url = new URL('/cli/login', g.url);
    url.search = new URLSearchParams(terminal('http://127.0.0.1:50000/callback')).toString();
    url.searchParams.append('redirect_uri', 'https://evil.example/');
    await expectBrowserRefused(g, 400, () => new TestBrowser().get(url));
  });

  it('a return_to next to a terminal request: 400', async () => {
    const url = new URL('/cli/login', g.url);
    url.search = new URLSearchParams({ ...terminal('http://127.0.0.1:50000/callback'), return_to: 'https://evil.example/' }).toString();
    await expectBrowserRefused(g, 400, () => new TestBrowser().get(url));
  });

  it('/login never takes a loopback address as return_to: loopback redirects are for the confirmed terminal flow only', async () => {
    const url = new URL(`${g.url}/login/forged`);
    url.searchParams.set('return_to', 'http://127.0.0.1:50000/callback');
    await expectBrowserRefused(g, 400, () => new TestBrowser().get(url), { reason: 'return_to_refused' });
  });
});

describe('the log', () => {
  it('holds no state, code, verifier, cookie value or session token from any request above', () => {
    expect(expectNoOpaqueValuesLogged(g)).toBeGreaterThan(50);
  });
});
