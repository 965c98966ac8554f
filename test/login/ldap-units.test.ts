/**
 * The pure parts of the directory provider (`use: ldap`): filters built from templates with every value
 * RFC 4515-escaped, Active Directory's in-chain rule, filter template checks, userAccountControl and
 * accountExpires decoding, DN and objectGUID rendering, and the group cap.
 */
import { describe, expect, it } from 'vitest';
import { accountLabel } from '../../src/domain/account-label.js';
import { accountExpiresAt, accountRefusal, isAccountDisabled, toFiletime } from '../../src/idp/ldap/accounts.js';
import { firstRdnValue, formatObjectGuid, GroupSet, attributeText } from '../../src/idp/ldap/claims.js';
import { anyMemberFilter, groupFilter, IN_CHAIN_RULE, inChainTemplate, userFilter } from '../../src/idp/ldap/filters.js';
import { filterTemplateProblem } from '../../src/util/ldap-filter-template.js';

describe('user filters: every value is escaped (RFC 4515 §3)', () => {
  const template = '(&(objectClass=person)(uid={username}))';
  it.each([
    ['a plain name', 'alice', '(&(objectClass=person)(uid=alice))'],
    ['a wildcard', '*', '(&(objectClass=person)(uid=\\2a))'],
    ['a filter injection', '*)(uid=*', '(&(objectClass=person)(uid=\\2a\\29\\28uid=\\2a))'],
    ['an OR injection', 'alice)(|(uid=*', '(&(objectClass=person)(uid=alice\\29\\28|\\28uid=\\2a))'],
    ['a backslash', '\\', '(&(objectClass=person)(uid=\\5c))'],
    ['an escape sequence typed literally', '\\2a', '(&(objectClass=person)(uid=\\5c2a))'],
    ['a NUL', 'alice\u0000', '(&(objectClass=person)(uid=alice\\00))'],
    ['UTF-8 (allowed as is)', 'jürgen', '(&(objectClass=person)(uid=jürgen))'],
  ])('%s', (_name, username, expected) => {
    expect(userFilter(template, username)).toBe(expected);
  });

  it('fills every occurrence of the placeholder', () => {
    expect(userFilter('(|(uid={username})(mail={username}))', 'a*')).toBe('(|(uid=a\\2a)(mail=a\\2a))');
  });
});

describe('group filters', () => {
  it('escapes the member DN', () => {
    expect(groupFilter('(member={dn})', 'cn=a\\2C b (x),dc=example')).toBe('(member=cn=a\\5c2C b \\28x\\29,dc=example)');
  });

  it('nested: ad uses LDAP_MATCHING_RULE_IN_CHAIN on every {dn} assertion', () => {
    expect(IN_CHAIN_RULE).toBe('1.2.840.113556.1.4.1941');
    expect(inChainTemplate('(&(objectClass=group)(member={dn}))')).toBe('(&(objectClass=group)(member:1.2.840.113556.1.4.1941:={dn}))');
    expect(groupFilter('(&(objectClass=group)(member={dn}))', 'CN=Alice,OU=People,DC=corp', true)).toBe('(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=CN=Alice,OU=People,DC=corp))');
  });

  it('one level of an iterative nested search ORs the DNs', () => {
    expect(anyMemberFilter('(member={dn})', ['cn=a', 'cn=b'])).toBe('(|(member=cn=a)(member=cn=b))');
    expect(anyMemberFilter('(member={dn})', ['cn=a'])).toBe('(member=cn=a)');
  });
});

describe('filter templates are checked at config time', () => {
  it.each([
    ['(uid={username})', undefined],
    ['(&(objectClass=user)(sAMAccountName={username}))', undefined],
    ['(&(objectClass=user)(cn=a\\29b)(uid={username}))', undefined],
    ['uid={username}', 'expected one filter in parentheses'],
    ['(uid={username})(cn=x)', 'do not balance'],
    ['(&(uid={username})', 'do not balance'],
    ['(uid={user})', 'unknown placeholder {user}'],
    ['(objectClass=person)', 'does not use {username}'],
  ])('%s', (template, problem) => {
    const found = filterTemplateProblem(template, ['username'], ['username']);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toContain(problem);
  });
});

