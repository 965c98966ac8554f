/**
 * The browser login once in a real browser: Debian's headless Chromium (/usr/bin/chromium, installed by
 * .ci/run; never a downloaded one) driven by playwright-core, against the login environment on the real
 * Redis. It clicks through the start page, oidc-provider's login page (standing in for Google), the role
 * picker and the credentials view, checks the keys with the AWS SDK, the copy button, and the basics of
 * accessibility (labels, button names, keyboard focus order), and saves a screenshot of the credentials
 * view to test-artifacts/credentials.png; gets a target token from the Targets section and verifies it
 * with the JWKS. Then `stsgate login` once with Chromium as the person's browser, confirming on the
 * gateway's page the code the command printed.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli-process.js';
import { parseConfig } from '../../src/config/load.js';
import { redisStoreConfig, standardRoles } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { ACCOUNT_ID } from '../support/common.js';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available) console.warn(`skipping the Chromium tests: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run does)`);

/**
 * The page globals that the functions given to `page.evaluate` use: they run in Chromium, but this project
 * compiles without the DOM library, so the little they touch is declared here (module scope only).
 */
interface PageElement {
  tagName: string;
  type?: string;
  value?: string;
  id: string;
  hidden: boolean;
  textContent: string | null;
  outerHTML: string;
  labels?: { length: number } | null;
  getAttribute(name: string): string | null;
}
declare const document: { activeElement: PageElement | null; querySelectorAll(selector: string): Iterable<PageElement> };
declare const navigator: { clipboard: { readText(): Promise<string> } };

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

