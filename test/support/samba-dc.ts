/**
 * A real Active Directory for the directory-login tests: a Samba AD DC provisioned by `samba-tool domain
 * provision` in a temporary directory (a few seconds) and run in the foreground (`samba -i`) with only its
 * LDAP service, on 127.0.0.1. Samba's LDAP ports are not configurable, so it needs 389 and 636 free, and
 * root (as the CI runs). `sambaDcUnavailable()` says why it cannot run, for a skipped test to print.
 *
 *   const dc = await startSambaDc();
 *   await dc.tool('user', 'create', 'alice', 'Passw0rd-alice!');
 *   await dc.stop();
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { canConnect, sleep } from './common.js';

const run = promisify(execFile);
const SAMBA_TOOL = '/usr/bin/samba-tool';
const SAMBA = '/usr/sbin/samba';
const PROVISION_FILES = '/usr/share/samba/setup/ad-schema';

export const REALM = 'CORP.EXAMPLE.TEST';
export const DOMAIN_DN = 'DC=corp,DC=example,DC=test';
export const HOST_NAME = 'dc1';
/** The name in the DC's self-signed certificate. */
export const DC_FQDN = `${HOST_NAME}.corp.example.test`;
export const ADMIN_PASSWORD = 'Adm1n-Pa55word!';
export const ADMIN_DN = `CN=Administrator,CN=Users,${DOMAIN_DN}`;

/** Why a Samba AD DC cannot run here, or undefined. */
export async function sambaDcUnavailable(): Promise<string | undefined> {
  const missing = [SAMBA_TOOL, SAMBA, PROVISION_FILES].filter((file) => !existsSync(file));
  if (missing.length > 0) return `Samba AD DC not installed (missing ${missing.join(', ')}; apt-get install samba-ad-dc samba-ad-provision)`;
  if (process.getuid?.() !== 0) return 'a Samba AD DC runs as root only (it binds ports 389 and 636), and this test runs unprivileged';
  for (const port of [389, 636]) if (await canConnect(port)) return `port ${port} on 127.0.0.1 is taken (Samba's LDAP ports cannot be moved)`;
  return undefined;
}

export interface SambaDc {
  ldapsUrl: string;
  /** The DC's own CA (Samba generates it at first start). */
  ca: string;
  /** `samba-tool <args>` against this DC's database. */
  tool(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Provisions a domain in a temporary directory and starts its DC (LDAP only). */
export async function startSambaDc(): Promise<SambaDc> {
  const dir = mkdtempSync(join(tmpdir(), 'stsgate-samba-'));
  const conf = join(dir, 'etc', 'smb.conf');
  let child: ChildProcess | undefined;
  let exited = false;
  const output: string[] = [];
  const stop = async () => {
    if (child && !exited) {
      const gone = new Promise((resolve) => child!.once('exit', resolve));
      // samba -i is the process group's leader's child here; its prefork workers follow the master.
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(5_000)]);
      if (!exited) child.kill('SIGKILL');
    }
    // The master has exited, but its prefork workers may still write a log or database file for a moment
    // (ENOTEMPTY on a loaded machine): retried for up to 3 s.
    rmSync(dir, { recursive: true, force: true, maxRetries: 15, retryDelay: 200 });
  };
  try {
    await run(SAMBA_TOOL, [
      'domain', 'provision', `--targetdir=${dir}`, `--realm=${REALM}`, '--domain=CORP', `--host-name=${HOST_NAME}`, '--server-role=dc', '--dns-backend=NONE',
      `--adminpass=${ADMIN_PASSWORD}`, '--option=interfaces=lo', '--option=bind interfaces only=yes', `--option=log file=${join(dir, 'log.%m')}`,
    ], { maxBuffer: 16 * 1024 * 1024 });
    // Only the LDAP server; simple binds are what the gateway does (over LDAPS).
    const text = readFileSync(conf, 'utf8').replace(/^\s*server services = .*$/m, '\tserver services = ldap');
    writeFileSync(conf, text);
    child = spawn(SAMBA, ['-i', '-s', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.once('exit', () => (exited = true));
    const caFile = join(dir, 'private', 'tls', 'ca.pem');
    for (let i = 0; !(existsSync(caFile) && (await canConnect(636))); i++) {
      if (exited) throw new Error(`samba exited: ${output.join('').slice(-2_000)}`);
      if (i > 300) throw new Error(`samba did not listen on 636: ${output.join('').slice(-2_000)}`);
      await sleep(100);
    }
    const tool = async (...args: string[]) => (await run(SAMBA_TOOL, [...args, '-s', conf], { maxBuffer: 16 * 1024 * 1024 })).stdout;
    return { ldapsUrl: 'ldaps://127.0.0.1:636', ca: readFileSync(caFile, 'utf8'), tool, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
