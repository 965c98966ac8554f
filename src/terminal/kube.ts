/**
 * Kubernetes: `stsgate kube-token` is a client-go exec credential plugin (the API server's OIDC
 * authenticator then checks the target token with the gateway's JWKS), and `stsgate kubeconfig` writes
 * the kubeconfig user that runs it.
 *
 * client-go tells the plugin which ExecCredential version it speaks in KUBERNETES_EXEC_INFO
 * (`client.authentication.k8s.io/v1` since Kubernetes 1.22, `v1beta1` before); the answer must use the same.
 */
import { readFile, rename, rm, writeFile, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { parseDocument, stringify } from 'yaml';

export const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'] as const;
const DEFAULT_EXEC_API_VERSION = 'client.authentication.k8s.io/v1beta1';

/** The ExecCredential version kubectl asked for in KUBERNETES_EXEC_INFO, else v1beta1 (kubectl before 1.22 sets none). */
export function execApiVersion(execInfo: string | undefined): string {
  if (execInfo === undefined) return DEFAULT_EXEC_API_VERSION;
  try {
    const version = (JSON.parse(execInfo) as { apiVersion?: unknown }).apiVersion;
    return typeof version === 'string' && (EXEC_API_VERSIONS as readonly string[]).includes(version) ? version : DEFAULT_EXEC_API_VERSION;
  } catch {
    return DEFAULT_EXEC_API_VERSION;
  }
}

/** The ExecCredential printed on stdout: the token, and when client-go must run the plugin again. */
export function execCredential(token: string, expiresAt: Date, execInfo: string | undefined): Record<string, unknown> {
  return {
    apiVersion: execApiVersion(execInfo),
    kind: 'ExecCredential',
    status: { token, expirationTimestamp: expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z') },
  };
}

export interface KubeconfigOptions {
  target: string;
  /** The gateway's origin, passed to the plugin so that it never depends on the last login's default. */
  gateway: string;
  /** The command that runs stsgate (its executable and any leading arguments). */
  command: readonly string[];
  /** The API server; with it a cluster entry is written too. */
  server?: string;
  certificateAuthority?: string;
  insecureSkipTlsVerify?: boolean;
  /** Default: `stsgate-<target>`. */
  context?: string;
}

/** The kubeconfig file kubectl reads: the first entry of $KUBECONFIG, else ~/.kube/config. */
export function defaultKubeconfigPath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const first = env.KUBECONFIG?.split(delimiter).find((entry) => entry !== '');
  return first ?? join(env.HOME ?? homedir(), '.kube', 'config');
}

type Named = { name: string } & Record<string, unknown>;

/** Replaces the entry named `entry.name` in `list`, or appends it. */
function upsert(list: unknown, entry: Named): Named[] {
  const entries = Array.isArray(list) ? (list as Named[]).filter((item) => item?.name !== entry.name) : [];
  return [...entries, entry];
}

/**
 * Merges a user (the exec plugin), a cluster (when a server is given) and a context into the kubeconfig
 * at `file`, leaving every other entry as it was; written whole to a temporary file, renamed, 0600.
 */
export async function writeKubeconfig(file: string, options: KubeconfigOptions): Promise<{ context: string }> {
  const context = options.context ?? `stsgate-${options.target}`;
  let config: Record<string, unknown> = { apiVersion: 'v1', kind: 'Config' };
  try {
    const parsed = parseDocument(await readFile(file, 'utf8'));
    if (parsed.errors.length > 0) throw new Error(`${file} is not valid YAML: ${parsed.errors[0]!.message}`);
    const value = parsed.toJS() as unknown;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) config = value as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const [command, ...leading] = options.command;
  const user: Named = {
    name: context,
    user: {
      exec: {
        apiVersion: 'client.authentication.k8s.io/v1',
        command,
        args: [...leading, 'kube-token', '--target', options.target, '--gateway', options.gateway],
        interactiveMode: 'Never',
        provideClusterInfo: false,
      },
    },
  };
  config.users = upsert(config.users, user);
  const existingContext = (Array.isArray(config.contexts) ? (config.contexts as Named[]) : []).find((entry) => entry?.name === context);
  const clusterName = options.server !== undefined ? context : ((existingContext?.context as { cluster?: string } | undefined)?.cluster ?? context);
  if (options.server !== undefined) {
    config.clusters = upsert(config.clusters, {
      name: clusterName,
      cluster: {
        server: options.server,
        ...(options.certificateAuthority !== undefined ? { 'certificate-authority': options.certificateAuthority } : {}),
        ...(options.insecureSkipTlsVerify ? { 'insecure-skip-tls-verify': true } : {}),
      },
    });
  }
  config.contexts = upsert(config.contexts, { name: context, context: { cluster: clusterName, user: context } });
  config['current-context'] = context;
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, stringify(config), { mode: 0o600, flag: 'wx' });
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  return { context };
}
