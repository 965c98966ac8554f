import Router from '@koa/router';
import type { SigningKeySource } from '../credentials/signing-keys.js';
import type { ClientAuthenticator } from '../credentials/client-authentication.js';
import { ACCEPTABLE_ALGORITHMS } from '../issuers/index.js';
import { TOKEN_EXCHANGE_GRANT } from './oauth-identifiers.js';

/** Discovery (`/.well-known/openid-configuration`) and public keys (`/.well-known/jwks.json`). */
export function wellKnownRoutes(deps: { publicUrl: string; keys: SigningKeySource; introspectionClients?: Pick<ClientAuthenticator, 'methods'> }): Router {
  const router = new Router({ prefix: '/.well-known' });
  const base = deps.publicUrl.replace(/\/+$/, '');
  // RFC 8414 §2: the methods configured clients use; `none` while the endpoint is open.
  const introspectionMethods: string[] = deps.introspectionClients?.methods ?? [];
  // Prepared once: the discovery document does not change while the process runs.
  const discovery = {
    issuer: deps.publicUrl,
    jwks_uri: `${base}/.well-known/jwks.json`,
    token_endpoint: `${base}/oauth2/token`,
    introspection_endpoint: `${base}/oauth2/introspect`,
    revocation_endpoint: `${base}/oauth2/revoke`,
    grant_types_supported: [TOKEN_EXCHANGE_GRANT],
    token_endpoint_auth_methods_supported: ['none'],
    introspection_endpoint_auth_methods_supported: introspectionMethods.length > 0 ? introspectionMethods : ['none'],
    ...(introspectionMethods.includes('private_key_jwt') ? { introspection_endpoint_auth_signing_alg_values_supported: [...ACCEPTABLE_ALGORITHMS] } : {}),
    revocation_endpoint_auth_methods_supported: ['none'],
    access_token_signing_alg_values_supported: deps.keys.set.algorithms,
    subject_types_supported: ['public'],
  };
  // The JWKS follows the keys file (rotation); serialized again only when the published list changes.
  let jwks = { at: '', body: '' };
  router.get('/openid-configuration', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = discovery;
  });
  router.get('/jwks.json', (ctx) => {
    // Short enough that a key published ahead of a rotation reaches verifiers before it signs.
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.type = 'application/jwk-set+json';
    const published = deps.keys.set.jwks();
    const at = published.keys.map((k) => k.kid).join(',');
    if (jwks.at !== at) jwks = { at, body: JSON.stringify(published) };
    ctx.body = jwks.body;
  });
  return router;
}
