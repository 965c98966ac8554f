/**
 * `stsgate demo` as a newcomer runs it (`npm run demo`), in its own process on a free port: it marks itself
 * loudly (stderr banner, every page, the identity provider's page), lets a sample user sign in through the
 * built-in identity provider and get credentials the AWS SDK accepts, denies the user the rules deny, stops
 * on SIGTERM, and refuses to start with NODE_ENV=production. Its configuration, examples/demo.yaml, passes
 * check-config, and its `tests:` describe the sample users as they are.
 */
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfigCommand } from '../../src/commands/check-config.js';
import { loadConfig } from '../../src/config/load.js';
import { SAMPLE_USERS } from '../../src/demo/sample-users.js';
import { TestBrowser } from '../support/browser.js';
import { runCli, runCliToEnd, type CliProcess } from '../support/cli-process.js';
import { submitAtDevelopmentIdp } from '../support/oidc-provider.js';
import { freePort } from '../support/common.js';

const DEMO_CONFIG = fileURLToPath(new URL('../../examples/demo.yaml', import.meta.url));

let demo: CliProcess;
let url: string;

beforeAll(async () => {
  const port = await freePort();
  demo = runCli(['demo', '--port', String(port)], { NODE_ENV: undefined, STSGATE_LOG_LEVEL: 'warn' });
  await demo.waitFor(/Stop with Ctrl-C\./, 'stderr', 30_000);
  url = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  if (demo && demo.child.exitCode === null) {
    demo.child.kill('SIGKILL');
    await demo.exited;
  }
});

/** Signs `user` in at the demo's identity provider; returns the gateway's answer to the callback. */
async function signIn(browser: TestBrowser, user: string): Promise<Response> {
  const start = await browser.get(`${url}/login/demo`);
  expect(start.status).toBe(302);
  const back = await submitAtDevelopmentIdp(browser, new URL(start.headers.get('location')!), { user });
  return browser.get(back);
}

describe('stsgate demo', () => {
  it('says loudly on stderr that it is a demo, with the address, the sample users and their roles', () => {
    const banner = demo.stderr();
    expect(banner).toContain('stsgate DEMO -- NOT FOR PRODUCTION');
    expect(banner).toContain(`Open ${url} and choose "Sign in with Demo IdP"`);
    expect(banner).toMatch(/ada\s+ada@example\.com\s+roles: admin, developer, reader/);
    expect(banner).toMatch(/devon\s+devon@example\.com\s+roles: developer, reader/);
    expect(banner).toMatch(/casey\s+casey@contractor\.example\s+no role: denied/);
  });

  it('serves the sign-in page, marked as a demo, with the demo provider\'s button', async () => {
    const response = await fetch(`${url}/`);
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain('<aside class="notice" aria-label="Notice"><p>DEMO');
    expect(page).toContain('<a class="button" href="/login/demo">Sign in with Demo IdP</a>');
  });

  it('shows the identity provider\'s page, marked as a demo, with one button per sample user', async () => {
    const browser = new TestBrowser();
    const start = await browser.get(`${url}/login/demo`);
    const interaction = await browser.follow(new URL(start.headers.get('location')!), { until: (next) => next.pathname.startsWith('/interaction/') });
    const page = await (await browser.get(interaction.url)).text();
    expect(page).toContain('role="alert"');
    expect(page).toContain('DEMO');
    expect([...page.matchAll(/<button type="submit" name="user" value="(\w+)">/g)].map((m) => m[1])).toEqual(['ada', 'devon', 'casey']);
  });

  it('lets ada sign in, pick a role and get credentials the AWS SDK accepts', async () => {
    const browser = new TestBrowser();
    const callback = await signIn(browser, 'ada');
    expect(callback.status).toBe(303);
    const account = await (await browser.get(`${url}/`)).text();
    for (const role of ['admin', 'developer', 'reader']) expect(account).toContain(`value="${role}"`);
    const view = await (await browser.get(`${url}/?role=admin`, { 'sec-fetch-site': 'same-origin' })).text();
    expect(view).toContain('Credentials for admin');
    expect(view).toContain('DEMO');
    const response = await browser.get(`${url}/v1/credentials?role=admin`);
    expect(response.status).toBe(200);
    const credentials = (await response.json()) as Record<string, string>;
    const sts = new STSClient({ endpoint: url, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: credentials.AccessKeyId!, secretAccessKey: credentials.SecretAccessKey!, sessionToken: credentials.SessionToken! } });
    const who = await sts.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe('arn:aws:sts::123456789012:assumed-role/admin/ada@example.com');
  });

  it('denies casey (unverified email) on a page that names the account, with no session', async () => {
    const browser = new TestBrowser();
    const callback = await signIn(browser, 'casey');
    expect(callback.status).toBe(403);
    const page = await callback.text();
    expect(page).toContain('No access for this account');
    expect(page).toContain('casey@contractor.example (demo:demo-casey)');
    expect(page).toContain('DEMO');
    expect(browser.cookie(url, 'stsgate_session')).toBeUndefined();
  });

  it('stops on SIGTERM with exit code 0', async () => {
    demo.child.kill('SIGTERM');
    expect(await demo.exited).toBe(0);
  });
});

describe('stsgate demo refuses', () => {
  it('to start with NODE_ENV=production: exit 1 and why', async () => {
    const port = await freePort();
    const result = await runCliToEnd(['demo', '--port', String(port)], { NODE_ENV: 'production' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('stsgate: stsgate demo refuses to start with NODE_ENV=production');
    expect(result.stderr).not.toContain('DEMO -- NOT FOR PRODUCTION');
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });

  it('a port that is not a number: exit 2 with the usage', async () => {
    const result = await runCliToEnd(['demo', '--port', 'eighty'], { NODE_ENV: undefined });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--port must be a port number');
  });
});

describe('examples/demo.yaml', () => {
  it('passes check-config, tests included', async () => {
    const lines: string[] = [];
    expect(await checkConfigCommand(DEMO_CONFIG, (line) => lines.push(line))).toBe(0);
    expect(lines.at(-1)).toBe('tests: 3 passed, 0 failed');
  });

  it('describes in its tests: the sample users as they are', async () => {
    const config = await loadConfig(DEMO_CONFIG);
    const described = config.tests.map((t) => t.identity.claims);
    const users = Object.values(SAMPLE_USERS).map(({ email, email_verified, groups }) => ({ email, email_verified, groups }));
    expect(described).toEqual(users);
  });
});

describe('stsgate demo on chosen ports', () => {
  it('--idp-port puts the development identity provider on that port', async () => {
    const [port, idpPort] = [await freePort(), await freePort()];
    const other = runCli(['demo', '--port', String(port), '--idp-port', String(idpPort)], { NODE_ENV: undefined, STSGATE_LOG_LEVEL: 'warn' });
    try {
      await other.waitFor(/Stop with Ctrl-C\./, 'stderr', 30_000);
      const discovery = (await (await fetch(`http://127.0.0.1:${idpPort}/.well-known/openid-configuration`)).json()) as { issuer: string };
      expect(discovery.issuer).toBe(`http://127.0.0.1:${idpPort}`);
    } finally {
      other.child.kill('SIGKILL');
      await other.exited;
    }
  }, 60_000);

  it('a port already in use is refused with what to do about it', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const result = await runCliToEnd(['demo', '--port', String(port)], { NODE_ENV: undefined, STSGATE_LOG_LEVEL: 'warn' });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`127.0.0.1:${port} is already in use`);
      expect(result.stderr).toContain('demo --port N');
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  }, 60_000);
});
