/**
 * Terminal logins (`stsgate login`), attacked. The crafted link: someone on a shared machine listens on a
 * loopback port and sends the victim a `/cli/login` link naming it, with their own PKCE challenge. The
 * link alone stores nothing and redirects nowhere; the confirmation page shows a code derived from that
 * challenge (so not the one the victim's terminal printed, if it printed any), and only its own form,
 * posted same-origin with this browser's form token, starts the login. The one-time code: single use, a
 * wrong PKCE verifier burns it, it expires, and it is bound to its redirect URI. Each refused row: the
 * exact status, no cookie, no record created, no Location, nothing issued.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/browser.js';
import { confirmTerminalLogin, readTerminalConfirmation } from '../support/browser-login.js';
import { expectBrowserRefused, opaque, startBrowserSecurityEnvironment, type BrowserSecurityEnvironment, expectNoOpaqueValuesLogged } from './browser-harness.js';
import { sleep, postForm } from '../support/common.js';

let g: BrowserSecurityEnvironment;
beforeAll(async () => {
  g = await startBrowserSecurityEnvironment();
});
afterAll(async () => {
  await g?.close();
});

/** What one `stsgate login` holds: a verifier, its challenge, a state and a loopback redirect URI. */
function terminalRequest(port = 40_000 + Math.floor(Math.random() * 20_000)) {
  const verifier = opaque();
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url'), state: opaque(), redirectUri: `http://127.0.0.1:${port}/callback` };
}
type TerminalRequest = ReturnType<typeof terminalRequest>;

function linkFor(request: TerminalRequest, extra: Record<string, string> = {}): URL {
  const url = new URL('/cli/login', g.url);
  url.search = new URLSearchParams({ redirect_uri: request.redirectUri, code_challenge: request.challenge, code_challenge_method: 'S256', state: request.state, provider: 'forged', ...extra }).toString();
  return url;
}

/** A whole confirmed terminal login as mallory; returns the one-time code sent to the loopback address. */
async function codeFor(request: TerminalRequest, browser = new TestBrowser()): Promise<string> {
  const back = await g.env.forged.signIn(browser, await confirmTerminalLogin(browser, linkFor(request)), 'mallory');
  const callback = await browser.get(back);
  expect(callback.status).toBe(303);
  const location = new URL(callback.headers.get('location')!);
  expect(`${location.origin}${location.pathname}`).toBe(request.redirectUri);
  return location.searchParams.get('code')!;
}

const redeem = (request: TerminalRequest, code: string, overrides: Record<string, string> = {}) =>
  postForm(`${g.url}/cli/token`, { grant_type: 'authorization_code', code, code_verifier: request.verifier, redirect_uri: request.redirectUri, ...overrides });

