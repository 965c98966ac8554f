/**
 * Real `stsgate serve` processes for tests: the command users run (`node --import tsx src/cli.ts serve`),
 * configured by a YAML file written here, with every stdout and stderr line kept so tests can read the
 * audit log and scan it for secrets. Each process is killed when its test stops it or, failing that, when
 * the test process exits.
 *
 *   const keys = await sharedKeys(dir);                    // one keys file and encryption key for replicas
 *   const a = await startGatewayProcess(await writeGatewayConfig(dir, { keys, issuer, store }));
 *   const stopped = await a.stop();                        // SIGTERM; { code, signal, ms }
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JWK } from 'jose';
import { afterAll, beforeAll, expect } from 'vitest';
import { stringify } from 'yaml';
import { generateSigningJwk } from '../../src/credentials/signing-keys.js';
import { TEST_AUDIENCE, TestIssuer } from './test-issuer.js';
import { ACCOUNT_ID, freePort, sleep } from './common.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(REPO_ROOT, 'src', 'cli.ts');

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A temp dir removed when the test process exits (or by `removeTempDir`). */
export function makeTempDir(kind = 'gateway'): string {
  const dir = mkdtempSync(join(tmpdir(), `stsgate-${kind}-`));
  dirs.add(dir);
  return dir;
}

/** Removes a dir made by `makeTempDir` now. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** The key material replicas share: a keys file (as `stsgate keys generate` writes a key) and an encryption key. */
export interface SharedKeys {
  keysFile: string;
  /** The private JWKs in the file, to scan logs for. */
  privateJwks: JWK[];
  /** base64 of 32 random bytes, as `credentials.encryption_key` takes it. */
  encryptionKey: string;
}

/** Writes a one-key keys file into `dir` and makes an encryption key. */
export async function sharedKeys(dir: string): Promise<SharedKeys> {
  const jwk = await generateSigningJwk('ES256');
  const keysFile = join(dir, 'keys.json');
  await writeFile(keysFile, `${JSON.stringify({ keys: [jwk] }, null, 2)}\n`, { mode: 0o600 });
  return { keysFile, privateJwks: [jwk], encryptionKey: randomBytes(32).toString('base64') };
}

/** The secret members of private JWKs (RFC 7518 §6.2.2, §6.3.2). */
export function privateKeyMaterial(jwks: JWK[]): string[] {
  return jwks.flatMap((jwk) => ['d', 'p', 'q', 'dp', 'dq', 'qi'].map((member) => (jwk as Record<string, unknown>)[member]).filter((v): v is string => typeof v === 'string'));
}

/** `store:` in YAML: the standalone URL, a Cluster's seed nodes, or a Sentinel set. */
export type StoreYaml =
  | { url: string; prefix: string }
  | { cluster: { nodes: { host: string; port: number }[] }; prefix: string }
  | { sentinel: { sentinels: { host: string; port: number }[]; name: string }; prefix: string };

/** A fresh prefix, so runs never see each other's keys on a shared Redis. */
export function testPrefix(): string {
  return `stsgate-test:${randomBytes(6).toString('hex')}:`;
}

export interface GatewayConfigOptions {
  keys: SharedKeys;
  issuer: TestIssuer;
  store?: StoreYaml;
  /** Default: a free port. */
  port?: number;
  /** The metrics and admin listener's port; default: a free one. */
  adminPort?: number;
  /** `admin.token_file`: the admin API's bearer token file; absent: the admin API is off. */
  adminTokenFile?: string;
  workers?: number | 'auto';
  shutdown?: { delay_seconds?: number; grace_seconds?: number };
  reloadIntervalSeconds?: number;
  /** `limits:` as written (e.g. the per-minute exchange limits off for a load test). */
  limits?: Record<string, number>;
  /** File name in the dir; default `gateway-<port>.yaml`. */
  name?: string;
}

