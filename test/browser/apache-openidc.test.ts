/**
 * A second, independent relying party: Apache httpd with mod_auth_openidc (Debian's packages) protects a
 * page with stsgate as its OpenID Provider. Headless Chromium opens the page, signs in on stsgate's
 * sign-in page through the Google stand-in, and the protected backend receives the user's roles and
 * subject in the headers mod_auth_openidc passes on.
 */
import { existsSync } from 'node:fs';
import { type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApacheOpenIdc, apacheAvailable } from '../support/apache-openidc.js';
import { redisStoreConfig } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { opClient, WEBAPP_SECRET } from '../support/op.js';
import { CHROMIUM, launchChromium } from '../support/chromium.js';

const available = existsSync(CHROMIUM) && apacheAvailable;
if (!available) console.warn('skipping the mod_auth_openidc test: it needs /usr/bin/chromium, apache2 and libapache2-mod-auth-openidc (.ci/run installs them)');

describe.skipIf(!available)('Apache mod_auth_openidc signs in with stsgate', () => {
  let env: LoginEnvironment;
  let apache: ApacheOpenIdc;
  let browser: Browser;

  beforeAll(async () => {
    apache = await ApacheOpenIdc.reserve();
    const client = opClient('apache', { name: 'Apache', secret: WEBAPP_SECRET, redirectUris: [apache.redirectUri], postLogoutRedirectUris: [] });
    env = await startLoginEnvironment({ store: redisStoreConfig(), gateway: { clients: [client] } });
    await apache.start({ issuer: env.publicUrl, clientId: 'apache', secret: WEBAPP_SECRET });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await apache?.close();
    await env?.close();
  });

  it('the protected page sees the roles stsgate granted, as OIDC_CLAIM_ headers', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${apache.url}/app/`);
    await page.waitForURL((url) => url.pathname.startsWith('/oauth2/interaction/'));
    await page.getByRole('link', { name: 'Sign in with Google' }).click();
    await page.waitForURL((url) => url.origin === env.google.issuer && url.pathname.startsWith('/interaction/'));
    await page.getByRole('button', { name: 'Sign in as alice' }).click();
    await page.waitForURL(`${apache.url}/app/`, { timeout: 10_000 }).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\nat ${page.url()}: ${(await page.content()).slice(0, 1000)}\n${apache.errorLog()}`);
    });
    const seen = JSON.parse(await page.locator('body').innerText()) as { headers: Record<string, string> };
    expect(seen.headers.oidc_claim_sub).toBe('google:1001');
    expect(seen.headers.oidc_claim_roles).toBe('deployer,reader');
    expect(seen.headers.oidc_claim_email).toBe('alice@acme.com');
  });
});
