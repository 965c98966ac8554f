/**
 * What the HTTP layer needs to know of the OpenID Provider without loading it: oidc-provider is imported
 * only by openid-provider.ts, which the gateway loads only when `clients:` are configured.
 */
import { DEVICE_CODE_GRANT } from '../domain/oauth-identifiers.js';

/**
 * `prompt=none` (OIDC Core §3.1.2.1) from a browser with a live stsgate session but no provider session
 * yet (it signed in on stsgate's own page) is sent on as this parameter instead: the interaction then
 * finishes with the stsgate session, without a page, or answers login_required; never shows anything.
 */
export const SILENT_PARAMETER = 'stsgate_silent';

/** The interaction page (stsgate's own route): `/oauth2/interaction/<uid>`. */
export const INTERACTION_PATH = '/oauth2/interaction/';

/** The grant types the token endpoint hands to the OP (anything else is stsgate's RFC 8693 exchange). */
export const OP_GRANT_TYPES: ReadonlySet<string> = new Set(['authorization_code', 'refresh_token', DEVICE_CODE_GRANT]);
