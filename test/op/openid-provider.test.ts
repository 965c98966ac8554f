/**
 * stsgate as an OpenID Provider, end to end on loopback: openid-client as the relying party, a TestBrowser
 * as the person, the login environment's upstream stand-ins, the real Redis.
 */
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBrowser } from '../support/browser.js';
import { redisStoreConfig } from '../support/gateway.js';
import { startLoginEnvironment, type LoginEnvironment } from '../support/login-environment.js';
import { codeFlow, relyingParty, testClients, WEBAPP_SECRET } from '../support/op.js';

let env: LoginEnvironment;
beforeAll(async () => {
  env = await startLoginEnvironment({ store: redisStoreConfig(), gateway: { clients: testClients() } });
}, 30_000);
afterAll(async () => {
  await env?.close();
});

describe('authorization code with PKCE', () => {
  it('signs alice in through google and issues an ID token, an access token and a refresh token', async () => {
    const rp = await relyingParty(env.publicUrl, 'webapp', WEBAPP_SECRET);
    const browser = new TestBrowser();
    const { tokens } = await codeFlow(rp, browser, env, { user: 'alice' });
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ iss: env.publicUrl, aud: 'webapp', sub: 'google:1001', email: 'alice@acme.com', email_verified: true, name: 'Alice Liddell', roles: ['deployer', 'reader'] });
    expect(tokens.refresh_token).toBeTypeOf('string');
    const info = await client.fetchUserInfo(rp, tokens.access_token, 'google:1001');
    expect(info).toMatchObject({ sub: 'google:1001', email: 'alice@acme.com', roles: ['deployer', 'reader'] });
  });
});
