/**
 * Kubernetes with stsgate as its OIDC issuer (issue 12), with the real kubectl: a person signs in with
 * `stsgate login`, `stsgate kubeconfig` writes an exec-plugin user, and kubectl runs `stsgate kube-token`
 * for every request to a loopback HTTPS stand-in API server that authenticates bearer tokens as the API
 * server's OIDC authenticator does (issuer and audience, keys from the gateway's discovery, the `username`
 * and `groups` claims). Works after a login; fails after logout, and once the token has expired.
 * Skipped, with the reason printed, where kubectl or openssl is missing.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { execApiVersion, execCredential, writeKubeconfig } from '../../src/terminal/kube.js';
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
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, 'apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: { server: "https://other.example" }\nusers:\n- name: other\n  user: { token: keep-me }\ncontexts:\n- name: other\n  context: { cluster: other, user: other }\ncurrent-context: other\npreferences: {}\n');
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
    rmSync(dir, { recursive: true, force: true });
  });
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

  const login = (user: string) => terminalLoginAs(env, person, user);

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
    const minted = () => env.gateway.logs().filter((line) => line.action === 'TargetToken' && line.event === 'issued').length;
    const before = minted();
    expect((await kubectl()).code).toBe(0);
    expect(minted()).toBe(before);
    expect(statSync(join(home, 'config', 'stsgate', 'targets.json')).mode & 0o777).toBe(0o600);
    // `stsgate token` prints the same cached token, raw, and nothing else on stdout.
    const printed = await runCliToEnd(['token', '--target', 'kube'], person);
    expect(printed.code).toBe(0);
    const cached = JSON.parse(readFileSync(join(home, 'config', 'stsgate', 'targets.json'), 'utf8')) as { entries: Record<string, { token: string }> };
    expect(printed.stdout.trim()).toBe(cached.entries[`${env.gateway.url} kube`]!.token);
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

  it('fails after stsgate logout: the session and its cached target tokens are gone', async () => {
    expect((await runCliToEnd(['logout', '--gateway', env.gateway.url], person)).code).toBe(0);
    const targets = JSON.parse(readFileSync(join(home, 'config', 'stsgate', 'targets.json'), 'utf8')) as { entries: Record<string, unknown> };
    expect(targets.entries).toEqual({});
    const result = await kubectl();
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('not signed in');
  }, 60_000);
});
