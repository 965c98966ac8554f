/**
 * `stsgate login` before and without a local browser: it checks the gateway answers before printing an
 * address to wait on, and `--paste-code` signs in a machine without a browser (the person opens the
 * address elsewhere, the gateway's page shows the one-time code, the person pastes it into the terminal).
 * Real processes; the browser is played by the test through the gateway and the stand-in for Google.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/browser.js';
import { confirmTerminalLogin } from '../support/browser-login.js';
import { runCli, runCliToEnd, type CliProcess } from '../support/cli-process.js';
import { freePort } from '../support/common.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';

let env: LoginEnvironment;
let notAGateway: Server;
const home = mkdtempSync(join(tmpdir(), 'stsgate-login-paste-'));
const configHome = join(home, 'config');
const person = { HOME: home, XDG_CONFIG_HOME: configHome, NODE_ENV: undefined };
const sessionsFile = () => JSON.parse(readFileSync(join(configHome, 'stsgate', 'sessions.json'), 'utf8')) as { gateways: Record<string, { account: string; roles: string[] }> };

beforeAll(async () => {
  env = await startLoginEnvironment();
  notAGateway = createServer((_req, res) => res.writeHead(404).end('not here'));
  await new Promise<void>((resolve) => notAGateway.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await env?.close();
  await new Promise((resolve) => notAGateway?.close(resolve));
  rmSync(home, { recursive: true, force: true });
});

describe('stsgate login checks the gateway first', () => {
  it('nothing listening: exit 1 at once, saying it cannot reach the gateway and why, no address printed', async () => {
    const gateway = `http://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const result = await runCliToEnd(['login', '--gateway', gateway], person);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`stsgate: cannot reach the gateway at ${gateway} (ECONNREFUSED): check --gateway, the network, and that the gateway runs\n`);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a server that is not a gateway (no /healthz): exit 1, saying so', async () => {
    const gateway = `http://127.0.0.1:${(notAGateway.address() as AddressInfo).port}`;
    const result = await runCliToEnd(['login', '--gateway', gateway, '--paste-code'], person);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`stsgate: ${gateway}/healthz answered HTTP 404: is --gateway an stsgate gateway, and is it healthy?\n`);
  });
});

/** Starts `stsgate login --paste-code` and plays the person's other device up to the page after the provider; returns that page. */
async function signInElsewhere(user: string): Promise<{ cli: CliProcess; page: Response }> {
  const cli = runCli(['login', '--gateway', env.gateway.url, '--provider', 'google', '--paste-code'], person, { stdin: 'pipe' });
  const [address] = await cli.waitFor(/http:\/\/127\.0\.0\.1:\d+\/cli\/login\?\S+/, 'stderr');
  expect(new URL(address).searchParams.get('redirect_uri')).toBe('urn:ietf:wg:oauth:2.0:oob');
  const [, shown] = await cli.waitFor(/confirm the code ([A-Z2-7]{4}-[A-Z2-7]{4})/, 'stderr');
  await cli.waitFor(/paste the one-time code the page shows here/, 'stderr');
  const browser = new TestBrowser();
  const authorization = await confirmTerminalLogin(browser, address, { code: shown! });
  const page = await browser.get(await env.google.signIn(browser, authorization, user));
  return { cli, page };
}

describe('stsgate login --paste-code', () => {
  it('the page shows the code (no redirect, nothing in a URL); pasted, it signs the terminal in', async () => {
    const { cli, page } = await signInElsewhere('alice');
    expect(page.status).toBe(200);
    expect(page.headers.get('location')).toBeNull();
    const html = await page.text();
    expect(html).toContain('Signed in as alice@acme.com (google:1001)');
    const code = /<code id="terminal-code">([A-Za-z0-9_-]{43})<\/code>/.exec(html)?.[1];
    expect(code).toBeDefined();
    cli.child.stdin!.end(`${code}\n`);
    expect(await cli.exited).toBe(0);
    expect(cli.stderr()).toContain(`Signed in to ${env.gateway.url} as alice@acme.com (google:1001). Roles: deployer, reader.`);
    expect(cli.stderr()).not.toContain(code);
    expect(sessionsFile().gateways[env.gateway.url]).toMatchObject({ account: 'alice@acme.com (google:1001)', roles: ['deployer', 'reader'] });
    const credentials = await runCliToEnd(['credentials', '--role', 'deployer'], person);
    expect(credentials.code).toBe(0);
    expect(JSON.parse(credentials.stdout)).toMatchObject({ Version: 1, AccessKeyId: expect.stringMatching(/^ASIA/) });
  });

  it('a code pasted twice, or with another terminal\'s verifier, is refused: exit 1', async () => {
    const first = await signInElsewhere('alice');
    const code = /<code id="terminal-code">([A-Za-z0-9_-]{43})<\/code>/.exec(await first.page.text())![1]!;
    // Another terminal (another verifier) pastes it first: refused, and the code is burnt.
    const other = runCli(['login', '--gateway', env.gateway.url, '--paste-code'], person, { stdin: 'pipe' });
    await other.waitFor(/paste the one-time code the page shows here/, 'stderr');
    other.child.stdin!.end(`${code}\n`);
    expect(await other.exited).toBe(1);
    expect(other.stderr()).toContain('stsgate: the gateway refused to finish the sign-in: The code is invalid, expired, already used');
    first.cli.child.stdin!.end(`${code}\n`);
    expect(await first.cli.exited).toBe(1);
    expect(first.cli.stderr()).toContain('stsgate: the gateway refused to finish the sign-in');
  });

  it('a denied account sees why on the page; the terminal, given no code, exits 1', async () => {
    const { cli, page } = await signInElsewhere('bob');
    expect(page.status).toBe(403);
    expect(await page.text()).toContain('this account is not allowed any role here');
    cli.child.stdin!.end();
    expect(await cli.exited).toBe(1);
    expect(cli.stderr()).toMatch(/stsgate: no code pasted \(the input ended, or 300 seconds passed\)\n$/);
  });

  it('something that is not a code: exit 1 without asking the gateway', async () => {
    const cli = runCli(['login', '--gateway', env.gateway.url, '--paste-code'], person, { stdin: 'pipe' });
    await cli.waitFor(/paste the one-time code the page shows here/, 'stderr');
    cli.child.stdin!.end('no idea\n');
    expect(await cli.exited).toBe(1);
    expect(cli.stderr()).toContain("stsgate: that is not the code the page shows (letters, digits, - and _): run stsgate login again");
  });
});