/**
 * The roles and rules of every process test: `deployer` for main of acme/app, `reader` for any acme
 * repository. Each lists itself in `can_assume`, so its access token may be exchanged again (narrowed).
 */
export const ROLES = [
  { name: 'deployer', scopes: ['deploy:write', 'logs:read'], audiences: ['api.example.com'], max_session_seconds: 3600, can_assume: ['deployer'] },
  { name: 'reader', scopes: ['logs:read'], audiences: ['api.example.com'], max_session_seconds: 900, can_assume: ['reader'] },
];
export const RULES = [
  {
    name: 'main branch of acme/app may deploy',
    match: { source: 'ci', all: [{ claim: 'repository', equals: 'acme/app' }, { claim: 'ref', equals: 'refs/heads/main' }] },
    roles: ['deployer'],
  },
  { name: 'any acme repository may read', match: { source: 'ci', claim: 'repository', starts_with: 'acme/' }, roles: ['reader'] },
];

/** Where a gateway process listens, and its config file. */
export interface GatewayConfigFile {
  file: string;
  port: number;
  adminPort: number;
}

/** Writes a gateway YAML file into `dir` and returns its path and ports. */
export async function writeGatewayConfig(dir: string, options: GatewayConfigOptions): Promise<GatewayConfigFile> {
  const port = options.port ?? (await freePort());
  const adminPort = options.adminPort ?? (await freePort());
  const document = {
    public_url: 'http://127.0.0.1:8080',
    listen: { host: '127.0.0.1', port },
    admin: { listen: { port: adminPort }, ...(options.adminTokenFile === undefined ? {} : { token_file: options.adminTokenFile }) },
    // A generous command timeout: these tests share two cores with many processes, and a slow reply here
    // is a starved CPU, not the dead Redis the production default (1 s) is there to notice.
    ...(options.store ? { store: { redis: { command_timeout_ms: 5_000, ...options.store } } } : {}),
    signing: {
      algorithm: 'ES256',
      keys_file: options.keys.keysFile,
      ...(options.reloadIntervalSeconds === undefined ? {} : { reload_interval_seconds: options.reloadIntervalSeconds }),
    },
    credentials: { encryption_key: options.keys.encryptionKey },
    account_id: ACCOUNT_ID,
    dev: { allow_insecure_http: true },
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    ...(options.shutdown === undefined ? {} : { shutdown: options.shutdown }),
    issuers: [{ id: 'ci', issuer: options.issuer.url, audiences: [TEST_AUDIENCE] }],
    roles: ROLES,
    rules: RULES,
  };
  const file = join(dir, options.name ?? `gateway-${port}.yaml`);
  await writeFile(file, stringify(document), { mode: 0o600 });
  return { file, port, adminPort };
}

