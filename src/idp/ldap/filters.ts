/**
 * LDAP search filters built from configured templates (`(&(objectClass=person)(uid={username}))`). Every
 * value put into a template is escaped with ldapts' `Filter.escape` (RFC 4515 §3: `*`, `(`, `)`, `\` and
 * NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`), so a username such as `*)(uid=*` is a literal string to
 * match, never filter syntax. Pure: no connection is made here.
 */
import { Filter } from 'ldapts';

/** Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: `member` matched through every level of nested groups. */
export const IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';

const PLACEHOLDER = /\{([a-z_]+)\}/g;

/** Fills `{name}` placeholders with RFC 4515-escaped values; an unknown placeholder is a programming error. */
export function fillFilter(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`unknown filter placeholder {${name}}`);
    return Filter.escape(value);
  });
}

/** The user search filter for one username. */
export function userFilter(template: string, username: string): string {
  return fillFilter(template, { username });
}

/**
 * The group search filter for one member DN. With `inChain` (Active Directory's `nested: ad`), every
 * `(<attribute>={dn})` assertion uses the in-chain matching rule, so the directory returns the groups the
 * DN is in directly or through nested groups, in one search.
 */
export function groupFilter(template: string, memberDn: string, inChain = false): string {
  return fillFilter(inChain ? inChainTemplate(template) : template, { dn: memberDn });
}

/** `(member={dn})` becomes `(member:1.2.840.113556.1.4.1941:={dn})`. */
export function inChainTemplate(template: string): string {
  return template.replace(/\(([A-Za-z][A-Za-z0-9-]*)=\{dn\}\)/g, `($1:${IN_CHAIN_RULE}:={dn})`);
}

/**
 * One search for the groups any of `memberDns` is a direct member of (one level of an iterative nested
 * search): the template's filter for each DN, joined with `|`.
 */
export function anyMemberFilter(template: string, memberDns: readonly string[]): string {
  if (memberDns.length === 0) throw new Error('anyMemberFilter needs at least one DN');
  const parts = memberDns.map((dn) => groupFilter(template, dn));
  return parts.length === 1 ? parts[0]! : `(|${parts.join('')})`;
}
