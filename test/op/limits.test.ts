/**
 * The provider's browser endpoints count toward the per-address login limit (each authorization request
 * may store an interaction for a browser nobody has authenticated); over it, the gateway answers before
 * oidc-provider does, with its own page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { REDIRECT_URI, testClients } from '../support/op.js';

let gateway: TestGateway;
beforeAll(async () => {
  gateway = await startTestGateway({ issuers: [], config: { clients: testClients(), limits: { maxBodyBytes: 65_536, loginPerAddressPerMinute: 3 } } });
});
afterAll(async () => {
  await gateway?.close();
});

describe('the login limit at the authorization endpoint', () => {
  it('answers 429 on stsgate\'s page once an address is over it', async () => {
    const query = new URLSearchParams({ client_id: 'webapp', redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await fetch(`${gateway.url}/oauth2/authorize?${query}`, { redirect: 'manual' });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([303, 303, 303, 429]);
    expect(last!.headers.get('content-type')).toContain('text/html');
    expect(await gateway.store.keysWithPrefix('op:Interaction:')).toHaveLength(3);
  });
});
