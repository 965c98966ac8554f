/**
 * Kubernetes with stsgate as its OIDC issuer (issue 12), with the real kubectl: a person signs in with
 * `stsgate login`, `stsgate kubeconfig` writes an exec-plugin user, and kubectl runs `stsgate kube-token`
 * for every request to a loopback HTTPS stand-in API server that authenticates bearer tokens as the API
 * server's OIDC authenticator does (issuer and audience, keys from the gateway's discovery, the `username`
 * and `groups` claims). Works after a login; fails after logout, and once the token has expired.
 * Skipped, with the reason printed, where kubectl or openssl is missing.
 */
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { checkClusterOptions, execApiVersion, execCredential, writeKubeconfig } from '../../src/terminal/kube.js';
import { REPO_ROOT, runCliToEnd } from '../support/cli-process.js';
import { terminalLoginAs } from '../support/terminal-login.js';
import { redisStoreConfig, standardRoles } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';

const KUBECTL = '/usr/bin/kubectl';
const OPENSSL = '/usr/bin/openssl';
const run = promisify(execFile);
const missing = [KUBECTL, OPENSSL].filter((tool) => !existsSync(tool));
if (missing.length > 0) console.warn(`skipping the kubectl tests: ${missing.join(', ')} not installed (.ci/run installs them)`);

