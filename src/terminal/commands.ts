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

/** `stsgate token --target NAME [--gateway URL]`: the raw target token on stdout. */
export function tokenCommand(options: { gateway?: string; target: string }, write: (line: string) => void): Promise<number> {
  return reported(async () => {
    write((await targetTokenFor(options)).token);
    return 0;
  });
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
