/**
 * The gateway's side of terminal logins (`stsgate login`), against the real Redis: `/cli/login` accepts only
 * loopback redirect URIs (RFC 8252 §7.3) with a PKCE S256 challenge and asks the person to confirm the
 * code the command printed (its form starts the login), the normal browser login ends in a 303
 * to the loopback address with a one-time code and the command's state (no cookie), `/cli/token` redeems
 * the code once, only with the right verifier and redirect URI, for a bearer token that `/v1/credentials`
 * accepts and `/cli/logout` ends. A denied account's failure goes back to the command too.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import { checkLoopbackRedirect } from '../../src/idp/index.js';
import { TestBrowser } from '../support/browser.js';
import { confirmTerminalLogin, readTerminalConfirmation } from '../support/browser-login.js';
import { useLoginEnvironment } from '../support/login-environment.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';

const setup = useLoginEnvironment();

/** Every code, token and verifier the tests saw: none may appear in any log line. */
const seen = new Set<string>();

/** What the `stsgate` command would hold: a verifier, its challenge, a state and a loopback redirect URI (nobody listens there; the test reads the Location). */
function terminalRequest(port = 49_152 + Math.floor(Math.random() * 10_000)) {
  const verifier = randomBytes(32).toString('base64url');
  const request = {
    verifier,
    challenge: createHash('sha256').update(verifier).digest('base64url'),
    state: randomBytes(24).toString('base64url'),
    redirectUri: `http://127.0.0.1:${port}/callback`,
  };
  seen.add(verifier);
  return request;
}

type TerminalRequest = ReturnType<typeof terminalRequest>;

function cliLoginUrl(request: TerminalRequest, extra: Record<string, string> = {}): URL {
  const url = new URL('/cli/login', setup.env.gateway.url);
  url.search = new URLSearchParams({ redirect_uri: request.redirectUri, code_challenge: request.challenge, code_challenge_method: 'S256', state: request.state, ...extra }).toString();
  return url;
}

/** A whole terminal login in the browser: returns the gateway's answer to the callback (303 to the loopback address). */
async function terminalLogin(browser: TestBrowser, request: TerminalRequest, provider: 'google' | 'okta', user: string): Promise<Response> {
  const authorization = await confirmTerminalLogin(browser, cliLoginUrl(request, { provider }));
  const back = await setup.env[provider].signIn(browser, authorization, user);
  return browser.get(back);
}

/** The confirmation code, computed here from the RFC 4648 base32 of SHA-256 of the challenge (not by the gateway's function). */
function expectedCode(challenge: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bits = [...createHash('sha256').update(challenge).digest()].map((b) => b.toString(2).padStart(8, '0')).join('');
  const chars = Array.from({ length: 8 }, (_, i) => alphabet[parseInt(bits.slice(i * 5, i * 5 + 5), 2)]).join('');
  return `${chars.slice(0, 4)}-${chars.slice(4)}`;
}

function redeem(request: TerminalRequest, code: string, overrides: Record<string, string> = {}): Promise<Response> {
  return postForm(`${setup.env.gateway.url}/cli/token`, { grant_type: 'authorization_code', code, code_verifier: request.verifier, redirect_uri: request.redirectUri, ...overrides });
}

describe('loopback redirect URIs (RFC 8252 §7.3)', () => {
  it.each([
    'http://127.0.0.1:1/callback',
    'http://127.0.0.1:65535/callback',
    'http://127.0.0.1:53124/',
    'http://127.0.0.1:53124',
    'http://[::1]:53124/callback',
    'http://127.0.0.1:53124/a/b_c/d-e.f~g',
  ])('accepts %s', (uri) => {
    expect(checkLoopbackRedirect(uri)).toBe(uri);
  });

  it.each([
    ['localhost (RFC 8252 §8.3)', 'http://localhost:53124/callback'],
    ['https to loopback', 'https://127.0.0.1:53124/callback'],
    ['another loopback address', 'http://127.0.0.2:53124/callback'],
    ['a short form parsers widen to 127.0.0.1', 'http://127.1:53124/callback'],
    ['a hexadecimal form', 'http://0x7f.0.0.1:53124/callback'],
    ['a decimal form', 'http://2130706433:53124/callback'],
    ['no port', 'http://127.0.0.1/callback'],
    ['port 0', 'http://127.0.0.1:0/callback'],
    ['a port above 65535', 'http://127.0.0.1:65536/callback'],
    ['a leading zero in the port', 'http://127.0.0.1:08080/callback'],
    ['a host after user info', 'http://127.0.0.1:1@evil.example/callback'],
    ['a look-alike host', 'http://127.0.0.1.evil.example:53124/callback'],
    ['another host', 'http://evil.example:53124/callback'],
    ['a query', 'http://127.0.0.1:53124/callback?next=https://evil.example'],
    ['a fragment', 'http://127.0.0.1:53124/callback#x'],
    ['a dot segment', 'http://127.0.0.1:53124/../callback'],
    ['an encoded slash', 'http://127.0.0.1:53124/%2F%2Fevil.example'],
    ['a backslash', 'http://127.0.0.1:53124\\@evil.example/'],
    ['an IPv4-mapped IPv6 address', 'http://[::ffff:127.0.0.1]:53124/callback'],
    ['upper-case scheme', 'HTTP://127.0.0.1:53124/callback'],
    ['trailing whitespace', 'http://127.0.0.1:53124/callback '],
    ['a custom scheme', 'com.example.app:/callback'],
  ])('refuses %s', (_what, uri) => {
    expect(checkLoopbackRedirect(uri)).toBeUndefined();
  });
});

