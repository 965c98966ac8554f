/**
 * `stsgate login`, `stsgate credentials` and `stsgate logout`, as the CLI calls them: messages for the
 * person on stderr, only the credential JSON on stdout, exit 0 or 1.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { commandLine, PROFILE_NAME, unifiedDiff, writeAwsProfile } from './aws-profile.js';
import { ConfigFolder, configFolder } from './config-folder.js';
import { TerminalCredentialsError, terminalCredentials, terminalLogout } from './credentials.js';
import { gatewayOrigin, TerminalUsageError } from './gateway-url.js';
import { terminalLogin } from './login.js';
import { checkClusterOptions, defaultKubeconfigPath, execCredential, KubeconfigError, writeKubeconfig, type KubeconfigOptions } from './kube.js';
import { terminalTargetToken } from './target-token.js';

const say = (line: string) => process.stderr.write(`${line}\n`);

/** `stsgate login --gateway URL [--provider P] [--role R] [--no-browser | --paste-code]`. */
export async function loginCommand(options: { gateway: string; provider?: string; role?: string; openBrowser: boolean; pasteCode?: boolean; deviceClient?: string }): Promise<number> {
  return terminalLogin({
    ...(options.deviceClient !== undefined ? { device: { clientId: options.deviceClient } } : {}),
    gateway: gatewayOrigin(options.gateway),
    ...(options.provider !== undefined ? { provider: options.provider } : {}),
    ...(options.role !== undefined ? { role: options.role } : {}),
    openBrowser: options.openBrowser,
    pasteCode: options.pasteCode === true,
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
    const { context } = await writeKubeconfig(file, { ...(await checkClusterOptions(options)), gateway, command: thisCommand() });
    say(`Wrote context ${context} to ${file}: kubectl --context ${context} runs stsgate kube-token --target ${options.target}.`);
    return 0;
  });
}

/** The command that runs this stsgate again, by absolute paths: node, its loader flags (tsx in development), the script. */
function thisCommand(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1]!];
}

/** The AWS shared config file, as the AWS CLI finds it: `$AWS_CONFIG_FILE` (a leading `~` is the home folder), else `~/.aws/config`. */
export function awsConfigFile(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const home = env.HOME ?? homedir();
  const file = env.AWS_CONFIG_FILE;
  if (file === undefined || file === '') return join(home, '.aws', 'config');
  return file === '~' || file.startsWith('~/') ? join(home, file.slice(1)) : file;
}

export interface ConfigureOptions {
  profile: string;
  role?: string;
  target?: string;
  gateway?: string;
  region: string;
  /** Write without asking. */
  yes: boolean;
}

/**
 * `stsgate configure --profile NAME (--role R | --target T) [--gateway URL] [--region REGION] [--yes]`:
 * writes an AWS CLI profile whose credential_process is `stsgate credentials`; for a role, its STS calls
 * go to the gateway (stsgate's keys are good nowhere else), for a broker target to AWS (real keys). Shows
 * the change as a unified diff and, on a terminal, asks first; elsewhere only with --yes.
 */
export async function configureCommand(options: ConfigureOptions): Promise<number> {
  if ((options.role === undefined) === (options.target === undefined)) throw new TerminalUsageError('give exactly one of --role and --target');
  if (!PROFILE_NAME.test(options.profile)) throw new TerminalUsageError('--profile must be 1-64 letters, digits and _ . @ + -');
  if (!/^[a-z]{2}(?:-[a-z0-9]+){1,3}$/.test(options.region)) throw new TerminalUsageError(`--region must be an AWS region such as us-east-1, not ${JSON.stringify(options.region.slice(0, 40))}`);
  const name = options.role ?? options.target!;
  if (!/^[A-Za-z0-9_+=,.@:/-]{1,128}$/.test(name)) throw new TerminalUsageError(`--${options.role !== undefined ? 'role' : 'target'} must be a role or target name (letters, digits and _+=,.@:/-)`);
  const gateway = options.gateway !== undefined ? gatewayOrigin(options.gateway) : (await new ConfigFolder(configFolder()).readSessions()).default_gateway;
  if (gateway === undefined) throw new TerminalUsageError('--gateway is required (or sign in with stsgate login --gateway URL first)');

  const file = awsConfigFile();
  // Through a symbolic link (dotfiles kept elsewhere): the file it points to is the one to change.
  const target = await realpath(file).catch(() => file);
  const before = await readFile(target, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const after = writeAwsProfile(before, {
    name: options.profile,
    credentialProcess: commandLine([...thisCommand(), 'credentials', ...(options.role !== undefined ? ['--role', options.role] : ['--target', options.target!]), '--gateway', gateway]),
    region: options.region,
    ...(options.role !== undefined ? { stsEndpoint: gateway } : {}),
  });
  if (after === before) {
    say(`Profile ${options.profile} in ${file} is already as asked; nothing to change.`);
    return 0;
  }
  process.stderr.write(unifiedDiff(before, after, { from: before === '' ? '/dev/null' : file, to: file }));
  if (!options.yes) {
    if (!process.stdin.isTTY) throw new TerminalUsageError(`not asking without a terminal: pass --yes to write ${file}`);
    const prompt = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await prompt.question(`Write these changes to ${file}? [y/N] `).finally(() => prompt.close());
    if (!/^y(?:es)?$/i.test(answer.trim())) {
      say('Nothing written.');
      return 1;
    }
  }
  await replaceFile(target, after);
  say(`Wrote profile ${options.profile} to ${file}. Try: aws sts get-caller-identity --profile ${options.profile}`);
  return 0;
}

/** Replaces `file` atomically (a temporary file renamed over it), keeping its mode; a new file is 0600 in a 0700 folder. */
async function replaceFile(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const mode = await stat(file).then((s) => s.mode & 0o777, () => 0o600);
  const temporary = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temporary, text, { mode, flag: 'wx' });
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}
