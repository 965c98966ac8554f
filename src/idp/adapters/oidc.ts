import type { ProviderAdapter } from '../adapter.js';

/**
 * OpenID Connect (google, oidc): the claims are the verified ID token's; with `userinfo: true` the
 * userinfo response is read too (OIDC Core §5.3), and openid-client checks that its `sub` is the ID
 * token's (§5.3.2), so a mixed-up response cannot lend another account's claims.
 */
export const oidcAdapter = {
  async readProfile({ definition, tokens, idTokenClaims, configuration }) {
    const idToken = idTokenClaims ?? {};
    const wantsUserinfo = definition.userinfo && configuration.serverMetadata().userinfo_endpoint !== undefined && typeof idToken.sub === 'string';
    // Already loaded by the provider that called this (login-provider.ts), like every openid-client use.
    const userinfo = wantsUserinfo ? { ...(await (await import('openid-client')).fetchUserInfo(configuration, tokens.access_token, idToken.sub as string)) } : undefined;
    return { id_token: idToken, ...(userinfo ? { userinfo } : {}) };
  },
} satisfies ProviderAdapter;