describe('a crafted /cli/login link', () => {
  it("stores nothing and redirects nowhere by itself: a confirmation page showing the link's own code", async () => {
    const attacker = terminalRequest();
    const victim = new TestBrowser();
    const before = await g.keys();
    const response = await victim.get(linkFor(attacker));
    expect(response.status).toBe(200);
    expect(response.headers.get('location')).toBeNull();
    expect(await g.keys()).toEqual(before);
    const page = readTerminalConfirmation(await response.text());
    expect(page.code).toMatch(/^[A-Z2-7]{4}-[A-Z2-7]{4}$/);
    // The victim's own terminal (had they run stsgate login) would show the code of their own challenge.
    const own = readTerminalConfirmation(await (await victim.get(linkFor(terminalRequest()))).text());
    expect(own.code).not.toBe(page.code);
    expect(own.fields.form_token).toBe(page.fields.form_token);
  });

  /** The victim's browser holds a form cookie (it opened the confirmation page); the attacker submits from elsewhere. */
  async function victimWithPage(request = terminalRequest()) {
    const victim = new TestBrowser();
    const page = readTerminalConfirmation(await (await victim.get(linkFor(request))).text());
    return { victim, page, request };
  }

  it.each<[string, (fields: Record<string, string>, token: string) => { form: Record<string, string>; headers: Record<string, string> }]>([
    ["an attacker's page submitting the form (cross-site Origin, no token)", (fields) => ({ form: { ...fields, form_token: '', provider: 'forged' }, headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' } })],
    ["an attacker's page that somehow knows the token (cross-site Origin)", (fields, token) => ({ form: { ...fields, form_token: token, provider: 'forged' }, headers: { origin: 'https://evil.example' } })],
    ['a cross-site fetch with the token', (fields, token) => ({ form: { ...fields, form_token: token, provider: 'forged' }, headers: { 'sec-fetch-site': 'cross-site' } })],
    ['a same-site (sibling subdomain) fetch with the token', (fields, token) => ({ form: { ...fields, form_token: token, provider: 'forged' }, headers: { 'sec-fetch-site': 'same-site' } })],
    ['a sandboxed frame (opaque origin, cross-site) with the token', (fields, token) => ({ form: { ...fields, form_token: token, provider: 'forged' }, headers: { origin: 'null', 'sec-fetch-site': 'cross-site' } })],
    ['a same-origin POST without the token', (fields) => ({ form: { ...Object.fromEntries(Object.entries(fields).filter(([k]) => k !== 'form_token')), provider: 'forged' }, headers: { origin: g.url } })],
    ['a same-origin POST with an empty token', (fields) => ({ form: { ...fields, form_token: '', provider: 'forged' }, headers: { origin: g.url } })],
    ['a same-origin POST with a made-up token', (fields) => ({ form: { ...fields, form_token: opaque(), provider: 'forged' }, headers: { origin: g.url } })],
    ['no site headers and no token', (fields) => ({ form: { ...fields, form_token: '', provider: 'forged' }, headers: {} })],
  ])('the confirmation by %s: 403, no login started', async (_what, make) => {
    const { victim, page } = await victimWithPage();
    const { form, headers } = make(page.fields, page.fields.form_token!);
    await expectBrowserRefused(g, 403, () => victim.request(`${g.url}/cli/login`, { form, headers }));
    expect(await g.count('login')).toBe(0);
  });

  it("another browser's form token (the attacker's own page, their cookie): 403", async () => {
    const { victim, page } = await victimWithPage();
    const attacker = await victimWithPage();
    await expectBrowserRefused(g, 403, () => victim.request(`${g.url}/cli/login`, { form: { ...page.fields, form_token: attacker.page.fields.form_token!, provider: 'forged' }, headers: { origin: g.url } }));
  });

  it('the right token but no form cookie (a browser that never saw the page): 403', async () => {
    const { page } = await victimWithPage();
    await expectBrowserRefused(g, 403, () => new TestBrowser().request(`${g.url}/cli/login`, { form: { ...page.fields, provider: 'forged' }, headers: { origin: g.url } }));
  });

  it.each<[string, number, (fields: Record<string, string>) => Record<string, string>]>([
    ['plain PKCE (RFC 7636 §7.2)', 400, (f) => ({ ...f, code_challenge_method: 'plain', provider: 'forged' })],
    ['a short challenge', 400, (f) => ({ ...f, code_challenge: 'abc', provider: 'forged' })],
    ['no state', 400, (f) => ({ ...Object.fromEntries(Object.entries(f).filter(([k]) => k !== 'state')), provider: 'forged' })],
    ['no provider chosen', 400, (f) => f],
    ['an unknown provider', 404, (f) => ({ ...f, provider: 'myspace' })],
    ['an unknown field', 400, (f) => ({ ...f, provider: 'forged', return_to: 'https://evil.example/' })],
    ['a role that is not a role name', 400, (f) => ({ ...f, provider: 'forged', role: '<script>' })],
  ])('a confirmation form with %s: %i, no login started', async (_what, status, change) => {
    const { victim, page } = await victimWithPage();
    await expectBrowserRefused(g, status, () => victim.request(`${g.url}/cli/login`, { form: change(page.fields), headers: { origin: g.url } }));
    expect(await g.count('login')).toBe(0);
  });

  it('a confirmation with its parameters in the query string: 400', async () => {
    const { victim, page } = await victimWithPage();
    await expectBrowserRefused(g, 400, () => victim.request(`${g.url}/cli/login?provider=forged`, { form: page.fields, headers: { origin: g.url } }));
  });

  it('a confirmation that is not a form (text/plain, as a cross-site "simple" request can be): 415', async () => {
    const { victim, page } = await victimWithPage();
    expect(page.code).toMatch(/-/);
    await expectBrowserRefused(g, 415, () => victim.request(`${g.url}/cli/login`, { method: 'POST', headers: { 'content-type': 'text/plain', origin: g.url } }));
  });

  it('a confirmed login still sends nothing to the loopback address before the provider answered', async () => {
    const request = terminalRequest();
    const browser = new TestBrowser();
    const authorization = await confirmTerminalLogin(browser, linkFor(request));
    expect(authorization.origin).toBe(g.env.forged.url);
    expect(browser.visited.every((u) => u.port !== new URL(request.redirectUri).port)).toBe(true);
    expect(await g.count('tcode')).toBe(0);
  });
});

describe('the one-time code at /cli/token', () => {
  const refused = (error = 'invalid_grant') => ({ format: 'oauth' as const, error });

  it('works once: the second redemption is refused', async () => {
    const request = terminalRequest();
    const code = await codeFor(request);
    const first = await redeem(request, code);
    expect(first.status).toBe(200);
    await expectBrowserRefused(g, 400, () => redeem(request, code), refused());
  });

  it('a wrong PKCE verifier burns it: the right verifier afterwards is refused too', async () => {
    const request = terminalRequest();
    const code = await codeFor(request);
    await expectBrowserRefused(g, 400, () => redeem(request, code, { code_verifier: terminalRequest().verifier }), refused());
    await expectBrowserRefused(g, 400, () => redeem(request, code), refused());
  });

  it('the challenge itself as the verifier (a plain-PKCE downgrade): refused, and burnt', async () => {
    const request = terminalRequest();
    const code = await codeFor(request);
    await expectBrowserRefused(g, 400, () => redeem(request, code, { code_verifier: request.challenge }), refused());
    await expectBrowserRefused(g, 400, () => redeem(request, code), refused());
  });

  it('bound to its redirect URI: another port, path or loopback form is refused, and burns it', async () => {
    for (const other of ['http://127.0.0.1:1/callback', 'PATH', 'http://[::1]:PORT/callback']) {
      const request = terminalRequest();
      const code = await codeFor(request);
      const port = new URL(request.redirectUri).port;
      const redirectUri = other === 'PATH' ? `http://127.0.0.1:${port}/other` : other.replace('PORT', port);
      await expectBrowserRefused(g, 400, () => redeem(request, code, { redirect_uri: redirectUri }), refused());
      await expectBrowserRefused(g, 400, () => redeem(request, code), refused());
    }
  });

  it('expires: a code whose minute ran out in the store is refused', async () => {
    const request = terminalRequest();
    const code = await codeFor(request);
    const key = `${g.prefix}tcode:${createHash('sha256').update(code).digest('base64url')}`;
    expect(await g.redis.pttl(key)).toBeLessThanOrEqual(60_000);
    expect(await g.redis.pexpire(key, 1)).toBe(1);
    await sleep(5);
    await expectBrowserRefused(g, 400, () => redeem(request, code), refused());
  });

  it.each<[string, (code: string) => Promise<Response>, string, number]>([
    ['an unknown code', () => redeem(terminalRequest(), opaque()), 'invalid_grant', 200],
    ['a malformed code', () => redeem(terminalRequest(), '../../x'), 'invalid_grant', 200],
    ['a code of another terminal request (its own verifier)', (code) => redeem(terminalRequest(), code), 'invalid_grant', 400],
    ['a verifier that is too short', (code) => redeem(terminalRequest(), code, { code_verifier: 'short' }), 'invalid_request', 200],
    ['no verifier', (code) => postForm(`${g.url}/cli/token`, { grant_type: 'authorization_code', code, redirect_uri: 'http://127.0.0.1:1/callback' }), 'invalid_request', 200],
    ['another grant type', (code) => postForm(`${g.url}/cli/token`, { grant_type: 'password', code }), 'unsupported_grant_type', 200],
    ['the code in the query string', (code) => fetch(`${g.url}/cli/token?code=${code}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code' }), 'invalid_request', 200],
    ['the code given twice', (code) => fetch(`${g.url}/cli/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=authorization_code&code=${code}&code=${code}` }), 'invalid_request', 200],
  ])('%s: refused, no session', async (_what, send, error, owner) => {
    const victim = terminalRequest();
    const code = await codeFor(victim);
    await expectBrowserRefused(g, 400, () => send(code), refused(error));
    // Only a redemption attempt of this very code takes it; a request refused before that leaves it to its owner.
    expect((await redeem(victim, code)).status).toBe(owner);
  });

  it('a terminal session token works only as a bearer token, and ends at /cli/logout', async () => {
    const request = terminalRequest();
    const token = ((await (await redeem(request, await codeFor(request))).json()) as { session_token: string }).session_token;
    expect((await fetch(`${g.url}/v1/credentials?role=reader`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    await expectBrowserRefused(g, 401, () => fetch(`${g.url}/v1/credentials?role=reader`, { headers: { cookie: `stsgate_session=${token}` } }), { format: 'json', error: 'MissingAuthenticationToken' });
    expect((await fetch(`${g.url}/cli/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(204);
    await expectBrowserRefused(g, 401, () => fetch(`${g.url}/v1/credentials?role=reader`, { headers: { authorization: `Bearer ${token}` } }), { format: 'json', error: 'MissingAuthenticationToken' });
  });
});

describe('the log', () => {
  it('holds no state, code, verifier, cookie value or session token from any request above', () => {
    expect(expectNoOpaqueValuesLogged(g)).toBeGreaterThan(50);
  });
});
