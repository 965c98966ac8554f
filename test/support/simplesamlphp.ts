/**
 * A real SAML 2.0 IdP for tests: Debian's SimpleSAMLphp (package `simplesamlphp`, www in
 * /usr/share/simplesamlphp/www, config in /etc/simplesamlphp), run by PHP's built-in server from a
 * temporary copy of its configuration: an exampleauth:UserPass source with test users, the IdP's key
 * and certificate made by openssl, and the gateway registered in saml20-sp-remote.
 *
 *   const idp = await SimpleSamlPhp.start({ port, sp: { entityId, acsUrl } });   // users: alice, bob (password "password")
 *   // idp.metadataUrl: the IdP metadata the gateway reads (http, so dev.allow_insecure_http)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeKeyPair } from './saml-signer.js';

export const SIMPLESAMLPHP_WWW = '/usr/share/simplesamlphp/www';
export const SIMPLESAMLPHP_CONFIG = '/etc/simplesamlphp/config.php';

/** Why SimpleSAMLphp cannot run here, or undefined when it can. */
export function simpleSamlPhpMissing(): string | undefined {
  if (!existsSync(SIMPLESAMLPHP_WWW) || !existsSync(SIMPLESAMLPHP_CONFIG)) return 'the simplesamlphp package is not installed (apt-get install -y simplesamlphp php-cli xmlsec1)';
  if (!existsSync('/usr/bin/php')) return 'php-cli is not installed (apt-get install -y php-cli)';
  if (!existsSync('/usr/bin/xmlsec1')) return 'xmlsec1 is not installed';
  return undefined;
}

/** The test users: password "password" for each. */
export const SIMPLESAMLPHP_USERS = {
  alice: { email: 'alice@acme.com', groups: ['staff', 'sts-admins'] },
  bob: { email: 'bob@acme.com', groups: ['staff'] },
} as const;

const php = (value: unknown): string => {
  if (typeof value === 'string') return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) return `[${value.map(php).join(', ')}]`;
  return `[${Object.entries(value as Record<string, unknown>).map(([k, v]) => `${php(k)} => ${php(v)}`).join(', ')}]`;
};

export class SimpleSamlPhp {
  private constructor(
    readonly baseUrl: string,
    private readonly process: ChildProcess,
    readonly dir: string,
  ) {}

  /** The IdP's entityID (SimpleSAMLphp's default: its metadata URL). */
  get entityId(): string {
    return `${this.baseUrl}/saml2/idp/metadata.php`;
  }

  get metadataUrl(): string {
    return `${this.baseUrl}/saml2/idp/metadata.php`;
  }

  static async start(options: { port: number; sp: { entityId: string; acsUrl: string; certificate?: string } }): Promise<SimpleSamlPhp> {
    const missing = simpleSamlPhpMissing();
    if (missing) throw new Error(missing);
    const dir = await mkdtemp(join(tmpdir(), 'stsgate-simplesamlphp-'));
    const baseUrl = `http://127.0.0.1:${options.port}`;
    for (const sub of ['config', 'metadata', 'cert', 'log', 'tmp', 'sessions']) await mkdir(join(dir, sub));
    await makeKeyPair(join(dir, 'cert'), 'idp');
    // The package's own config.php, with what a loopback test IdP needs set over it.
    const overrides = {
      baseurlpath: `${baseUrl}/`,
      certdir: `${join(dir, 'cert')}/`,
      loggingdir: `${join(dir, 'log')}/`,
      'logging.handler': 'file',
      'logging.level': 7,
      tempdir: join(dir, 'tmp'),
      metadatadir: `${join(dir, 'metadata')}/`,
      secretsalt: 'stsgate-test-salt-0123456789',
      'auth.adminpassword': 'stsgate-test-admin',
      'enable.saml20-idp': true,
      'session.cookie.secure': false,
      // The package's default is SameSite=None, which Chromium drops on a cookie that is not Secure (plain-http loopback).
      'session.cookie.samesite': 'Lax',
      'session.phpsession.savepath': join(dir, 'sessions'),
      'store.type': 'phpsession',
      timezone: 'UTC',
      'module.enable': { exampleauth: true, core: true, saml: true, admin: true },
    };
    await writeFile(
      join(dir, 'config', 'config.php'),
      `<?php\nrequire ${php(SIMPLESAMLPHP_CONFIG)};\n${Object.entries(overrides).map(([k, v]) => `$config[${php(k)}] = ${php(v)};`).join('\n')}\n`,
    );
    const users = Object.fromEntries(Object.entries(SIMPLESAMLPHP_USERS).map(([name, user]) => [`${name}:password`, { uid: [name], email: [user.email], groups: [...user.groups] }]));
    await writeFile(join(dir, 'config', 'authsources.php'), `<?php\n$config = ${php({ admin: ['core:AdminPassword'], 'example-userpass': { 0: 'exampleauth:UserPass', ...users } })};\n`);
    await writeFile(
      join(dir, 'metadata', 'saml20-idp-hosted.php'),
      `<?php\n$metadata['__DYNAMIC:1__'] = ${php({
        host: '__DEFAULT__',
        privatekey: 'idp.key',
        certificate: 'idp.crt',
        auth: 'example-userpass',
        'signature.algorithm': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
        'saml20.sign.response': true,
        'saml20.sign.assertion': true,
        'attributes.NameFormat': 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
      })};\n`,
    );
    await writeFile(
      join(dir, 'metadata', 'saml20-sp-remote.php'),
      `<?php\n$metadata[${php(options.sp.entityId)}] = ${php({
        AssertionConsumerService: options.sp.acsUrl,
        NameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
        'simplesaml.nameidattribute': 'email',
        'saml20.sign.response': true,
        'saml20.sign.assertion': true,
        // The SP's AuthnRequest signing certificate: SimpleSAMLphp then refuses an unsigned or badly signed request.
        ...(options.sp.certificate !== undefined ? { 'validate.authnrequest': true, certData: options.sp.certificate } : {}),
      })};\n`,
    );
    const child = spawn('php', ['-S', `127.0.0.1:${options.port}`, '-t', SIMPLESAMLPHP_WWW], {
      env: { ...process.env, SIMPLESAMLPHP_CONFIG_DIR: join(dir, 'config') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4000);
    });
    const idp = new SimpleSamlPhp(baseUrl, child, dir);
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const response = await fetch(idp.metadataUrl);
        const text = await response.text();
        if (response.ok && text.includes('IDPSSODescriptor')) return idp;
        if (Date.now() > deadline) throw new Error(`HTTP ${response.status}: ${text.slice(0, 500)}`);
      } catch (err) {
        if (Date.now() > deadline || child.exitCode !== null) {
          child.kill();
          throw new Error(`SimpleSAMLphp did not start at ${baseUrl}: ${err instanceof Error ? err.message : String(err)}; php said: ${stderr}`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async close(): Promise<void> {
    if (this.process.exitCode !== null) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.kill('SIGTERM');
    await exited;
  }
}
