/**
 * The `use: ldap` provider's configuration: its defaults, the secret and CA given as files or `${VAR}`,
 * TLS required unless `dev.allow_insecure_http`, filter templates checked, and every problem named by
 * its path; an OAuth provider's keys are not asked of it, nor its keys of an OAuth provider.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { providerDefinitions } from '../../src/config/provider-definitions.js';
import type { LdapProviderConfig } from '../../src/config/types.js';
import { ACCOUNT_ID } from '../support/common.js';

const dir = mkdtempSync(join(tmpdir(), 'stsgate-ldap-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'bind-password'), 'from-a-file\n');
writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');

const minimal = {
  id: 'corp',
  use: 'ldap',
  url: 'ldaps://dc1.corp.example.com',
  bind_dn: 'CN=stsgate,OU=Service Accounts,DC=corp,DC=example,DC=com',
  bind_password: '${LDAP_BIND_PASSWORD}',
  user: { base_dn: 'OU=People,DC=corp,DC=example,DC=com' },
};

function parse(provider: Record<string, unknown>, options: { insecure?: boolean } = {}) {
  const text = JSON.stringify({ public_url: 'https://sts.example.com', account_id: ACCOUNT_ID, providers: [provider], ...(options.insecure ? { dev: { allow_insecure_http: true } } : {}) });
  return parseConfig(text, { LDAP_BIND_PASSWORD: 'from-the-env' }, dir);
}

function problems(provider: Record<string, unknown>, options: { insecure?: boolean } = {}): readonly string[] {
  try {
    parse(provider, options);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('use: ldap', () => {
  it('has a definition in providers/ (kind ldap, the claims it builds)', () => {
    const definition = providerDefinitions().get('ldap');
    expect(definition).toMatchObject({ kind: 'ldap', display_name: 'Directory' });
    expect(definition?.claims).toMatchObject({ sub: 'user.id', username: 'user.username', dn: 'user.dn', email: 'user.email', name: 'user.name', groups: 'groups', groups_truncated: 'groups_truncated' });
  });

  it('takes its defaults: TLS, 5 s to connect, 10 s per login, (uid={username}), the DN as id, memberOf, no nesting, 1000 groups', () => {
    const provider = parse(minimal).providers[0] as LdapProviderConfig;
    expect(provider).toEqual({
      id: 'corp',
      use: 'ldap',
      ldap: {
        url: 'ldaps://dc1.corp.example.com',
        startTls: false,
        bindDn: minimal.bind_dn,
        bindPassword: 'from-the-env',
        connectTimeoutMs: 5_000,
        timeoutMs: 10_000,
        user: { baseDn: minimal.user.base_dn, filter: '(uid={username})', idAttribute: 'dn', usernameAttribute: 'uid', emailAttribute: 'mail', nameAttribute: 'cn' },
        groups: { memberOf: true, nested: 'none', maxDepth: 5, max: 1_000 },
      },
    });
  });

  it('reads bind_password_file and tls.ca_file; an Active Directory setup with nested: ad', () => {
    const provider = parse({
      ...minimal,
      bind_password: undefined,
      bind_password_file: 'bind-password',
      url: 'ldap://dc1.corp.example.com:389',
      start_tls: true,
      tls: { ca_file: 'ca.pem', server_name: 'dc1.corp.example.com' },
      user: { base_dn: 'DC=corp,DC=example,DC=com', filter: '(&(objectClass=user)(sAMAccountName={username}))', id_attribute: 'objectGUID', username_attribute: 'sAMAccountName', name_attribute: 'displayName' },
      groups: { member_of: false, search: { base_dn: 'DC=corp,DC=example,DC=com', filter: '(&(objectClass=group)(member={dn}))' }, nested: 'ad' },
    }).providers[0] as LdapProviderConfig;
    expect(provider.ldap).toMatchObject({ bindPassword: 'from-a-file', startTls: true, ca: expect.stringContaining('BEGIN CERTIFICATE'), serverName: 'dc1.corp.example.com', groups: { memberOf: false, nested: 'ad', search: { nameAttribute: 'cn' } } });
  });

  it.each([
    ['plain ldap:// without StartTLS', { url: 'ldap://dc1.corp.example.com' }, 'providers[0].url: found "ldap://dc1.corp.example.com" without start_tls, expected ldaps:// or start_tls: true'],
    ['another scheme', { url: 'https://dc1.corp.example.com' }, 'providers[0].url: found "https://dc1.corp.example.com", expected ldaps://HOST[:PORT]'],
    ['a path in the URL', { url: 'ldaps://dc1/dc=x' }, 'providers[0].url: found "ldaps://dc1/dc=x", expected ldaps://HOST[:PORT]'],
    ['StartTLS on ldaps://', { start_tls: true }, 'providers[0].start_tls: found start_tls: true with an ldaps:// URL'],
    ['no service account password', { bind_password: '' }, 'providers[0].bind_password: found an empty string'],
    ['a filter without {username}', { user: { base_dn: 'dc=x', filter: '(objectClass=person)' } }, 'providers[0].user.filter: found "(objectClass=person)": the filter does not use {username}'],
    ['an unbalanced filter', { user: { base_dn: 'dc=x', filter: '(&(uid={username})' } }, 'providers[0].user.filter: found "(&(uid={username})": the parentheses do not balance'],
    ['no user base', { user: {} }, 'providers[0].user.base_dn: missing'],
    ['nested groups without a group search', { groups: { nested: 'search' } }, 'providers[0].groups.search: missing, expected a group search (base_dn, filter) with nested: search'],
    ['nested: ad without an (attribute={dn}) assertion', { groups: { nested: 'ad', search: { base_dn: 'dc=x', filter: '(cn={dn}*)' } } }, 'providers[0].groups.search.filter: expected an assertion such as (member={dn})'],
    ['an unknown nesting', { groups: { nested: 'deep' } }, 'providers[0].groups.nested: found "deep", expected one of none, ad, search'],
    ['too many groups', { groups: { max: 20_000 } }, 'providers[0].groups.max: found 20000, expected an integer in 1..10000'],
    ['an OAuth key', { client_id: 'x' }, 'providers[0]: unknown key "client_id"'],
    ['a timeout of zero', { timeout_seconds: 0 }, 'providers[0].timeout_seconds: found 0, expected an integer in 1..120'],
  ])('%s is a problem named by its path', (_name, change, expected) => {
    const found = problems({ ...minimal, ...change });
    expect(found.some((line) => line.startsWith(expected)), found.join('\n')).toBe(true);
  });

  it('plain ldap:// is allowed with dev.allow_insecure_http: true', () => {
    expect((parse({ ...minimal, url: 'ldap://127.0.0.1:3389' }, { insecure: true }).providers[0] as LdapProviderConfig).ldap.url).toBe('ldap://127.0.0.1:3389');
  });

  it('refuses a service account password written in the file (${VAR} or bind_password_file only)', () => {
    expect(problems({ ...minimal, bind_password: 'hunter2' })).toContain('providers[0].bind_password: found a password written in the file, expected bind_password: ${VAR} from the environment or bind_password_file: PATH');
    expect(problems({ ...minimal, bind_password: 'hunter2' }).join('\n')).not.toContain('hunter2');
  });

  it('never echoes the service account password in a problem', () => {
    const found = problems({ ...minimal, bind_password: 12345 });
    expect(found.join('\n')).toContain('providers[0].bind_password');
    expect(found.join('\n')).not.toContain('12345');
  });

  it('an OAuth provider is still told about its own keys only', () => {
    const found = problems({ id: 'gh', use: 'github', client_id: 'x', client_secret: 'y', bind_dn: 'cn=x' });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^providers\[0\]: unknown key "bind_dn"; allowed keys: id, use, client_id, client_secret/);
  });

  it('password attempt limits default to 20 per address and 10 per username a minute', () => {
    expect(parse(minimal).limits).toMatchObject({ passwordAttemptsPerAddressPerMinute: 20, passwordAttemptsPerUsernamePerMinute: 10 });
  });
});
