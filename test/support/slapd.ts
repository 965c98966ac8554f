/**
 * A real OpenLDAP `slapd` for the directory-login tests, started by the test on free loopback ports with
 * its own temporary configuration (a slapd.conf given with `-f`), database and TLS certificates (a test CA
 * made with openssl; the server's certificate names 127.0.0.1). It runs in the foreground as a child of
 * the test process and is killed by `stop()`.
 *
 *   const slapd = await startSlapd();                // ldap://127.0.0.1:P/ and ldaps://127.0.0.1:P2/
 *   await slapd.add(ldif);                           // ldapadd as the root DN
 *   await slapd.stop();
 *
 * The database has the memberof overlay (groupOfNames/member -> memberOf) and a small auxiliary class
 * with Active Directory's userAccountControl and accountExpires attributes (AD's own OIDs), so AD account
 * states can be tested on OpenLDAP.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LdapSettings } from '../../src/config/types.js';
import { canConnect, freePort, sleep } from './common.js';

const run = promisify(execFile);

export const SLAPD = '/usr/sbin/slapd';
export const LDAPADD = '/usr/bin/ldapadd';
const OPENSSL = '/usr/bin/openssl';

/** Why slapd cannot run here (missing programs), or undefined. */
export function slapdUnavailable(): string | undefined {
  const missing = [SLAPD, LDAPADD, OPENSSL].filter((file) => !existsSync(file));
  return missing.length > 0 ? `missing ${missing.join(', ')} (apt-get install -y slapd ldap-utils openssl)` : undefined;
}

export const BASE_DN = 'dc=example,dc=org';
/** Where the tests' people and groups live. */
export const PEOPLE_DN = `ou=people,${BASE_DN}`;
export const GROUPS_DN = `ou=groups,${BASE_DN}`;
export const ROOT_DN = `cn=admin,${BASE_DN}`;
const ROOT_PASSWORD = 'root-secret';
/** The gateway's service account. */
export const SERVICE_DN = `cn=stsgate,${BASE_DN}`;
export const SERVICE_PASSWORD = 'service-secret';

export interface Slapd {
  /** ldap://127.0.0.1:PORT (plain, and StartTLS). */
  url: string;
  /** ldaps://127.0.0.1:PORT2 */
  ldapsUrl: string;
  /** The test CA's certificate (PEM) and its file. */
  ca: string;
  caFile: string;
  dir: string;
  /** ldapadd as the root DN. */
  add(ldif: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts slapd with the base entries (the suffix, ou=people, ou=groups, the service account). */
export async function startSlapd(): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'stsgate-slapd-'));
  mkdirSync(join(dir, 'data'));
  const caFile = join(dir, 'ca.pem');
  await makeCertificates(dir);
  const [port, tlsPort] = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'ad.schema'), AD_SCHEMA);
  writeFileSync(join(dir, 'slapd.conf'), slapdConf(dir));
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${tlsPort}`;
  const output: string[] = [];
  const child: ChildProcess = spawn(SLAPD, ['-d', '0', '-h', `${url}/ ${ldapsUrl}/`, '-f', join(dir, 'slapd.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async () => {
    if (!exited) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(3_000)]);
      if (!exited) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; ; i++) {
      if (exited) throw new Error(`slapd exited: ${output.join('').slice(-2_000)}`);
      if ((await canConnect(port)) && (await canConnect(tlsPort))) break;
      if (i > 100) throw new Error(`slapd did not listen: ${output.join('').slice(-2_000)}`);
      await sleep(100);
    }
    const add = async (ldif: string) => {
      const file = join(dir, `add-${Date.now()}-${Math.random().toString(36).slice(2)}.ldif`);
      writeFileSync(file, ldif);
      try {
        await run(LDAPADD, ['-x', '-H', url, '-D', ROOT_DN, '-w', ROOT_PASSWORD, '-f', file], { maxBuffer: 64 * 1024 * 1024 });
      } finally {
        rmSync(file, { force: true });
      }
    };
    await add(BASE_LDIF);
    return { url, ldapsUrl, ca: readFileSync(caFile, 'utf8'), caFile, dir, add, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A test CA and a server certificate for 127.0.0.1 and localhost, signed by it. */
async function makeCertificates(dir: string): Promise<void> {
  const f = (name: string) => join(dir, name);
  await run(OPENSSL, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=stsgate test LDAP CA', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  await run(OPENSSL, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr')]);
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await run(OPENSSL, ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('server.ext'), '-out', f('server.pem')]);
}

/** Active Directory's account attributes (with AD's OIDs) on an auxiliary class, for OpenLDAP. */
const AD_SCHEMA = `
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.159 NAME 'accountExpires' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.99.1 NAME 'stsgateTestAdAccount' AUXILIARY MAY ( userAccountControl $ accountExpires ) )
`;

function slapdConf(dir: string): string {
  return `
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include ${dir}/ad.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
TLSCACertificateFile ${dir}/ca.pem
TLSCertificateFile ${dir}/server.pem
TLSCertificateKeyFile ${dir}/server.key