describe('GET /cli/login', () => {
  it.each<[string, (r: TerminalRequest) => Record<string, string>]>([
    ['a non-loopback redirect_uri', (r) => ({ redirect_uri: 'https://evil.example/callback', code_challenge: r.challenge, code_challenge_method: 'S256', state: r.state })],
    ['no redirect_uri', (r) => ({ code_challenge: r.challenge, code_challenge_method: 'S256', state: r.state })],
    ['no code_challenge', (r) => ({ redirect_uri: r.redirectUri, code_challenge_method: 'S256', state: r.state })],
    ['plain PKCE (RFC 7636 §7.2)', (r) => ({ redirect_uri: r.redirectUri, code_challenge: r.verifier, code_challenge_method: 'plain', state: r.state })],
    ['a short challenge', (r) => ({ redirect_uri: r.redirectUri, code_challenge: 'abc', code_challenge_method: 'S256', state: r.state })],
    ['no state', (r) => ({ redirect_uri: r.redirectUri, code_challenge: r.challenge, code_challenge_method: 'S256' })],
    ['a short state', (r) => ({ redirect_uri: r.redirectUri, code_challenge: r.challenge, code_challenge_method: 'S256', state: 'abc' })],
    ['a return_to', (r) => ({ redirect_uri: r.redirectUri, code_challenge: r.challenge, code_challenge_method: 'S256', state: r.state, provider: 'google', return_to: '/' })],
    ['an unknown provider', (r) => ({ redirect_uri: r.redirectUri, code_challenge: r.challenge, code_challenge_method: 'S256', state: r.state, provider: 'nope' })],
  ])('refuses %s: an error page, no redirect, nothing stored', async (_what, query) => {
    const before = (await setup.redis.keys(`${setup.prefix}login:*`)).length;
    const url = new URL('/cli/login', setup.env.gateway.url);
    url.search = new URLSearchParams(query(terminalRequest())).toString();
    const response = await fetch(url, { redirect: 'manual' });
    expect([400, 404]).toContain(response.status);
    expect(response.headers.get('location')).toBeNull();
    expect(response.headers.get('content-type')).toContain('text/html');
    expect((await setup.redis.keys(`${setup.prefix}login:*`)).length).toBe(before);
  });

  it('refuses a parameter given twice', async () => {
    const request = terminalRequest();
    const url = cliLoginUrl(request, { provider: 'google' });
    url.searchParams.append('redirect_uri', 'http://127.0.0.1:1/other');
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
  });

  it('asks to confirm the code derived from the challenge, with a button per provider and the terminal request in the form; nothing stored', async () => {
    const request = terminalRequest();
    const before = (await setup.redis.keys(`${setup.prefix}*`)).length;
    const response = await fetch(cliLoginUrl(request, { role: 'deployer' }), { redirect: 'manual' });
    expect(response.status).toBe(200);
    expect(response.headers.get('location')).toBeNull();
    const text = await response.text();
    expect(text).toContain('Sign in to the stsgate command on this computer?');
    const page = readTerminalConfirmation(text);
    expect(page.code).toBe(expectedCode(request.challenge));
    expect(page.providers).toEqual(['google', 'okta', 'github', 'facebook', 'forged', 'down']);
    expect(page.fields).toMatchObject({ redirect_uri: request.redirectUri, code_challenge: request.challenge, code_challenge_method: 'S256', state: request.state, role: 'deployer' });
    expect(page.fields.form_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The form token is also this browser's form cookie (double submit): HttpOnly, SameSite=Lax.
    const cookie = response.headers.getSetCookie().find((c) => c.startsWith('stsgate_session_form='));
    expect(cookie).toBe(`stsgate_session_form=${page.fields.form_token}; Path=/; Max-Age=600; HttpOnly; SameSite=Lax`);
    expect((await setup.redis.keys(`${setup.prefix}*`)).length).toBe(before);
  });

  it('offers only the named provider', async () => {
    const response = await fetch(cliLoginUrl(terminalRequest(), { provider: 'okta' }), { redirect: 'manual' });
    expect(readTerminalConfirmation(await response.text()).providers).toEqual(['okta']);
  });

  it('keeps one form token per browser, so confirmation pages in two tabs both work', async () => {
    const browser = new TestBrowser();
    const first = readTerminalConfirmation(await (await browser.get(cliLoginUrl(terminalRequest()))).text());
    const second = readTerminalConfirmation(await (await browser.get(cliLoginUrl(terminalRequest()))).text());
    expect(second.fields.form_token).toBe(first.fields.form_token);
  });

  it('keeps /login refusing a loopback return_to: loopback redirects are for the terminal flow only', async () => {
    const response = await fetch(`${setup.env.gateway.url}/login/google?return_to=${encodeURIComponent('http://127.0.0.1:53124/callback')}`, { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
  });
});

describe('a terminal login, end to end', () => {
  const browser = new TestBrowser();
  const request = terminalRequest();
  let code: string;
  let token: string;

  it('sends the person to the provider with the gateway\'s own state, PKCE and redirect URI once confirmed', async () => {
    const url = await confirmTerminalLogin(browser, cliLoginUrl(request, { provider: 'google' }));
    expect(url.origin).toBe(setup.env.google.issuer);
    expect(url.searchParams.get('redirect_uri')).toBe(`${setup.env.publicUrl}/callback/google`);
    // The gateway's own state towards the provider, never the command's.
    expect(url.searchParams.get('state')).not.toBe(request.state);
    expect(url.searchParams.get('code_challenge')).not.toBe(request.challenge);
  });

  it('ends the browser login with a 303 to the loopback address: a code and the command\'s state, no cookie', async () => {
    const callback = await terminalLogin(browser, request, 'google', 'alice');
    expect(callback.status).toBe(303);
    const location = new URL(callback.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(request.redirectUri);
    expect(location.searchParams.get('state')).toBe(request.state);
    code = location.searchParams.get('code')!;
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    seen.add(code);
    expect(callback.headers.getSetCookie().filter((c) => c.startsWith('stsgate_session='))).toEqual([]);
    // Stored under its hash, for one minute.
    const keys = await setup.redis.keys(`${setup.prefix}tcode:*`);
    expect(keys.length).toBe(1);
    expect(keys[0]).not.toContain(code);
    const ttl = await setup.redis.pttl(keys[0]!);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('refuses the code with another redirect URI, and the code is then spent', async () => {
    const wrong = await redeem(request, code, { redirect_uri: 'http://127.0.0.1:1/callback' });
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_grant' });
    const right = await redeem(request, code);
    expect(await right.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses a stolen code without the verifier, and the code is then spent', async () => {
    const again = terminalRequest();
    const response = await terminalLogin(browser, again, 'google', 'alice');
    const stolen = new URL(response.headers.get('location')!).searchParams.get('code')!;
    seen.add(stolen);
    const thief = terminalRequest();
    const attempt = await redeem(again, stolen, { code_verifier: thief.verifier });
    expect(attempt.status).toBe(400);
    expect(await attempt.json()).toMatchObject({ error: 'invalid_grant' });
    expect(await (await redeem(again, stolen)).json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('redeems a code once, with the verifier, for a bearer session token', async () => {
    const response = await terminalLogin(browser, request, 'google', 'alice');
    code = new URL(response.headers.get('location')!).searchParams.get('code')!;
    seen.add(code);
    const redeemed = await redeem(request, code);
    expect(redeemed.status).toBe(200);
    expect(redeemed.headers.get('cache-control')).toBe('no-store');
    const body = (await redeemed.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, provider: 'google', account: 'alice@acme.com (google:1001)', roles: ['deployer', 'reader'] });
    token = body.session_token as string;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    seen.add(token);
    const keys = await setup.redis.keys(`${setup.prefix}tsess:*`);
    expect(keys.length).toBeGreaterThan(0);
    expect((await setup.redis.keys(`${setup.prefix}*`)).join()).not.toContain(token);
    expect(await (await redeem(request, code)).json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('gives credentials for the bearer token that the AWS SDK can use', async () => {
    const response = await fetch(`${setup.env.gateway.url}/v1/credentials?role=deployer`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, string>;
    expect(body).toMatchObject({ Version: 1, role: 'deployer' });
    const sts = new STSClient({ endpoint: setup.env.gateway.url, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: body.AccessKeyId!, secretAccessKey: body.SecretAccessKey!, sessionToken: body.SessionToken! } });
    const who = await sts.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/alice@acme.com`);
  });

  it('never takes the bearer token as a cookie, nor a cookie when a bearer token is given', async () => {
    const asCookie = await fetch(`${setup.env.gateway.url}/v1/credentials?role=deployer`, { headers: { cookie: `stsgate_session=${token}` } });
    expect(asCookie.status).toBe(401);
    const wrongBearer = await fetch(`${setup.env.gateway.url}/v1/credentials?role=deployer`, { headers: { authorization: `Bearer ${randomBytes(32).toString('base64url')}` } });
    expect(wrongBearer.status).toBe(401);
    expect(wrongBearer.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
  });

  it.each([
    ['another scheme', () => `Basic ${token}`],
    ['a malformed token', () => `Bearer ${token}x`],
    ['two tokens', () => `Bearer ${token}, Bearer ${token}`],
  ])('answers 401 for %s', async (_what, header) => {
    const response = await fetch(`${setup.env.gateway.url}/v1/credentials?role=deployer`, { headers: { authorization: header() } });
    expect(response.status).toBe(401);
  });

  it('refuses a role the rules do not grant, with the rules\' answer', async () => {
    const response = await fetch(`${setup.env.gateway.url}/v1/credentials?role=admin`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(403);
  });

  it('ends the session at /cli/logout', async () => {
    const logout = await fetch(`${setup.env.gateway.url}/cli/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(logout.status).toBe(204);
    const after = await fetch(`${setup.env.gateway.url}/v1/credentials?role=deployer`, { headers: { authorization: `Bearer ${token}` } });
    expect(after.status).toBe(401);
  });
});

describe('terminal logins that fail', () => {
  it('sends a denied account\'s failure to the command: error=access_denied and its state, no code', async () => {
    const browser = new TestBrowser();
    const request = terminalRequest();
    const before = (await setup.redis.keys(`${setup.prefix}tcode:*`)).length;
    const callback = await terminalLogin(browser, request, 'google', 'bob');
    expect(callback.status).toBe(303);
    const location = new URL(callback.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(request.redirectUri);
    expect(location.searchParams.get('state')).toBe(request.state);
    expect(location.searchParams.get('code')).toBeNull();
    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('error_description')).toMatch(/^You signed in with Google as bob@other\.com \(google:1002\), but this account is not allowed any role here\..*\(request id [0-9a-f-]{36}\)$/);
    // RFC 6749 §4.1.2.1: printable ASCII only.
    expect(location.searchParams.get('error_description')).toMatch(/^[\x20\x21\x23-\x5b\x5d-\x7e]+$/);
    expect((await setup.redis.keys(`${setup.prefix}tcode:*`)).length).toBe(before);
  });

  it('sends the provider\'s refusal to the command', async () => {
    const browser = new TestBrowser();
    const request = terminalRequest();
    const authorization = await confirmTerminalLogin(browser, cliLoginUrl(request, { provider: 'google' }));
    const back = await setup.env.google.deny(browser, authorization, 'not today');
    const callback = await browser.get(back);
    expect(callback.status).toBe(303);
    const location = new URL(callback.headers.get('location')!);
    expect(location.searchParams.get('state')).toBe(request.state);
    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('error_description')).toContain('not today');
  });

  it.each([
    ['no grant_type', { code: 'x' }, 400, 'invalid_request'],
    ['another grant_type', { grant_type: 'client_credentials' }, 400, 'unsupported_grant_type'],
    ['no code_verifier', { grant_type: 'authorization_code', code: randomBytes(32).toString('base64url'), redirect_uri: 'http://127.0.0.1:1/callback' }, 400, 'invalid_request'],
    ['an unknown code', { grant_type: 'authorization_code', code: randomBytes(32).toString('base64url'), code_verifier: randomBytes(32).toString('base64url'), redirect_uri: 'http://127.0.0.1:1/callback' }, 400, 'invalid_grant'],
    ['a short verifier', { grant_type: 'authorization_code', code: randomBytes(32).toString('base64url'), code_verifier: 'short', redirect_uri: 'http://127.0.0.1:1/callback' }, 400, 'invalid_request'],
  ])('/cli/token refuses %s', async (_what, form, status, error) => {
    const response = await postForm(`${setup.env.gateway.url}/cli/token`, form as Record<string, string>);
    expect(response.status).toBe(status);
    expect(await response.json()).toMatchObject({ error });
  });
});

describe('logs', () => {
  it('hold no code, token or verifier from any of the requests above', () => {
    expect(seen.size).toBeGreaterThan(8);
    const logs = JSON.stringify(setup.env.gateway.logs());
    for (const value of seen) expect(logs).not.toContain(value);
    expect(setup.env.gateway.logs().some((l) => l.event === 'terminal_login')).toBe(true);
    expect(setup.env.gateway.logs().some((l) => l.event === 'terminal_session')).toBe(true);
  });
});
