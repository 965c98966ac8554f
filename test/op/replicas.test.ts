/**
 * Two gateway replicas on one Redis behave as one OpenID Provider: the authorization happens on A, the
 * code is redeemed on B, the refresh token is used on A, userinfo answered by B; a logout on one holds on
 * the other. Nothing of a flow lives in a process.
 */
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/browser.js';
import { redisStoreConfig, startTestGateway, type TestGateway } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { authorizationRequest, authorizeInBrowser, relyingParty, testClients, WEBAPP_SECRET } from '../support/op.js';

let env: LoginEnvironment;
let b: TestGateway;
beforeAll(async () => {
  env = await startLoginEnvironment({ store: redisStoreConfig(), gateway: { clients: testClients() } });
  const a = env.gateway;
  b = await startTestGateway({ issuers: a.config.issuers, roles: a.config.roles, rules: a.config.rules, store: a.config.store, config: a.config });
}, 30_000);
afterAll(async () => {
  await b?.close();
  await env?.close();
});

/** The relying party, its requests sent to replica B instead of the public URL (replica A). */
async function viaReplicaB(): Promise<client.Configuration> {
  const rp = await relyingParty(env.publicUrl, 'webapp', WEBAPP_SECRET);
  rp[client.customFetch] = (url, options) => fetch(url.replace(env.publicUrl, b.url), options as RequestInit);
  return rp;
}

describe('two replicas, one Redis', () => {
  it('authorization on A, token on B, refresh on A, userinfo on B', async () => {
    const onA = await relyingParty(env.publicUrl, 'webapp', WEBAPP_SECRET);
    const onB = await viaReplicaB();
    const request = await authorizationRequest(onA);
    const callback = await authorizeInBrowser(new TestBrowser(), env, request.url);
    const tokens = await client.authorizationCodeGrant(onB, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
    expect(tokens.claims()).toMatchObject({ sub: 'google:1001', iss: env.publicUrl });
    const refreshed = await client.refreshTokenGrant(onA, tokens.refresh_token!);
    expect(await client.fetchUserInfo(onB, refreshed.access_token, 'google:1001')).toMatchObject({ email: 'alice@acme.com' });
    // The rotated-away refresh token is refused on B too.
    await expect(client.refreshTokenGrant(onB, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('a code redeemed on A is refused on B', async () => {
    const onA = await relyingParty(env.publicUrl, 'webapp', WEBAPP_SECRET);
    const onB = await viaReplicaB();
    const request = await authorizationRequest(onA);
    const callback = await authorizeInBrowser(new TestBrowser(), env, request.url);
    const checks = { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce };
    await client.authorizationCodeGrant(onA, callback, checks);
    await expect(client.authorizationCodeGrant(onB, callback, checks)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('a logout on B ends the refresh token on A', async () => {
    const onA = await relyingParty(env.publicUrl, 'webapp', WEBAPP_SECRET);
    const browser = new TestBrowser();
    const request = await authorizationRequest(onA);
    const callback = await authorizeInBrowser(browser, env, request.url);
    const tokens = await client.authorizationCodeGrant(onA, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
    // The browser's session cookie, presented to replica B.
    const cookie = browser.cookie(env.gateway.url, 'stsgate_session')!;
    const out = await fetch(`${b.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: `stsgate_session=${cookie}`, 'content-type': 'application/x-www-form-urlencoded', origin: env.publicUrl, 'sec-fetch-site': 'same-origin' }, body: '' });
    expect(out.status).toBe(303);
    await expect(client.refreshTokenGrant(onA, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});
