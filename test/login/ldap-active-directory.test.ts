/**
 * Directory logins against a real Active Directory (a Samba AD DC provisioned here, test/support/samba-dc.ts):
 * sAMAccountName, objectGUID as the subject, nested groups through LDAP_MATCHING_RULE_IN_CHAIN
 * (`nested: ad`), and accounts AD itself disables or expires. Skipped, saying why, where Samba cannot run;
 * the same semantics are covered without it by test/login/ldap-units.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LdapSettings } from '../../src/config/types.js';
import { LdapDirectory } from '../../src/idp/ldap/directory.js';
import { ADMIN_DN, ADMIN_PASSWORD, DC_FQDN, DOMAIN_DN, sambaDcUnavailable, startSambaDc, type SambaDc } from '../support/samba-dc.js';

const unavailable = await sambaDcUnavailable();
let dc: SambaDc;

function settings(overrides: Partial<LdapSettings> = {}): LdapSettings {
  return {
    url: dc.ldapsUrl,
    startTls: false,
    ca: dc.ca,
    serverName: DC_FQDN,
    bindDn: ADMIN_DN,
    bindPassword: ADMIN_PASSWORD,
    connectTimeoutMs: 3_000,
    timeoutMs: 10_000,
    user: { baseDn: DOMAIN_DN, filter: '(&(objectClass=user)(objectCategory=person)(sAMAccountName={username}))', idAttribute: 'objectGUID', usernameAttribute: 'sAMAccountName', emailAttribute: 'mail', nameAttribute: 'displayName' },
    groups: { memberOf: false, search: { baseDn: DOMAIN_DN, filter: '(&(objectClass=group)(member={dn}))', nameAttribute: 'cn' }, nested: 'ad', maxDepth: 5, max: 1_000 },
    ...overrides,
  };
}

if (unavailable !== undefined) {
  describe('Active Directory (Samba AD DC)', () => {
    it.skip(`cannot run here: ${unavailable}`, () => {});
  });
} else {
  describe('Active Directory (Samba AD DC)', () => {
    beforeAll(async () => {
      dc = await startSambaDc();
      const password = (user: string) => `Pa55-${user}-word!`;
      for (const user of ['alice', 'carol', 'dave']) {
        await dc.tool('user', 'create', user, password(user), `--mail-address=${user}@corp.example.test`, `--given-name=${user}`, '--surname=Test');
      }
      for (const group of ['Developers', 'SRE', 'Ops', 'Platform']) await dc.tool('group', 'add', group);
      await dc.tool('group', 'addmembers', 'Developers', 'alice,carol,dave');
      await dc.tool('group', 'addmembers', 'SRE', 'alice');
      await dc.tool('group', 'addmembers', 'Ops', 'SRE');
      await dc.tool('group', 'addmembers', 'Platform', 'Ops');
      await dc.tool('user', 'disable', 'carol');
      // AD refuses the bind of an expired account too; stsgate's own check is what a directory that does not must still meet.
      await dc.tool('user', 'setexpiry', 'dave', '--days=0');
    }, 180_000);
    afterAll(async () => {
      await dc?.stop();
    });

    it('signs in by sAMAccountName; objectGUID is the id; nested groups come in one in-chain search', async () => {
      const profile = await new LdapDirectory(settings(), 'Corp AD').authenticate('alice', 'Pa55-alice-word!');
      expect(profile.user).toMatchObject({ username: 'alice', email: 'alice@corp.example.test', dn: `CN=alice Test,CN=Users,${DOMAIN_DN}` });
      expect((profile.user as { id: string }).id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(profile.groups).toEqual(expect.arrayContaining(['Developers', 'SRE', 'Ops', 'Platform']));
      // memberOf alone: the direct groups (and Domain Users is the primary group, which memberOf never lists).
      const direct = await new LdapDirectory(settings({ groups: { memberOf: true, nested: 'none', maxDepth: 5, max: 1_000 } }), 'Corp AD').authenticate('alice', 'Pa55-alice-word!');
      expect([...(direct.groups as string[])].sort()).toEqual(['Developers', 'SRE']);
    });

    it('a wrong password and an unknown user get the same answer; filter injection matches nothing', async () => {
      const directory = new LdapDirectory(settings(), 'Corp AD');
      for (const [username, password] of [['alice', 'wrong'], ['nobody', 'Pa55-alice-word!'], ['*', 'Pa55-alice-word!'], ['*)(sAMAccountName=*', 'Pa55-alice-word!']]) {
        await expect(directory.authenticate(username!, password!)).rejects.toMatchObject({ reason: 'credentials_rejected', status: 401, message: 'Corp AD did not accept this username and password.' });
      }
    });

    it('disabled (userAccountControl 0x2) and expired (accountExpires) accounts are refused with the generic answer: AD refuses their binds itself', async () => {
      const directory = new LdapDirectory(settings(), 'Corp AD');
      // AD answers invalidCredentials (data 533, data 701) before stsgate's own userAccountControl and
      // accountExpires checks are reached; those are tested on OpenLDAP with AD's attributes (ldap.test.ts).
      await expect(directory.authenticate('carol', 'Pa55-carol-word!')).rejects.toMatchObject({ reason: 'credentials_rejected', status: 401 });
      await expect(directory.authenticate('dave', 'Pa55-dave-word!')).rejects.toMatchObject({ reason: 'credentials_rejected', status: 401 });
      await dc.tool('user', 'enable', 'carol');
      expect((await directory.authenticate('carol', 'Pa55-carol-word!')).user).toMatchObject({ username: 'carol' });
    });
  });
}
