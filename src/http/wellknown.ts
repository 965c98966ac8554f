import Router from '@koa/router';
import type { ClientAuthenticator } from '../credentials/client-authentication.js';
import { discoveryDocument, publishedJwks, type DiscoveryOptions } from '../credentials/discovery.js';
import type { SigningKeySource } from '../credentials/signing-keys.js';

/** Discovery (`/.well-known/openid-configuration`) and public keys (`/.well-known/jwks.json`). */
export function wellKnownRoutes(deps: {
  publicUrl: string;
  keys: SigningKeySource;
  introspectionClients?: Pick<ClientAuthenticator, 'methods'>;
  /** Claim names and scopes tokens may carry besides the access token's (targets' claims, roles' scopes). */
  discovery?: Pick<DiscoveryOptions, 'claimsSupported' | 'scopesSupported' | 'openIdProvider'>;
}): Router {
  const router = new Router({ prefix: '/.well-known' });
  const options: DiscoveryOptions = { publicUrl: deps.publicUrl, introspectionMethods: deps.introspectionClients?.methods ?? [], ...deps.discovery };
  // Both documents follow the keys file (a rotation may add a key or an algorithm); serialized again
  // only when the published list changes.
  let published = { at: '', discovery: '', jwks: '' };
  const current = () => {
    const jwks = publishedJwks(deps.keys.set);
    const at = jwks.keys.map((k) => `${k.kid}:${k.alg}`).join(',');
    if (published.at !== at) published = { at, discovery: JSON.stringify(discoveryDocument(options, deps.keys.set)), jwks: JSON.stringify(jwks) };
    return published;
  };
  router.get('/openid-configuration', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.type = 'application/json';
    ctx.body = current().discovery;
  });
  router.get('/jwks.json', (ctx) => {
    // Short enough that a key published ahead of a rotation reaches verifiers before it signs.
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.type = 'application/jwk-set+json';
    ctx.body = current().jwks;
  });
  return router;
}
