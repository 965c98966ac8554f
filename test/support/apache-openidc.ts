/**
 * Apache httpd with mod_auth_openidc (Debian's apache2 and libapache2-mod-auth-openidc, installed by
 * .ci/run) as a relying party of stsgate: `apache2 -X` (one process, in the foreground) with a temporary
 * configuration on a free loopback port, protecting `/app/`, which it proxies to a small backend that
 * answers with the request headers it received, so a test sees the claims mod_auth_openidc passes on
 * (`OIDC_CLAIM_roles`, `OIDC_CLAIM_sub`, ...).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './common.js';

export const APACHE = '/usr/sbin/apache2';
export const MOD_AUTH_OPENIDC = '/usr/lib/apache2/modules/mod_auth_openidc.so';
/** Whether Debian's Apache and mod_auth_openidc are installed. */
export const apacheAvailable = existsSync(APACHE) && existsSync(MOD_AUTH_OPENIDC);

const MODULES = '/usr/lib/apache2/modules';

export class ApacheOpenIdc {
  readonly url: string;
  readonly #dir: string;
  readonly #port: number;
  readonly #backend: Server;
  #child: ChildProcess | undefined;

  private constructor(port: number, dir: string, backend: Server) {
    this.#port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.#dir = dir;
    this.#backend = backend;
  }

  /** Reserves the port and starts the backend; `start` runs Apache once the client is configured. */
  static async reserve(): Promise<ApacheOpenIdc> {
    const backend = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url, headers: req.headers }));
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    return new ApacheOpenIdc(await freePort(), mkdtempSync(join(tmpdir(), 'stsgate-apache-')), backend);
  }

  /** The redirect URI mod_auth_openidc uses (a "vanity" URL under the protected path). */
  get redirectUri(): string {
    return `${this.url}/app/redirect_uri`;
  }

  /** Writes the configuration and starts `apache2 -X`; resolves when it answers. */
  async start(options: { issuer: string; clientId: string; secret: string }): Promise<void> {
    const backend = `http://127.0.0.1:${(this.#backend.address() as AddressInfo).port}`;
    const conf = join(this.#dir, 'httpd.conf');
    writeFileSync(
      conf,
      `ServerRoot ${this.#dir}
ServerName 127.0.0.1
Listen 127.0.0.1:${this.#port}
PidFile ${this.#dir}/httpd.pid
DefaultRuntimeDir ${this.#dir}
ErrorLog ${this.#dir}/error.log
LogLevel warn auth_openidc:info
${process.getuid?.() === 0 ? 'User nobody\nGroup nogroup\n' : ''}LoadModule mpm_event_module ${MODULES}/mod_mpm_event.so
LoadModule authn_core_module ${MODULES}/mod_authn_core.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule authz_user_module ${MODULES}/mod_authz_user.so
LoadModule proxy_module ${MODULES}/mod_proxy.so
LoadModule proxy_http_module ${MODULES}/mod_proxy_http.so
LoadModule auth_openidc_module ${MODULES}/mod_auth_openidc.so

OIDCProviderMetadataURL ${options.issuer}/.well-known/openid-configuration
OIDCClientID ${options.clientId}
OIDCClientSecret ${options.secret}
OIDCProviderTokenEndpointAuth client_secret_basic
OIDCRedirectURI ${this.redirectUri}
OIDCCryptoPassphrase ${randomBytes(24).toString('hex')}
OIDCScope "openid email profile groups roles"
OIDCPKCEMethod S256
OIDCSSLValidateServer Off
OIDCRemoteUserClaim sub
OIDCPassClaimsAs headers

<Location /app/>
  AuthType openid-connect
  Require valid-user
  ProxyPass ${backend}/
</Location>
`,
    );
    const child = spawn(APACHE, ['-X', '-f', conf, '-d', this.#dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const output: string[] = [];
    child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`apache2 exited with ${child.exitCode}: ${output.join('')}${this.errorLog()}`);
      try {
        await fetch(`${this.url}/`, { redirect: 'manual' });
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    throw new Error(`apache2 did not answer: ${output.join('')}${this.errorLog()}`);
  }

  /** Apache's error log (mod_auth_openidc's messages), for a failing test's message. */
  errorLog(): string {
    const file = join(this.#dir, 'error.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  async close(): Promise<void> {
    const child = this.#child;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    this.#backend.closeAllConnections();
    await new Promise<void>((resolve) => this.#backend.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
