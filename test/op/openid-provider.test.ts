/**
 * stsgate as an OpenID Provider, end to end on loopback: openid-client as the relying party, a TestBrowser
 * as the person, the login environment's upstream stand-ins (oidc-provider as Google and Okta, the GitHub
 * double), the real Redis. Bad input is refused the way RFC 6749, RFC 7636, RFC 9700 and OIDC Core say.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/browser.js';
import { runCli, runCliToEnd } from '../support/cli-process.js';
import { redisStoreConfig } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { authorizationRequest, authorizeInBrowser, codeFlow, OTHER_SECRET, REDIRECT_URI, relyingParty, testClients, WEBAPP_SECRET } from '../support/op.js';

let env: LoginEnvironment;
let webapp: client.Configuration;
beforeAll(async () => {
  env = await startLoginEnvironment({ store: redisStoreConfig(), gateway: { clients: testClients() } });
  webapp = await relyingParty(env.publicUrl, 'webapp', WEBAPP_SECRET);
}, 30_000);
afterAll(async () => {
  await env?.close();
});

/** The OAuth error a refused request of openid-client carries (its `error` member), or the message. */
async function oauthError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    // A 401 with WWW-Authenticate (RFC 6750 §3) arrives as openid-client's challenge error.
    const challenge = (err as { cause?: { parameters?: { error?: string } }[] }).cause;
    if (Array.isArray(challenge) && challenge[0]?.parameters?.error) return challenge[0].parameters.error;
    return (err as { error?: string }).error ?? (err as Error).message;
  }
  throw new Error('expected the request to be refused');
}

/** The hidden fields of the form oidc-provider handed over on a page. */
function hiddenFields(page: string): Record<string, string> {
  return Object.fromEntries([...page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\s*\/?>/g)].map((m) => [m[1]!, m[2]!]));
}

describe('authorization code with PKCE', () => {
  it('signs alice in through google: ID token, access token, refresh token, userinfo', async () => {
    const browser = new TestBrowser();
    let signInPage = '';
    const request = await authorizationRequest(webapp);
    const callback = await authorizeInBrowser(browser, env, request.url, { onSignInPage: (page) => (signInPage = page) });
    expect(signInPage).toContain('to continue to <strong>Web App</strong>');
    expect(callback.searchParams.get('iss')).toBe(env.publicUrl);
    const tokens = await client.authorizationCodeGrant(webapp, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
    expect(tokens.claims()).toMatchObject({ iss: env.publicUrl, aud: 'webapp', sub: 'google:1001', email: 'alice@acme.com', email_verified: true, name: 'Alice Liddell', roles: ['deployer', 'reader'], groups: [] });
    expect(tokens.refresh_token).toBeTypeOf('string');
    expect(await client.fetchUserInfo(webapp, tokens.access_token, 'google:1001')).toMatchObject({ sub: 'google:1001', email: 'alice@acme.com', roles: ['deployer', 'reader'] });
  });

  it('an ID token verifies with the gateway JWKS and its signing algorithm; its kid is the current key', async () => {
    const { tokens } = await codeFlow(webapp, new TestBrowser(), env);
    const [header] = tokens.id_token!.split('.');
    const { alg, kid } = JSON.parse(Buffer.from(header!, 'base64url').toString()) as { alg: string; kid: string };
    expect(alg).toBe('ES256');
    expect(kid).toBe(env.gateway.keys.set.current(Date.now(), 'ES256').kid);
  });

  it('groups are the upstream groups: GitHub orgs and teams, an OIDC provider\'s groups', async () => {
    const github = await codeFlow(webapp, new TestBrowser(), env, { provider: 'github', user: 'octocat' });
    expect(github.tokens.claims()).toMatchObject({ sub: 'github:583231', preferred_username: 'octocat', email: 'octo@acme.com', roles: ['deployer', 'reader'] });
    expect(github.tokens.claims()!.groups).toEqual(expect.arrayContaining(['acme', 'z-org', 'acme/deployers', 'a-org/x']));
    const okta = await codeFlow(webapp, new TestBrowser(), env, { provider: 'okta', user: 'carol' });
    expect(okta.tokens.claims()).toMatchObject({ sub: 'okta:c-1', groups: ['sts-admins', 'staff'], roles: ['admin'] });
  });

  it('a public client with PKCE; it sees only the roles and claims it may (reader, no groups)', async () => {
    const spa = await relyingParty(env.publicUrl, 'spa');
    const { tokens } = await codeFlow(spa, new TestBrowser(), env);
    expect(tokens.claims()).toMatchObject({ sub: 'google:1001', aud: 'spa', roles: ['reader'] });
    expect(tokens.claims()).not.toHaveProperty('groups');
  });

  it('a signed-in browser is not asked again, for the same client or another', async () => {
    const browser = new TestBrowser();
    await codeFlow(webapp, browser, env);
    const spa = await relyingParty(env.publicUrl, 'spa');
    for (const rp of [webapp, spa]) {
      const request = await authorizationRequest(rp);
      const { response, url } = await browser.follow(request.url, { until: (next) => next.href.startsWith(REDIRECT_URI) });
      expect(response, 'no page on the way').toBeUndefined();
      expect(url.searchParams.get('code')).toBeTruthy();
      expect(browser.visited.some((visited) => visited.pathname.startsWith('/login/'))).toBe(true); // only the first flow's
    }
  });
});

describe('a fresh sign-in when the client asks for one', () => {
  it('prompt=login shows the sign-in page despite the session; the new sign-in answers it', async () => {
    const browser = new TestBrowser();
    await codeFlow(webapp, browser, env);
    let shown = false;
    const { tokens } = await codeFlow(webapp, browser, env, { parameters: { prompt: 'login' }, onSignInPage: () => (shown = true) });
    expect(shown).toBe(true);
    expect(tokens.claims()).toMatchObject({ sub: 'google:1001' });
    expect(tokens.claims()!.auth_time).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) - 5);
  });

  it('every sign-in of a client is an audit line naming the client', () => {
    const lines = env.gateway.logs().filter((line) => line.event === 'client_sign_in');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines[0]).toMatchObject({ event: 'client_sign_in', clientId: 'webapp', provider: 'google', subject: '1001' });
  });
});

