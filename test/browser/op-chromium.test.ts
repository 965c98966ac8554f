/**
 * "Sign in with stsgate" in a real browser: Debian's headless Chromium (/usr/bin/chromium, as in
 * chromium.test.ts) opens a small relying party (test/support/relying-party-app.ts, openid-client), which
 * sends it to stsgate's OpenID Provider; the person picks Google on stsgate's sign-in page, signs in at the
 * stand-in, and lands back at the app, which shows the roles and groups stsgate gave it. A second visit is
 * not asked again; RP-initiated logout signs out of both.
 */
import { existsSync } from 'node:fs';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStoreConfig } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { opClient, WEBAPP_SECRET } from '../support/op.js';
import { RelyingPartyApp } from '../support/relying-party-app.js';
import { CHROMIUM, launchChromium } from '../support/chromium.js';

const available = existsSync(CHROMIUM);
if (!available) console.warn(`skipping the Chromium OpenID Provider test: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run does)`);

describe.skipIf(!available)('Sign in with stsgate, in headless Chromium', () => {
  let env: LoginEnvironment;
  let app: RelyingPartyApp;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    app = await RelyingPartyApp.start();
    const client = opClient('testapp', { name: 'Test App', secret: WEBAPP_SECRET, redirectUris: [app.redirectUri], postLogoutRedirectUris: [app.postLogoutRedirectUri] });
    env = await startLoginEnvironment({ store: redisStoreConfig(), gateway: { clients: [client] } });
    await app.connect(env.publicUrl, 'testapp', WEBAPP_SECRET);
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await env?.close();
    await app?.close();
  });

  it('the app sends the browser to stsgate, which asks which account to use, and comes back with roles', async () => {
    await page.goto(app.url);
    await page.waitForURL((url) => url.pathname.startsWith('/oauth2/interaction/'));
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in');
    await expect(page.locator('main').textContent()).resolves.toContain('to continue to Test App');
    await page.getByRole('link', { name: 'Sign in with Google' }).click();
    await page.waitForURL((url) => url.origin === env.google.issuer && url.pathname.startsWith('/interaction/'));
    await page.getByRole('button', { name: 'Sign in as alice' }).click();
    await page.waitForURL(`${app.url}/`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Hello Alice Liddell');
    await expect(page.locator('#sub').textContent()).resolves.toBe('google:1001');
    await expect(page.locator('#roles').textContent()).resolves.toBe('deployer, reader');
  });

  it('a second sign-in to the app is not asked again: the stsgate session answers', async () => {
    // The app forgets the person (its own cookie); stsgate's session stays (cookies are per host, not port).
    await page.context().clearCookies({ name: 'rp' });
    const visited: string[] = [];
    page.on('request', (request) => visited.push(new URL(request.url()).pathname));
    await page.goto(app.url);
    await page.waitForURL(`${app.url}/`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Hello Alice Liddell');
    expect(visited.some((path) => path.startsWith('/oauth2/authorize'))).toBe(true);
    expect(visited.some((path) => path.startsWith('/login/') || path.startsWith('/oauth2/interaction/'))).toBe(false);
  });

  it('after signing out of stsgate, another person signs in to the app (the old provider session gives way)', async () => {
    await page.goto(`${env.gateway.url}/`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${env.gateway.url}/?signed_out=1`);
    await page.context().clearCookies({ name: 'rp' });
    await page.goto(app.url);
    await page.waitForURL((url) => url.pathname.startsWith('/oauth2/interaction/'));
    await page.getByRole('link', { name: 'Sign in with Okta' }).click();
    await page.waitForURL((url) => url.origin === env.okta.issuer && url.pathname.startsWith('/interaction/'));
    await page.getByRole('button', { name: 'Sign in as carol' }).click();
    await page.waitForURL(`${app.url}/`, { timeout: 10_000 }).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\nstopped at ${page.url()}: ${(await page.content()).slice(0, 1500)}`);
    });
    await expect(page.locator('#sub').textContent()).resolves.toBe('okta:c-1');
    await expect(page.locator('#roles').textContent()).resolves.toBe('admin');
  });

  it('RP-initiated logout: stsgate asks, signs out everywhere, and returns to the app', async () => {
    const context = await browser.newContext();
    const fresh = await context.newPage();
    await fresh.goto(app.url);
    await fresh.getByRole('link', { name: 'Sign in with GitHub' }).click();
    await fresh.getByRole('button', { name: 'Sign in as octocat' }).click();
    await fresh.waitForURL(`${app.url}/`);
    await expect(fresh.locator('#sub').textContent()).resolves.toBe('github:583231');
    await expect(fresh.locator('#groups').textContent()).resolves.toContain('acme/deployers');
    await fresh.goto(`${app.url}/logout`);
    await fresh.getByRole('heading', { level: 1, name: 'Sign out' }).waitFor();
    await fresh.getByRole('button', { name: 'Sign out everywhere' }).click();
    await fresh.waitForURL(`${app.url}/signed-out`);
    await fresh.goto(`${env.gateway.url}/`);
    await expect(fresh.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in');
    await context.close();
  });
});