describe('ExecCredential and kubeconfig', () => {
  it('answers in the version kubectl asked for in KUBERNETES_EXEC_INFO, v1beta1 otherwise', () => {
    expect(execApiVersion(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: false } }))).toBe('client.authentication.k8s.io/v1');
    expect(execApiVersion(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1' }))).toBe('client.authentication.k8s.io/v1beta1');
    expect(execApiVersion(undefined)).toBe('client.authentication.k8s.io/v1beta1');
    expect(execApiVersion('{"apiVersion":"client.authentication.k8s.io/v2"}')).toBe('client.authentication.k8s.io/v1beta1');
    expect(execApiVersion('not json')).toBe('client.authentication.k8s.io/v1beta1');
    expect(execCredential('t', new Date('2026-12-04T10:00:00.123Z'), undefined)).toEqual({
      apiVersion: 'client.authentication.k8s.io/v1beta1',
      kind: 'ExecCredential',
      status: { token: 't', expirationTimestamp: '2026-12-04T10:00:00Z' },
    });
  });

  it('merges its user, cluster and context into an existing kubeconfig, keeping every other entry; 0600', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stsgate-kubeconfig-'));
    const file = join(dir, 'config');
    writeFileSync(file, '# kept: a comment of the person\napiVersion: v1\nkind: Config\nclusters:\n- name: other # the other cluster\n  cluster: { server: "https://other.example" }\nusers:\n- name: other\n  user: { token: keep-me }\ncontexts:\n- name: other\n  context: { cluster: other, user: other }\ncurrent-context: other\npreferences: {}\n');
    await writeKubeconfig(file, { target: 'kube', gateway: 'https://sts.example.com', command: ['/usr/bin/stsgate'], server: 'https://k8s.example:6443', certificateAuthority: '/ca.pem' });
    await writeKubeconfig(file, { target: 'kube', gateway: 'https://sts.example.com', command: ['/usr/bin/stsgate'], server: 'https://k8s.example:6443', certificateAuthority: '/ca.pem' });
    const config = parse(readFileSync(file, 'utf8'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(config['current-context']).toBe('stsgate-kube');
    expect(config.preferences).toEqual({});
    expect(config.users).toEqual([
      { name: 'other', user: { token: 'keep-me' } },
      {
        name: 'stsgate-kube',
        user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: '/usr/bin/stsgate', args: ['kube-token', '--target', 'kube', '--gateway', 'https://sts.example.com'], interactiveMode: 'Never', provideClusterInfo: false } },
      },
    ]);
    expect(config.clusters).toEqual([
      { name: 'other', cluster: { server: 'https://other.example' } },
      { name: 'stsgate-kube', cluster: { server: 'https://k8s.example:6443', 'certificate-authority': '/ca.pem' } },
    ]);
    expect(config.contexts.map((c: { name: string }) => c.name)).toEqual(['other', 'stsgate-kube']);
    expect(readFileSync(file, 'utf8')).toMatch(/^# kept: a comment of the person\n[^]*- name: other # the other cluster\n/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes through a kubeconfig that is a symbolic link, which stays one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stsgate-kubeconfig-'));
    const [real, link] = [join(dir, 'dotfiles-kubeconfig'), join(dir, 'config')];
    writeFileSync(real, 'apiVersion: v1\nkind: Config\n');
    symlinkSync(real, link);
    await writeKubeconfig(link, { target: 'kube', gateway: 'https://sts.example.com', command: ['/usr/bin/stsgate'] });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(parse(readFileSync(real, 'utf8'))['current-context']).toBe('stsgate-kube');
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['a YAML list', '- a\n- b\n', /is not a kubeconfig/],
    ['users as a mapping', 'apiVersion: v1\nkind: Config\nusers: { other: {} }\n', /users is not a list/],
    ['broken YAML', 'users: [\n', /is not valid YAML/],
  ])('refuses a kubeconfig it does not understand (%s) and leaves it as it was', async (_name, text, message) => {
    const dir = mkdtempSync(join(tmpdir(), 'stsgate-kubeconfig-'));
    const file = join(dir, 'config');
    writeFileSync(file, text);
    await expect(writeKubeconfig(file, { target: 'kube', gateway: 'https://sts.example.com', command: ['/usr/bin/stsgate'] })).rejects.toThrow(message);
    expect(readFileSync(file, 'utf8')).toBe(text);
    rmSync(dir, { recursive: true, force: true });
  });

  it('checks the cluster options as kubectl will use them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stsgate-kubeconfig-'));
    writeFileSync(join(dir, 'ca.pem'), 'a CA');
    const server = 'https://k8s.example:6443';
    // A relative CA path becomes absolute: kubectl would resolve it against the kubeconfig's folder instead.
    expect(await checkClusterOptions({ server, certificateAuthority: 'ca.pem' }, dir)).toEqual({ server, certificateAuthority: join(dir, 'ca.pem') });
    expect(await checkClusterOptions({ server, insecureSkipTlsVerify: true }, dir)).toEqual({ server, insecureSkipTlsVerify: true });
    expect(await checkClusterOptions({}, dir)).toEqual({});
    await expect(checkClusterOptions({ server: 'http://k8s.example:8080' }, dir)).rejects.toThrow('--server must be an https:// URL');
    await expect(checkClusterOptions({ server: 'k8s.example' }, dir)).rejects.toThrow('--server must be an https:// URL');
    await expect(checkClusterOptions({ server, certificateAuthority: 'ca.pem', insecureSkipTlsVerify: true }, dir)).rejects.toThrow('exclude each other');
    await expect(checkClusterOptions({ server, certificateAuthority: 'missing.pem' }, dir)).rejects.toThrow(`--certificate-authority ${join(dir, 'missing.pem')} cannot be read`);
    await expect(checkClusterOptions({ certificateAuthority: 'ca.pem' }, dir)).rejects.toThrow('give its --server too');
    // The command says so on stderr, exits 1 and writes nothing.
    const file = join(dir, 'kubeconfig');
    const refused = await runCliToEnd(['kubeconfig', '--target', 'kube', '--gateway', 'https://sts.example.com', '--server', 'http://k8s.example', '--kubeconfig', file], { HOME: dir, XDG_CONFIG_HOME: join(dir, 'config') });
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toContain('stsgate: --server must be an https:// URL');
    expect(existsSync(file)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);
});