describe('refresh tokens', () => {
  it('rotate at every use; a used one is refused and ends the grant (RFC 9700 §4.14.2)', async () => {
    const { tokens } = await codeFlow(webapp, new TestBrowser(), env);
    const first = tokens.refresh_token!;
    const refreshed = await client.refreshTokenGrant(webapp, first);
    expect(refreshed.refresh_token).toBeTypeOf('string');
    expect(refreshed.refresh_token).not.toBe(first);
    expect(refreshed.claims()).toMatchObject({ sub: 'google:1001' });
    expect(await oauthError(client.refreshTokenGrant(webapp, first))).toBe('invalid_grant');
    expect(await oauthError(client.refreshTokenGrant(webapp, refreshed.refresh_token!))).toBe('invalid_grant');
  });

  it('end when the person signs out of stsgate (POST /logout): refresh and userinfo refused', async () => {
    const browser = new TestBrowser();
    const { tokens } = await codeFlow(webapp, browser, env);
    const out = await browser.request(`${env.gateway.url}/logout`, { form: {}, headers: { origin: env.publicUrl, 'sec-fetch-site': 'same-origin' } });
    expect(out.status).toBe(303);
    expect(await oauthError(client.refreshTokenGrant(webapp, tokens.refresh_token!))).toBe('invalid_grant');
    expect(await oauthError(client.fetchUserInfo(webapp, tokens.access_token, 'google:1001'))).toBe('invalid_token');
  });

  it('end when `stsgate revoke` covers the subject (a revocation watermark)', async () => {
    const { tokens } = await codeFlow(webapp, new TestBrowser(), env, { provider: 'okta', user: 'carol' });
    const refreshed = await client.refreshTokenGrant(webapp, tokens.refresh_token!);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await env.gateway.revocations.revoke({ kind: 'subject', source: 'okta', subject: 'c-1' }, { by: 'cli:test' });
    expect(await oauthError(client.refreshTokenGrant(webapp, refreshed.refresh_token!))).toBe('invalid_grant');
    expect(await oauthError(client.fetchUserInfo(webapp, refreshed.access_token, 'okta:c-1'))).toBe('invalid_token');
  });
});

