import { createHmac } from 'node:crypto';
import type { ProviderAdapter } from '../adapter.js';
import { LoginFailure } from '../login-failure.js';

/**
 * Facebook: OAuth 2 without an ID token (the manual login flow); the identity comes from the Graph API
 * `/me`, asking for exactly the fields the definition's `me.*` claims name. Every call carries
 * `appsecret_proof`, the HMAC-SHA256 of the access token keyed with the app secret (Graph API "Securing
 * requests"), so a token stolen from elsewhere cannot be replayed against the app.
 */
export const facebookAdapter = {
  async readProfile({ definition, tokens, endpoints, clientSecret, api }) {
    const fields = new Set(['id']);
    if (definition.claims !== 'all') {
      for (const path of Object.values(definition.claims)) if (path.startsWith('me.')) fields.add(path.split('.')[1]!);
    }
    const url = new URL(endpoints.me!);
    url.searchParams.set('fields', [...fields].join(','));
    url.searchParams.set('appsecret_proof', appSecretProof(tokens.access_token, clientSecret));
    const { json: me } = await api.getJson(url.href, { authorization: `Bearer ${tokens.access_token}`, accept: 'application/json' });
    if (me === null || typeof me !== 'object' || typeof (me as { id?: unknown }).id !== 'string') {
      throw new LoginFailure('profile_invalid', 'Facebook did not say which account signed in.', { status: 502, code: 'IDPCommunicationError', debug: '/me has no id' });
    }
    return { me };
  },
} satisfies ProviderAdapter;

/** Graph API `appsecret_proof`: hex HMAC-SHA256 of the access token with the app secret. */
export function appSecretProof(accessToken: string, appSecret: string): string {
  return createHmac('sha256', appSecret).update(accessToken).digest('hex');
}
