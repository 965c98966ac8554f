/**
 * `stsgate login` and `stsgate credentials` as a person runs them, each in its own process, against a
 * running gateway on the real Redis, with the browser step played by the test: it follows the printed
 * address through the gateway and the oidc-provider stand-in for Google to the command's loopback port.
 * The session and the cached credentials land in the config folder (0700, files 0600), and the
 * `credential_process` output works with the unmodified AWS SDK (`fromProcess` and a temporary AWS config).
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromProcess } from '@aws-sdk/credential-providers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/browser.js';
import { confirmTerminalLogin } from '../support/browser-login.js';
import { cliCommandLine, runCli, runCliToEnd } from '../support/cli-process.js';
import { redisStoreConfig } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { ACCOUNT_ID } from '../support/common.js';

let env: LoginEnvironment;
const home = mkdtempSync(join(tmpdir(), 'stsgate-cli-'));
const configHome = join(home, 'config');
const folder = join(configHome, 'stsgate');
/** The person's environment: their own HOME and XDG config folder. */
const person = { HOME: home, XDG_CONFIG_HOME: configHome, NODE_ENV: undefined };

beforeAll(async () => {
  env = await startLoginEnvironment({ store: redisStoreConfig() });
});
afterAll(async () => {
  await env?.close();
  rmSync(home, { recursive: true, force: true });
});

/** Every stderr the commands wrote, and every session token they saved: none may hold a token or a secret. */
const stderrs: string[] = [];
const tokens = new Set<string>();

