/**
 * What the image does at start, done as a plain process (no Docker engine runs here): an /app folder laid
 * out like the image's (production dependencies from `npm ci --omit=dev`, dist/ compiled from the current
 * sources, package.json, providers/), then `node dist/cli.js serve --config FILE` from /app, as the
 * image's ENTRYPOINT and CMD do, under the image's numeric user when this test runs as root (so a write
 * outside /tmp fails as on a read-only root filesystem). It must answer /healthz and /readyz, pass the
 * Dockerfile's own HEALTHCHECK command, and exit 0 soon after SIGTERM.
 *
 * dist/ is compiled into the temporary /app every run rather than reused from the work tree, so a
 * stale build can never make this test pass.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execForm, finalStage, readDockerfile, REPO_ROOT } from './dockerfile.js';
import { freePort, sleep } from '../support/common.js';

const runtime = finalStage(readDockerfile());
/** The image's USER (uid:gid). */
const [IMAGE_UID, IMAGE_GID] = runtime.find((i) => i.keyword === 'USER')!.args.split(':').map(Number) as [number, number];
const [ENTRY_NODE, ...ENTRY_ARGS] = execForm(runtime.find((i) => i.keyword === 'ENTRYPOINT')!.args)!;
const HEALTHCHECK = execForm(runtime.find((i) => i.keyword === 'HEALTHCHECK')!.args.replace(/^[\s\S]*?\bCMD\s+/, ''))!;
const asRoot = process.getuid?.() === 0;

let root: string;
let app: string;

/** Every file under a folder with its size and mtime, to see whether the process wrote anything there. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const stat = statSync(path);
      if (stat.isDirectory()) {
        if (name !== 'node_modules') walk(path);
      } else out.set(relative(dir, path), `${stat.size}:${stat.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

async function waitFor200(url: string, deadline: number): Promise<Response> {
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (response.status === 200) return response;
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  throw new Error(`${url}: ${last}`);
}

function exitOf(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
    const timer = setTimeout(() => reject(new Error(`no exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'stsgate-image-'));
  app = join(root, 'app');
  mkdirSync(app);
  // As the Dockerfile's deps stage: production dependencies only, from the lock file, no install scripts.
  for (const file of ['package.json', 'package-lock.json']) cpSync(join(REPO_ROOT, file), join(app, file));
  execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, stdio: 'pipe' });
  // As the build stage: `npm run build` is `tsc -p tsconfig.build.json`, here with dist/ inside /app.
  execFileSync(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json', '--outDir', join(app, 'dist')], { cwd: REPO_ROOT, stdio: 'pipe' });
  if (existsSync(join(REPO_ROOT, 'providers'))) cpSync(join(REPO_ROOT, 'providers'), join(app, 'providers'), { recursive: true });
  else mkdirSync(join(app, 'providers'));
  // The image user may read and traverse, not write (everything belongs to root, as in the image).
  chmodSync(root, 0o755);
}, 120_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('the image start command, run as a plain process', () => {
  it('serves /healthz and /readyz, metrics on the admin port, passes the HEALTHCHECK, writes nothing in /app, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const adminPort = await freePort();
    const etc = join(root, 'etc-stsgate');
    mkdirSync(etc);
    chmodSync(etc, 0o755);
    const config = join(etc, 'gateway.yaml');
    writeFileSync(
      config,
      [
        `public_url: http://127.0.0.1:${port}`,
        `listen: { host: 127.0.0.1, port: ${port} }`,
        `admin: { listen: { port: ${adminPort} } }`,
        'account_id: "123456789012"',
        'roles: [{ name: reader, scopes: [logs:read], audiences: [api.example.com] }]',
        '',
      ].join('\n'),
      { mode: 0o644 },
    );
    const home = join(root, 'tmp');
    mkdirSync(home);
    chmodSync(home, 0o1777);
    const before = snapshot(app);

    const child = spawn(ENTRY_NODE!, [...ENTRY_ARGS, 'serve', '--config', config], {
      cwd: app,
      env: { PATH: process.env.PATH, NODE_ENV: 'production', HOME: home, TMPDIR: home },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asRoot ? { uid: IMAGE_UID, gid: IMAGE_GID } : {}),
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));

    try {
      const deadline = Date.now() + 15_000;
      const health = await waitFor200(`http://127.0.0.1:${port}/healthz`, deadline).catch((err: unknown) => {
        throw new Error(`${String(err)}\n--- gateway output ---\n${output}`);
      });
      expect(health.headers.get('cache-control')).toBe('no-store');
      const ready = await waitFor200(`http://127.0.0.1:${port}/readyz`, deadline);
      expect(((await ready.json()) as { status: string }).status).toBe('ready');
      expect(await (await waitFor200(`http://127.0.0.1:${adminPort}/metrics`, deadline)).text()).toContain('stsgate_http_requests_total');
      if (asRoot) expect(readFileSync(`/proc/${child.pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${IMAGE_UID}\\s`, 'm'));

      // The Dockerfile's HEALTHCHECK, verbatim but for the port.
      const check = HEALTHCHECK.map((arg) => arg.replace('127.0.0.1:8080', `127.0.0.1:${port}`));
      expect(spawnSync(check[0]!, check.slice(1), { timeout: 5_000 }).status).toBe(0);

      child.kill('SIGTERM');
      expect(await exitOf(child, 5_000)).toEqual({ code: 0, signal: null });
    } finally {
      child.kill('SIGKILL');
    }

    expect(output).toContain('stsgate listening');
    expect(output).toMatch(/stsgate stopped|shutting down/);
    expect(snapshot(app)).toEqual(before);
    // With the gateway gone, the same health check reports failure.
    const check = HEALTHCHECK.map((arg) => arg.replace('127.0.0.1:8080', `127.0.0.1:${port}`));
    expect(spawnSync(check[0]!, check.slice(1), { timeout: 5_000 }).status).toBe(1);
  }, 30_000);

  it('the compiled code imports only runtime dependencies (what npm ci --omit=dev installs)', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const imported = new Set<string>();
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.js')) {
          // TypeScript's own scanner lists static imports, re-exports and import() calls.
          for (const { fileName: specifier } of ts.preProcessFile(readFileSync(path, 'utf8'), true, true).importedFiles) {
            if (specifier.startsWith('.') || specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
            imported.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
          }
        }
      }
    };
    walk(join(app, 'dist'));
    expect(imported.size).toBeGreaterThan(0);
    expect([...imported].filter((name) => !(name in pkg.dependencies))).toEqual([]);
    expect(imported.has('tsx')).toBe(false);
  });
});