describe('Active Directory account state (MS-ADTS §2.2.16)', () => {
  it.each([
    ['512 NORMAL_ACCOUNT', '512', false],
    ['514 NORMAL_ACCOUNT | ACCOUNTDISABLE', '514', true],
    ['66050 with DONT_EXPIRE_PASSWORD, disabled', '66050', true],
    ['66048 with DONT_EXPIRE_PASSWORD', '66048', false],
    ['a negative (signed 32-bit) value with the bit', String(0x80000002 | 0), true],
    ['absent (not AD)', undefined, false],
    ['garbage', 'x', false],
  ])('userAccountControl %s', (_name, value, disabled) => {
    expect(isAccountDisabled(value)).toBe(disabled);
  });

  it('accountExpires: 0 and 0x7FFFFFFFFFFFFFFF never expire; other values are FILETIMEs', () => {
    expect(accountExpiresAt('0')).toBeUndefined();
    expect(accountExpiresAt('9223372036854775807')).toBeUndefined();
    expect(accountExpiresAt(undefined)).toBeUndefined();
    // 2024-01-01T00:00:00Z as AD stores it.
    expect(accountExpiresAt('133485408000000000')?.toISOString()).toBe('2024-01-01T00:00:00.000Z');
    expect(toFiletime(new Date('2024-01-01T00:00:00Z'))).toBe('133485408000000000');
  });

  it('refuses disabled and expired accounts, and nothing else', () => {
    const now = new Date('2025-06-01T00:00:00Z');
    expect(accountRefusal({ userAccountControl: '514' }, now)).toBe('account_disabled');
    expect(accountRefusal({ userAccountControl: '512', accountExpires: toFiletime(new Date('2025-05-31T23:59:59Z')) }, now)).toBe('account_expired');
    expect(accountRefusal({ userAccountControl: '512', accountExpires: toFiletime(new Date('2025-06-02T00:00:00Z')) }, now)).toBeUndefined();
    expect(accountRefusal({ userAccountControl: '512', accountExpires: '0' }, now)).toBeUndefined();
    expect(accountRefusal({}, now)).toBeUndefined();
  });
});

describe('claims', () => {
  it.each([
    ['cn=developers,ou=groups,dc=example,dc=org', 'developers'],
    ['CN=Ops\\, EU,OU=Groups,DC=corp', 'Ops, EU'],
    ['cn=J\\C3\\BCrgen,dc=x', 'Jürgen'],
    ['cn=a+uid=b,dc=x', 'a'],
    ['not a dn', 'not a dn'],
  ])('the name of %s is %s', (dn, name) => {
    expect(firstRdnValue(dn)).toBe(name);
  });

  it('objectGUID is shown as AD shows it (little-endian first three fields)', () => {
    const bytes = Buffer.from('e004253f894fd3119a0c0305e82c3301', 'hex');
    expect(formatObjectGuid(bytes)).toBe('3f2504e0-4f89-11d3-9a0c-0305e82c3301');
    expect(attributeText('objectGUID', bytes)).toBe('3f2504e0-4f89-11d3-9a0c-0305e82c3301');
    expect(attributeText('mail', ['a@x', 'b@x'])).toBe('a@x');
    expect(attributeText('mail', '')).toBeUndefined();
  });

  it('groups are deduplicated by DN (any case), sorted by name and capped, saying so', () => {
    const groups = new GroupSet();
    for (const dn of ['cn=b,dc=x', 'cn=a,dc=x', 'CN=B,DC=X', 'cn=c,dc=x']) groups.add(dn);
    expect(groups.size).toBe(3);
    expect(groups.claims(10)).toEqual({ groups: ['a', 'b', 'c'], group_dns: ['cn=a,dc=x', 'cn=b,dc=x', 'cn=c,dc=x'], groups_truncated: false });
    expect(groups.claims(2)).toEqual({ groups: ['a', 'b'], group_dns: ['cn=a,dc=x', 'cn=b,dc=x'], groups_truncated: true });
  });

  it("a directory account without email is named by its username on the page and in denials", () => {
    expect(accountLabel({ source: 'corp', subject: 'uid=frank,ou=people,dc=example,dc=org', claims: { username: 'frank' } })).toBe('frank (corp:uid=frank,ou=people,dc=example,dc=org)');
    expect(accountLabel({ source: 'corp', subject: 's', claims: { email: 'f@x', username: 'frank' } })).toBe('f@x (corp:s)');
  });
});