/** Runs `stsgate login`, plays the browser through the printed address as `user` at Google, and waits for the command to end. */
async function login(user: string, extra: string[] = []): Promise<{ code: number; stdout: string; stderr: string; page: string }> {
  const cli = runCli(['login', '--gateway', env.gateway.url, '--provider', 'google', '--no-browser', ...extra], person);
  const [address] = await cli.waitFor(/http:\/\/127\.0\.0\.1:\d+\/cli\/login\?\S+/, 'stderr');
  // The person compares the code the command printed with the one on the gateway's page, then confirms.
  const [, shown] = await cli.waitFor(/confirm the code ([A-Z2-7]{4}-[A-Z2-7]{4})/, 'stderr');
  const browser = new TestBrowser();
  const authorization = await confirmTerminalLogin(browser, address, { code: shown! });
  const back = await env.google.signIn(browser, authorization, user);
  const callback = await browser.get(back);
  expect(callback.status).toBe(303);
  const loopback = new URL(callback.headers.get('location')!);
  expect(loopback.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const page = await (await browser.get(loopback)).text();
  const code = await cli.exited;
  stderrs.push(cli.stderr());
  for (const saved of Object.values(sessionsFile().gateways)) tokens.add(saved.session_token);
  return { code, stdout: cli.stdout(), stderr: cli.stderr(), page };
}

async function credentials(args: string[] = ['--role', 'deployer']) {
  const result = await runCliToEnd(['credentials', ...args], person);
  stderrs.push(result.stderr);
  return result;
}

const mode = (path: string) => statSync(path).mode & 0o777;
const issuedCount = () => env.gateway.logs().filter((l) => l.event === 'issued' && l.action === 'BrowserCredentials').length;

function sessionsFile(): { default_gateway?: string; gateways: Record<string, { session_token: string; account: string; roles: string[]; role?: string }> } {
  return JSON.parse(readFileSync(join(folder, 'sessions.json'), 'utf8'));
}

function credentialsFile(): { entries: Record<string, { Expiration: string; SecretAccessKey: string }> } {
  return JSON.parse(readFileSync(join(folder, 'credentials.json'), 'utf8'));
}

describe('stsgate login', () => {
  it('signs in through the browser and keeps the session in the config folder: folder 0700, files 0600', async () => {
    const result = await login('alice', ['--role', 'deployer']);
    expect(result.code).toBe(0);
    expect(result.page).toContain('Your terminal is signed in');
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`Signed in to ${env.gateway.url} as alice@acme.com (google:1001). Roles: deployer, reader.`);
    expect(mode(folder)).toBe(0o700);
    expect(mode(join(folder, 'sessions.json'))).toBe(0o600);
    expect(mode(join(folder, 'credentials.json'))).toBe(0o600);
    const saved = sessionsFile();
    expect(saved.default_gateway).toBe(env.gateway.url);
    expect(saved.gateways[env.gateway.url]).toMatchObject({ account: 'alice@acme.com (google:1001)', roles: ['deployer', 'reader'], role: 'deployer' });
    expect(saved.gateways[env.gateway.url]!.session_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('tightens an existing config folder to 0700', async () => {
    const { chmodSync } = await import('node:fs');
    chmodSync(folder, 0o755);
    expect((await login('alice')).code).toBe(0);
    expect(mode(folder)).toBe(0o700);
  });

  it('tells a denied account why, in the terminal and on the page, and exits 1', async () => {
    const before = sessionsFile();
    const result = await login('bob');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('stsgate: sign-in failed: You signed in with Google as bob@other.com (google:1002), but this account is not allowed any role here.');
    expect(result.page).toContain('Sign-in failed');
    // The earlier session is untouched.
    expect(sessionsFile()).toEqual(before);
  });

  it.each([
    ['plain http to another machine', ['login', '--gateway', 'http://sts.example.com', '--no-browser'], 2, '--gateway must be https://'],
    ['a gateway URL with a path', ['login', '--gateway', 'https://sts.example.com/x', '--no-browser'], 2, "--gateway must be the gateway's base URL"],
    ['no --gateway', ['login', '--no-browser'], 2, "stsgate: required option '--gateway <url>' not specified"],
  ])('refuses %s', async (_what, args, code, message) => {
    const result = await runCliToEnd(args, person);
    expect(result.code).toBe(code);
    expect(result.stderr).toContain(message);
  });
});

describe('stsgate credentials', () => {
  let first: Record<string, unknown>;

  it('prints credential_process JSON (exactly its five members) and caches it, 0600', async () => {
    const before = issuedCount();
    const result = await credentials();
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    first = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(Object.keys(first)).toEqual(['Version', 'AccessKeyId', 'SecretAccessKey', 'SessionToken', 'Expiration']);
    expect(first.Version).toBe(1);
    expect(first.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(Date.parse(first.Expiration as string)).toBeGreaterThan(Date.now() + 50 * 60_000);
    expect(issuedCount()).toBe(before + 1);
    expect(mode(join(folder, 'credentials.json'))).toBe(0o600);
    expect(credentialsFile().entries[`${env.gateway.url} deployer`]).toEqual(first);
  });

  it('answers from the cache while more than five minutes remain, without asking the gateway', async () => {
    const before = issuedCount();
    const result = await credentials();
    expect(JSON.parse(result.stdout)).toEqual(first);
    expect(issuedCount()).toBe(before);
  });

  it('uses the role of stsgate login --role when --role is left out', async () => {
    const result = await credentials([]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(first);
  });

  it('works as credential_process for the AWS SDK (fromProcess with a temporary AWS config)', async () => {
    const awsConfig = join(home, 'aws-config');
    const awsCredentials = join(home, 'aws-credentials');
    const command = ['env', `XDG_CONFIG_HOME=${configHome}`, ...cliCommandLine(), 'credentials', '--role', 'deployer', '--gateway', env.gateway.url].join(' ');
    writeFileSync(awsConfig, `[profile stsgate-deployer]\ncredential_process = ${command}\n`);
    writeFileSync(awsCredentials, '');
    const sts = new STSClient({
      endpoint: env.gateway.url,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: fromProcess({ profile: 'stsgate-deployer', configFilepath: awsConfig, filepath: awsCredentials, ignoreCache: true }),
    });
    const who = await sts.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:sts::${ACCOUNT_ID}:assumed-role/deployer/alice@acme.com`);
  });

  it('asks the gateway again when fewer than five minutes remain', async () => {
    const file = credentialsFile();
    file.entries[`${env.gateway.url} deployer`]!.Expiration = new Date(Date.now() + 4 * 60_000).toISOString();
    writeFileSync(join(folder, 'credentials.json'), JSON.stringify(file), { mode: 0o600 });
    const before = issuedCount();
    const result = await credentials();
    expect(result.code).toBe(0);
    expect(issuedCount()).toBe(before + 1);
    expect(Date.parse((JSON.parse(result.stdout) as { Expiration: string }).Expiration)).toBeGreaterThan(Date.now() + 5 * 60_000);
    expect(mode(join(folder, 'credentials.json'))).toBe(0o600);
  });

  it('refuses a role the account is not granted: a message on stderr, nothing on stdout, exit 1', async () => {
    const result = await credentials(['--role', 'admin']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^stsgate: http:\/\/127\.0\.0\.1:\d+ refused credentials for admin: .+ \(HTTP 403\)\n$/);
  });

  it('says to log in again once the gateway has ended the session, and forgets it and its cached credentials', async () => {
    const token = sessionsFile().gateways[env.gateway.url]!.session_token;
    expect((await fetch(`${env.gateway.url}/cli/logout`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(204);
    const result = await credentials(['--role', 'reader']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`stsgate: the session for ${env.gateway.url} has expired or was ended: run stsgate login --gateway ${env.gateway.url}\n`);
    expect(sessionsFile().gateways[env.gateway.url]).toBeUndefined();
    // The credentials cached for the ended session go with it.
    expect(Object.keys(credentialsFile().entries).filter((k) => k.startsWith(`${env.gateway.url} `))).toEqual([]);
  });

  it('says to log in when there is no session at all', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'stsgate-cli-empty-'));
    try {
      const result = await runCliToEnd(['credentials', '--role', 'deployer'], { HOME: empty, XDG_CONFIG_HOME: empty });
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe('stsgate: not signed in to any gateway: run stsgate login --gateway URL first\n');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('a new login drops the credentials cached for the gateway (they may be another account\'s)', async () => {
    expect((await login('alice')).code).toBe(0);
    expect((await credentials()).code).toBe(0);
    expect(Object.keys(credentialsFile().entries).some((k) => k.startsWith(`${env.gateway.url} `))).toBe(true);
    expect((await login('alice')).code).toBe(0);
    expect(Object.keys(credentialsFile().entries).filter((k) => k.startsWith(`${env.gateway.url} `))).toEqual([]);
  });

  it('stsgate logout ends the session at the gateway and forgets it', async () => {
    const token = sessionsFile().gateways[env.gateway.url]!.session_token;
    const result = await runCliToEnd(['logout'], person);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(`Signed out of ${env.gateway.url}.\n`);
    expect(sessionsFile().gateways[env.gateway.url]).toBeUndefined();
    expect((await fetch(`${env.gateway.url}/v1/credentials?role=reader`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
  });
});

describe('secrets', () => {
  it('never appear on stderr, nor in the gateway\'s log', () => {
    const secrets = [...Object.values(credentialsFile().entries).map((e) => e.SecretAccessKey), ...tokens];
    expect(tokens.size).toBeGreaterThan(1);
    const logs = JSON.stringify(env.gateway.logs());
    for (const line of stderrs) for (const secret of secrets) expect(line).not.toContain(secret);
    for (const secret of secrets) expect(logs).not.toContain(secret);
  });
});
