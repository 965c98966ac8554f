/**
 * Identity providers that are down, slow or hanging, seen through the exchange endpoints: every request
 * naming such an issuer is refused within the fetch timeout (3 s) with IDPCommunicationError (AWS) or
 * 503 temporarily_unavailable (OAuth), concurrent requests share one fetch, a provider that is down is
 * not asked again by every request, other issuers keep answering at full speed, and service resumes when
 * the provider does, without a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuerFor, standardRules } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { expectProtocolError, MAIN, oauthFor, postOAuth, postSts, startSecurityGateway, type SecurityGateway } from './harness.js';
import { sleep } from '../support/common.js';

const FETCH_TIMEOUT_MS = 3_000;

const names = ['healthy', 'discovery-hangs', 'jwks-hangs', 'too-slow', 'slow-enough', 'down'] as const;
type Name = (typeof names)[number];
const idps = {} as Record<Name, TestIssuer>;
let g: SecurityGateway;

beforeAll(async () => {
  for (const name of names) idps[name] = await TestIssuer.start();
  idps['discovery-hangs'].fail('discovery', { kind: 'hang' });
  idps['jwks-hangs'].fail('jwks', { kind: 'hang' });
  idps['too-slow'].fail('both', { kind: 'slow', delayMs: FETCH_TIMEOUT_MS + 1_500 });
  idps['slow-enough'].fail('both', { kind: 'slow', delayMs: 400 });
  idps.down.fail('both', { kind: 'status', status: 503 });
  g = await startSecurityGateway({ issuers: names.map((n) => issuerFor(idps[n], n)), rules: names.flatMap((n) => standardRules(n)) });
});
afterAll(async () => {
  await g?.close();
  await Promise.all(Object.values(idps).map((i) => i.close()));
});

interface Attempt {
  protocol: 'aws' | 'oauth';
  status: number;
  body: string;
  res: Response;
  ms: number;
}

async function attempt(name: Name, protocol: 'aws' | 'oauth', token?: string): Promise<Attempt> {
  const subject = token ?? (await idps[name].mint(MAIN));
  const started = performance.now();
  const res = protocol === 'aws' ? await postSts(g.url, { WebIdentityToken: subject, RoleSessionName: `${name}-x` }) : await postOAuth(g.url, { subject_token: subject });
  const body = await res.text();
  return { protocol, status: res.status, body, res, ms: performance.now() - started };
}

function expectIdpError(a: Attempt): void {
  expectProtocolError(a.protocol, a.res, a.body, a.protocol === 'aws' ? [400, 'IDPCommunicationError'] : oauthFor('IDPCommunicationError'));
}

describe('hanging and slow providers', () => {
  it('time out at the fetch deadline with one shared fetch each, while another issuer answers at full speed', async () => {
    const hanging: Name[] = ['discovery-hangs', 'jwks-hangs', 'too-slow'];
    const tokens = await Promise.all(hanging.map((n) => idps[n].mint(MAIN)));
    const healthyTokens = await Promise.all(Array.from({ length: 20 }, () => idps.healthy.mint(MAIN)));
    // Warm the healthy issuer's key cache first: what is measured below is being unaffected, not a cold start.
    expect((await attempt('healthy', 'aws')).status).toBe(200);
    const issuedBefore = g.issuedCount();
    const stuck = Promise.all(hanging.flatMap((n, i) => Array.from({ length: 10 }, (_, j) => attempt(n, j % 2 === 0 ? 'aws' : 'oauth', tokens[i])).map((p) => p.then((a) => ({ name: n, ...a })))));
    // While those wait on their providers, the healthy issuer's requests go through one after another.
    await sleep(200);
    const healthy: Attempt[] = [];
    for (const token of healthyTokens) healthy.push(await attempt('healthy', 'aws', token));
    const healthyDoneAt = performance.now();
    const settled = await stuck;
    const stuckDoneAt = performance.now();

    for (const a of healthy) {
      expect(a.status, a.body).toBe(200);
      // Generous for a loaded machine; the point is "not held by the hanging providers' 3 s".
      expect(a.ms).toBeLessThan(1_000);
    }
    // All twenty were answered while the other providers were still hanging.
    expect(healthyDoneAt).toBeLessThan(stuckDoneAt - 500);
    for (const a of settled) {
      expectIdpError(a);
      expect(a.ms).toBeGreaterThan(FETCH_TIMEOUT_MS - 500);
      expect(a.ms).toBeLessThan(FETCH_TIMEOUT_MS + 1_500);
    }
    // Ten concurrent requests per provider, one fetch of the endpoint that hangs.
    expect(idps['discovery-hangs'].fetches).toMatchObject({ discovery: 1, jwks: 0 });
    expect(idps['jwks-hangs'].fetches).toMatchObject({ discovery: 1, jwks: 1 });
    expect(idps['too-slow'].fetches).toMatchObject({ discovery: 1, jwks: 0 });
    // Only the healthy issuer's requests were issued.
    expect(g.issuedCount() - issuedBefore).toBe(healthy.length);
  });

  it('a provider that is slow but within the deadline is waited for', async () => {
    const a = await attempt('slow-enough', 'oauth');
    expect(a.status, a.body).toBe(200);
    expect(a.ms).toBeGreaterThan(400);
  });
});

describe('a provider that is down', () => {
  it('is refused at once, and a flood naming it (forged tokens suffice) does not make the gateway ask it again and again', async () => {
    const forged = `${(await idps.down.mint(MAIN)).slice(0, -8)}AAAAAAAA`;
    idps.down.resetFetches();
    const started = performance.now();
    for (let i = 0; i < 100; i++) {
      const a = await attempt('down', i % 2 === 0 ? 'aws' : 'oauth', forged);
      expectIdpError(a);
      expect(a.ms).toBeLessThan(1_000);
    }
    const elapsed = performance.now() - started;
    // At most one discovery fetch per second (the failure backoff), not one per request.
    expect(idps.down.fetches.discovery).toBeLessThanOrEqual(Math.ceil(elapsed / 1_000) + 1);
    expect(idps.down.fetches.discovery).toBeLessThan(10);
  });

  it('does not slow the healthy issuer', async () => {
    const a = await attempt('healthy', 'oauth');
    expect(a.status).toBe(200);
    expect(a.ms).toBeLessThan(1_000);
  });

  it('comes back: service resumes without a restart, once the backoff has passed', async () => {
    idps.down.heal();
    let a = await attempt('down', 'aws');
    for (const until = performance.now() + 3_000; a.status !== 200 && performance.now() < until; ) {
      await sleep(100);
      a = await attempt('down', 'aws');
    }
    expect(a.status, a.body).toBe(200);
  });
});
