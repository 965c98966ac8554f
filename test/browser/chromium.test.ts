/**
 * The browser login once in a real browser: Debian's headless Chromium (/usr/bin/chromium, installed by
 * .ci/run; never a downloaded one) driven by playwright-core, against the login environment on the real
 * Redis. It clicks through the start page, oidc-provider's login page (standing in for Google), the role
 * picker and the credentials view, checks the keys with the AWS SDK, the copy button, and the basics of
 * accessibility (labels, button names, keyboard focus order, focus moved to the credentials, the focus
 * ring's measured contrast), and saves a screenshot of the credentials view to
 * test-artifacts/credentials.png; shows the roles' details, the AWS profile, a role not granted in words,
 * and the signed-out notice; gets a target token from the Targets section and verifies it with the JWKS.
 * Then `stsgate login` once with Chromium as the person's browser, confirming on the gateway's page the
 * code the command printed, and the page's AWS profile used by the AWS SDK with that login.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliCommandLine, runCli } from '../support/cli-process.js';
import { parseConfig } from '../../src/config/load.js';
import { redisStoreConfig, standardRoles } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { ACCOUNT_ID } from '../support/common.js';
import { CHROMIUM, launchChromium } from '../support/chromium.js';

const available = existsSync(CHROMIUM);
if (!available) console.warn(`skipping the Chromium tests: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run does)`);

/**
 * The page globals that the functions given to `page.evaluate` use: they run in Chromium, but this project
 * compiles without the DOM library, so the little they touch is declared here (module scope only).
 */
interface PageElement {
  tagName: string;
  parentElement: PageElement | null;
  type?: string;
  value?: string;
  id: string;
  hidden: boolean;
  textContent: string | null;
  innerText: string;
  outerHTML: string;
  labels?: { length: number } | null;
  getAttribute(name: string): string | null;
}
declare const document: { activeElement: PageElement | null; querySelector(selector: string): PageElement | null; querySelectorAll(selector: string): Iterable<PageElement> };
declare const navigator: { clipboard: { readText(): Promise<string> } };
declare function getComputedStyle(element: PageElement): { outlineColor: string; outlineStyle: string; outlineWidth: string; backgroundColor: string };

/** The description the deployer role is configured with, shown beside it on the page. */
const DEPLOYER_DESCRIPTION = 'Deploys acme/app from its main branch';

/** Relative luminance of an sRGB colour given as 0-255 channels (the WCAG 2.x definition). */
function relativeLuminance([r, g, b]: readonly number[]): number {
  const linear = (c: number) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * linear(r!) + 0.7152 * linear(g!) + 0.0722 * linear(b!);
}

