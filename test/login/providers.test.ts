/**
 * A full browser login for every kind of provider, against the real Redis: google (oidc-provider standing
 * in for Google through the issuer override), generic oidc (userinfo merged), github and facebook
 * (loopback doubles of their OAuth and REST/Graph endpoints). Each ends in `/v1/credentials` for the role
 * the rules grant, with the keys checked by the unmodified AWS SDK (GetCallerIdentity); each provider
 * also has a user the rules do not grant, who gets a denial page and no session.
 */
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it } from 'vitest';
import { TestBrowser, parseSetCookie } from '../support/browser.js';
import { loginAs, providerConfig, startLogin, type LoginDouble } from '../support/browser-login.js';
import { redisStoreConfig, startTestGateway } from '../support/gateway.js';
import { OidcDouble } from '../support/oidc-double.js';
import { useLoginEnvironment } from '../support/login-environment.js';
import { ACCOUNT_ID } from '../support/common.js';

const setup = useLoginEnvironment();

const sessions = async () => (await setup.redis.keys(`${setup.prefix}bsess:*`)).length;

async function whoAmI(credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string }) {
  const sts = new STSClient({
    endpoint: setup.env.gateway.url,
    region: 'us-east-1',
    maxAttempts: 1,
    credentials: { accessKeyId: credentials.AccessKeyId, secretAccessKey: credentials.SecretAccessKey, sessionToken: credentials.SessionToken },
  });
  return sts.send(new GetCallerIdentityCommand({}));
}

type Row = [provider: string, double: () => LoginDouble, user: string, role: string, sessionName: string, claims: Record<string, unknown>];

const granted: Row[] = [
  ['google', () => setup.env.google, 'alice', 'deployer', 'alice@acme.com', { sub: '1001', email: 'alice@acme.com', email_verified: true, hd: 'acme.com', name: 'Alice Liddell' }],
  ['okta', () => setup.env.okta, 'carol', 'admin', 'carol@acme.com', { sub: 'c-1', email: 'carol@acme.com', preferred_username: 'carol', groups: ['sts-admins', 'staff'] }],
  [
    'github',
    () => setup.env.github,
    'octocat',
    'deployer',
    'octo@acme.com',
    { sub: '583231', login: 'octocat', name: 'The Octocat', email: 'octo@acme.com', email_verified: true, orgs: ['a-org', 'b-org', 'c-org', 'acme', 'z-org'], teams: ['a-org/x', 'b-org/y', 'acme/deployers'] },
  ],
  ['facebook', () => setup.env.facebook, 'alice', 'reader', 'alice@example.com', { sub: '10001', name: 'Alice', email: 'alice@example.com' }],
];

