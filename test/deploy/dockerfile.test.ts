/**
 * The Dockerfile, read statically (no Docker engine runs here): multi-stage, production dependencies
 * only, a numeric non-root user, a Node health check on /healthz, the documented entrypoint and port.
 * test/deploy/image-start.test.ts runs what the image runs, as a plain process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execForm, finalStage, parseDockerfile, readDockerfile, REPO_ROOT, type Instruction } from './dockerfile.js';

const instructions = readDockerfile();
const runtime = finalStage(instructions);
const stageNames = instructions.filter((i) => i.keyword === 'FROM').map((i) => /\bAS\s+(\S+)/i.exec(i.args)?.[1] ?? '');
const stageOf = (name: string) => instructions.filter((i) => i.stage === stageNames.indexOf(name));
const runs = (stage: Instruction[]) => stage.filter((i) => i.keyword === 'RUN').map((i) => i.args);

/** The base image of a FROM, with `${ARG}` replaced by the global ARG's default. */
function baseImage(from: Instruction): string {
  const globals = Object.fromEntries(
    instructions.filter((i) => i.keyword === 'ARG' && i.stage === -1).map((i) => i.args.split('=') as [string, string]),
  );
  return from.args.split(/\s+/)[0]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => globals[(a ?? b)!] ?? '');
}

/** The stage a `COPY --from=<stage>` in the runtime stage takes `path` from. */
function copiedFrom(path: string): string | undefined {
  const copy = runtime.find((i) => i.keyword === 'COPY' && new RegExp(`\\s${path}\\s`).test(` ${i.args} `));
  return copy ? /--from=(\S+)/.exec(copy.args)?.[1] : undefined;
}

describe('Dockerfile', () => {
  it('parses continuation lines and stages (the reader itself)', () => {
    const parsed = parseDockerfile('ARG A=1\nFROM x AS one\nRUN a \\\n  # note\n  && b\nFROM y\nUSER 1\n');
    expect(parsed.map((i) => [i.keyword, i.stage])).toEqual([['ARG', -1], ['FROM', 0], ['RUN', 0], ['FROM', 1], ['USER', 1]]);
    expect(parsed[2]!.args).toBe('a && b');
  });

  it('is multi-stage: npm ci and npm run build in a build stage', () => {
    expect(stageNames.length).toBeGreaterThanOrEqual(2);
    expect(stageNames).toContain('build');
    expect(runs(stageOf('build')).join('\n')).toMatch(/npm ci\b/);
    expect(runs(stageOf('build')).join('\n')).toMatch(/npm run build\b/);
  });

  it('runs on Node.js 20 slim', () => {
    const from = instructions.filter((i) => i.keyword === 'FROM').at(-1)!;
    expect(baseImage(from)).toMatch(/^node:20(\.\d+)*-slim(@sha256:[a-f0-9]{64})?$/);
    for (const stage of instructions.filter((i) => i.keyword === 'FROM')) expect(baseImage(stage)).toMatch(/^node:20/);
  });

  it('ships production dependencies only (npm ci --omit=dev) and the compiled dist/', () => {
    const depsStage = copiedFrom('/app/node_modules');
    expect(depsStage, 'node_modules is copied from another stage').toBeDefined();
    const depsRuns = runs(stageOf(depsStage!)).join('\n');
    expect(depsRuns).toMatch(/npm ci\b[^\n]*--omit=dev/);
    expect(depsRuns).not.toMatch(/npm (ci|install)(?![^\n]*--omit=dev)/);
    expect(copiedFrom('/app/dist')).toBe('build');
    expect(runtime.some((i) => i.keyword === 'COPY' && /\bsrc\b/.test(i.args))).toBe(false);
    expect(runtime.map((i) => i.args).join('\n')).not.toMatch(/\btsx\b/);
  });

  it('runs as a numeric non-root user', () => {
    const users = runtime.filter((i) => i.keyword === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const [uid, gid] = users.at(-1)!.args.split(':');
    expect(uid).toMatch(/^[0-9]+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    if (gid !== undefined) expect(Number(gid)).toBeGreaterThan(0);
    // Nothing runs as root after the switch.
    const switchedAt = runtime.indexOf(users.at(-1)!);
    expect(runtime.slice(switchedAt).filter((i) => i.keyword === 'RUN')).toEqual([]);
  });

  it('exposes 8080 and the metrics port 9090, and checks /healthz with Node (no curl in slim images)', () => {
    expect(runtime.filter((i) => i.keyword === 'EXPOSE').map((i) => i.args)).toEqual(['8080 9090']);
    const check = runtime.find((i) => i.keyword === 'HEALTHCHECK');
    expect(check).toBeDefined();
    const command = execForm(check!.args.slice(check!.args.indexOf('CMD') + 3));
    expect(command?.[0]).toBe('node');
    expect(command?.join(' ')).toContain('http://127.0.0.1:8080/healthz');
    expect(check!.args).not.toMatch(/\b(curl|wget)\b/);
    expect(check!.args).toMatch(/--timeout=\d+s/);
  });

  it('starts the compiled CLI: ENTRYPOINT node --max-semi-space-size=4 --heap-growing-percent=50 dist/cli.js, CMD serve --config /etc/stsgate/gateway.yaml', () => {
    expect(runtime.filter((i) => i.keyword === 'ENTRYPOINT').map((i) => execForm(i.args))).toEqual([['node', '--max-semi-space-size=4', '--heap-growing-percent=50', 'dist/cli.js']]);
    expect(runtime.filter((i) => i.keyword === 'CMD').map((i) => execForm(i.args))).toEqual([['serve', '--config', '/etc/stsgate/gateway.yaml']]);
    expect(runtime.find((i) => i.keyword === 'WORKDIR')?.args).toBe('/app');
  });

  it('sets NODE_ENV=production and puts HOME in /tmp (read-only root filesystem)', () => {
    const env = runtime.filter((i) => i.keyword === 'ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/NODE_ENV=production/);
    expect(env).toMatch(/HOME=\/tmp/);
    expect(runtime.some((i) => i.keyword === 'VOLUME')).toBe(false);
  });

  it('fetches nothing by URL and bakes in no secret', () => {
    expect(instructions.filter((i) => i.keyword === 'ADD')).toEqual([]);
    for (const i of instructions.filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
      expect(i.args, `line ${i.line}`).not.toMatch(/(PASSWORD|SECRET|TOKEN|PRIVATE|_KEY)\b/i);
    }
  });

  it('copies only files that exist in the repository', () => {
    for (const copy of instructions.filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))) {
      const sources = copy.args.split(/\s+/).slice(0, -1).filter((s) => s !== '.');
      for (const source of sources) expect(existsSync(join(REPO_ROOT, source)), `${source} (line ${copy.line})`).toBe(true);
    }
  });

  it('.dockerignore lets in only what the build needs', () => {
    const patterns = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(patterns[0]).toBe('*');
    const included = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
    expect(included.sort()).toEqual(['package-lock.json', 'package.json', 'providers', 'src', 'tsconfig.build.json', 'tsconfig.json']);
  });
});
