/**
 * The identity's claims from a provider's profile, as its definition's `claims:` say: the one mapping
 * every kind of login provider uses (OAuth, SAML, directory). Pure, and apart from login-provider.ts so
 * that a SAML or directory provider does not load openid-client.
 */
import type { ProviderDefinition } from '../config/provider-definitions.js';

/** ID token claims about the protocol, not the person: never copied into an identity. */
const PROTOCOL_CLAIMS = new Set(['nonce', 'at_hash', 'c_hash', 's_hash']);

/** The identity's claims from the adapter's profile, as the definition's `claims:` say. */
export function buildClaims(spec: ProviderDefinition['claims'], profile: Record<string, unknown>): Record<string, unknown> {
  const claims: Record<string, unknown> = {};
  if (spec === 'all') {
    // OIDC Core §5.3.2: userinfo may add claims; the signed ID token's own values win.
    const merged = { ...asRecord(profile.userinfo), ...asRecord(profile.id_token) };
    for (const [name, value] of Object.entries(merged)) if (!PROTOCOL_CLAIMS.has(name)) setOwn(claims, name, value);
  } else {
    for (const [name, path] of Object.entries(spec)) {
      const value = path.split('.').reduce<unknown>((node, key) => (node !== null && typeof node === 'object' && Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined), profile);
      if (value !== undefined && value !== null) setOwn(claims, name, value);
    }
  }
  // OIDC Core §2: sub is a string; GitHub's numeric id becomes one.
  if (typeof claims.sub === 'number') claims.sub = String(claims.sub);
  return claims;
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
