/**
 * A SAML login against a real IdP: Debian's SimpleSAMLphp (test/support/simplesamlphp.ts) run by PHP's
 * built-in server, the gateway registered in its saml20-sp-remote with its AuthnRequest signing
 * certificate (SimpleSAMLphp checks the HTTP-Redirect signature: `validate.authnrequest`). Headless
 * Chromium (Debian's, driven by playwright-core) clicks the start page's button, types a user at
 * SimpleSAMLphp's login form and lands back at the gateway: the rules grant admin from the `groups`
 * attribute, and the credentials are verified by the AWS SDK (GetCallerIdentity against the gateway).
 * Then `stsgate login` through the same IdP, and its credentials checked the same way.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderConfig } from '../../src/config/types.js';
import { runCli } from '../support/cli-process.js';
import { ACCOUNT_ID, freePort } from '../support/common.js';
import { reservePublicUrl } from '../support/browser-login.js';
import { startTestGateway, standardRoles, type TestGateway } from '../support/gateway.js';
import { haveXmlsec, makeKeyPair } from '../support/saml-signer.js';
import { SimpleSamlPhp, simpleSamlPhpMissing } from '../support/simplesamlphp.js';
import { chromiumMissing, launchChromium } from '../support/chromium.js';

const PROVIDER = 'ssp';
const missing = simpleSamlPhpMissing() ?? chromiumMissing() ?? ((await haveXmlsec()) ? undefined : 'openssl or xmlsec1 is missing');
if (missing) console.warn(`SKIP test/saml/simplesamlphp.test.ts: ${missing}`);

describe.skipIf(missing !== undefined)('SAML login with SimpleSAMLphp as the IdP', () => {
  let idp: SimpleSamlPhp;
  let gateway: TestGateway;
  let browser: Browser;
  let publicUrl: string;

  beforeAll(async () => {
    const reserved = await reservePublicUrl();
    publicUrl = reserved.publicUrl;
    const spKeys = await makeKeyPair(mkdtempSync(join(tmpdir(), 'stsgate-saml-sp-')), 'sp');
    const sp = { entityId: `${publicUrl}/saml/${PROVIDER}/metadata`, acsUrl: `${publicUrl}/saml/${PROVIDER}/acs`, certificate: spKeys.certBase64 };
    idp = await SimpleSamlPhp.start({ port: await freePort(), sp });
    const provider: ProviderConfig = {
      id: PROVIDER,
      use: 'saml',
      clientId: '',
      clientSecret: '',
      urls: {},
      endpoints: {},
      displayName: 'SimpleSAMLphp',
      saml: {
        idpMetadataUrl: idp.metadataUrl,
        signed: 'both',
        attributes: { email: 'email', groups: 'groups' },
        multiValued: ['groups'],
        allowIdpInitiated: false,
        clockSkewSeconds: 60,
        requestSigning: { privateKey: spKeys.keyPem, certificate: spKeys.certPem },
      },
    };
    gateway = await startTestGateway({
      issuers: [],
      port: reserved.port,
      roles: standardRoles(),
      rules: [{ name: 'sts-admins administer', match: { source: PROVIDER, conditions: [{ claim: 'groups', op: 'contains', value: 'sts-admins', ignoreCase: false }] }, roles: ['admin'] }],
      config: { publicUrl, providers: [provider], browser: { sessionTtlSeconds: 3600, allowedReturnOrigins: [], cookieName: 'stsgate_session' } },
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await idp?.close();
  });

  it('signs alice in through SimpleSAMLphp\'s login form; the rules grant admin from her groups; the AWS SDK accepts the keys', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${publicUrl}/`);
      await page.getByRole('link', { name: 'Sign in with SimpleSAMLphp' }).click();
      await page.waitForURL((url) => url.origin === idp.baseUrl && url.pathname.includes('loginuserpass'));
      await page.locator('input[name="username"]').fill('alice');
      await page.locator('input[name="password"]').fill('password');
      await page.locator('button[type="submit"], input[type="submit"]').first().click();
      // SimpleSAMLphp's page POSTs the Response to the ACS; the gateway parks it and 303s to its callback, then to /.
      await page.waitForURL(`${publicUrl}/`, { timeout: 15_000 });
      await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Your account');
      await expect(page.getByText('Signed in as').textContent()).resolves.toContain('alice@acme.com');
      const audit = gateway.logs().filter((l) => l.log === 'audit' && l.event === 'login');
      expect(audit.at(-1)).toMatchObject({ provider: PROVIDER, subject: 'alice@acme.com' });

      await page.getByLabel('admin').check();
      await page.getByRole('button', { name: 'Show credentials' }).click();
      await page.waitForURL(`${publicUrl}/?role=admin`);
      const json = JSON.parse((await page.locator('#json').textContent())!) as Record<string, string>;
      const sts = new STSClient({
        endpoint: publicUrl,
        region: 'us-east-1',
        maxAttempts: 1,
        credentials: { accessKeyId: json.AccessKeyId!, secretAccessKey: json.SecretAccessKey!, sessionToken: json.SessionToken! },
      });
      const who = await sts.send(new GetCallerIdentityCommand({}));
      expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/admin/alice@acme.com`);
    } finally {
      await context.close();
    }
  });

  it('refuses bob, whose groups the rules grant nothing: a page naming his account, an audit line, no session', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${publicUrl}/login/${PROVIDER}`);
      await page.locator('input[name="username"]').fill('bob');
      await page.locator('input[name="password"]').fill('password');
      await page.locator('button[type="submit"], input[type="submit"]').first().click();
      await page.waitForURL((url) => url.origin === publicUrl && url.pathname === `/callback/${PROVIDER}`, { timeout: 15_000 });
      await expect(page.locator('p.error').textContent()).resolves.toContain('as bob@acme.com');
      expect((await context.cookies(publicUrl)).filter((c) => c.name === 'stsgate_session')).toEqual([]);
      expect(gateway.logs().filter((l) => l.log === 'audit').at(-1)).toMatchObject({ event: 'login_failed', provider: PROVIDER, reason: 'no_role' });
    } finally {
      await context.close();
    }
  });

  it('runs `stsgate login --provider ssp` with Chromium as the browser; `stsgate credentials` then gives keys the AWS SDK accepts', async () => {
    const home = mkdtempSync(join(tmpdir(), 'stsgate-saml-cli-'));
    const context = await browser.newContext();
    try {
      const cli = runCli(['login', '--gateway', publicUrl, '--provider', PROVIDER, '--no-browser'], { HOME: home, XDG_CONFIG_HOME: home, NODE_ENV: undefined });
      const [address] = await cli.waitFor(/http:\/\/127\.0\.0\.1:\d+\/cli\/login\?\S+/, 'stderr');
      const tab = await context.newPage();
      await tab.goto(address);
      await tab.getByRole('button', { name: 'Yes, sign in with SimpleSAMLphp' }).click();
      await tab.locator('input[name="username"]').fill('alice');
      await tab.locator('input[name="password"]').fill('password');
      await tab.locator('button[type="submit"], input[type="submit"]').first().click();
      await tab.waitForURL((url) => url.pathname === '/callback' && url.origin !== publicUrl, { timeout: 15_000 });
      expect(await cli.exited).toBe(0);
      expect(cli.stderr()).toContain('alice@acme.com');
      const credentials = runCli(['credentials', '--role', 'admin', '--gateway', publicUrl], { HOME: home, XDG_CONFIG_HOME: home, NODE_ENV: undefined });
      expect(await credentials.exited).toBe(0);
      const json = JSON.parse(credentials.stdout()) as Record<string, string>;
      const sts = new STSClient({ endpoint: publicUrl, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: json.AccessKeyId!, secretAccessKey: json.SecretAccessKey!, sessionToken: json.SessionToken! } });
      const who = await sts.send(new GetCallerIdentityCommand({}));
      expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/admin/alice@acme.com`);
    } finally {
      await context.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
