/**
 * `stsgate login`, `stsgate credentials` and `stsgate logout`, as the CLI calls them: messages for the
 * person on stderr, only the credential JSON on stdout, exit 0 or 1.
 */
import { ConfigFolder, configFolder } from './config-folder.js';
import { TerminalCredentialsError, terminalCredentials, terminalLogout } from './credentials.js';
import { gatewayOrigin } from './gateway-url.js';
import { terminalLogin } from './login.js';
import { checkClusterOptions, defaultKubeconfigPath, execCredential, KubeconfigError, writeKubeconfig, type KubeconfigOptions } from './kube.js';
import { terminalTargetToken } from './target-token.js';

const say = (line: string) => process.stderr.write(`${line}\n`);

/** `stsgate login --gateway URL [--provider P] [--role R] [--no-browser]`. */
export async function loginCommand(options: { gateway: string; provider?: string; role?: string; openBrowser: boolean }): Promise<number> {
  return terminalLogin({
    gateway: gatewayOrigin(options.gateway),
    ...(options.provider !== undefined ? { provider: options.provider } : {}),
    ...(options.role !== undefined ? { role: options.role } : {}),
    openBrowser: options.openBrowser,
    folder: new ConfigFolder(configFolder()),
    say,
  });
}

/**
 * `stsgate credentials (--role R | --target NAME) [--gateway URL] [--format json|token]`: AWS
 * `credential_process` JSON on stdout, or a GCP or Azure target's access token (JSON, or with
 * `--format token` the bearer token alone, for `CLOUDSDK_AUTH_ACCESS_TOKEN` or `gcloud --access-token-file`).
 */
export function credentialsCommand(options: { gateway?: string; role?: string; target?: string; format?: string }, write: (line: string) => void): Promise<number> {
  return reported(async () => {
    if (options.format !== undefined && options.format !== 'json' && options.format !== 'token') throw new TerminalCredentialsError(`--format must be json or token, not ${JSON.stringify(options.format.slice(0, 20))}`);
    const credentials = await terminalCredentials({
      ...(options.gateway !== undefined ? { gateway: gatewayOrigin(options.gateway) } : {}),
      ...(options.role !== undefined ? { role: options.role } : {}),
      ...(options.target !== undefined ? { target: options.target } : {}),
      folder: new ConfigFolder(configFolder()),
    });
    if (options.format === 'token') {
      if (!('access_token' in credentials)) throw new TerminalCredentialsError('--format token is for GCP and Azure targets (AWS keys are not one token)');
      write(credentials.access_token);
    } else {
      write(JSON.stringify(credentials));
    }
    return 0;
  });
}

/** `stsgate logout [--gateway URL]`: ends the terminal session and forgets it. */
export async function logoutCommand(options: { gateway?: string }): Promise<number> {
  const gateway = await terminalLogout({ ...(options.gateway !== undefined ? { gateway: gatewayOrigin(options.gateway) } : {}), folder: new ConfigFolder(configFolder()) });
  say(gateway === undefined ? 'Not signed in to any gateway.' : `Signed out of ${gateway}.`);
  return 0;
}

/** Runs `fn`; a TerminalCredentialsError or KubeconfigError is printed on stderr and exits 1. */
async function reported(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof TerminalCredentialsError || err instanceof KubeconfigError) {
      say(`stsgate: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

function targetTokenFor(options: { gateway?: string; target: string }) {
  return terminalTargetToken({
    ...(options.gateway !== undefined ? { gateway: gatewayOrigin(options.gateway) } : {}),
    target: options.target,
    folder: new ConfigFolder(configFolder()),
  });
}

/** What `stsgate token --format` prints: the token alone, or a GCP executable-sourced credential's answer. */
export const TOKEN_FORMATS = ['jwt', 'gcp-executable'] as const;

/**
 * `stsgate token --target NAME [--gateway URL] [--format jwt|gcp-executable]`: the raw target token on
 * stdout; with `gcp-executable`, the JSON a GCP external-account config's `executable` credential source
 * reads (google-auth-library, gcloud), so Google's own client does the exchange. A failure then is that
 * JSON too (`success: false`), which the client reports, and exit 1.
 */
export function tokenCommand(options: { gateway?: string; target: string; format?: string }, write: (line: string) => void): Promise<number> {
  const format = options.format ?? 'jwt';
  if (!(TOKEN_FORMATS as readonly string[]).includes(format)) {
    say(`stsgate: --format must be one of ${TOKEN_FORMATS.join(', ')}, not ${JSON.stringify(format.slice(0, 20))}`);
    return Promise.resolve(2);
  }
  if (format === 'jwt') {
    return reported(async () => {
      write((await targetTokenFor(options)).token);
      return 0;
    });
  }
  return targetTokenFor(options).then(
    ({ token, expiresAt }) => {
      write(JSON.stringify(gcpExecutableResponse({ token, expiresAt })));
      return 0;
    },
    (err: unknown) => {
      if (!(err instanceof TerminalCredentialsError)) throw err;
      write(JSON.stringify(gcpExecutableResponse({ error: err.message })));
      say(`stsgate: ${err.message}`);
      return 1;
    },
  );
}

/** Google's executable-sourced credential response (version 1): a JWT subject token and its expiry, or a failure. */
function gcpExecutableResponse(result: { token: string; expiresAt: Date } | { error: string }) {
  if ('error' in result) return { version: 1, success: false, code: 'STSGATE_TOKEN_REFUSED', message: result.error };
  return { version: 1, success: true, token_type: 'urn:ietf:params:oauth:token-type:jwt', id_token: result.token, expiration_time: Math.floor(result.expiresAt.getTime() / 1000) };
}

/** `stsgate kube-token --target NAME [--gateway URL]`: an ExecCredential for kubectl on stdout. */
export function kubeTokenCommand(options: { gateway?: string; target: string }, write: (line: string) => void): Promise<number> {
  return reported(async () => {
    const { token, expiresAt } = await targetTokenFor(options);
    write(JSON.stringify(execCredential(token, expiresAt, process.env.KUBERNETES_EXEC_INFO)));
    return 0;
  });
}

/** `stsgate kubeconfig --target NAME [--gateway URL] [--server URL] ...`: merges an exec user (and cluster, context) into a kubeconfig. */
export async function kubeconfigCommand(options: Omit<KubeconfigOptions, 'command' | 'gateway'> & { gateway?: string; kubeconfig?: string }): Promise<number> {
  return reported(async () => {
    const sessions = await new ConfigFolder(configFolder()).readSessions();
    const gateway = options.gateway !== undefined ? gatewayOrigin(options.gateway) : sessions.default_gateway;
    if (gateway === undefined) throw new TerminalCredentialsError('--gateway is required (or sign in with stsgate login --gateway URL first)');
    const file = options.kubeconfig ?? defaultKubeconfigPath();
    // The command that runs this stsgate again: node, its loader flags (tsx in development), the script.
    const command = [process.execPath, ...process.execArgv, process.argv[1]!];
    const { context } = await writeKubeconfig(file, { ...(await checkClusterOptions(options)), gateway, command });
    say(`Wrote context ${context} to ${file}: kubectl --context ${context} runs stsgate kube-token --target ${options.target}.`);
    return 0;
  });
}