/** A running `stsgate serve`. */
export interface GatewayProcess {
  url: string;
  port: number;
  /** The metrics and admin listener. */
  adminUrl: string;
  pid: number;
  child: ChildProcess;
  /** stdout lines so far (pino JSON). */
  stdout: string[];
  stderr: string[];
  /** stdout lines parsed as JSON (others skipped). */
  logs(): Record<string, unknown>[];
  /** Warnings and errors it logged, and its stderr: for failure messages. */
  problems(): string[];
  /** The audit lines (`log: "audit"`). */
  audit(): Record<string, unknown>[];
  /**
   * The log lines matching `match`, once there are at least `count` (default 1): a line is written before
   * the response, but read from the pipe in its own time.
   */
  waitForLogs(match: (line: Record<string, unknown>) => boolean, count?: number, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  /** Resolves when the process exits. */
  exited: Promise<ProcessExit>;
  /** Sends `signal` (default SIGTERM) and waits for the exit; SIGKILL after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ProcessExit>;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Milliseconds from `stop` (or from the start) to the exit. */
  ms: number;
}

/** Every process started by this test file, with its output: for the log scan. */
export const startedProcesses: GatewayProcess[] = [];

/** Runs an stsgate command to completion (e.g. `keys rotate`); its output joins the scanned logs. */
export async function runStsgate(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  live.delete(child);
  commandOutputs.push(stdout, stderr);
  return { code, stdout, stderr };
}

/** Output of `runStsgate` commands, for the log scan. */
export const commandOutputs: string[] = [];

export interface StartOptions {
  /** With `workers: n`, wait until the primary reports n workers listening. */
  workers?: number;
  timeoutMs?: number;
}

/** Spawns `stsgate serve --config file` and waits until /readyz answers 200 (and every worker listens). */
export async function startGatewayProcess(config: GatewayConfigFile, options: StartOptions = {}): Promise<GatewayProcess> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--config', config.file], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STSGATE_LOG_LEVEL: 'debug' },
  });
  live.add(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  collectLines(child.stdout!, stdout);
  collectLines(child.stderr!, stderr);
  let exitInfo: ProcessExit | undefined;
  let stopAsked = started;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      exitInfo = { code, signal, ms: Date.now() - stopAsked };
      resolve(exitInfo);
    });
  });
  const logs = () => stdout.flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
  const url = `http://127.0.0.1:${config.port}`;
  const gateway: GatewayProcess = {
    url,
    port: config.port,
    adminUrl: `http://127.0.0.1:${config.adminPort}`,
    pid: child.pid!,
    child,
    stdout,
    stderr,
    logs,
    audit: () => logs().filter((line) => line.log === 'audit'),
    problems: () => [...logs().filter((line) => ['warn', 'error', 'fatal'].includes(line.level as string)).map((line) => JSON.stringify(line)), ...stderr],
    async waitForLogs(match, count = 1, timeoutMs = 5_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const found = logs().filter(match);
        if (found.length >= count) return found;
        if (Date.now() > until) throw new Error(`expected ${count} matching log lines, found ${found.length}`);
        await sleep(20);
      }
    },
    exited,
    async stop(signal = 'SIGTERM', timeoutMs = 20_000) {
      if (exitInfo) return exitInfo;
      stopAsked = Date.now();
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
  startedProcesses.push(gateway);

  const deadline = started + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (exitInfo) throw new Error(`stsgate exited early (code ${exitInfo.code}):\n${[...stdout, ...stderr].join('\n').slice(-4_000)}`);
    const listening = logs().filter((line) => line.msg === 'worker listening').length;
    if ((options.workers === undefined || listening >= options.workers) && (await readyz(url)) === 200) return gateway;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`stsgate not ready after ${options.timeoutMs ?? 20_000} ms:\n${[...stdout, ...stderr].join('\n').slice(-4_000)}`);
    }
    await sleep(50);
  }
}

/**
 * How many connections wait in the kernel's accept queue of the loopback listener on `port` (Linux
 * /proc/net/tcp; undefined elsewhere). A connection still there has not reached the gateway yet.
 */
export function acceptQueueLength(port: number): number | undefined {
  if (!existsSync('/proc/net/tcp')) return undefined;
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // For a listening socket (state 0A) the rx_queue column is the accept queue.
    if (fields[1] === local && fields[3] === '0A') return Number.parseInt(fields[4]!.split(':')[1]!, 16);
  }
  return undefined;
}

/** Stops every process this test file started that still runs (SIGKILL: for cleanup after failures). */
export async function killAllGatewayProcesses(): Promise<void> {
  await Promise.all(
    startedProcesses.map(async (gateway) => {
      if (gateway.child.exitCode === null && gateway.child.signalCode === null) await gateway.stop('SIGKILL');
    }),
  );
}

/** GET /readyz on a fresh connection: the status, or the error code (ECONNREFUSED...) when there is none. */
export function readyz(url: string, timeoutMs = 5_000): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(`${url}/readyz`, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.end();
  });
}

