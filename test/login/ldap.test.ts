/**
 * Directory logins (`use: ldap`) against a real OpenLDAP slapd started here (test/support/slapd.ts): the
 * sign-in form, search-then-bind over LDAPS and StartTLS with a test CA, groups from memberOf, a group
 * search and nested groupOfNames, rules on them, credentials whose AWS keys the AWS SDK's
 * GetCallerIdentity accepts, `stsgate login` through the form, and bad input: filter injection in the
 * username, empty and wrong passwords, unknown users (the same answer), a directory down or silent (a
 * clear error within the timeout), disabled and expired AD-style accounts, a user in 2,000 groups.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LdapProviderConfig, LdapSettings, RuleConfig } from '../../src/config/types.js';
import { toFiletime } from '../../src/idp/ldap/accounts.js';
import { LdapDirectory, POOL_SIZE } from '../../src/idp/ldap/directory.js';
import { TestBrowser } from '../support/browser.js';
import { confirmTerminalLogin, reservePublicUrl, startLogin } from '../support/browser-login.js';
import { runCli, runCliToEnd } from '../support/cli-process.js';
import { ACCOUNT_ID, freePort } from '../support/common.js';
import { startTestGateway, standardRoles, type TestGateway } from '../support/gateway.js';
import { GROUPS_DN, groupDn, groupLdif, personDn, personLdif, slapdSettings, slapdUnavailable, startSlapd, type Slapd } from '../support/slapd.js';

const unavailable = slapdUnavailable();
const MASS = `ou=mass,${GROUPS_DN}`;
const MASS_GROUPS = 2_000;

let slapd: Slapd;
let gateway: TestGateway;
let hang: { server: Server; sockets: Set<Socket>; port: number };

/** The directory's settings as the schema's transform makes them (the `corp` provider). */
function settings(overrides: Partial<LdapSettings> = {}): LdapSettings {
  return slapdSettings(slapd, overrides);
}

function provider(id: string, overrides: Partial<LdapSettings> = {}): LdapProviderConfig {
  return { id, use: 'ldap', displayName: `Directory ${id}`, ldap: settings(overrides) };
}

const condition = (claim: string, value: string) => ({ claim, op: 'contains' as const, value, ignoreCase: false });
const RULES: RuleConfig[] = [
  { name: 'developers read', match: { source: 'corp', conditions: [condition('groups', 'developers')] }, roles: ['reader'] },
  { name: 'platform, through nested groups, deploys', match: { source: 'corp', conditions: [condition('groups', 'platform')] }, roles: ['deployer'] },
  { name: 'developers over StartTLS read', match: { source: 'starttls', conditions: [condition('groups', 'developers')] }, roles: ['reader'] },
];

