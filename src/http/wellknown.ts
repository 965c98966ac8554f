import Router from '@koa/router';
import type { SigningKeySet } from '../credentials/signing-keys.js';
import { TOKEN_EXCHANGE_GRANT } from './oauth.js';

/** Discovery (`/.well-known/openid-configuration`) and public keys (`/.well-known/jwks.json`). */
export function wellKnownRoutes(deps: { publicUrl: string; keys: SigningKeySet }): Router {
  const router = new Router({ prefix: '/.well-known' });
  const base = deps.publicUrl.replace(/\/+$/, '');
  // Prepared once: both documents only change with the key set, which is fixed for a process.
  const discovery = {
    issuer: deps.publicUrl,
    jwks_uri: `${base}/.well-known/jwks.json`,
    token_endpoint: `${base}/oauth2/token`,
    introspection_endpoint: `${base}/oauth2/introspect`,
    revocation_endpoint: `${base}/oauth2/revoke`,
    grant_types_supported: [TOKEN_EXCHANGE_GRANT],
    token_endpoint_auth_methods_supported: ['none'],
    introspection_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    access_token_signing_alg_values_supported: deps.keys.algorithms,
    subject_types_supported: ['public'],
  };
  const jwks = JSON.stringify(deps.keys.jwks);
  router.get('/openid-configuration', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = discovery;
  });
  router.get('/jwks.json', (ctx) => {
    // Short enough that a key published ahead of a rotation reaches verifiers before it signs.
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.type = 'application/jwk-set+json';
    ctx.body = jwks;
  });
  return router;
}