/** WCAG 2.x contrast ratio, (L1 + 0.05) / (L2 + 0.05) with L1 the lighter. */
function contrastRatio(a: readonly number[], b: readonly number[]): number {
  const [light, dark] = [relativeLuminance(a), relativeLuminance(b)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

/** `rgb(r, g, b)` or `rgba(r, g, b, a)` as Chromium computes colours; only opaque colours are expected here. */
function rgb(css: string): number[] {
  const match = /^rgba?\((\d+), (\d+), (\d+)(?:, ([\d.]+))?\)$/.exec(css);
  if (!match) throw new Error(`not a computed colour: ${css}`);
  if (match[4] !== undefined && Number(match[4]) !== 1) throw new Error(`a translucent colour: ${css}`);
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

describe.skipIf(!available)('a browser login in headless Chromium', () => {
  let env: LoginEnvironment;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** The AWS profile the credentials view showed for deployer, used with the AWS SDK after `stsgate login` below. */
  let profileText = '';

  beforeAll(async () => {
    // One target (a Kubernetes API server trusting the gateway) on the reader role, for the page's Targets section.
    const targets = parseConfig(
      'public_url: https://sts.example.com\naccount_id: "123456789012"\ntargets:\n  - name: kube\n    kind: kubernetes\n    audience: kubernetes\n    kubernetes: { username: "{claims.email}" }\n',
      {},
      process.cwd(),
    ).targets!;
    const roles = standardRoles().map((role) => (role.name === 'reader' ? { ...role, targets: ['kube'] } : role.name === 'deployer' ? { ...role, description: DEPLOYER_DESCRIPTION } : role));
    env = await startLoginEnvironment({ store: redisStoreConfig(), gateway: { roles, targets } });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
    // The copy button uses the async clipboard API; loopback http is a secure context, so it is allowed once granted.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.gateway.url });
    page = await context.newPage();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await env?.close();
  });

  /**
   * Waits (up to 5 s) for a page's `autofocus` to put the focus on `#id`, and fails if it never does.
   * Browsers apply autofocus at the page's next rendering update, which may come after the load event that
   * a navigation or reload waits for: read at once, the focus can still be on the body.
   */
  const autofocusOn = async (id: string) => {
    await page.waitForFunction((expected) => document.activeElement?.id === expected, id, { timeout: 5_000 });
  };

  /** The accessible name of the focused element (its label text, aria-label or text). */
  const focused = () =>
    page.evaluate(() => {
      const element = document.activeElement;
      return element ? (element.getAttribute('aria-label') ?? element.textContent ?? '').trim() : '';
    });

  /** The focused element's id and its focus ring: outline style, width and colour, and the colour behind the ring. */
  const focusRing = () =>
    page.evaluate(() => {
      const element = document.activeElement!;
      const style = getComputedStyle(element);
      // The ring is drawn outside the element (outline-offset), so what lies next to it is the background
      // of the nearest ancestor that paints one; the page itself is white when none does.
      let behind = 'rgb(255, 255, 255)';
      for (let node = element.parentElement; node; node = node.parentElement) {
        const background = getComputedStyle(node).backgroundColor;
        if (background !== 'rgba(0, 0, 0, 0)' && background !== 'transparent') {
          behind = background;
          break;
        }
      }
      return { id: element.id || element.tagName, style: style.outlineStyle, width: style.outlineWidth, colour: style.outlineColor, behind };
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

  it('lists each role with its description, ARN and longest session, read out with its radio button', async () => {
    const about = (name: string) => page.getByLabel(name, { exact: true }).evaluate((input) => document.querySelector(`#${(input as PageElement).getAttribute('aria-describedby')!}`)!.innerText.replace(/\s+/g, ' ').trim());
    await expect(about('deployer')).resolves.toBe(`${DEPLOYER_DESCRIPTION} ARN arn:aws:iam::${ACCOUNT_ID}:role/deployer. Credentials last up to 2 hours.`);
    await expect(about('reader')).resolves.toBe(`ARN arn:aws:iam::${ACCOUNT_ID}:role/reader. Credentials last up to 1 hour.`);
    // aria-describedby: the description is the radio button's accessible description, its name stays the role.
    await expect(page.getByRole('radio', { name: 'deployer', exact: true }).count()).resolves.toBe(1);
  });

  it('picks a role and shows the credentials as export lines and JSON that the AWS SDK accepts', async () => {
    await page.getByLabel('deployer').check();
    await page.getByRole('button', { name: 'Show credentials' }).click();
    await page.waitForURL(`${env.gateway.url}/?role=deployer`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Credentials for deployer');
    // The focus has moved to the credentials: keyboard and screen-reader users land on what they asked for.
    await autofocusOn('credentials-heading');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('credentials-heading');
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

  it('shows an AWS profile for the role: credential_process with stsgate credentials, the gateway as STS endpoint, a region; the copy button copies it', async () => {
    profileText = (await page.locator('#aws-profile').textContent())!;
    expect(profileText).toBe(
      [
        '[profile deployer]',
        `credential_process = stsgate credentials --role deployer --gateway ${env.publicUrl}`,
        'region = us-east-1',
        'services = stsgate-deployer',
        '',
        '[services stsgate-deployer]',
        'sts =',
        `  endpoint_url = ${env.publicUrl}`,
      ].join('\n'),
    );
    await expect(page.getByRole('heading', { level: 3, name: 'AWS profile for ~/.aws/config' }).isVisible()).resolves.toBe(true);
    await page.evaluate(() => {
      document.querySelector('#copy-status')!.textContent = '';
    });
    await page.getByRole('button', { name: 'Copy the profile' }).click();
    await page.locator('#copy-status', { hasText: /./ }).waitFor({ timeout: 5_000 });
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(profileText);
  });

  it('saves a screenshot of the credentials view to test-artifacts/credentials.png', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const path = `${ARTIFACTS}credentials.png`;
    await page.screenshot({ path, fullPage: true });
    expect(existsSync(path)).toBe(true);
  });

  it('reaches the roles, the credentials and the copy buttons with Tab and Shift+Tab from the credentials, where a fresh load puts the focus', async () => {
    await page.reload();
    await autofocusOn('credentials-heading');
    const current = () =>
      page.evaluate(() => {
        const element = document.activeElement;
        if (!element) return '';
        if (element.tagName === 'INPUT') return `${element.type ?? ''} ${element.value ?? ''}`;
        return element.id ? `#${element.id}` : (element.textContent ?? '').trim();
      });
    expect(await current()).toBe('#credentials-heading');
    const walk = async (key: string, steps: number) => {
      const order: string[] = [];
      for (let i = 0; i < steps; i++) {
        await page.keyboard.press(key);
        order.push(await current());
      }
      return order;
    };
    expect(await walk('Tab', 6)).toEqual(['#shell', 'Copy the export lines', '#json', 'Copy the JSON', '#aws-profile', 'Copy the profile']);
    await page.locator('#credentials-heading').focus();
    // Radio buttons are one tab stop (arrow keys move inside the group).
    expect(await walk('Shift+Tab', 5)).toEqual(['Show credentials', 'radio deployer', 'Sign out', 'stsgate', 'Skip to the main content']);
  });

  it('draws a focus ring with at least 3:1 contrast against the background next to it (WCAG 2.x SC 1.4.11), measured', async () => {
    await page.reload();
    await autofocusOn('credentials-heading');
    // The heading that took the focus on load shows the ring too.
    const rings = [await focusRing()];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      rings.push(await focusRing());
    }
    await page.locator('#credentials-heading').focus();
    for (let i = 0; i < 3; i++) {
      await page.keyboard.press('Shift+Tab');
      rings.push(await focusRing());
    }
    // The heading, the three pre blocks, their copy buttons, Show credentials, the radio button and Sign out.
    expect(rings.map((r) => r.id)).toEqual(['credentials-heading', 'shell', 'BUTTON', 'json', 'BUTTON', 'aws-profile', 'BUTTON', 'BUTTON', 'role-0', 'BUTTON']);
    for (const ring of rings) {
      expect(ring.style, ring.id).toBe('solid');
      expect(parseFloat(ring.width), ring.id).toBeGreaterThanOrEqual(2);
      expect(contrastRatio(rgb(ring.colour), rgb(ring.behind)), `${ring.id}: ${ring.colour} on ${ring.behind}`).toBeGreaterThanOrEqual(3);
    }
  });

  it('a role the account is not granted, asked for on the page: says so in words, with the roles it has, and takes the focus', async () => {
    await page.goto(`${env.gateway.url}/`);
    // The page's own form asking for a role nobody offered it (an old tab after the rules changed, an edited form).
    await page.evaluate(() => {
      document.querySelector('input[value="reader"]')!.value = 'admin';
    });
    await page.locator('input[value="admin"]').check();
    const [response] = await Promise.all([page.waitForResponse((r) => r.url() === `${env.gateway.url}/?role=admin`), page.getByRole('button', { name: 'Show credentials' }).click()]);
    expect(response.status()).toBe(403);
    await page.getByRole('heading', { level: 2, name: 'Role not granted' }).waitFor({ timeout: 5_000 });
    await autofocusOn('denied-heading');
    await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('denied-heading');
    const text = (await page.locator('.denied').textContent())!.replace(/\s+/g, ' ');
    expect(text).toContain('This account is not allowed the role admin, so no credentials were made for it.');
    expect(text).toContain('The roles this account may use are: deployer, reader.');
    expect(text).toContain('If you need it, ask the gateway’s administrators and name this account: alice@acme.com (google:1001).');
    expect(await page.locator('#shell').count()).toBe(0);
  });

  it('a role the account is not granted, from the address bar: the same words, nothing asked of the rules', async () => {
    await page.goto(`${env.gateway.url}/?role=nope`);
    const text = (await page.locator('.denied').textContent())!.replace(/\s+/g, ' ');
    expect(text).toContain('This account is not allowed the role nope, so no credentials were made for it.');
    expect(text).toContain('The roles this account may use are: deployer, reader.');
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

  it('signs out with the Sign out button (the form POST from the page is accepted): the session ends, and the page says issued keys stay valid', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${env.gateway.url}/?signed_out=1`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in');
    const notice = page.getByRole('status').filter({ has: page.getByRole('heading', { level: 2, name: 'You are signed out' }) });
    const text = (await notice.textContent())!.replace(/\s+/g, ' ');
    expect(text).toContain('Credentials issued before you signed out still work until they expire: signing out does not cancel them.');
    expect(text).toContain('An administrator runs stsgate revoke --subject with your account’s subject');
    expect(await unnamed()).toEqual([]);
    const cookies = await context.cookies(env.gateway.url);
    expect(cookies.filter((c) => c.name === 'stsgate_session')).toEqual([]);
  });

  /**
   * The AWS profile the credentials view showed, pasted into an AWS config file as it is (only `stsgate`
   * becomes this checkout's command, with the login's config folder): the AWS SDK finds the region, runs
   * the credential process and sends GetCallerIdentity to the gateway, named by the profile alone.
   */
  async function expectProfileWorks(home: string): Promise<void> {
    expect(profileText).toMatch(/^\[profile deployer\]\ncredential_process = stsgate /);
    const configFile = join(home, 'aws-config');
    const credentialsFile = join(home, 'aws-credentials');
    writeFileSync(configFile, `${profileText.replace('credential_process = stsgate ', `credential_process = env XDG_CONFIG_HOME=${home} ${cliCommandLine().join(' ')} `)}\n`);
    writeFileSync(credentialsFile, '');
    const names = ['AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_PROFILE', 'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_STS', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];
    const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
    for (const name of names) delete process.env[name];
    Object.assign(process.env, { AWS_CONFIG_FILE: configFile, AWS_SHARED_CREDENTIALS_FILE: credentialsFile, AWS_PROFILE: 'deployer' });
    try {
      const sts = new STSClient({ maxAttempts: 1 });
      await expect(sts.config.region()).resolves.toBe('us-east-1');
      const who = await sts.send(new GetCallerIdentityCommand({}));
      expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/alice@acme.com`);
    } finally {
      for (const name of names) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }
  }

  it('runs `stsgate login` with Chromium as the person\'s browser, after which the page\'s AWS profile works with the AWS SDK', async () => {
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
      await expectProfileWorks(home);
    } finally {
      await own.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
