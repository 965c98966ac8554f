/**
 * Behind a proxy that ends TLS: the public URL is https, the gateway's own listener plain http. The
 * provider still sets its cookies Secure (it is told the public URL's scheme, whatever the client sends in
 * X-Forwarded-Proto), and its redirects name the public URL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { REDIRECT_URI, testClients } from '../support/op.js';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startTestGateway({ issuers: [], config: { publicUrl: 'https://sts.example.test', clients: testClients() } });
});
afterAll(async () => {
  await gateway?.close();
});

describe('an https public URL on a plain-http listener', () => {
  it('the authorization request goes to the interaction with Secure cookies, even when the client claims http', async () => {
    const query = new URLSearchParams({ client_id: 'webapp', redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    const response = await fetch(`${gateway.url}/oauth2/authorize?${query}`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil.example' } });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toMatch(/^https:\/\/sts\.example\.test\/oauth2\/interaction\/|^\/oauth2\/interaction\//);
    const cookies = response.headers.getSetCookie();
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) expect(cookie.toLowerCase()).toContain('; secure');
  });

  it('discovery names the https endpoints', async () => {
    const document = (await (await fetch(`${gateway.url}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    expect(document.authorization_endpoint).toBe('https://sts.example.test/oauth2/authorize');
    expect(document.token_endpoint).toBe('https://sts.example.test/oauth2/token');
  });
});
