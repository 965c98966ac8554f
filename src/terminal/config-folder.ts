/**
 * What `stsgate login` and `stsgate credentials` keep between runs, in the user's config folder
 * (`$XDG_CONFIG_HOME/stsgate`, else `~/.config/stsgate`, per the XDG Base Directory specification):
 *
 *   sessions.json     the terminal session token per gateway, and which gateway was used last
 *   credentials.json  cached credential sets per gateway and role (for `credential_process`)
 *   targets.json      cached target tokens per gateway and target (`stsgate token`, `stsgate kube-token`)
 *
 * All three hold secrets: the folder is 0700 and the files 0600, written whole to a temporary file and renamed,
 * so a concurrent reader (two AWS SDK processes running `credential_process` at once) sees the old file or
 * the new one, never half of one.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ProcessCredentials } from '../credentials/credential-formats.js';

/** One gateway's terminal session, as `sessions.json` keeps it. */
export interface SavedSession {
  session_token: string;
  /** ISO 8601. */
  expires_at: string;
  account: string;
  provider: string;
  roles: string[];
  /** The role `stsgate login --role` asked for: the default of `stsgate credentials`. */
  role?: string;
}

export interface SessionsFile {
  version: 1;
  /** The gateway of the last login: the default of `stsgate credentials`. */
  default_gateway?: string;
  gateways: Record<string, SavedSession>;
}


export interface CredentialsFile {
  version: 1;
  /** Keyed by `<gateway> <role>`. */
  entries: Record<string, ProcessCredentials>;
}

/** One cached target token (`stsgate token --target`, `stsgate kube-token`). */
export interface CachedTargetToken {
  token: string;
  /** ISO 8601. */
  issued_at: string;
  /** ISO 8601. */
  expires_at: string;
}

export interface TargetTokensFile {
  version: 1;
  /** Keyed by `<gateway> <target>`. */
  entries: Record<string, CachedTargetToken>;
}

/** The folder: `$XDG_CONFIG_HOME/stsgate` when that is an absolute path (XDG says relative ones are ignored), else `~/.config/stsgate`. */
export function configFolder(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg !== undefined && xdg.startsWith('/') ? xdg : join(env.HOME ?? homedir(), '.config');
  return join(base, 'stsgate');
}

/** The config folder's two files, read and written with private permissions. */
export class ConfigFolder {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** `sessions.json`: the terminal session token per gateway. */
  get sessionsFile(): string {
    return join(this.path, 'sessions.json');
  }

  /** `credentials.json`: cached credential sets per gateway and role. */
  get credentialsFile(): string {
    return join(this.path, 'credentials.json');
  }

  /** The saved sessions (empty when none were saved yet). */
  async readSessions(): Promise<SessionsFile> {
    const data = await this.#read(this.sessionsFile);
    return isRecord(data) && data.version === 1 && isRecord(data.gateways) ? (data as unknown as SessionsFile) : { version: 1, gateways: {} };
  }

  /** Replaces `sessions.json` (0600). */
  async writeSessions(sessions: SessionsFile): Promise<void> {
    await this.#write(this.sessionsFile, sessions);
  }

  /** The cached credential sets (empty when none were cached yet). */
  async readCredentials(): Promise<CredentialsFile> {
    const data = await this.#read(this.credentialsFile);
    return isRecord(data) && data.version === 1 && isRecord(data.entries) ? (data as unknown as CredentialsFile) : { version: 1, entries: {} };
  }

  /** Replaces `credentials.json` (0600). */
  async writeCredentials(credentials: CredentialsFile): Promise<void> {
    await this.#write(this.credentialsFile, credentials);
  }

  /** `targets.json`: cached target tokens per gateway and target. */
  get targetsFile(): string {
    return join(this.path, 'targets.json');
  }

  /** The cached target tokens (empty when none were cached yet). */
  async readTargetTokens(): Promise<TargetTokensFile> {
    const data = await this.#read(this.targetsFile);
    return isRecord(data) && data.version === 1 && isRecord(data.entries) ? (data as unknown as TargetTokensFile) : { version: 1, entries: {} };
  }

  /** Replaces `targets.json` (0600). */
  async writeTargetTokens(tokens: TargetTokensFile): Promise<void> {
    await this.#write(this.targetsFile, tokens);
  }

  /**
   * Forgets the credential sets and target tokens cached for `gateway`: at logout, and at a login (the new
   * session may be another account's, and a cached token of the earlier one must never be handed out again).
   */
  async forgetCachedTokens(gateway: string): Promise<void> {
    const ofGateway = (key: string) => key.startsWith(`${gateway} `);
    const credentials = await this.readCredentials();
    for (const key of Object.keys(credentials.entries).filter(ofGateway)) delete credentials.entries[key];
    await this.writeCredentials(credentials);
    const targets = await this.readTargetTokens();
    for (const key of Object.keys(targets.entries).filter(ofGateway)) delete targets.entries[key];
    await this.writeTargetTokens(targets);
  }

  /** Creates the folder 0700, or tightens an existing one to 0700 (it holds session tokens). */
  async ensure(): Promise<void> {
    await mkdir(this.path, { recursive: true, mode: 0o700 });
    const stat = await lstat(this.path);
    if (!stat.isDirectory()) throw new Error(`${this.path} is not a directory`);
    if ((stat.mode & 0o777) !== 0o700) await chmod(this.path, 0o700);
  }

  async #read(file: string): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // A damaged file is treated as empty: the next login or refresh rewrites it.
      return undefined;
    }
  }

  async #write(file: string, data: unknown): Promise<void> {
    await this.ensure();
    const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      // `wx`: never follow or reuse something already at the temporary name.
      await writeFile(temporary, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      await rename(temporary, file);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
