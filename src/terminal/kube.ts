/**
 * Kubernetes: `stsgate kube-token` is a client-go exec credential plugin (the API server's OIDC
 * authenticator then checks the target token with the gateway's JWKS), and `stsgate kubeconfig` writes
 * the kubeconfig user that runs it.
 *
 * client-go tells the plugin which ExecCredential version it speaks in KUBERNETES_EXEC_INFO
 * (`client.authentication.k8s.io/v1` since Kubernetes 1.22, `v1beta1` before); the answer must use the same.
 */
import { constants } from 'node:fs';
import { access, mkdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { Document, isMap, isSeq, parseDocument, type YAMLMap } from 'yaml';

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

/** A problem with the options or the kubeconfig file, told to the person as it is (exit 1). */
export class KubeconfigError extends Error {}

/**
 * The cluster options as kubectl will use them, or a KubeconfigError. The API server gets the target token
 * as a bearer token, so only https is accepted; kubectl resolves a relative certificate-authority path
 * against the kubeconfig file's folder, so it is made absolute here (against the working directory the
 * person typed it in); and kubectl refuses a CA file together with insecure-skip-tls-verify.
 */
export async function checkClusterOptions<T extends Pick<KubeconfigOptions, 'server' | 'certificateAuthority' | 'insecureSkipTlsVerify'>>(options: T, cwd = process.cwd()): Promise<T> {
  const { server, certificateAuthority, insecureSkipTlsVerify } = options;
  if (server === undefined) {
    if (certificateAuthority !== undefined || insecureSkipTlsVerify) throw new KubeconfigError('--certificate-authority and --insecure-skip-tls-verify describe the cluster: give its --server too');
    return options;
  }
  if (!URL.canParse(server) || new URL(server).protocol !== 'https:') throw new KubeconfigError(`--server must be an https:// URL (the API server receives the token as a bearer token): ${server}`);
  if (certificateAuthority === undefined) return options;
  if (insecureSkipTlsVerify) throw new KubeconfigError('--certificate-authority and --insecure-skip-tls-verify exclude each other (kubectl refuses both)');
  const absolute = resolve(cwd, certificateAuthority);
  try {
    await access(absolute, constants.R_OK);
  } catch {
    throw new KubeconfigError(`--certificate-authority ${absolute} cannot be read`);
  }
  return { ...options, certificateAuthority: absolute };
}

/** The kubeconfig at `file` as a YAML document (a new, empty one when there is none yet); refuses what is not a kubeconfig. */
async function readKubeconfig(file: string): Promise<Document> {
  const empty = () => new Document({ apiVersion: 'v1', kind: 'Config' });
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return empty();
  }
  const document = parseDocument(text);
  if (document.errors.length > 0) throw new KubeconfigError(`${file} is not valid YAML: ${document.errors[0]!.message}`);
  // An empty file (kubectl accepts one): begin a new kubeconfig, as for a missing file.
  if (document.contents === null) return empty();
  if (!isMap(document.contents)) throw new KubeconfigError(`${file} is not a kubeconfig (not a mapping at the top): left as it is`);
  return document;
}

/** The entry named `name` in the list `key` of `document`, if there is one. */
function namedEntry(document: Document, key: 'clusters' | 'users' | 'contexts', name: string): YAMLMap | undefined {
  const list = document.get(key);
  return isSeq(list) ? list.items.find((item): item is YAMLMap => isMap(item) && item.get('name') === name) : undefined;
}

/** Replaces the entry named `entry.name` in the list `key` of `document`, or appends it; every other entry keeps its text and comments. */
function upsert(document: Document, file: string, key: 'clusters' | 'users' | 'contexts', entry: Named): void {
  const list = document.get(key);
  if (list === undefined || list === null) {
    document.set(key, document.createNode([entry]));
    return;
  }
  if (!isSeq(list)) throw new KubeconfigError(`${file}: ${key} is not a list: left as it is`);
  const existing = namedEntry(document, key, entry.name);
  const node = document.createNode(entry);
  if (existing === undefined) list.items.push(node);
  else list.items[list.items.indexOf(existing)] = node;
}

/**
 * Merges a user (the exec plugin), a cluster (when a server is given) and a context into the kubeconfig
 * at `file`, leaving every other entry as it was (text and comments); written whole to a temporary file,
 * renamed, 0600.
 */
export async function writeKubeconfig(file: string, options: KubeconfigOptions): Promise<{ context: string }> {
  const context = options.context ?? `stsgate-${options.target}`;
  const document = await readKubeconfig(file);
  const [command, ...leading] = options.command;
  upsert(document, file, 'users', {
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
  });
  // Without --server an existing context keeps its cluster (a cluster entry written by another tool).
  const existingCluster = namedEntry(document, 'contexts', context)?.getIn(['context', 'cluster']);
  const clusterName = options.server === undefined && typeof existingCluster === 'string' ? existingCluster : context;
  if (options.server !== undefined) {
    upsert(document, file, 'clusters', {
      name: clusterName,
      cluster: {
        server: options.server,
        ...(options.certificateAuthority !== undefined ? { 'certificate-authority': options.certificateAuthority } : {}),
        ...(options.insecureSkipTlsVerify ? { 'insecure-skip-tls-verify': true } : {}),
      },
    });
  }
  upsert(document, file, 'contexts', { name: context, context: { cluster: clusterName, user: context } });
  document.set('current-context', context);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  // A kubeconfig that is a symbolic link (dotfiles kept elsewhere) stays one: the file it names is replaced.
  const destination = await realpath(file).catch(() => file);
  const temporary = `${destination}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, document.toString(), { mode: 0o600, flag: 'wx' });
    await rename(temporary, destination);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  return { context };
}