beforeAll(async () => {
  if (unavailable) return;
  slapd = await startSlapd();
  const past = toFiletime(new Date(Date.now() - 86_400_000));
  const future = toFiletime(new Date(Date.now() + 365 * 86_400_000));
  await slapd.add(
    [
      personLdif('alice', { password: 'alice-pw', mail: 'alice@example.org', name: 'Alice Liddell' }),
      personLdif('bob', { password: 'bob-pw', mail: 'bob@example.org' }),
      personLdif('carol', { password: 'carol-pw', mail: 'carol@example.org', userAccountControl: 514 }),
      personLdif('dave', { password: 'dave-pw', mail: 'dave@example.org', userAccountControl: 512, accountExpires: past }),
      personLdif('erin', { password: 'erin-pw', mail: 'erin@example.org', userAccountControl: 512, accountExpires: future }),
      personLdif('j*doe', { password: 'jdoe-pw', mail: 'jdoe@example.org' }),
      personLdif('mass', { password: 'mass-pw', mail: 'mass@example.org' }),
      // alice: developers and sre directly; sre is in ops, ops in platform (nested groupOfNames).
      groupLdif('developers', [personDn('alice'), personDn('carol'), personDn('dave'), personDn('erin'), personDn('j*doe'), personDn('mass')]),
      groupLdif('sre', [personDn('alice')]),
      groupLdif('ops', [groupDn('sre')]),
      groupLdif('platform', [groupDn('ops')]),
      groupLdif('contractors', [personDn('bob')]),
      // A cycle must end the nested search, not loop it.
      groupLdif('loop-a', [personDn('bob'), groupDn('loop-b')]),
      groupLdif('loop-b', [groupDn('loop-a')]),
    ].join(''),
  );
  const mass = [`dn: ${MASS}\nobjectClass: organizationalUnit\nou: mass\n\n`];
  for (let i = 1; i <= MASS_GROUPS; i++) mass.push(groupLdif(`g-${String(i).padStart(4, '0')}`, [personDn('mass')], MASS));
  await slapd.add(mass.join(''));

  hang = await startHangServer();
  const closed = await freePort();
  const { port, publicUrl } = await reservePublicUrl();
  gateway = await startTestGateway({
    issuers: [],
    port,
    roles: standardRoles(),
    rules: RULES,
    config: {
      publicUrl,
      providers: [
        provider('corp'),
        provider('starttls', { url: slapd.url, startTls: true, groups: { memberOf: true, nested: 'none', maxDepth: 5, max: 1_000 } }),
        provider('down', { url: `ldaps://127.0.0.1:${closed}` }),
        provider('silent', { url: `ldap://127.0.0.1:${hang.port}`, connectTimeoutMs: 1_000, timeoutMs: 1_500 }),
        provider('silent-tls', { url: `ldaps://127.0.0.1:${hang.port}`, connectTimeoutMs: 1_000, timeoutMs: 1_500 }),
      ],
    },
  });
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  for (const socket of hang?.sockets ?? []) socket.destroy();
  await new Promise((resolve) => (hang ? hang.server.close(resolve) : resolve(undefined)));
  await slapd?.stop();
});

/** A TCP server that accepts connections and never sends a byte: a directory that hangs. */
async function startHangServer(): Promise<{ server: Server; sockets: Set<Socket>; port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, sockets, port };
}

const sameOrigin = () => ({ origin: new URL(gateway.url).origin, 'sec-fetch-site': 'same-origin' });

/** The sign-in form's page at `form`: its hidden state and form token. */
async function openForm(browser: TestBrowser, form: URL): Promise<{ state: string; formToken: string; page: string }> {
  const response = await browser.get(form);
  const page = await response.text();
  expect(response.status, page.slice(0, 500)).toBe(200);
  const state = /name="state" value="([^"]+)"/.exec(page)?.[1];
  const formToken = /name="form_token" value="([^"]+)"/.exec(page)?.[1];
  if (!state || !formToken) throw new Error(`no form on ${page.slice(0, 500)}`);
  return { state, formToken, page };
}

/** Starts a login at `/login/<provider>` and opens its form. */
async function startForm(browser: TestBrowser, providerId: string, query: Record<string, string> = {}) {
  const form = await startLogin(browser, gateway.url, providerId, query);
  expect(form.href.startsWith(`${gateway.url}/login/${providerId}/password?state=`)).toBe(true);
  return openForm(browser, form);
}

function submit(browser: TestBrowser, providerId: string, fields: Record<string, string>, headers: Record<string, string> = sameOrigin()): Promise<Response> {
  return browser.request(new URL(`/login/${providerId}/password`, gateway.url), { form: fields, headers });
}

/** A whole browser login through the form; returns the callback's response (303 on success). */
async function formLogin(browser: TestBrowser, providerId: string, username: string, password: string): Promise<Response> {
  const { state, formToken } = await startForm(browser, providerId);
  const checked = await submit(browser, providerId, { state, form_token: formToken, username, password });
  const callback = checked.headers.get('location');
  if (checked.status !== 303 || callback === null) throw new Error(`the form answered HTTP ${checked.status}: ${(await checked.text()).slice(0, 800)}`);
  return browser.get(new URL(callback, gateway.url));
}

/** The visible text of a page, without the per-request values (state, form token). */
function visibleAnswer(page: string): string {
  return page.replace(/value="[^"]*"/g, 'value=""');
}

