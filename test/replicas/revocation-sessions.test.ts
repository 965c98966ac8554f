/**
 * A revocation watermark for a subject ends that subject's browser session (the cookie) and terminal
 * session (the bearer token of `stsgate login`) on both of two gateways sharing one Redis, from the next
 * request on; a login after the revocation works. Standalone Redis and a 3-master Cluster.
 */
import { createHash, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { confirmTerminalLogin, loginAs } from '../support/browser-login.js';
import { TestBrowser } from '../support/browser.js';
import { redisStoreConfig, type TestGateway } from '../support/gateway.js';
import { useLoginReplicas, type LoginEnvironment, type LoginStoreTopology } from '../support/login-environment.js';
import { startRedisCluster } from '../support/redis-servers.js';
import { postForm } from '../support/common.js';

const topologies: [string, LoginStoreTopology][] = [
  ['standalone Redis', async () => ({ store: redisStoreConfig(), stop: async () => {} })],
  ['a 3-master Redis Cluster', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    const prefix = `stsgate-revoke-sessions:${randomBytes(4).toString('hex')}:`;
    return { store: { kind: 'cluster', nodes: cluster.nodes, tls: false, prefix, commandTimeoutMs: 2000 }, stop: () => cluster.stop() };
  }],
];

describe.each(topologies)('revoking a subject ends its browser and terminal sessions on two gateways on %s', (_name, topology) => {
  const replicas = useLoginReplicas(topology);
  let env: LoginEnvironment;
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(() => ({ env, a, b } = replicas));

  /** A browser signed in as alice on A, with its cookie for B too (one host behind a load balancer). */
  async function browserSession(): Promise<{ browser: TestBrowser; cookie: string }> {
    const browser = new TestBrowser();
    expect((await loginAs(browser, a.url, 'google', env.google, 'alice')).status).toBe(303);
    const name = a.config.browser?.cookieName ?? 'stsgate_session';
    const cookie = browser.cookie(a.url, name)!;
    browser.setCookie(b.url, name, cookie);
    return { browser, cookie };
  }

  /** A terminal session for alice (`stsgate login`'s flow): its bearer token. */
  async function terminalSession(): Promise<string> {
    const verifier = randomBytes(32).toString('base64url');
    const redirectUri = `http://127.0.0.1:${49_152 + Math.floor(Math.random() * 10_000)}/callback`;
    const url = new URL('/cli/login', a.url);
    url.search = new URLSearchParams({ redirect_uri: redirectUri, code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256', state: randomBytes(24).toString('base64url'), provider: 'google' }).toString();
    const browser = new TestBrowser();
    const authorization = await confirmTerminalLogin(browser, url);
    const answer = await browser.get(await env.google.signIn(browser, authorization, 'alice'));
    const code = new URL(answer.headers.get('location')!).searchParams.get('code')!;
    const redeemed = await postForm(`${a.url}/cli/token`, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri });
    expect(redeemed.status).toBe(200);
    return ((await redeemed.json()) as { session_token: string }).session_token;
  }

  const withBearer = (gateway: TestGateway, token: string) => fetch(`${gateway.url}/v1/credentials?role=deployer`, { headers: { authorization: `Bearer ${token}` } });

  it('both end at once on both gateways; sessions begun after the revocation work', async () => {
    const { browser } = await browserSession();
    const token = await terminalSession();
    for (const gateway of [a, b]) {
      expect((await browser.get(`${gateway.url}/v1/credentials?role=deployer`)).status).toBe(200);
      expect((await withBearer(gateway, token)).status).toBe(200);
    }

    // What the admin API and `stsgate revoke` write (alice is google:1001 in the environment).
    await a.revocations.revoke({ kind: 'subject', source: 'google', subject: '1001' }, { by: 'test', reason: 'left the company' });

    for (const gateway of [b, a]) {
      // The browser sees itself signed out: the sign-in page, its stale cookie cleared; no credentials.
      const page = await browser.get(`${gateway.url}/`);
      expect(await page.text()).toContain('/login/google');
      expect((await browser.get(`${gateway.url}/v1/credentials?role=deployer`)).status).toBe(401);
      // The terminal client is told to log in again.
      const refused = await withBearer(gateway, token);
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { message: string }).message).toContain('stsgate login');
    }

    const again = await browserSession();
    const newToken = await terminalSession();
    for (const gateway of [a, b]) {
      expect((await again.browser.get(`${gateway.url}/v1/credentials?role=deployer`)).status).toBe(200);
      expect((await withBearer(gateway, newToken)).status).toBe(200);
    }
  });
});
