/**
 * A directory login in real headless Chromium (issue 15): a person opens the gateway, picks the
 * directory, types a username and password into stsgate's own sign-in form (served by the gateway,
 * checked against a real OpenLDAP slapd over LDAPS), lands on the account page with the role that the
 * rules grant through nested groups, and the credentials the page shows pass the AWS SDK's
 * GetCallerIdentity. A wrong password shows the form again with the same words as an unknown user.
 */
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LdapProviderConfig, RuleConfig } from '../../src/config/types.js';
import { reservePublicUrl } from '../support/browser-login.js';
import { ACCOUNT_ID } from '../support/common.js';
import { startTestGateway, standardRoles, type TestGateway } from '../support/gateway.js';
import { groupDn, groupLdif, personDn, personLdif, slapdSettings, slapdUnavailable, startSlapd, type Slapd } from '../support/slapd.js';
import { chromiumMissing, launchChromium } from '../support/chromium.js';

const unavailable = slapdUnavailable() ?? chromiumMissing();
if (unavailable) console.warn(`ldap-chromium.test.ts: skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('a directory login in Chromium', () => {
  let slapd: Slapd;
  let gateway: TestGateway;
  let browser: Browser;
  let publicUrl: string;

  beforeAll(async () => {
    slapd = await startSlapd();
    await slapd.add(
      [
        personLdif('alice', { password: 'alice-pw', mail: 'alice@example.org', name: 'Alice Liddell' }),
        // alice is in sre, sre in ops, ops in platform: only the nested search finds platform.
        groupLdif('sre', [personDn('alice')]),
        groupLdif('ops', [groupDn('sre')]),
        groupLdif('platform', [groupDn('ops')]),
      ].join(''),
    );
    const provider: LdapProviderConfig = {
      id: 'corp',
      use: 'ldap',
      displayName: 'Corporate directory',
      // memberOf off: only the group search, nested level by level, finds platform.
      ldap: slapdSettings(slapd, { groups: { ...slapdSettings(slapd).groups, memberOf: false } }),
    };
    const rules: RuleConfig[] = [{ name: 'platform, through nested groups, deploys', match: { source: 'corp', conditions: [{ claim: 'groups', op: 'contains', value: 'platform', ignoreCase: false }] }, roles: ['deployer'] }];
    const reserved = await reservePublicUrl();
    publicUrl = reserved.publicUrl;
    gateway = await startTestGateway({ issuers: [], port: reserved.port, roles: standardRoles(), rules, config: { publicUrl, providers: [provider] } });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await slapd?.stop();
  });

  it('alice signs in on the form; nested groups grant deployer; the page\'s keys pass GetCallerIdentity', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${publicUrl}/`);
      await page.getByRole('link', { name: 'Sign in with Corporate directory' }).click();
      await page.waitForURL((url) => url.pathname === '/login/corp/password');

      // A wrong password: the form again, with the words an unknown user gets too.
      await page.locator('input[name="username"]').fill('alice');
      await page.locator('input[name="password"]').fill('not-her-password');
      await page.locator('button[type="submit"], input[type="submit"]').first().click();
      await page.waitForLoadState();
      const refused = await page.locator('main').innerText();
      await page.locator('input[name="username"]').fill('nobody-here');
      await page.locator('input[name="password"]').fill('whatever');
      await page.locator('button[type="submit"], input[type="submit"]').first().click();
      await page.waitForLoadState();
      expect(await page.locator('main').innerText()).toBe(refused);

      await page.locator('input[name="username"]').fill('alice');
      await page.locator('input[name="password"]').fill('alice-pw');
      await page.locator('button[type="submit"], input[type="submit"]').first().click();
      await page.waitForURL(`${publicUrl}/`, { timeout: 15_000 });
      await expect(page.getByText('Signed in as').textContent()).resolves.toContain('alice@example.org');

      await page.getByLabel('deployer').check();
      await page.getByRole('button', { name: 'Show credentials' }).click();
      await page.waitForURL(`${publicUrl}/?role=deployer`);
      const json = JSON.parse((await page.locator('#json').textContent())!) as Record<string, string>;
      const sts = new STSClient({ endpoint: publicUrl, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: json.AccessKeyId!, secretAccessKey: json.SecretAccessKey!, sessionToken: json.SessionToken! } });
      const who = await sts.send(new GetCallerIdentityCommand({}));
      expect(who.Arn).toMatch(new RegExp(`^arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/`));
      expect(gateway.logs().filter((l) => l.log === 'audit' && l.event === 'login').at(-1)).toMatchObject({ provider: 'corp' });
    } finally {
      await context.close();
    }
  }, 90_000);
});
