/**
 * Two gateways on one Redis behave as one for browser logins, with no sticky sessions: a login started
 * on one finishes on the other (the load balancer sent the callback there), the session works on
 * both, and a logout on one ends it on both.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { startLogin } from '../support/browser-login.js';
import { TestBrowser } from '../support/browser.js';
import { redisStoreConfig, type TestGateway } from '../support/gateway.js';
import { useLoginReplicas, type LoginEnvironment, type LoginStoreTopology } from '../support/login-environment.js';
import { startRedisCluster, startRedisSentinel } from '../support/redis-servers.js';

const prefix = () => `stsgate-login-across:${randomBytes(4).toString('hex')}:`;
const topologies: [string, LoginStoreTopology][] = [
  ['standalone Redis', async () => ({ store: redisStoreConfig(), stop: async () => {} })],
  ['a 3-master Redis Cluster', async () => {
    const cluster = await startRedisCluster({ masters: 3 });
    return { store: { kind: 'cluster', nodes: cluster.nodes, tls: false, prefix: prefix(), commandTimeoutMs: 2000 }, stop: () => cluster.stop() };
  }],
  ['Redis with Sentinel', async () => {
    const sentinel = await startRedisSentinel();
    return { store: { kind: 'sentinel', sentinels: sentinel.sentinels, name: sentinel.name, tls: false, prefix: prefix(), commandTimeoutMs: 2000 }, stop: () => sentinel.stop() };
  }],
];

describe.each(topologies)('browser logins across two gateways on %s', (_name, topology) => {
  const replicas = useLoginReplicas(topology);
  let env: LoginEnvironment;
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(() => ({ env, a, b } = replicas));

  /** Browsers key cookies by host, not port: behind one load balancer both replicas are one host. Here each has its own port, so the jar is mirrored. */
  function sameHost(browser: TestBrowser, from: TestGateway, to: TestGateway): void {
    for (const [name, value] of browser.jar.get(new URL(from.url).host) ?? []) browser.setCookie(to.url, name, value);
  }

  it('a login started on one replica finishes on the other, and the session works on both until a logout on either', async () => {
    const browser = new TestBrowser();
    const authorizationUrl = await startLogin(browser, a.url, 'google');
    const callback = await env.google.signIn(browser, authorizationUrl, 'alice');
    // The load balancer sends the callback to replica B.
    const onB = new URL(callback.pathname + callback.search, b.url);
    sameHost(browser, a, b);
    const finished = await browser.get(onB);
    expect(finished.status).toBe(303);
    const cookieName = a.config.browser?.cookieName ?? 'stsgate_session';
    expect(browser.cookie(b.url, cookieName)).toBeTruthy();
    sameHost(browser, b, a);

    for (const replica of [a, b]) {
      const credentials = await browser.get(`${replica.url}/v1/credentials?role=deployer`);
      expect(credentials.status).toBe(200);
      expect(((await credentials.json()) as Record<string, unknown>).AccessKeyId).toMatch(/^ASIA/);
    }

    // Sign out on B; the old cookie value, replayed to A, finds no session there either.
    const session = browser.cookie(b.url, cookieName)!;
    const logout = await browser.request(`${b.url}/logout`, { form: {}, headers: { origin: a.config.publicUrl } });
    expect(logout.status).toBe(303);
    expect(browser.cookie(b.url, cookieName)).toBeUndefined();
    const afterLogout = await fetch(`${a.url}/v1/credentials?role=deployer`, { headers: { cookie: `${cookieName}=${session}` } });
    expect(afterLogout.status).toBe(401);
  });

  it('a login transaction is single-use across replicas: the callback replayed on the other one is refused', async () => {
    const browser = new TestBrowser();
    const authorizationUrl = await startLogin(browser, a.url, 'google');
    const callback = await env.google.signIn(browser, authorizationUrl, 'alice');
    expect((await browser.get(callback)).status).toBe(303);
    sameHost(browser, a, b);
    const replay = await browser.get(new URL(callback.pathname + callback.search, b.url));
    expect(replay.status).toBe(400);
  });
});