describe('RP-initiated logout', () => {
  it('signs out of the client and of stsgate: back to the registered URI, the refresh token and the session ended', async () => {
    const browser = new TestBrowser();
    const { tokens } = await codeFlow(webapp, browser, env);
    const logout = client.buildEndSessionUrl(webapp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:9/signed-out', state: 'bye' });
    const page = await browser.get(logout);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain('<strong>Web App</strong> asks to sign you out.');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const confirm = await browser.request(new URL('/oauth2/logout/confirm', env.gateway.url), { form: { ...hiddenFields(html), logout: 'yes' }, headers: { origin: env.publicUrl } });
    expect(confirm.status).toBe(303);
    expect(confirm.headers.get('location')).toBe('http://127.0.0.1:9/signed-out?state=bye');
    expect(await oauthError(client.refreshTokenGrant(webapp, tokens.refresh_token!))).toBe('invalid_grant');
    // Signed out of stsgate too: the next authorization request shows the sign-in page again.
    const again = await authorizationRequest(webapp);
    const { response, url } = await browser.follow(again.url, { until: (next) => next.href.startsWith(REDIRECT_URI) });
    expect(response?.status).toBe(200);
    expect(url.pathname).toMatch(/^\/oauth2\/interaction\//);
  });
});

describe('prompt=none', () => {
  it('without a session: login_required back at the client', async () => {
    const request = await authorizationRequest(webapp, { prompt: 'none' });
    const { url } = await new TestBrowser().follow(request.url, { until: (next) => next.href.startsWith(REDIRECT_URI) });
    expect(url.searchParams.get('error')).toBe('login_required');
    expect(url.searchParams.get('state')).toBe(request.state);
  });

  it('with a session: a code, no page; after signing out of stsgate: login_required', async () => {
    const browser = new TestBrowser();
    await codeFlow(webapp, browser, env);
    const silent = await authorizationRequest(webapp, { prompt: 'none' });
    const { url } = await browser.follow(silent.url, { until: (next) => next.href.startsWith(REDIRECT_URI) });
    expect(url.searchParams.get('code')).toBeTruthy();
    await browser.request(`${env.gateway.url}/logout`, { form: {}, headers: { origin: env.publicUrl, 'sec-fetch-site': 'same-origin' } });
    const after = await authorizationRequest(webapp, { prompt: 'none' });
    const refused = await browser.follow(after.url, { until: (next) => next.href.startsWith(REDIRECT_URI) });
    expect(refused.url.searchParams.get('error')).toBe('login_required');
  });
});

describe('prompt=none for a browser signed in on stsgate\'s own page (no provider session yet)', () => {
  it('gets a code silently', async () => {
    const browser = new TestBrowser();
    const { loginAs } = await import('../support/browser-login.js');
    expect((await loginAs(browser, env.gateway.url, 'google', env.google, 'alice')).status).toBe(303);
    const silent = await authorizationRequest(webapp, { prompt: 'none' });
    const { response, url } = await browser.follow(silent.url, { until: (next) => next.href.startsWith(REDIRECT_URI) });
    expect(response).toBeUndefined();
    expect(url.searchParams.get('error')).toBeNull();
    const tokens = await client.authorizationCodeGrant(webapp, url, { pkceCodeVerifier: silent.verifier, expectedState: silent.state, expectedNonce: silent.nonce });
    expect(tokens.claims()).toMatchObject({ sub: 'google:1001' });
  });

  it('with max_age shorter than the session: login_required, nothing shown', async () => {
    const browser = new TestBrowser();
    const { loginAs } = await import('../support/browser-login.js');
    await loginAs(browser, env.gateway.url, 'google', env.google, 'alice');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const silent = await authorizationRequest(webapp, { prompt: 'none', max_age: '0' });
    const { response, url } = await browser.follow(silent.url, { until: (next) => next.href.startsWith(REDIRECT_URI) });
    expect(response).toBeUndefined();
    expect(url.searchParams.get('error')).toBe('login_required');
  });
});

describe('bad requests are refused', () => {
  it.each([
    ['a prefix of the registered URI', 'http://127.0.0.1:9/call'],
    ['an extension of the registered URI', 'http://127.0.0.1:9/callback/more'],
    ['another query', 'http://127.0.0.1:9/callback?x=1'],
    ['another host', 'http://evil.example/callback'],
  ])('a redirect_uri not registered (%s): an error page, no redirect', async (_name, redirectUri) => {
    const request = await authorizationRequest(webapp, { redirect_uri: redirectUri });
    const response = await new TestBrowser().get(request.url);
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(await response.text()).toContain('redirect_uri did not match any of the client');
  });

  it('PKCE downgrade: a public client without code_challenge is refused', async () => {
    const spa = await relyingParty(env.publicUrl, 'spa');
    const url = client.buildAuthorizationUrl(spa, { redirect_uri: REDIRECT_URI, scope: 'openid', state: 's' });
    const { url: back } = await new TestBrowser().follow(url, { until: (next) => next.href.startsWith(REDIRECT_URI) });
    expect(back.searchParams.get('error')).toBe('invalid_request');
    expect(back.searchParams.get('error_description')).toContain('PKCE');
  });

  it('a wrong code_verifier is refused (RFC 7636 §4.6)', async () => {
    const request = await authorizationRequest(webapp);
    const callback = await authorizeInBrowser(new TestBrowser(), env, request.url);
    expect(await oauthError(client.authorizationCodeGrant(webapp, callback, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: request.state, expectedNonce: request.nonce }))).toBe('invalid_grant');
  });

  it('a scope the client is not allowed: invalid_scope', async () => {
    const other = await relyingParty(env.publicUrl, 'other', OTHER_SECRET);
    const request = await authorizationRequest(other, { scope: 'openid email groups' });
    const { url } = await new TestBrowser().follow(request.url, { until: (next) => next.href.startsWith(REDIRECT_URI) });
    expect(url.searchParams.get('error')).toBe('invalid_scope');
  });

  it('code replay: the second redemption is refused and revokes what the first one issued', async () => {
    const request = await authorizationRequest(webapp);
    const callback = await authorizeInBrowser(new TestBrowser(), env, request.url);
    const checks = { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce };
    const tokens = await client.authorizationCodeGrant(webapp, callback, checks);
    expect(await client.fetchUserInfo(webapp, tokens.access_token, 'google:1001')).toMatchObject({ sub: 'google:1001' });
    expect(await oauthError(client.authorizationCodeGrant(webapp, callback, checks))).toBe('invalid_grant');
    expect(await oauthError(client.fetchUserInfo(webapp, tokens.access_token, 'google:1001'))).toBe('invalid_token');
    expect(await oauthError(client.refreshTokenGrant(webapp, tokens.refresh_token!))).toBe('invalid_grant');
  });

  it('refusals are in the gateway log with their OAuth error, never the code', async () => {
    const lines = env.gateway.logs().filter((line) => line.op === 'grant.error');
    expect(lines.some((line) => line.error === 'invalid_grant')).toBe(true);
    expect(env.gateway.logs().filter((line) => line.op === 'server_error')).toEqual([]);
  });

  it("mix-up: client other cannot redeem webapp's code", async () => {
    const request = await authorizationRequest(webapp, { scope: 'openid email' });
    const callback = await authorizeInBrowser(new TestBrowser(), env, request.url);
    const response = await fetch(`${env.gateway.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`other:${OTHER_SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT_URI, code_verifier: request.verifier }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('a wrong client secret: invalid_client', async () => {
    const wrong = await relyingParty(env.publicUrl, 'webapp', 'not-the-secret-at-all');
    const request = await authorizationRequest(wrong);
    const callback = await authorizeInBrowser(new TestBrowser(), env, request.url);
    expect(await oauthError(client.authorizationCodeGrant(wrong, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce }))).toBe('invalid_client');
  });

  it('the RFC 8693 exchange still answers its own grant type at the shared token endpoint', async () => {
    const response = await fetch(`${env.gateway.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'x', subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(/^invalid_/);
  });
});

describe('stsgate login --device (RFC 8628 at the OpenID Provider, for a terminal_login client)', () => {
  const home = mkdtempSync(join(tmpdir(), 'stsgate-device-login-'));
  const person = { HOME: home, XDG_CONFIG_HOME: join(home, 'config'), NODE_ENV: undefined };
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('the person confirms the code in a signed-in browser; the terminal gets a session and credentials', async () => {
    const cli = runCli(['login', '--gateway', env.publicUrl, '--device', '--role', 'admin'], person);
    try {
      const [address] = await cli.waitFor(/http:\/\/127\.0\.0\.1:\d+\/oauth2\/device\S*/, 'stderr', 30_000);
      const [, userCode] = await cli.waitFor(/only if it shows the code (\S+)\./, 'stderr');
      const browser = new TestBrowser();
      await codeFlow(webapp, browser, env, { provider: 'okta', user: 'carol' });
      const inputPage = await (await browser.get(address!)).text();
      expect(inputPage).toContain(`value="${userCode}"`);
      const confirmHtml = await (await browser.request(new URL('/oauth2/device', env.gateway.url), { form: { ...hiddenFields(inputPage), user_code: userCode! } })).text();
      const confirmText = confirmHtml.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
      expect(confirmText).toContain('Connect stsgate-cli?');
      expect(confirmText).toContain(`The device showing the code ${userCode} asks to sign in as you`);
      const done = await browser.follow(new URL('/oauth2/device', env.gateway.url), { first: { form: hiddenFields(confirmHtml) } });
      expect(done.response?.status).toBe(200);
      expect(await cli.exited).toBe(0);
      expect(cli.stderr()).toContain('Signed in to');
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
    const printed = await runCliToEnd(['credentials', '--role', 'admin'], person);
    expect(printed.code, printed.stderr).toBe(0);
    expect(JSON.parse(printed.stdout)).toMatchObject({ Version: 1, AccessKeyId: expect.stringMatching(/^ASIA/) as unknown as string });
  }, 90_000);

  it('another client\'s access token, or none, opens no terminal session (401)', async () => {
    const { tokens } = await codeFlow(webapp, new TestBrowser(), env);
    for (const authorization of [`Bearer ${tokens.access_token}`, 'Bearer not-a-token-at-all-0123456789', undefined]) {
      const response = await fetch(new URL('/cli/device/session', env.gateway.url), { method: 'POST', headers: authorization === undefined ? {} : { authorization } });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: string }).error).toBe('invalid_client');
    }
  });
});

describe('the device authorization grant (RFC 8628)', () => {
  it('a device gets tokens once the person confirms its code in a signed-in browser', async () => {
    const device = await relyingParty(env.publicUrl, 'device');
    const started = await client.initiateDeviceAuthorization(device, { scope: 'openid email roles' });
    expect(started.verification_uri).toBe(`${env.publicUrl}/oauth2/device`);
    const browser = new TestBrowser();
    await codeFlow(webapp, browser, env, { provider: 'okta', user: 'carol' });
    // The person opens the page with the code filled in, submits it, and confirms.
    const input = await browser.get(started.verification_uri_complete!);
    const inputPage = await input.text();
    expect(inputPage).toContain(`value="${started.user_code}"`);
    const confirmPage = await browser.request(new URL('/oauth2/device', env.gateway.url), { form: { ...hiddenFields(inputPage), user_code: started.user_code } });
    const confirmHtml = await confirmPage.text();
    expect(confirmHtml).toContain('Connect device?');
    const done = await browser.follow(new URL('/oauth2/device', env.gateway.url), { first: { form: hiddenFields(confirmHtml) } });
    expect(done.response?.status).toBe(200);
    expect(await done.response!.text()).toContain('is signed in');
    const tokens = await client.pollDeviceAuthorizationGrant(device, started);
    expect(tokens.claims()).toMatchObject({ sub: 'okta:c-1', aud: 'device', roles: ['admin'] });
    // The device's refresh token lives as long as the session of the browser that approved it.
    const refreshed = await client.refreshTokenGrant(device, tokens.refresh_token!);
    await browser.request(`${env.gateway.url}/logout`, { form: {}, headers: { origin: env.publicUrl, 'sec-fetch-site': 'same-origin' } });
    expect(await oauthError(client.refreshTokenGrant(device, refreshed.refresh_token!))).toBe('invalid_grant');
  });

  it('an unknown user code is refused on the page; a device code nobody confirmed is pending', async () => {
    const device = await relyingParty(env.publicUrl, 'device');
    const started = await client.initiateDeviceAuthorization(device, { scope: 'openid' });
    const browser = new TestBrowser();
    const page = await (await browser.get(started.verification_uri)).text();
    const wrong = await browser.request(new URL('/oauth2/device', env.gateway.url), { form: { ...hiddenFields(page), user_code: 'BCDF-GHJK' } });
    expect(await wrong.text()).toContain('That code is not valid or has expired');
    const response = await fetch(`${env.gateway.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: started.device_code, client_id: 'device' }),
    });
    expect(await response.json()).toMatchObject({ error: 'authorization_pending' });
  });
});