describe.each(granted)('a full login with %s', (provider, double, user, role, sessionName, claims) => {
  const browser = new TestBrowser();

  it('redirects to the provider with state, PKCE S256 and (OIDC) a nonce, and stores one transaction', async () => {
    const before = (await setup.redis.keys(`${setup.prefix}login:*`)).length;
    const url = await startLogin(browser, setup.env.gateway.url, provider);
    expect(url.searchParams.get('response_type')).toBe('code');
    expect(url.searchParams.get('redirect_uri')).toBe(`${setup.env.publicUrl}/callback/${provider}`);
    expect(url.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    if (provider === 'google' || provider === 'okta') expect(url.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const keys = await setup.redis.keys(`${setup.prefix}login:*`);
    expect(keys.length).toBe(before + 1);
    // Ten minutes, and the state itself is not the key (a store dump does not hand it out).
    const ttl = await setup.redis.pttl(keys[0]!);
    expect(ttl).toBeGreaterThan(590_000);
    expect(ttl).toBeLessThanOrEqual(600_000);
    expect(keys.join()).not.toContain(url.searchParams.get('state')!);
  });

  it(`signs ${user} in: a 303, an HttpOnly SameSite=Lax session cookie, a stored session with the TTL`, async () => {
    const before = await sessions();
    const callback = await loginAs(browser, setup.env.gateway.url, provider, double(), user);
    expect(callback.status).toBe(303);
    expect(callback.headers.get('location')).toBe('/');
    const cookie = parseSetCookie(callback.headers.getSetCookie().find((c) => c.startsWith('stsgate_session='))!);
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(cookie.attributes).toMatchObject({ path: '/', httponly: '', samesite: 'Lax', 'max-age': '3600' });
    // public_url is plain http here, so no Secure attribute (it would make the cookie unusable).
    expect(cookie.attributes.secure).toBeUndefined();
    expect(await sessions()).toBe(before + 1);
    const [key] = await setup.redis.keys(`${setup.prefix}bsess:*`);
    expect(await setup.redis.pttl(key!)).toBeGreaterThan(3_500_000);
    expect((await setup.redis.keys(`${setup.prefix}*`)).join()).not.toContain(cookie.value);
  });

  it('shows the identity and its roles on the page', async () => {
    const page = await browser.get(`${setup.env.gateway.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const text = await page.text();
    expect(text).toContain(`<dd><code>${claims.sub as string}</code></dd>`);
    expect(text).toContain(`value="${role}"`);
  });

  it(`issues credentials for ${role} at /v1/credentials that the AWS SDK can use`, async () => {
    const response = await browser.get(`${setup.env.gateway.url}/v1/credentials?role=${role}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as Record<string, string | number>;
    expect(body).toMatchObject({ Version: 1, role });
    expect(body.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(typeof body.access_token).toBe('string');
    expect(Date.parse(body.Expiration as string)).toBeGreaterThan(Date.now() + 3_000_000);
    const who = await whoAmI(body as unknown as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string });
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/${role}/${sessionName}`);
    const claimsOf = JSON.parse(Buffer.from((body.access_token as string).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claimsOf).toMatchObject({ sub: `${provider}:${claims.sub as string}`, role, idp: provider });
  });

  it('builds the claims the definition describes', () => {
    const login = setup.env.gateway.logs().find((l) => l.event === 'login' && l.provider === provider);
    expect(login).toMatchObject({ subject: claims.sub });
  });

  it('keeps the claims in the session (as the rules saw them)', async () => {
    const raw = await Promise.all((await setup.redis.keys(`${setup.prefix}bsess:*`)).map((k) => setup.redis.get(k)));
    const mine = raw.map((r) => JSON.parse(r!) as { identity: { source: string; subject: string; claims: Record<string, unknown> } }).find((s) => s.identity.source === provider);
    expect(mine!.identity.claims).toMatchObject(claims);
    expect(mine!.identity.claims.nonce).toBeUndefined();
  });

  it('logs out: the session record goes, the cookie is cleared, /v1/credentials answers 401, and the page says keys stay valid', async () => {
    const before = await sessions();
    const response = await browser.request(`${setup.env.gateway.url}/logout`, { form: {}, headers: { origin: setup.env.publicUrl } });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/?signed_out=1');
    expect(await sessions()).toBe(before - 1);
    expect(browser.cookie(setup.env.gateway.url, 'stsgate_session')).toBeUndefined();
    const after = await browser.get(`${setup.env.gateway.url}/v1/credentials?role=${role}`);
    expect(after.status).toBe(401);
    const notice = await (await browser.get(`${setup.env.gateway.url}/?signed_out=1`)).text();
    expect(notice).toContain('<h2 id="signed-out-heading">You are signed out</h2>');
    expect(notice).toContain('still work until they expire');
  });
});

describe.each<[string, () => LoginDouble, string, string, string]>([
  ['google', () => setup.env.google, 'bob', 'bob@other.com (google:1002)', 'the acme Workspace may deploy and read'],
  ['okta', () => setup.env.okta, 'dan', 'dan@acme.com (okta:d-1)', 'sts-admins in okta administer'],
  ['github', () => setup.env.github, 'eve', 'eve@evil.example (github:666)', 'the acme deployers team deploys'],
  ['facebook', () => setup.env.facebook, 'mallory', 'mallory@example.com (facebook:10002)', 'alice on facebook reads'],
])('a %s user no rule grants', (provider, double, user, account, closestRule) => {
  it(`${user} gets a 403 page naming the account, and no session`, async () => {
    const before = await sessions();
    const browser = new TestBrowser();
    const callback = await loginAs(browser, setup.env.gateway.url, provider, double(), user);
    expect(callback.status).toBe(403);
    expect(callback.headers.get('location')).toBeNull();
    expect(callback.headers.getSetCookie().filter((c) => c.startsWith('stsgate_session='))).toEqual([]);
    const text = await callback.text();
    expect(text).toContain(account);
    expect(text).toContain('not allowed any role');
    // Never which rule came close.
    expect(text).not.toMatch(/rule|acme\/deployers|sts-admins|hd/);
    expect(await sessions()).toBe(before);
    // The audit line, for the administrators the page sends this person to: the account the page named,
    // the rule that came closest and what it lacked.
    const line = setup.env.gateway.logs().find((l) => l.event === 'login_failed' && l.provider === provider && l.reason === 'no_role');
    expect(line).toMatchObject({ account, closestRule });
    expect((line!.failing as string[]).every((f) => f.startsWith('FAIL ') || f.startsWith('    '))).toBe(true);
    expect(line!.failing).not.toEqual([]);
    expect((await browser.get(`${setup.env.gateway.url}/v1/credentials`)).status).toBe(401);
  });
});

describe('GitHub specifics', () => {
  it('follows org and team pagination (page size 2) to the last page', () => {
    expect(setup.env.github.hits.get('/api/v3/user/orgs')).toBeGreaterThanOrEqual(3);
    expect(setup.env.github.hits.get('/api/v3/user/teams')).toBeGreaterThanOrEqual(2);
  });

  it('takes only a verified primary email: an unverified primary gives no email and email_verified false', async () => {
    const browser = new TestBrowser();
    const callback = await loginAs(browser, setup.env.gateway.url, 'github', setup.env.github, 'dave');
    expect(callback.status).toBe(303);
    const page = await (await browser.get(`${setup.env.gateway.url}/`)).text();
    expect(page).toContain('<dt>email_verified</dt><dd>false</dd>');
    expect(page).not.toContain('dave@unverified.example');
    expect(page).not.toContain('dave@verified.example');
    // dave is in acme but not its deployers team: reader only.
    expect(page).toContain('value="reader"');
    expect(page).not.toContain('value="deployer"');
    expect((await browser.get(`${setup.env.gateway.url}/v1/credentials?role=deployer`)).status).toBe(403);
    const reader = await browser.get(`${setup.env.gateway.url}/v1/credentials`);
    expect(reader.status).toBe(200);
    expect(((await reader.json()) as { role: string }).role).toBe('reader');
  });
});

describe('Facebook specifics', () => {
  it('signs every Graph call with appsecret_proof (the double refuses any other)', () => {
    expect(setup.env.facebook.badProofs).toBe(0);
    expect([...setup.env.facebook.hits.keys()].some((p) => p.endsWith('/me'))).toBe(true);
  });
});

describe('the session and the role picker', () => {
  it('offers a picker for several roles, a chosen role shows credentials as export lines and JSON', async () => {
    const browser = new TestBrowser();
    await loginAs(browser, setup.env.gateway.url, 'google', setup.env.google, 'alice');
    const picker = await (await browser.get(`${setup.env.gateway.url}/`)).text();
    expect(picker).toContain('value="deployer"');
    expect(picker).toContain('value="reader"');
    expect(picker).toContain('<legend>Choose a role</legend>');
    // The role picker's own form: a same-origin request (Fetch Metadata); see test/security/browser-cross-site.test.ts.
    const page = await browser.get(`${setup.env.gateway.url}/?role=reader`, { 'sec-fetch-site': 'same-origin' });
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-store');
    const text = await page.text();
    expect(text).toMatch(/export AWS_ACCESS_KEY_ID=ASIA[A-Z2-7]{16}\n/);
    expect(text).toContain('export AWS_SECRET_ACCESS_KEY=');
    expect(text).toContain('export AWS_SESSION_TOKEN=');
    expect(text).toContain('&quot;Version&quot;: 1');
    expect(text).toContain('data-copy="shell"');
    expect(text).not.toMatch(/<script>|style=/);
  });

  it('a role the rules do not grant is AccessDenied (JSON 403) at /v1/credentials, and a role is required when several are granted', async () => {
    const browser = new TestBrowser();
    await loginAs(browser, setup.env.gateway.url, 'google', setup.env.google, 'alice');
    const denied = await browser.get(`${setup.env.gateway.url}/v1/credentials?role=admin`);
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ error: 'AccessDenied' });
    const ambiguous = await browser.get(`${setup.env.gateway.url}/v1/credentials`);
    expect(ambiguous.status).toBe(400);
    const narrowed = await browser.get(`${setup.env.gateway.url}/v1/credentials?role=deployer&scope=logs:read&duration_seconds=900`);
    expect(narrowed.status).toBe(200);
    const body = (await narrowed.json()) as { scope: string; Expiration: string };
    expect(body.scope).toBe('logs:read');
    expect(Date.parse(body.Expiration) - Date.now()).toBeLessThan(901_000);
  });

  it('gives a new session id on every login and ends the one the browser brought (no fixation)', async () => {
    const browser = new TestBrowser();
    browser.setCookie(setup.env.gateway.url, 'stsgate_session', 'A'.repeat(43));
    await loginAs(browser, setup.env.gateway.url, 'google', setup.env.google, 'alice');
    const first = browser.cookie(setup.env.gateway.url, 'stsgate_session')!;
    expect(first).not.toBe('A'.repeat(43));
    const before = await sessions();
    await loginAs(browser, setup.env.gateway.url, 'google', setup.env.google, 'alice');
    const second = browser.cookie(setup.env.gateway.url, 'stsgate_session')!;
    expect(second).not.toBe(first);
    expect(await sessions()).toBe(before);
    const stale = new TestBrowser();
    stale.setCookie(setup.env.gateway.url, 'stsgate_session', first);
    expect((await stale.get(`${setup.env.gateway.url}/v1/credentials?role=reader`)).status).toBe(401);
  });

  it('returns to a same-origin return_to, or to the role after login', async () => {
    const browser = new TestBrowser();
    const back = await loginAs(browser, setup.env.gateway.url, 'google', setup.env.google, 'alice', { return_to: '/?role=reader' });
    expect(back.headers.get('location')).toBe('/?role=reader');
    const allowed = await loginAs(browser, setup.env.gateway.url, 'google', setup.env.google, 'alice', { return_to: 'https://app.example.com/done?x=1' });
    expect(allowed.headers.get('location')).toBe('https://app.example.com/done?x=1');
    const role = await loginAs(browser, setup.env.gateway.url, 'google', setup.env.google, 'alice', { role: 'deployer' });
    expect(role.headers.get('location')).toBe('/?role=deployer');
  });

  it('writes login and logout to the audit log with no token, code, state or cookie value in any line', async () => {
    const browser = new TestBrowser();
    const authorizationUrl = await startLogin(browser, setup.env.gateway.url, 'google');
    const back = await setup.env.google.signIn(browser, authorizationUrl, 'alice');
    await browser.get(back);
    const cookie = browser.cookie(setup.env.gateway.url, 'stsgate_session')!;
    const credentials = (await (await browser.get(`${setup.env.gateway.url}/v1/credentials?role=reader`)).json()) as Record<string, string>;
    await browser.request(`${setup.env.gateway.url}/logout`, { form: {}, headers: { 'sec-fetch-site': 'same-origin' } });
    const logs = JSON.stringify(setup.env.gateway.logs());
    for (const secret of [cookie, back.searchParams.get('code')!, back.searchParams.get('state')!, authorizationUrl.searchParams.get('nonce')!, credentials.SecretAccessKey!, credentials.SessionToken!, credentials.access_token!]) {
      expect(logs).not.toContain(secret);
    }
    expect(setup.env.gateway.logs().some((l) => l.event === 'logout' && l.provider === 'google' && l.subject === '1001')).toBe(true);
  });

  it('records login latency by provider and outcome', async () => {
    const metrics = await (await fetch(`${setup.env.gateway.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/stsgate_login_duration_seconds_count\{provider="google",outcome="success"\} [1-9]/);
    expect(metrics).toMatch(/stsgate_login_duration_seconds_count\{provider="google",outcome="failure"\} [1-9]/);
  });
});

describe('behind https', () => {
  it('marks the session cookie Secure, and names it with the __Host- prefix, when public_url is https', async () => {
    const publicUrl = 'https://sts.example.com';
    const idp = await OidcDouble.start({ zoe: { sub: 'z-1' } });
    idp.addClient({ clientId: 'tls-client', clientSecret: 'tls-secret', redirectUri: `${publicUrl}/callback/tls` });
    const gateway = await startTestGateway({
      issuers: [],
      store: redisStoreConfig(),
      rules: [{ name: 'zoe reads', match: { source: 'tls', conditions: [] }, roles: ['reader'] }],
      config: { publicUrl, providers: [providerConfig('tls', 'oidc', { issuer: idp.issuer })] },
    });
    try {
      const browser = new TestBrowser();
      const back = await idp.signIn(browser, await startLogin(browser, gateway.url, 'tls'), 'zoe');
      expect(back.origin).toBe(publicUrl);
      // The TLS terminator would forward this to the gateway; the test delivers it directly.
      const callback = await browser.get(new URL(`${back.pathname}${back.search}`, gateway.url));
      expect(callback.status).toBe(303);
      const cookie = parseSetCookie(callback.headers.getSetCookie().find((c) => c.startsWith('__Host-stsgate_session='))!);
      expect(cookie.attributes).toMatchObject({ secure: '', httponly: '', samesite: 'Lax', path: '/' });
    } finally {
      await gateway.close();
      await idp.close();
    }
  });
});