describe.skipIf(missing.length > 0)('kubectl with the stsgate exec plugin', () => {
  let env: LoginEnvironment;
  let api: Server;
  let apiUrl: string;
  const home = mkdtempSync(join(tmpdir(), 'stsgate-kubectl-'));
  const person = { HOME: home, XDG_CONFIG_HOME: join(home, 'config'), NODE_ENV: undefined };
  const kubeconfig = join(home, 'kubeconfig');
  /** What the stand-in API server saw, and its clock (moved forward to test expiry). */
  const seen: { username?: unknown; groups?: unknown }[] = [];
  let clockOffsetSeconds = 0;

  beforeAll(async () => {
    const targets = parseConfig(
      'public_url: https://sts.example.com\naccount_id: "123456789012"\ntargets:\n  - name: kube\n    kind: kubernetes\n    audience: kubernetes\n    lifetime_seconds: 600\n    kubernetes: { username: "{claims.email}", groups: ["{claims.hd}"] }\n',
      {},
      process.cwd(),
    ).targets!;
    env = await startLoginEnvironment({
      store: redisStoreConfig(),
      gateway: { roles: standardRoles().map((role) => (role.name === 'reader' ? { ...role, targets: ['kube'] } : role)), targets },
    });
    // A self-signed certificate for the stand-in API server (kubectl is told to skip verifying it: the
    // trust under test is the token's, not TLS's).
    await run(OPENSSL, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(home, 'key.pem'), '-out', join(home, 'cert.pem')]);
    const jwks = createRemoteJWKSet(new URL(((await (await fetch(`${env.gateway.url}/.well-known/openid-configuration`)).json()) as { jwks_uri: string }).jwks_uri.replace(env.publicUrl, env.gateway.url)));
    api = createServer({ key: readFileSync(join(home, 'key.pem')), cert: readFileSync(join(home, 'cert.pem')) }, (req, res) => {
      const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
      const deny = () => {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 }));
      };
      if (!token) return deny();
      jwtVerify(token, jwks, { issuer: env.publicUrl, audience: 'kubernetes', currentDate: new Date(Date.now() + clockOffsetSeconds * 1000), algorithms: ['ES256', 'RS256'] }).then(
        ({ payload }) => {
          seen.push({ username: payload.username, groups: payload.groups });
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1:443' }] }));
        },
        deny,
      );
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiUrl = `https://127.0.0.1:${(api.address() as { port: number }).port}`;
  }, 60_000);

  afterAll(async () => {
    api?.close();
    await env?.close();
    rmSync(home, { recursive: true, force: true });
  });

  async function kubectl(): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(KUBECTL, ['--kubeconfig', kubeconfig, 'get', '--raw', '/api'], { cwd: REPO_ROOT, env: { PATH: `/usr/bin:/bin`, ...person, HOME: home }, timeout: 60_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const failed = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof failed.code === 'number' ? failed.code : 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
    }
  }

  type CachedTokens = { entries: Record<string, { token: string; issued_at: string; expires_at: string }> };
  const targetsFile = join(home, 'config', 'stsgate', 'targets.json');
  /** The target tokens cached in the person's config folder (`targets.json`). */
  const cachedTokens = () => (JSON.parse(readFileSync(targetsFile, 'utf8')) as CachedTokens).entries;

  /** kubectl fails, with `message` from the exec plugin on stderr. */
  async function expectKubectlRefused(message: string): Promise<void> {
    const result = await kubectl();
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
  }

  /** Target tokens the gateway has issued so far (its audit lines). */
  const minted = () => env.gateway.logs().filter((line) => line.action === 'TargetToken' && line.event === 'issued').length;

  const login = (user: string, provider: 'google' | 'okta' = 'google') => terminalLoginAs(env, person, user, provider);

  it('kubectl get --raw /api works after stsgate login, as the identity the rules mapped', async () => {
    expect(await login('alice')).toBe(0);
    const written = await runCliToEnd(['kubeconfig', '--target', 'kube', '--gateway', env.gateway.url, '--server', apiUrl, '--insecure-skip-tls-verify', '--kubeconfig', kubeconfig], person);
    expect(written.code, written.stderr).toBe(0);
    expect(written.stderr).toContain('Wrote context stsgate-kube');
    const result = await kubectl();
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    expect(seen.at(-1)).toEqual({ username: 'alice@acme.com', groups: ['acme.com'] });
    // A second run answers from the cached token (no second mint at the gateway).
    const before = minted();
    expect((await kubectl()).code).toBe(0);
    expect(minted()).toBe(before);
    expect(statSync(targetsFile).mode & 0o777).toBe(0o600);
    // `stsgate token` prints the same cached token, raw, and nothing else on stdout.
    const printed = await runCliToEnd(['token', '--target', 'kube'], person);
    expect(printed.code).toBe(0);
    expect(printed.stdout.trim()).toBe(cachedTokens()[`${env.gateway.url} kube`]!.token);
    expect(minted()).toBe(before);
    // A target this account may not get: exit 1, the gateway's reason on stderr, nothing on stdout.
    const refused = await runCliToEnd(['token', '--target', 'vault'], person);
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toContain('refused a token for target vault');
  }, 120_000);

  it('fails once the token has expired (the API server\'s clock past exp)', async () => {
    clockOffsetSeconds = 600 + 120;
    const result = await kubectl();
    clockOffsetSeconds = 0;
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/Unauthorized|must be logged in/);
  }, 60_000);

  it('asks the gateway for a new token once half the cached one\'s lifetime has passed', async () => {
    const entries = cachedTokens();
    const entry = entries[`${env.gateway.url} kube`]!;
    // Moved back so that the middle of its life was two seconds ago: issued + (expires - issued) / 2 = now - 2 s.
    entry.issued_at = new Date(2 * (Date.now() - 2_000) - Date.parse(entry.expires_at)).toISOString();
    writeFileSync(targetsFile, JSON.stringify({ version: 1, entries }), { mode: 0o600 });
    const before = minted();
    expect((await kubectl()).code).toBe(0);
    expect(minted()).toBe(before + 1);
    expect(cachedTokens()[`${env.gateway.url} kube`]!.token).not.toBe(entry.token);
  }, 60_000);

  it('fails after stsgate logout: the session and its cached target tokens are gone', async () => {
    expect((await runCliToEnd(['logout', '--gateway', env.gateway.url], person)).code).toBe(0);
    expect(cachedTokens()).toEqual({});
    await expectKubectlRefused('not signed in');
  }, 60_000);

  it('a login as another account forgets the earlier account\'s cached target tokens', async () => {
    expect(await login('alice')).toBe(0);
    expect((await kubectl()).code).toBe(0);
    expect(Object.keys(cachedTokens())).toEqual([`${env.gateway.url} kube`]);
    // carol (okta, role admin) may not get the kube target: kubectl must not go on as alice with her cached token.
    expect(await login('carol', 'okta')).toBe(0);
    expect(cachedTokens()).toEqual({});
    await expectKubectlRefused('refused a token for target kube');
    expect(seen.at(-1)).toEqual({ username: 'alice@acme.com', groups: ['acme.com'] });
  }, 120_000);

  it('once the gateway has ended the session (a 401 to any command), the cached target token is no longer handed out', async () => {
    expect(await login('alice')).toBe(0);
    expect((await kubectl()).code).toBe(0);
    const sessions = JSON.parse(readFileSync(join(home, 'config', 'stsgate', 'sessions.json'), 'utf8')) as { gateways: Record<string, { session_token: string }> };
    const ended = await fetch(`${env.gateway.url}/cli/logout`, { method: 'POST', headers: { authorization: `Bearer ${sessions.gateways[env.gateway.url]!.session_token}` } });
    expect(ended.status).toBe(204);
    const credentials = await runCliToEnd(['credentials', '--role', 'reader'], person);
    expect(credentials.stderr).toContain('has expired or was ended');
    expect(cachedTokens()).toEqual({});
    await expectKubectlRefused('not signed in');
  }, 120_000);
});
