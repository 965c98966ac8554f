/**
 * The browser-login engine's public face, and the registry of provider adapters: one line per kind of
 * provider protocol (a definition in `providers/` names its adapter).
 */
import type { AnyProviderConfig } from '../config/types.js';
import type { ProviderAdapter } from './adapter.js';
import { facebookAdapter } from './adapters/facebook.js';
import { githubAdapter } from './adapters/github.js';
import { oidcAdapter } from './adapters/oidc.js';
import { providerDefinitions, type AdapterName } from '../config/provider-definitions.js';
import type { BrowserLoginProvider } from './login-provider.js';
import { SamlLoginProvider } from './saml-provider.js';

/** Adapters by the name definitions use in `adapter:`. */
export const PROVIDER_ADAPTERS = {
  oidc: oidcAdapter,
  github: githubAdapter,
  facebook: facebookAdapter,
} as const satisfies Record<AdapterName, ProviderAdapter>;

/**
 * Builds the configured providers; their redirect URI is `<public_url>/callback/<id>` (design.md), a SAML
 * provider's ACS URL `<public_url>/saml/<id>/acs`, and a directory provider's sign-in form
 * `<public_url>/login/<id>/password`. An OAuth provider's code (openid-client) and a directory's (ldapts)
 * are loaded only when one is configured: a gateway without them never holds them in memory.
 */
export async function createLoginProviders(providers: readonly AnyProviderConfig[], options: { publicUrl: string; allowInsecureHttp: boolean }): Promise<BrowserLoginProvider[]> {
  const definitions = providerDefinitions();
  const built: BrowserLoginProvider[] = [];
  for (const config of providers) {
    const definition = definitions.get(config.use);
    if (!definition) throw new Error(`providers: ${config.id}: unknown definition ${config.use}`);
    if ('ldap' in config) {
      const { LdapLoginProvider } = await import('./ldap/provider.js');
      built.push(new LdapLoginProvider(config, definition, { formUrl: `${options.publicUrl}/login/${encodeURIComponent(config.id)}/password` }));
    } else if (definition.kind === 'saml') {
      built.push(new SamlLoginProvider(config, definition, { publicUrl: options.publicUrl }));
    } else {
      if (definition.adapter === undefined) throw new Error(`providers: ${config.id}: definition ${config.use} has no adapter`);
      const { LoginProvider } = await import('./login-provider.js');
      built.push(
        new LoginProvider(config, definition, PROVIDER_ADAPTERS[definition.adapter], {
          redirectUri: `${options.publicUrl}/callback/${encodeURIComponent(config.id)}`,
          allowInsecureHttp: options.allowInsecureHttp,
        }),
      );
    }
  }
  return built;
}

export { BrowserLogin, LOGIN_TRANSACTION_TTL_MS, type BrowserSession, type CompletedLogin, type MatchedLogin } from './browser-login.js';
export { LoginFailure, type LoginFailureReason } from './login-failure.js';
export { LoginFlow, type CallbackRequest, type LoginOutcome } from './login-flow.js';
export type { BrowserLoginProvider } from './login-provider.js';
export { SamlLoginProvider } from './saml-provider.js';
export { checkReturnTo } from './return-to.js';
export { PASTED_CODE_REDIRECT, TerminalSessions, checkLoopbackRedirect, parseTerminalRequest, pkceChallenge, type TerminalRequest, type TerminalSession } from './terminal-login.js';
