/**
 * The claims stsgate's OpenID Provider gives an application, as pure functions: the provider's account
 * lookup and `stsgate explain` (what a client would receive for an identity) use the same ones.
 */
import type { ClientClaim } from '../config/schema.js';
import type { OidcClientConfig } from '../config/types.js';
import type { Identity } from '../domain/types.js';

/** The subject stsgate's OP gives an identity: `<source>:<subject>`, stable per upstream account. */
export function subjectOf(identity: Identity): string {
  return `${identity.source}:${identity.subject}`;
}

/**
 * `groups`: the upstream groups an identity's claims carry: its `groups` claim (OIDC providers such as
 * Okta, Keycloak, Entra ID) and GitHub's `orgs` and `teams` (`org/team-slug`), strings only, deduplicated.
 */
export function upstreamGroups(identity: Identity): string[] {
  const groups = ['groups', 'orgs', 'teams'].flatMap((name) => {
    const value = identity.claims[name];
    return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string' && item !== '') : [];
  });
  return [...new Set(groups)].slice(0, 500);
}

/**
 * Every claim stsgate knows for an identity, before a client's narrowing: the profile claims the upstream
 * provider gave, its groups, and the roles the rules grant.
 */
export function identityClaims(identity: Identity, roles: readonly string[]): Record<ClientClaim, unknown> & { sub: string } {
  const text = (name: string) => (typeof identity.claims[name] === 'string' ? (identity.claims[name] as string) : undefined);
  const claims: Record<string, unknown> = {
    sub: subjectOf(identity),
    email: text('email'),
    email_verified: typeof identity.claims.email_verified === 'boolean' ? identity.claims.email_verified : undefined,
    name: text('name'),
    // GitHub's login is its username.
    preferred_username: text('preferred_username') ?? text('login'),
    groups: upstreamGroups(identity),
    roles: [...roles],
  };
  return Object.fromEntries(Object.entries(claims).filter(([, value]) => value !== undefined)) as Record<ClientClaim, unknown> & { sub: string };
}

/**
 * What `client` receives for `identity`: `sub`, and of the claims it may see the ones the identity has;
 * `roles` are the granted roles the client may see. (Which of them a token carries also depends on the
 * scopes the client asks for: each scope releases its claims.)
 */
export function clientClaims(client: Pick<OidcClientConfig, 'roles' | 'claims'>, identity: Identity, grantedRoles: readonly string[]): Record<string, unknown> & { sub: string } {
  const all = identityClaims(identity, grantedRoles.filter((role) => client.roles.includes(role)));
  return { sub: all.sub, ...Object.fromEntries(client.claims.flatMap((name) => (all[name] === undefined ? [] : [[name, all[name]]]))) };
}