database mdb
suffix "${BASE_DN}"
rootdn "${ROOT_DN}"
rootpw ${ROOT_PASSWORD}
directory ${dir}/data
maxsize 268435456
# The service account reads every group of a user in 2,000 groups: paged, beyond the default size limit.
limits dn.exact="${SERVICE_DN}" size.soft=500 size.hard=unlimited size.prtotal=unlimited
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
`;
}

const BASE_LDIF = `dn: ${BASE_DN}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,${BASE_DN}
objectClass: organizationalUnit
ou: people

dn: ou=groups,${BASE_DN}
objectClass: organizationalUnit
ou: groups

dn: ${SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: stsgate
userPassword: ${SERVICE_PASSWORD}
`;

/** An LDIF person under ou=people. */
export function personLdif(uid: string, options: { password: string; mail?: string; name?: string; userAccountControl?: number; accountExpires?: string }): string {
  const ad = options.userAccountControl !== undefined || options.accountExpires !== undefined;
  return [
    `dn: uid=${uid},ou=people,${BASE_DN}`,
    'objectClass: inetOrgPerson',
    ...(ad ? ['objectClass: stsgateTestAdAccount'] : []),
    `uid: ${uid}`,
    `cn: ${options.name ?? uid}`,
    `sn: ${uid}`,
    ...(options.name ? [`displayName: ${options.name}`] : []),
    ...(options.mail ? [`mail: ${options.mail}`] : []),
    `userPassword: ${options.password}`,
    ...(options.userAccountControl !== undefined ? [`userAccountControl: ${options.userAccountControl}`] : []),
    ...(options.accountExpires !== undefined ? [`accountExpires: ${options.accountExpires}`] : []),
    '',
    '',
  ].join('\n');
}

/** An LDIF groupOfNames under `ou` (default ou=groups) with these member DNs. */
export function groupLdif(cn: string, members: readonly string[], ou = `ou=groups,${BASE_DN}`): string {
  return [`dn: cn=${cn},${ou}`, 'objectClass: groupOfNames', `cn: ${cn}`, ...members.map((m) => `member: ${m}`), '', ''].join('\n');
}

export const personDn = (uid: string) => `uid=${uid},ou=people,${BASE_DN}`;
export const groupDn = (cn: string, ou = `ou=groups,${BASE_DN}`) => `cn=${cn},${ou}`;

/**
 * A `use: ldap` provider's settings, as the schema's transform makes them, for this slapd over LDAPS: the
 * service account, people found by uid, groups from memberOf and a groupOfNames search, nested by search.
 */
export function slapdSettings(slapd: Pick<Slapd, 'ldapsUrl' | 'ca'>, overrides: Partial<LdapSettings> = {}): LdapSettings {
  return {
    url: slapd.ldapsUrl,
    startTls: false,
    ca: slapd.ca,
    bindDn: SERVICE_DN,
    bindPassword: SERVICE_PASSWORD,
    connectTimeoutMs: 2_000,
    timeoutMs: 5_000,
    user: { baseDn: PEOPLE_DN, filter: '(&(objectClass=inetOrgPerson)(uid={username}))', idAttribute: 'dn', usernameAttribute: 'uid', emailAttribute: 'mail', nameAttribute: 'displayName' },
    groups: { memberOf: true, search: { baseDn: GROUPS_DN, filter: '(&(objectClass=groupOfNames)(member={dn}))', nameAttribute: 'cn' }, nested: 'search', maxDepth: 5, max: 1_000 },
    ...overrides,
  };
}