/**
 * Every secret a test handled, to be looked for in the logs: in full and by its last 16 characters (a
 * log that truncates a token from the front still leaks the part that matters for a JWT's signature).
 */
export class SecretLedger {
  readonly #values = new Map<string, string>();

  /** Records a secret under a label (shown in failures instead of the value). */
  add(label: string, value: string | undefined): void {
    if (value === undefined || value.length < 16) throw new Error(`${label}: expected a secret of at least 16 characters`);
    this.#values.set(value, label);
  }

  get size(): number {
    return this.#values.size;
  }

  /** The labels of secrets found in `text`, with how they were found. */
  findIn(text: string): string[] {
    const found: string[] = [];
    for (const [value, label] of this.#values) {
      if (text.includes(value)) found.push(`${label} (whole)`);
      else if (text.includes(value.slice(-16))) found.push(`${label} (last 16 characters)`);
    }
    return found;
  }
}

/** Every line every gateway process and command of this test file wrote, stdout and stderr. */
export function allOutput(): string {
  return [...startedProcesses.flatMap((g) => [...g.stdout, ...g.stderr]), ...commandOutputs].join('\n');
}

/**
 * Asserts that the output of every process this test file started holds none of the ledger's secrets,
 * in full or by their last 16 characters; first checks that the scan would see a planted one.
 */
export function expectNoSecretsInOutput(ledger: SecretLedger, minimum: number): void {
  const output = allOutput();
  expect(ledger.size).toBeGreaterThanOrEqual(minimum);
  expect(output).toContain('"msg":"stsgate listening"');
  const canary = randomBytes(24).toString('base64url');
  const planted = new SecretLedger();
  planted.add('canary', canary);
  expect(planted.findIn(`${output}\n...${canary.slice(-16)}"`)).toEqual(['canary (last 16 characters)']);
  expect(ledger.findIn(output)).toEqual([]);
}

/** Secrets every test file holds: the keys file's private members and the encryption key. */
export function recordKeyMaterial(ledger: SecretLedger, keys: SharedKeys): void {
  privateKeyMaterial(keys.privateJwks).forEach((value, i) => ledger.add(`private signing key member ${i}`, value));
  ledger.add('encryption key', keys.encryptionKey);
  ledger.add('encryption key (base64url)', Buffer.from(keys.encryptionKey, 'base64').toString('base64url'));
  ledger.add('encryption key (hex)', Buffer.from(keys.encryptionKey, 'base64').toString('hex'));
}

/** What the process tests share: a temp dir, a TestIssuer, and shared keys whose material is in the ledger. */
export interface ProcessTestSetup {
  readonly ledger: SecretLedger;
  dir: string;
  issuer: TestIssuer;
  keys: SharedKeys;
}

/**
 * Before the enclosing suite's tests: a temp dir (`kind` names it), a TestIssuer, and shared keys recorded
 * in the ledger; after them: every gateway process killed, the issuer closed, the dir removed. The ledger
 * exists at once; the other fields are set once beforeAll ran.
 */
export function useProcessTestSetup(kind: string): ProcessTestSetup {
  const setup = { ledger: new SecretLedger() } as ProcessTestSetup;
  beforeAll(async () => {
    setup.dir = makeTempDir(kind);
    setup.issuer = await TestIssuer.start();
    setup.keys = await sharedKeys(setup.dir);
    recordKeyMaterial(setup.ledger, setup.keys);
  });
  afterAll(async () => {
    await killAllGatewayProcesses();
    await setup.issuer?.close();
    if (setup.dir) removeTempDir(setup.dir);
  });
  return setup;
}

/** GETs a URL on a new connection (with `headers`), returning status and body text. */
export function getText(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function collectLines(stream: NodeJS.ReadableStream, into: string[]): void {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop()!;
    for (const line of parts) if (line !== '') into.push(line);
  });
  stream.on('end', () => {
    if (rest !== '') into.push(rest);
  });
}