describe.skipIf(!available)('a browser login in headless Chromium', () => {
  let env: LoginEnvironment;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    // One target (a Kubernetes API server trusting the gateway) on the reader role, for the page's Targets section.
    const targets = parseConfig(
      'public_url: https://sts.example.com\naccount_id: "123456789012"\ntargets:\n  - name: kube\n    kind: kubernetes\n    audience: kubernetes\n    kubernetes: { username: "{claims.email}" }\n',
      {},
      process.cwd(),
    ).targets!;
    env = await startLoginEnvironment({ store: redisStoreConfig(), gateway: { roles: standardRoles().map((role) => (role.name === 'reader' ? { ...role, targets: ['kube'] } : role)), targets } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // No sandbox (containers run as root), and nothing that reaches out to the network on its own.
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
    // The copy button uses the async clipboard API; loopback http is a secure context, so it is allowed once granted.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.gateway.url });
    page = await context.newPage();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await env?.close();
  });

  /** The accessible name of the focused element (its label text, aria-label or text). */
  const focused = () =>
    page.evaluate(() => {
      const element = document.activeElement;
      return element ? (element.getAttribute('aria-label') ?? element.textContent ?? '').trim() : '';
    });

  /** Form controls without a label, and buttons or links without a name, on the current page. */
  const unnamed = () =>
    page.evaluate(() => {
      const problems: string[] = [];
      for (const input of document.querySelectorAll('input, select, textarea')) {
        if (input.type === 'hidden') continue;
        const labelled = input.labels?.length || input.getAttribute('aria-label') || input.getAttribute('aria-labelledby');
        if (!labelled) problems.push(`${input.outerHTML} has no label`);
      }
      for (const control of document.querySelectorAll('button, a[href]')) {
        if (control.hidden) continue;
        if (!(control.getAttribute('aria-label') ?? control.textContent ?? '').trim()) problems.push(`${control.outerHTML} has no name`);
      }
      return problems;
    });

  it('shows the start page with a login button per provider, reachable with Tab in reading order', async () => {
    await page.goto(`${env.gateway.url}/`);
    await expect(page.title()).resolves.toBe('Sign in · stsgate');
    expect(await unnamed()).toEqual([]);
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      order.push(await focused());
    }
    expect(order).toEqual(['Skip to the main content', 'stsgate', 'Sign in with Google', 'Sign in with Okta', 'Sign in with GitHub', 'Sign in with Facebook']);
  });

  it('signs in with Google: the login button, then the user on oidc-provider\'s page, then back', async () => {
    await page.getByRole('link', { name: 'Sign in with Google' }).click();
    await page.waitForURL((url) => url.origin === env.google.issuer && url.pathname.startsWith('/interaction/'));
    await page.getByRole('button', { name: 'Sign in as alice' }).click();
    await page.waitForURL(`${env.gateway.url}/`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Your account');
    await expect(page.getByText('Signed in as').textContent()).resolves.toContain('alice@acme.com (google:1001)');
    expect(await unnamed()).toEqual([]);
  });

  it('picks a role and shows the credentials as export lines and JSON that the AWS SDK accepts', async () => {
    await page.getByLabel('deployer').check();
    await page.getByRole('button', { name: 'Show credentials' }).click();
    await page.waitForURL(`${env.gateway.url}/?role=deployer`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Credentials for deployer');
    const shell = (await page.locator('#shell').textContent())!;
    expect(shell).toMatch(/^export AWS_ACCESS_KEY_ID=ASIA[A-Z2-7]{16}\nexport AWS_SECRET_ACCESS_KEY=\S+\nexport AWS_SESSION_TOKEN=\S+\nexport STSGATE_ACCESS_TOKEN=\S+$/);
    const json = JSON.parse((await page.locator('#json').textContent())!) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual(['Version', 'AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration']);
    expect(shell).toContain(`AWS_ACCESS_KEY_ID=${json.AccessKeyId as string}`);
    const sts = new STSClient({
      endpoint: env.gateway.url,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: { accessKeyId: json.AccessKeyId as string, secretAccessKey: json.SecretAccessKey as string, sessionToken: json.SessionToken as string },
    });
    const who = await sts.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/alice@acme.com`);
    expect(await unnamed()).toEqual([]);
  });

  it('copies the export lines with the copy button (the script shows it; the status says so)', async () => {
    const button = page.getByRole('button', { name: 'Copy the export lines' });
    await expect(button.isVisible()).resolves.toBe(true);
    await button.click();
    // The status is written when the clipboard promise settles.
    await page.locator('#copy-status', { hasText: /./ }).waitFor({ timeout: 5_000 });
    await expect(page.locator('#copy-status').textContent()).resolves.toBe('Copied to the clipboard.');
    const clipboard = await page.evaluate(() => navigator.clipboard.readText());
    expect(clipboard).toBe(await page.locator('#shell').textContent());
  });

  it('saves a screenshot of the credentials view to test-artifacts/credentials.png', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const path = `${ARTIFACTS}credentials.png`;
    await page.screenshot({ path, fullPage: true });
    expect(existsSync(path)).toBe(true);
  });

  it('reaches the roles, the credentials and the copy buttons with Tab', async () => {
    // A fresh load, so sequential focus starts at the top of the page (not at the button just clicked).
    await page.reload();
    const order: string[] = [];
    for (let i = 0; i < 12; i++) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => {
        const element = document.activeElement;
        if (!element) return '';
        if (element.tagName === 'INPUT') return `${element.type ?? ''} ${element.value ?? ''}`;
        return element.id ? `#${element.id}` : (element.textContent ?? '').trim();
      }));
    }
    // Radio buttons are one tab stop (arrow keys move inside the group).
    expect(order.slice(0, 9)).toEqual(['Skip to the main content', 'stsgate', 'Sign out', 'radio deployer', 'Show credentials', '#shell', 'Copy the export lines', '#json', 'Copy the JSON']);
  });

  it('opened from the address bar (Sec-Fetch-Site: none), /?role=reader shows no credentials until Show credentials is pressed', async () => {
    await page.goto(`${env.gateway.url}/?role=reader`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Your account');
    expect(await page.locator('#shell').count()).toBe(0);
    await expect(page.getByLabel('reader').isChecked()).resolves.toBe(true);
    await expect(page.getByRole('status').first().textContent()).resolves.toContain('Press Show credentials');
    await page.getByRole('button', { name: 'Show credentials' }).click();
    await page.getByRole('heading', { level: 1, name: 'Credentials for reader' }).waitFor({ timeout: 5_000 });
    expect(await page.locator('#shell').textContent()).toMatch(/^export AWS_ACCESS_KEY_ID=ASIA[A-Z2-7]{16}\n/);
  });

  it('lists the targets and shows a token for one when Show token is pressed; the copy button copies it', async () => {
    await page.goto(`${env.gateway.url}/`);
    await expect(page.getByRole('heading', { level: 2, name: 'Targets' }).isVisible()).resolves.toBe(true);
    await page.getByLabel('kube (kubernetes').check();
    await page.getByRole('button', { name: 'Show token' }).click();
    await page.waitForURL(`${env.gateway.url}/?target=kube`);
    await page.getByRole('heading', { level: 2, name: 'Token for kube' }).waitFor({ timeout: 5_000 });
    const token = (await page.locator('#target-token').textContent())!.trim();
    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(`${env.gateway.url}/.well-known/jwks.json`)), { issuer: env.publicUrl, audience: 'kubernetes' });
    expect(protectedHeader.typ).toBe('JWT');
    expect(payload.username).toBe('alice@acme.com');
    expect(await unnamed()).toEqual([]);
    await page.getByRole('button', { name: 'Copy token' }).click();
    await page.locator('#copy-status', { hasText: /./ }).waitFor({ timeout: 5_000 });
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);
  });

  it('signs out with the Sign out button (the form POST from the page is accepted): the session ends', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${env.gateway.url}/`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in');
    const cookies = await context.cookies(env.gateway.url);
    expect(cookies.filter((c) => c.name === 'stsgate_session')).toEqual([]);
  });

  it('runs `stsgate login` with Chromium as the person\'s browser', async () => {
    const home = mkdtempSync(join(tmpdir(), 'stsgate-chromium-cli-'));
    // A fresh profile: the person's browser has no session at the provider yet, so its login page shows.
    const own = await browser.newContext();
    try {
      const cli = runCli(['login', '--gateway', env.gateway.url, '--provider', 'google', '--no-browser'], { HOME: home, XDG_CONFIG_HOME: home, NODE_ENV: undefined });
      const [address] = await cli.waitFor(/http:\/\/127\.0\.0\.1:\d+\/cli\/login\?\S+/, 'stderr');
      const [, code] = await cli.waitFor(/confirm the code ([A-Z2-7]{4}-[A-Z2-7]{4})/, 'stderr');
      const tab = await own.newPage();
      await tab.goto(address);
      // The gateway asks first: the code on its page is the one the command printed; then the button.
      await expect(tab.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in to the stsgate command on this computer?');
      await expect(tab.locator('.confirm-code code').textContent()).resolves.toBe(code);
      await tab.getByRole('button', { name: 'Yes, sign in with Google' }).click();
      await tab.getByRole('button', { name: 'Sign in as alice' }).click();
      // The gateway's 303 to the command's loopback port, which answers once the code is redeemed.
      await tab.waitForURL((url) => url.pathname === '/callback' && url.origin !== env.gateway.url);
      await expect(tab.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Signed in');
      expect(await cli.exited).toBe(0);
      expect(cli.stderr()).toContain('as alice@acme.com (google:1001)');
    } finally {
      await own.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
