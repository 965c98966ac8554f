/**
 * One discovery document for the one issuer: the gateway's `/.well-known/openid-configuration` (the token
 * issuer's members plus the OpenID Provider's, built in credentials/discovery.ts) must agree with what
 * oidc-provider itself would publish for the same clients: the same endpoints, and nothing it supports
 * left out or anything it refuses claimed. oidc-provider's own document is read from the provider alone,
 * served on a loopback port (the gateway shadows that route).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BROWSER_CONFIG } from '../../src/config/types.js';
import { discoveryClaims, discoveryDocument } from '../../src/credentials/discovery.js';
import { SecretBox } from '../../src/credentials/secret-box.js';
import { generateSigningKeys, type SigningKeySet } from '../../src/credentials/signing-keys.js';
import { openIdProviderPages } from '../../src/http/pages.js';
import { BrowserLogin } from '../../src/idp/index.js';
import { OpenIdProvider } from '../../src/op/openid-provider.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { standardRoles } from '../support/gateway.js';
import { testClients } from '../support/op.js';

let server: Server;
let publicUrlOfServer: string;
let keys: { set: SigningKeySet };
let ours: Record<string, unknown>;
let theirs: Record<string, unknown>;

beforeAll(async () => {
  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const publicUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const store = new MemoryStore({});
  const set: SigningKeySet = await generateSigningKeys('ES256');
  publicUrlOfServer = publicUrl;
  keys = { set };
  const clients = testClients();
  const op = new OpenIdProvider({
    publicUrl,
    clients,
    store,
    box: new SecretBox(randomBytes(32)),
    cookieSecret: randomBytes(32),
    keys,
    algorithm: 'ES256',
    login: new BrowserLogin({ store, providers: [], publicUrl, browser: DEFAULT_BROWSER_CONFIG }),
    grantedRoles: () => [],
    browserSessionTtlSeconds: 3600,
    pages: openIdProviderPages(),
  });
  server.on('request', (req, res) => void op.handle(req, res));
  theirs = (await (await fetch(`${publicUrl}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  ours = discoveryDocument({ publicUrl, ...discoveryClaims({ roles: standardRoles(), targets: [], clients }) }, set);
});
afterAll(() => server?.close());

describe("the gateway's discovery and oidc-provider's agree", () => {
  it.each(['issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'end_session_endpoint', 'device_authorization_endpoint', 'jwks_uri'])('%s is the same', (member) => {
    expect(ours[member]).toBe(theirs[member]);
  });

  it.each(['code_challenge_methods_supported', 'id_token_signing_alg_values_supported', 'subject_types_supported'])('%s is the same', (member) => {
    expect(ours[member]).toEqual(theirs[member]);
  });

  it.each(['response_types_supported', 'grant_types_supported', 'scopes_supported', 'claims_supported', 'token_endpoint_auth_methods_supported', 'response_modes_supported'])(
    '%s lists everything oidc-provider supports',
    (member) => {
      expect(ours[member]).toEqual(expect.arrayContaining(theirs[member] as unknown[]));
    },
  );

  it('the RFC 9207 iss parameter and the request object parameters are stated alike', () => {
    expect(ours.authorization_response_iss_parameter_supported).toBe(theirs.authorization_response_iss_parameter_supported);
    expect(ours.claims_parameter_supported).toBe(theirs.claims_parameter_supported);
    expect(theirs.request_parameter_supported ?? false).toBe(ours.request_parameter_supported);
  });

  it('what ours adds beyond oidc-provider is the token issuer\'s own (RFC 8693 exchange, introspection, revocation)', () => {
    const extraGrants = (ours.grant_types_supported as string[]).filter((grant) => !(theirs.grant_types_supported as string[]).includes(grant));
    expect(extraGrants).toEqual(['urn:ietf:params:oauth:grant-type:token-exchange']);
    expect(ours.introspection_endpoint).toMatch(/\/oauth2\/introspect$/);
  });
});

describe('the provider follows the signing keys', () => {
  it('signs with the current key: after a rotation, the new key (oidc-provider rebuilt with it)', async () => {
    const kids = async () => ((await (await fetch(`${publicUrlOfServer}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    expect(await kids()).toEqual([keys.set.current(Date.now(), 'ES256').kid]);
    const rotated = await generateSigningKeys('ES256');
    keys.set = rotated;
    expect(await kids()).toEqual([rotated.current(Date.now(), 'ES256').kid]);
  });
});