describe.skipIf(unavailable !== undefined)('directory logins against OpenLDAP', () => {
  it('a person in a nested group signs in through the form; the rules grant deployer; the keys pass GetCallerIdentity', async () => {
    const browser = new TestBrowser();
    const callback = await formLogin(browser, 'corp', 'alice', 'alice-pw');
    expect(callback.status).toBe(303);
    expect(callback.headers.get('location')).toBe('/');
    const page = await (await browser.get(`${gateway.url}/`)).text();
    expect(page).toContain('alice@example.org');
    const response = await browser.get(`${gateway.url}/v1/credentials?role=deployer`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };
    const sts = new STSClient({ endpoint: gateway.url, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: body.AccessKeyId, secretAccessKey: body.SecretAccessKey, sessionToken: body.SessionToken } });
    const who = await sts.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/alice@example.org`);
    const login = gateway.logs().find((line) => line.event === 'login' && line.provider === 'corp');
    expect(login).toMatchObject({ subject: personDn('alice') });
  });

  it('claims: username, DN, email, name, and groups from memberOf, the group search and every nesting level (a cycle ends)', async () => {
    const profile = await new LdapDirectory(settings(), 'Corp').authenticate('alice', 'alice-pw');
    expect(profile).toEqual({
      user: { id: personDn('alice'), dn: personDn('alice'), username: 'alice', email: 'alice@example.org', name: 'Alice Liddell' },
      groups: ['developers', 'ops', 'platform', 'sre'],
      group_dns: ['developers', 'ops', 'platform', 'sre'].map((cn) => groupDn(cn)),
      groups_truncated: false,
    });
    const bob = await new LdapDirectory(settings(), 'Corp').authenticate('bob', 'bob-pw');
    expect(bob.groups).toEqual(['contractors', 'loop-a', 'loop-b']);
    // Without nesting: only the direct groups; memberOf alone (the overlay) gives the same direct ones.
    const direct = await new LdapDirectory(settings({ groups: { ...settings().groups, nested: 'none' } }), 'Corp').authenticate('alice', 'alice-pw');
    expect(direct.groups).toEqual(['developers', 'sre']);
    const memberOfOnly = await new LdapDirectory(settings({ groups: { memberOf: true, nested: 'none', maxDepth: 5, max: 1_000 } }), 'Corp').authenticate('alice', 'alice-pw');
    expect(memberOfOnly.groups).toEqual(['developers', 'sre']);
    // A stable id instead of the DN.
    const uuid = await new LdapDirectory(settings({ user: { ...settings().user, idAttribute: 'entryUUID' } }), 'Corp').authenticate('alice', 'alice-pw');
    expect((uuid.user as { id: string }).id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  it('StartTLS on ldap:// works; a CA that did not sign the certificate is refused', async () => {
    const browser = new TestBrowser();
    expect((await formLogin(browser, 'starttls', 'alice', 'alice-pw')).status).toBe(303);
    const wrongCa = new LdapDirectory(settings({ ca: undefined }), 'Corp');
    await expect(wrongCa.authenticate('alice', 'alice-pw')).rejects.toMatchObject({ reason: 'provider_unreachable', status: 503, debug: expect.stringMatching(/certificate/i) });
  });

  it('a person no rule grants is refused with no session, naming the account', async () => {
    const browser = new TestBrowser();
    const callback = await formLogin(browser, 'corp', 'bob', 'bob-pw');
    expect(callback.status).toBe(403);
    expect(await callback.text()).toContain('not allowed any role here');
    expect(browser.cookie(gateway.url, 'stsgate_session')).toBeUndefined();
  });

  it.each([
    ['a filter injection', '*)(uid=*'],
    ['a wildcard', '*'],
    ['a prefix wildcard', 'ali*'],
    ['an OR injection', 'alice)(|(uid=*'],
    ['a NUL after the name', 'alice\u0000'],
    ['a backslash', '\\'],
    ['an escaped wildcard typed', '\\2a'],
  ])('%s in the username matches nothing, even with a real password', async (_name, username) => {
    await expect(new LdapDirectory(settings(), 'Corp').authenticate(username, 'alice-pw')).rejects.toMatchObject({ reason: 'credentials_rejected', status: 401 });
  });

  it('a username with filter characters is matched literally: j*doe signs in, j* does not', async () => {
    const profile = await new LdapDirectory(settings(), 'Corp').authenticate('j*doe', 'jdoe-pw');
    expect(profile.user).toMatchObject({ username: 'j*doe' });
    await expect(new LdapDirectory(settings(), 'Corp').authenticate('j*', 'jdoe-pw')).rejects.toMatchObject({ reason: 'credentials_rejected' });
  });

  it('an empty password is refused before any bind (an unauthenticated bind is never a login): even a directory that is down says so', async () => {
    await expect(new LdapDirectory(settings(), 'Corp').authenticate('alice', '')).rejects.toMatchObject({ reason: 'credentials_rejected', debug: 'empty password' });
    await expect(new LdapDirectory(settings({ url: `ldaps://127.0.0.1:${await freePort()}` }), 'Corp').authenticate('alice', '')).rejects.toMatchObject({ reason: 'credentials_rejected' });
    const browser = new TestBrowser();
    const { state, formToken } = await startForm(browser, 'corp');
    const answer = await submit(browser, 'corp', { state, form_token: formToken, username: 'alice', password: '' });
    expect(answer.status).toBe(401);
  });

  it('a wrong password and an unknown user get the same answer (status and words), and the form again in the same login', async () => {
    const browser = new TestBrowser();
    const { state, formToken } = await startForm(browser, 'corp');
    const wrong = await submit(browser, 'corp', { state, form_token: formToken, username: 'alice', password: 'not-it' });
    const unknown = await submit(browser, 'corp', { state, form_token: formToken, username: 'nobody-here', password: 'not-it' });
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    const [wrongPage, unknownPage] = [await wrong.text(), await unknown.text()];
    expect(wrongPage).toContain('did not accept this username and password');
    expect(visibleAnswer(wrongPage).replace('alice', 'X')).toBe(visibleAnswer(unknownPage).replace('nobody-here', 'X'));
    // The same login goes on: the right password now finishes it.
    const right = await submit(browser, 'corp', { state, form_token: formToken, username: 'alice', password: 'alice-pw' });
    expect(right.status).toBe(303);
    expect((await browser.get(new URL(right.headers.get('location')!, gateway.url))).status).toBe(303);
    const failures = gateway.logs().filter((line) => line.event === 'login_failed' && line.reason === 'credentials_rejected');
    expect(failures.length).toBeGreaterThanOrEqual(2);
  });

  it('AD account state: a disabled account (userAccountControl 0x2) and an expired one (accountExpires) are refused, only after the right password', async () => {
    const directory = new LdapDirectory(settings(), 'Corp');
    await expect(directory.authenticate('carol', 'carol-pw')).rejects.toMatchObject({ reason: 'account_disabled', status: 403 });
    await expect(directory.authenticate('dave', 'dave-pw')).rejects.toMatchObject({ reason: 'account_expired', status: 403 });
    await expect(directory.authenticate('carol', 'wrong')).rejects.toMatchObject({ reason: 'credentials_rejected' });
    expect((await directory.authenticate('erin', 'erin-pw')).user).toMatchObject({ username: 'erin' });
    const browser = new TestBrowser();
    const { state, formToken } = await startForm(browser, 'corp');
    const disabled = await submit(browser, 'corp', { state, form_token: formToken, username: 'carol', password: 'carol-pw' });
    expect(disabled.status).toBe(403);
    expect(await disabled.text()).toContain('This account is disabled');
  });

  it.each([
    ['down (nothing listens)', 'down', 3_000],
    ['silent (accepts, never answers)', 'silent', 4_000],
    ['silent under TLS (the handshake never finishes)', 'silent-tls', 4_000],
  ])('a directory that is %s: a clear error page within the timeout', async (_name, providerId, withinMs) => {
    const browser = new TestBrowser();
    const { state, formToken } = await startForm(browser, providerId);
    const started = Date.now();
    const answer = await submit(browser, providerId, { state, form_token: formToken, username: 'alice', password: 'alice-pw' });
    expect(Date.now() - started).toBeLessThan(withinMs);
    expect(answer.status).toBe(503);
    expect(await answer.text()).toContain(`Directory ${providerId} could not be reached`);
    expect(gateway.logs().some((line) => line.event === 'login_failed' && line.provider === providerId && line.reason === 'provider_unreachable')).toBe(true);
  });

  it(`a user in ${MASS_GROUPS} groups signs in; groups holds groups.max of them, sorted, and groups_truncated says so`, async () => {
    const started = Date.now();
    const profile = await new LdapDirectory(settings(), 'Corp').authenticate('mass', 'mass-pw');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(profile.groups).toHaveLength(1_000);
    expect((profile.groups as string[]).slice(0, 2)).toEqual(['developers', 'g-0001']);
    expect(profile.groups_truncated).toBe(true);
    // Through the group search alone (paged past the server's size limit of 500), the same cap.
    const searched = await new LdapDirectory(settings({ groups: { ...settings().groups, memberOf: false, nested: 'none' } }), 'Corp').authenticate('mass', 'mass-pw');
    expect(searched.groups).toHaveLength(1_000);
    expect(searched.groups_truncated).toBe(true);
    const all = await new LdapDirectory(settings({ groups: { ...settings().groups, max: 5_000 } }), 'Corp').authenticate('mass', 'mass-pw');
    expect(all.groups).toHaveLength(MASS_GROUPS + 1);
    expect(all.groups_truncated).toBe(false);
    const browser = new TestBrowser();
    expect((await formLogin(browser, 'corp', 'mass', 'mass-pw')).status).toBe(303);
    expect((await browser.get(`${gateway.url}/v1/credentials?role=reader`)).status).toBe(200);
  }, 60_000);

  it('the form must come from this site in this browser: no form token, or a cross-site POST, is refused', async () => {
    const browser = new TestBrowser();
    const { state, formToken } = await startForm(browser, 'corp');
    const noToken = await submit(browser, 'corp', { state, username: 'alice', password: 'alice-pw' });
    expect(noToken.status).toBe(403);
    const crossSite = await submit(browser, 'corp', { state, form_token: formToken, username: 'alice', password: 'alice-pw' }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    // Another browser with its own form token but not the login cookie of this login.
    const other = new TestBrowser();
    const { formToken: otherToken } = await startForm(other, 'corp');
    const elsewhere = await submit(other, 'corp', { state, form_token: otherToken, username: 'alice', password: 'alice-pw' });
    expect(elsewhere.status).toBe(400);
    expect(await elsewhere.text()).toContain('different browser');
  });

  it('a form for an OAuth provider, or without a login in progress, does not exist', async () => {
    const browser = new TestBrowser();
    expect((await browser.get(`${gateway.url}/login/corp/password?state=${'x'.repeat(43)}`)).status).toBe(400);
    expect((await browser.get(`${gateway.url}/login/nope/password`)).status).toBe(404);
  });

  it('stsgate login signs in through the directory form; stsgate credentials then prints keys', async () => {
    const home = mkdtempSync(join(tmpdir(), 'stsgate-ldap-cli-'));
    const person = { HOME: home, XDG_CONFIG_HOME: join(home, 'config'), NODE_ENV: undefined };
    try {
      const cli = runCli(['login', '--gateway', gateway.url, '--provider', 'corp', '--no-browser'], person);
      const [address] = await cli.waitFor(/http:\/\/127\.0\.0\.1:\d+\/cli\/login\?\S+/, 'stderr');
      const [, shown] = await cli.waitFor(/confirm the code ([A-Z2-7]{4}-[A-Z2-7]{4})/, 'stderr');
      const browser = new TestBrowser();
      const form = await confirmTerminalLogin(browser, address, { code: shown! });
      expect(form.pathname).toBe('/login/corp/password');
      const { state, formToken } = await openForm(browser, form);
      const checked = await submit(browser, 'corp', { state, form_token: formToken, username: 'alice', password: 'alice-pw' });
      expect(checked.status).toBe(303);
      const callback = await browser.get(new URL(checked.headers.get('location')!, gateway.url));
      expect(callback.status).toBe(303);
      await browser.get(new URL(callback.headers.get('location')!));
      expect(await cli.exited).toBe(0);
      const printed = await runCliToEnd(['credentials', '--role', 'deployer'], person);
      expect(printed.code, printed.stderr).toBe(0);
      const keys = JSON.parse(printed.stdout) as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };
      const sts = new STSClient({ endpoint: gateway.url, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: keys.AccessKeyId, secretAccessKey: keys.SecretAccessKey, sessionToken: keys.SessionToken } });
      expect((await sts.send(new GetCallerIdentityCommand({}))).Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/alice@example.org`);
      expect(gateway.logs().some((line) => line.event === 'terminal_login' && line.provider === 'corp')).toBe(true);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);
});

describe.skipIf(unavailable !== undefined)('password attempt limits', () => {
  let limited: TestGateway;
  beforeAll(async () => {
    const { port, publicUrl } = await reservePublicUrl();
    limited = await startTestGateway({
      issuers: [],
      port,
      rules: RULES,
      config: { publicUrl, providers: [provider('corp')], limits: { maxBodyBytes: 65_536, passwordAttemptsPerUsernamePerMinute: 3, passwordAttemptsPerAddressPerMinute: 1_000 } },
    });
  });
  afterAll(async () => {
    await limited?.close();
  });

  it('counts attempts per username (any case) before the directory is asked: the fourth is 429', async () => {
    const browser = new TestBrowser();
    const form = await startLogin(browser, limited.url, 'corp');
    const page = await (await browser.get(form)).text();
    const state = /name="state" value="([^"]+)"/.exec(page)![1]!;
    const formToken = /name="form_token" value="([^"]+)"/.exec(page)![1]!;
    const post = (username: string) =>
      browser.request(new URL('/login/corp/password', limited.url), { form: { state, form_token: formToken, username, password: 'guess' }, headers: { origin: new URL(limited.url).origin, 'sec-fetch-site': 'same-origin' } });
    expect((await post('alice')).status).toBe(401);
    expect((await post('Alice')).status).toBe(401);
    expect((await post(' alice')).status).toBe(401);
    const fourth = await post('ALICE');
    expect(fourth.status).toBe(429);
    expect(fourth.headers.get('retry-after')).toMatch(/^\d+$/);
    // Another username is not held back.
    expect((await post('bob')).status).toBe(401);
  });
});

if (unavailable !== undefined) {
  describe('directory logins against OpenLDAP', () => {
    it.skip(`cannot run here: ${unavailable}`, () => {});
  });
}

describe.skipIf(unavailable !== undefined)('the directory connection pool', () => {
  it('logins that work reuse one connection; a failed login closes its own; the pool never holds more than it may', async () => {
    const directory = new LdapDirectory(settings(), 'Directory pool');
    try {
      expect(await directory.authenticate('alice', 'alice-pw')).toMatchObject({ user: { username: 'alice' } });
      expect(await directory.authenticate('bob', 'bob-pw')).toMatchObject({ user: { username: 'bob' } });
      expect(await directory.authenticate('alice', 'alice-pw')).toMatchObject({ user: { username: 'alice' } });
      expect(directory.opened).toBe(1);
      // A wrong password takes the pooled connection and closes it: the next login opens a new one.
      await expect(directory.authenticate('alice', 'wrong')).rejects.toMatchObject({ reason: 'credentials_rejected' });
      await directory.authenticate('alice', 'alice-pw');
      expect(directory.opened).toBe(2);
      // Ten at once need ten connections; at most POOL_SIZE of them are kept.
      await Promise.all(Array.from({ length: 10 }, () => directory.authenticate('bob', 'bob-pw')));
      const opened = directory.opened;
      await Promise.all(Array.from({ length: POOL_SIZE }, () => directory.authenticate('bob', 'bob-pw')));
      expect(directory.opened).toBe(opened);
    } finally {
      directory.close();
    }
  });
});
